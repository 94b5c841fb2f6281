"""The manifest and live-metrics checks behind scripts/validate-manifests and
scripts/live-metrics-check.

Layout:

- `common`: what both checks read the same way (paths, YAML, queries,
  pod specs, printing and running tools)
- `manifests`: scripts/validate-manifests, step by step
- `manifest_policy`: the deployment policy and MySQL connection budget
- `manifest_binaries`: images and configuration against the binaries
- `mysql_backup`: the backup and restore scripts' round trip
- `live_metrics`: scripts/live-metrics-check, step by step
- `live_stack`: the throw-away database, vhost and processes it starts
- `live_load`: the students it sends through the public API
- `live_queries`: every query through Prometheus, and the metric names

Run from the repository root with `python3 -m sluice_checks.<module>` and
`scripts/` on PYTHONPATH (the bash wrappers do this).
"""
