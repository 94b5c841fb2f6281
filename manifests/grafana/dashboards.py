#!/usr/bin/env python3
"""Sluice's Grafana dashboards, written as data; renders dashboards/*.json.

    python3 manifests/grafana/dashboards.py          # rewrite the JSON files
    python3 manifests/grafana/dashboards.py --check  # fail if they differ

Edit the definitions here, not the JSON. Queries use fixed range windows
(no Grafana-only variables such as $__rate_interval), so each one can be
evaluated as-is through Prometheus's HTTP API by the live dashboard check.
Only the datasource is a template variable. Standard library only.
"""

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
WORKER_HPA = 'horizontalpodautoscaler=~"worker|keda-hpa-worker"'


def q(expr, legend="", instant=False):
    return {"expr": expr, "legend": legend, "instant": instant}


def ts(title, targets, unit="short", desc="", w=12, h=8, stack=False):
    return {"type": "timeseries", "title": title, "targets": targets,
            "unit": unit, "desc": desc, "w": w, "h": h, "stack": stack}


def stat(title, expr, unit="short", desc="", w=6, h=4, thresholds=None):
    return {"type": "stat", "title": title, "targets": [q(expr, instant=True)],
            "unit": unit, "desc": desc, "w": w, "h": h,
            "thresholds": thresholds}


def bars(title, expr, legend, unit="short", desc="", w=12, h=12):
    return {"type": "bargauge", "title": title,
            "targets": [q(expr, legend, instant=True)],
            "unit": unit, "desc": desc, "w": w, "h": h}


def quantiles(metric, by="", qs=(0.5, 0.99), window="5m", legend_prefix=""):
    group = f"{by}, le" if by else "le"
    out = []
    for p in qs:
        legend = f"{legend_prefix}p{int(p * 100)}"
        if by:
            legend += " " + " ".join("{{%s}}" % b.strip() for b in by.split(","))
        out.append(q(f"histogram_quantile({p}, sum by ({group}) "
                     f"(rate({metric}_bucket[{window}])))", legend))
    return out


def poll_quantiles():
    """Status polls: every route whose template ends in /status."""
    return [q("histogram_quantile(%s, sum by (le) (rate("
              "sluice_http_request_duration_seconds_bucket{route=~\".*/status\"}[5m])))"
              % p, "p%d" % int(p * 100)) for p in (0.5, 0.99)]


RED_GREEN = [{"color": "green", "value": None}, {"color": "red", "value": 1}]

