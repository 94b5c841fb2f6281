//! Logs and the Prometheus recorder, set up the same way in every Sluice
//! process; each binary passes in only what is its own (histogram buckets,
//! how long an idle gauge stays listed).

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;
use std::ffi::OsStr;
use std::sync::OnceLock;
use std::time::Duration;

/// The log filter when `RUST_LOG` is unset: our own events at info, the
/// database and broker clients only when something is wrong.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,lapin=warn";

/// Starts logging: filtered by `RUST_LOG` (else [`DEFAULT_FILTER`]), JSON
/// when `SLUICE_LOG_JSON` asks for it (see [`json_requested`]), else
/// human-readable. Call once from `main`; a second call (tests running
/// several services in one process) keeps the first subscriber.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let json = json_requested(std::env::var_os("SLUICE_LOG_JSON").as_deref());
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Whether a `SLUICE_LOG_JSON` value asks for JSON logs: set to anything but
/// empty, `0` or `false`. The manifests set `1`.
pub fn json_requested(value: Option<&OsStr>) -> bool {
    value.is_some_and(|v| !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false")))
}

/// What a binary's Prometheus recorder needs beyond the defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct Recorder<'a> {
    /// Explicit buckets per histogram (full metric name, upper bounds in
    /// ascending order), so quantiles can be computed across pods; a
    /// histogram without buckets would be rendered as a summary, which
    /// cannot be aggregated.
    pub buckets: &'a [(&'a str, &'a [f64])],
    /// A gauge not set for this long leaves `/metrics`; `None` keeps gauges
    /// listed for the life of the process.
    pub gauge_idle: Option<Duration>,
}

/// Installs the process-wide Prometheus recorder on first call and returns
/// its handle; later calls return the same handle.
///
/// The `metrics` facade has one global recorder per process, so every
/// service started in one process (test suites, the bench) shares it, and
/// the settings of the first call are the ones that hold. Fails when a
/// recorder not installed here is already in place, or when a bucket list
/// is empty.
pub fn install_recorder(settings: Recorder<'_>) -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    // One install at a time: a second caller waits for the first's handle
    // rather than finding the facade taken and no handle recorded yet.
    let _installing = INSTALLING.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let recorder = build_recorder(settings)?;
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|_| anyhow::anyhow!("another metrics recorder is installed"))?;
    let _ = HANDLE.set(handle.clone());
    keep_drained(handle.clone(), UPKEEP_EVERY);
    Ok(handle)
}

/// How often the recorder's pending histogram samples are folded into
/// their buckets when nothing scrapes `/metrics` sooner.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(1);

/// The recorder `settings` describe.
fn build_recorder(
    settings: Recorder<'_>,
) -> anyhow::Result<metrics_exporter_prometheus::PrometheusRecorder> {
    let mut builder = PrometheusBuilder::new();
    for (metric, bounds) in settings.buckets {
        builder = builder.set_buckets_for_metric(Matcher::Full((*metric).to_string()), bounds)?;
    }
    if let Some(idle) = settings.gauge_idle {
        builder = builder.idle_timeout(MetricKindMask::GAUGE, Some(idle));
    }
    Ok(builder.build_recorder())
}

/// Runs the recorder's upkeep every `every`, on a thread of its own, for
/// the life of the process.
///
/// The recorder keeps every histogram sample (a request's duration, say)
/// until a scrape renders it or upkeep folds it into its buckets, and a
/// recorder built by hand runs no upkeep. Without this, a gateway that
/// nothing scrapes (Prometheus down or not yet deployed, a long scrape
/// interval) grows by every request it answers: about 18 bytes a poll,
/// gigabytes an hour on registration day.
pub fn keep_drained(handle: PrometheusHandle, every: Duration) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            handle.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start the metrics upkeep thread");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_logs_when_the_variable_says_so() {
        assert!(!json_requested(None));
        for off in ["", "0", "false", "FALSE"] {
            assert!(!json_requested(Some(OsStr::new(off))), "{off:?}");
        }
        for on in ["1", "true", "yes"] {
            assert!(json_requested(Some(OsStr::new(on))), "{on:?}");
        }
    }

    #[test]
    fn histogram_samples_nothing_scrapes_do_not_pile_up() {
        /// The process's resident memory, from `VmRSS` (in kB) of
        /// `/proc/self/status`.
        fn resident_bytes() -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").expect("status");
            let kb: u64 = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .expect("VmRSS");
            kb * 1024
        }
        let recorder = build_recorder(Recorder {
            buckets: &[("drained_seconds", &[0.001, 0.01, 0.1])],
            gauge_idle: None,
        })
        .expect("built");
        let handle = recorder.handle();
        keep_drained(handle.clone(), Duration::from_millis(10));
        // Four million samples (32 MB as raw samples), never scraped, in
        // batches slower than the upkeep.
        let before = resident_bytes();
        metrics::with_local_recorder(&recorder, || {
            let histogram = metrics::histogram!("drained_seconds");
            for _ in 0..80 {
                for i in 0..50_000u32 {
                    histogram.record(f64::from(i % 200) / 1000.0);
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        });
        let grown = resident_bytes().saturating_sub(before);
        assert!(grown < 8 << 20, "memory grew by {grown} bytes");
        // And every sample is still counted.
        let text = handle.render();
        assert!(text.contains("drained_seconds_count 4000000"), "{text}");
    }

    #[test]
    fn services_starting_together_all_get_the_one_recorder() {
        let start = std::sync::Arc::new(std::sync::Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let start = std::sync::Arc::clone(&start);
                std::thread::spawn(move || {
                    start.wait();
                    install_recorder(Recorder::default())
                })
            })
            .collect();
        for handle in handles {
            let installed = handle.join().expect("no panic");
            assert!(installed.is_ok(), "{:?}", installed.err());
        }
    }

    #[test]
    fn the_recorder_is_installed_once_with_the_first_buckets() {
        let first = install_recorder(Recorder {
            buckets: &[("test_seconds", &[0.5, 1.0])],
            gauge_idle: None,
        })
        .expect("installed");
        let again = install_recorder(Recorder::default()).expect("the same recorder");
        metrics::histogram!("test_seconds").record(0.7);
        let text = again.render();
        assert!(text.contains("test_seconds_bucket{le=\"1\"} 1"), "{text}");
        assert_eq!(first.render(), text);
        let empty: &[f64] = &[];
        assert!(PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full("x".into()), empty)
            .is_err());
    }
}