DASHBOARDS = {
    "sluice-waiting-room": {
        "title": "Sluice / Waiting room",
        "desc": "Students waiting and admitted per round, admission pace "
                "against the configured rate, pauses. Gateways report the "
                "shared room snapshot, so gauges aggregate with max.",
        "panels": [
            stat("Waiting", "sum(max by (round) (sluice_waitroom_waiting))"),
            stat("Admitted and active",
                 "sum(max by (round) (sluice_waitroom_active))"),
            stat("Rounds paused", "sum(max by (round) (sluice_waitroom_paused))",
                 thresholds=RED_GREEN),
            stat("Admission leaders", "sum(sluice_waitroom_leader)",
                 desc="Exactly 1 is healthy: one gateway advances the serving mark.",
                 thresholds=[{"color": "red", "value": None},
                             {"color": "green", "value": 1},
                             {"color": "red", "value": 2}]),
            ts("Waiting students by round",
               [q("max by (round) (sluice_waitroom_waiting)", "{{round}}")]),
            ts("Joins and status polls per second",
               [q("sum by (round) (rate(sluice_waitroom_joins_total[1m]))",
                  "joins {{round}}"),
                q("sum by (round) (rate(sluice_waitroom_polls_total[1m]))",
                  "polls {{round}}")], unit="reqps"),
            ts("Admissions per minute vs configured rate",
               [q("sum by (round) (rate(sluice_waitroom_admissions_total[1m])) * 60",
                  "admitted/min {{round}}"),
                q("max by (round) (sluice_waitroom_admission_rate_per_min)",
                  "configured/min {{round}}")],
               desc="Admitted below the configured rate means the max-active "
                    "cap binds, the room is paused, or too few are waiting."),
            ts("Active students vs max-active cap",
               [q("max by (round) (sluice_waitroom_active)", "active {{round}}"),
                q("max by (round) (sluice_waitroom_max_active)",
                  "cap {{round}} (0 = none)")]),
            ts("Paused (1) or admitting (0)",
               [q("max by (round) (sluice_waitroom_paused)", "{{round}}")]),
            ts("Waiting per priority class",
               [q("max by (round, years) (sluice_waitroom_lane_waiting)",
                  "{{round}}: years {{years}}")],
               desc="Rounds that give classes of students an earlier turn: "
                    "each class's line. Strict: a later class moves only once "
                    "the earlier ones are served; weighted: by its share of "
                    "turns. Rounds with one line show nothing here."),
            ts("Minutes to admit everyone now waiting",
               [q("max by (round) (sluice_waitroom_waiting) / "
                  "(max by (round) (sluice_waitroom_admission_rate_per_min) > 0)",
                  "{{round}}")], unit="m",
               desc="Waiting students divided by the configured rate: the "
                    "upper end of what the queue page promises."),
        ],
    },
    "sluice-queue": {
        "title": "Sluice / Queue",
        "desc": "RabbitMQ's sluice.commands quorum queue and its dead-letter "
                "queue (rabbitmq_prometheus /metrics/detailed), and the "
                "gateway's publisher confirms.",
        "panels": [
            stat("Ready commands",
                 'max(rabbitmq_detailed_queue_messages_ready{queue="sluice.commands"})'),
            stat("Held by workers (unacked)",
                 'max(rabbitmq_detailed_queue_messages_unacked{queue="sluice.commands"})'),
            stat("Dead-letter queue",
                 'max(rabbitmq_detailed_queue_messages{queue="sluice.commands.dead"})',
                 thresholds=RED_GREEN),
            stat("Consumers",
                 'max(rabbitmq_detailed_queue_consumers{queue="sluice.commands"})'),
            ts("Depth per queue",
               [q('max by (queue) (rabbitmq_detailed_queue_messages_ready'
                  '{queue=~"sluice[.]commands([.]dead)?"})', "{{queue}} ready"),
                q('max by (queue) (rabbitmq_detailed_queue_messages_unacked'
                  '{queue=~"sluice[.]commands([.]dead)?"})', "{{queue}} unacked")]),
            ts("Oldest undecided command",
               [q("max(sluice_worker_oldest_unacked_age_seconds)", "oldest held"),
                q("histogram_quantile(0.99, sum by (le) "
                  "(rate(sluice_worker_decision_lag_seconds_bucket[5m])))",
                  "decision lag p99")], unit="s",
               desc="Age since the gateway accepted the oldest command a worker "
                    "holds; quorum queues do not report a head-message timestamp."),
            ts("Publish, deliver and ack rates",
               [q('sum(rate(rabbitmq_detailed_queue_messages_published_total'
                  '{queue="sluice.commands"}[1m]))', "published"),
                q('sum(rate(rabbitmq_detailed_channel_messages_delivered_ack_total'
                  '{queue="sluice.commands"}[1m]))', "delivered"),
                q('sum(rate(rabbitmq_detailed_channel_messages_acked_total'
                  '{queue="sluice.commands"}[1m]))', "acked"),
                q('sum(rate(rabbitmq_detailed_channel_messages_redelivered_total'
                  '{queue="sluice.commands"}[1m]))', "redelivered")],
               unit="ops"),
            ts("Dead-lettered (last 5 minutes)",
               [q("sum by (reason) (increase(sluice_worker_dead_lettered_total[5m]))",
                  "by worker: {{reason}}"),
                q("sum(increase(rabbitmq_global_messages_dead_lettered_delivery_limit_total[5m]))",
                  "by broker: delivery limit")]),
            ts("Publish confirm latency",
               quantiles("sluice_publish_confirm_seconds"), unit="s"),
            ts("Publish failures and accepted commands",
               [q("sum by (reason) (rate(sluice_publish_failures_total[1m]))",
                  "failed: {{reason}}"),
                q("sum by (action) (rate(sluice_commands_accepted_total[1m]))",
                  "accepted: {{action}}")], unit="ops"),
        ],
    },
    "sluice-workers": {
        "title": "Sluice / Workers",
        "desc": "Decisions, transactions and their health across all workers.",
        "panels": [
            ts("Outcomes by reason",
               [q("sum by (outcome, reason) (rate(sluice_worker_outcomes_total[1m]))",
                  "{{outcome}} {{reason}}")], unit="ops", stack=True, w=24),
            ts("Commit latency", quantiles("sluice_worker_commit_seconds"),
               unit="s"),
            ts("Commands per transaction (batch size)",
               quantiles("sluice_worker_batch_size") +
               [q("sum(rate(sluice_worker_batch_size_sum[5m])) / "
                  "sum(rate(sluice_worker_batch_size_count[5m]))", "mean")]),
            ts("Transactions and decisions per second",
               [q("sum(rate(sluice_worker_commit_seconds_count[1m]))", "commits"),
                q("sum(rate(sluice_worker_outcomes_total[1m]))", "decisions")],
               unit="ops"),
            ts("Decision lag (accepted to decided)",
               quantiles("sluice_worker_decision_lag_seconds"), unit="s"),
            ts("Redeliveries, retries and commit failures",
               [q("sum(rate(sluice_worker_redeliveries_total[1m]))", "redeliveries"),
                q("sum by (kind) (rate(sluice_worker_retries_total[1m]))",
                  "retry: {{kind}}"),
                q("sum(rate(sluice_worker_commit_failures_total[1m]))",
                  "commit failures")], unit="ops"),
            ts("Commands held per worker",
               [q("sluice_worker_in_flight", "{{instance}}")]),
            ts("Dead-lettered by reason",
               [q("sum by (reason) (rate(sluice_worker_dead_lettered_total[5m]))",
                  "{{reason}}")], unit="ops"),
            ts("Oldest unacked command per worker",
               [q("sluice_worker_oldest_unacked_age_seconds", "{{instance}}")],
               unit="s"),
        ],
    },
    "sluice-seats": {
        "title": "Sluice / Seats",
        "desc": "Seats left on the 20 hottest sections (the gateways export "
                "only those) and how fast seats are being taken.",
        "panels": [
            bars("Seats remaining, hottest sections",
                 "bottomk(20, min by (section) (sluice_section_seats_remaining))",
                 "{{section}}"),
            ts("Seats remaining over time",
               [q("min by (section) (sluice_section_seats_remaining)",
                  "{{section}}")], h=12),
            stat("Tracked sections sold out",
                 "count(min by (section) (sluice_section_seats_remaining) == 0) "
                 "or vector(0)"),
            stat("Enrollments per minute",
                 'sum(rate(sluice_worker_outcomes_total{outcome="enrolled"}[1m])) * 60'),
            stat("Turned away full, per minute",
                 'sum(rate(sluice_worker_outcomes_total{reason="full"}[1m])) * 60'),
            stat("Waitlisted, per minute",
                 'sum(rate(sluice_worker_outcomes_total{outcome="waitlisted"}[1m])) * 60'),
            ts("Fill rate by section (seats per minute)",
               [q("clamp_min(-deriv(min by (section) "
                  "(sluice_section_seats_remaining)[5m:15s]), 0) * 60",
                  "{{section}}")], w=24),
        ],
    },
    "sluice-scaling": {
        "title": "Sluice / Scaling",
        "desc": "Gateway and worker autoscalers: replicas from "
                "kube-state-metrics, and each HPA's metric against its "
                "target. Replica panels need kube-state-metrics (a cluster).",
        "panels": [
            ts("Gateway replicas",
               [q('kube_horizontalpodautoscaler_status_current_replicas'
                  '{namespace="sluice",horizontalpodautoscaler="gateway"}', "current"),
                q('kube_horizontalpodautoscaler_status_desired_replicas'
                  '{namespace="sluice",horizontalpodautoscaler="gateway"}', "desired"),
                q('kube_horizontalpodautoscaler_spec_max_replicas'
                  '{namespace="sluice",horizontalpodautoscaler="gateway"}', "max"),
                q('kube_horizontalpodautoscaler_spec_min_replicas'
                  '{namespace="sluice",horizontalpodautoscaler="gateway"}', "min")]),
            ts("Worker replicas",
               [q('kube_horizontalpodautoscaler_status_current_replicas'
                  '{namespace="sluice",%s}' % WORKER_HPA, "current"),
                q('kube_horizontalpodautoscaler_status_desired_replicas'
                  '{namespace="sluice",%s}' % WORKER_HPA, "desired"),
                q('kube_horizontalpodautoscaler_spec_max_replicas'
                  '{namespace="sluice",%s}' % WORKER_HPA, "max"),
                q('kube_horizontalpodautoscaler_spec_min_replicas'
                  '{namespace="sluice",%s}' % WORKER_HPA, "min")]),
            ts("Gateway requests per second per pod vs target",
               [q("avg(sum by (instance) (rate(sluice_http_requests_total[1m])))",
                  "per pod"),
                q('kube_horizontalpodautoscaler_spec_target_metric'
                  '{namespace="sluice",horizontalpodautoscaler="gateway",'
                  'metric_name="sluice_http_requests_per_second"}', "target")],
               unit="reqps"),
            ts("Gateway CPU utilisation vs target",
               [q('kube_horizontalpodautoscaler_status_target_metric'
                  '{namespace="sluice",horizontalpodautoscaler="gateway",'
                  'metric_name="cpu",metric_target_type="utilization"}', "current %"),
                q('kube_horizontalpodautoscaler_spec_target_metric'
                  '{namespace="sluice",horizontalpodautoscaler="gateway",'
                  'metric_name="cpu",metric_target_type="utilization"}', "target %")],
               unit="percent"),
            ts("Ready commands per worker vs target",
               [q('max(rabbitmq_detailed_queue_messages_ready{queue="sluice.commands"})'
                  ' / count(sluice_worker_in_flight)', "ready per worker"),
                q('kube_horizontalpodautoscaler_spec_target_metric'
                  '{namespace="sluice",%s}' % WORKER_HPA, "target")],
               desc="The worker HPA's own signal: ready messages on "
                    "sluice.commands divided by the number of workers."),
            ts("Available pods",
               [q('kube_deployment_status_replicas_available{namespace="sluice"}',
                  "{{deployment}}"),
                q('kube_statefulset_status_replicas_ready{namespace="sluice"}',
                  "{{statefulset}}")]),
        ],
    },
    "sluice-gateway-red": {
        "title": "Sluice / Gateway RED",
        "desc": "Rate, errors and duration of the gateway's HTTP routes "
                "(route = the matched route template).",
        "panels": [
            ts("Requests per second by route",
               [q("sum by (route) (rate(sluice_http_requests_total[1m]))",
                  "{{route}}")], unit="reqps", w=24),
            ts("Server errors (5xx) per second by route",
               [q('sum by (route) (rate(sluice_http_requests_total{status=~"5.."}[1m]))'
                  ' or sum by (route) (rate(sluice_http_requests_total[1m])) * 0',
                  "{{route}}")], unit="reqps"),
            ts("Error ratio (5xx / all)",
               [q('(sum(rate(sluice_http_requests_total{status=~"5.."}[1m])) or vector(0))'
                  ' / sum(rate(sluice_http_requests_total[1m]))', "5xx ratio")],
               unit="percentunit"),
            ts("Duration p99 by route",
               quantiles("sluice_http_request_duration_seconds", by="route",
                         qs=(0.99,)), unit="s"),
            ts("Duration p50 by route",
               quantiles("sluice_http_request_duration_seconds", by="route",
                         qs=(0.5,)), unit="s"),
            ts("Responses by status",
               [q("sum by (status) (rate(sluice_http_requests_total[1m]))",
                  "{{status}}")], unit="reqps", stack=True),
            ts("Requests shed or refused, by reason",
               [q("sum by (reason) (rate(sluice_http_rejected_total[1m]))",
                  "{{reason}}")], unit="reqps",
               desc="rate_limited and overloaded are load shedding (429/503 "
                    "with Retry-After); csrf, forbidden and bad_token are refusals."),
            ts("Status poll latency", poll_quantiles(), unit="s",
               desc="Routes ending in /status; alert SluicePollLatencyHigh "
                    "fires above 250 ms p99."),
            ts("Gateways by version",
               [q("count by (version) (sluice_build_info)", "{{version}}")]),
        ],
    },
}


def render(uid, spec):
    panels, x, y, row_h = [], 0, 0, 0
    for i, p in enumerate(spec["panels"], start=1):
        if x + p["w"] > 24:
            x, y, row_h = 0, y + row_h, 0
        panel = {
            "id": i,
            "type": p["type"],
            "title": p["title"],
            "datasource": DS,
            "gridPos": {"h": p["h"], "w": p["w"], "x": x, "y": y},
            "targets": [
                {"refId": chr(ord("A") + j), "datasource": DS, "expr": t["expr"],
                 "legendFormat": t["legend"], "instant": t["instant"],
                 "range": not t["instant"]}
                for j, t in enumerate(p["targets"])
            ],
            "fieldConfig": {"defaults": {"unit": p["unit"]}, "overrides": []},
        }
        if p["desc"]:
            panel["description"] = p["desc"]
        if p["type"] == "timeseries":
            panel["fieldConfig"]["defaults"]["custom"] = {
                "drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                "showPoints": "never",
                "stacking": {"mode": "normal" if p["stack"] else "none"},
            }
            panel["options"] = {
                "legend": {"displayMode": "list", "placement": "bottom",
                           "showLegend": True},
                "tooltip": {"mode": "multi", "sort": "desc"},
            }
        elif p["type"] == "stat":
            steps = p["thresholds"] or [{"color": "green", "value": None}]
            panel["fieldConfig"]["defaults"]["thresholds"] = {
                "mode": "absolute", "steps": steps}
            panel["options"] = {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                  "values": False},
                "colorMode": "value", "graphMode": "none", "textMode": "auto",
            }
        elif p["type"] == "bargauge":
            panel["fieldConfig"]["defaults"]["min"] = 0
            panel["options"] = {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                  "values": False},
                "orientation": "horizontal", "displayMode": "gradient",
                "showUnfilled": True,
            }
        panels.append(panel)
        x += p["w"]
        row_h = max(row_h, p["h"])
    return {
        "annotations": {"list": []},
        "description": spec["desc"],
        "editable": True,
        "graphTooltip": 1,
        "links": [{"type": "dashboards", "tags": ["sluice"], "asDropdown": True,
                   "title": "Sluice"}],
        "panels": panels,
        "refresh": "10s",
        "schemaVersion": 39,
        "tags": ["sluice"],
        "templating": {"list": [{
            "name": "datasource", "label": "Data source", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0,
            "refresh": 1, "options": [],
        }]},
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": spec["title"],
        "uid": uid,
        "version": 1,
    }


def check_shape(uid, dash):
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), f"{uid}: duplicate panel ids"
    for p in dash["panels"]:
        assert p["targets"], f"{uid}: panel {p['title']!r} has no query"
        for t in p["targets"]:
            assert t["expr"].strip(), f"{uid}: empty query in {p['title']!r}"
            assert "$" not in t["expr"], f"{uid}: template variable in {t['expr']!r}"
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, f"{uid}: panel {p['title']!r} overflows"


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for uid, spec in DASHBOARDS.items():
        dash = render(uid, spec)
        check_shape(uid, dash)
        text = json.dumps(dash, indent=2, ensure_ascii=False) + "\n"
        path = OUT / f"{uid.removeprefix('sluice-')}.json"
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            OUT.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print("dashboards out of date (run manifests/grafana/dashboards.py): "
              + ", ".join(stale), file=sys.stderr)
        return 1
    print(f"dashboards: {len(DASHBOARDS)} {'up to date' if check else 'written'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
