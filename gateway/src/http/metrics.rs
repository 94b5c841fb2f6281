//! Request counts and durations by route template, with the metric handles
//! made once per (route, method, status) and reused.

use axum::http::Method;
use std::sync::Arc;
use std::time::Instant;

/// Counts and times a request by route template (never by raw path, which
/// would put ids in label values). Called by the edge middleware
/// ([`super::headers::edge`]), so every request passes one middleware, not two.
pub fn record_request(route: Option<&str>, method: &Method, status: u16, started: Instant) {
    let (requests, duration) = HTTP_METRICS.handles(route.unwrap_or("unmatched"), method, status);
    duration.record(started.elapsed().as_secs_f64());
    requests.increment(1);
}

/// [`record_request`] for a status poll answered 200, most of all
/// requests: its handles are kept apart, so it costs no map lookup (a
/// hash of the route), lock or handle clone.
pub fn record_status_poll(status: u16, started: Instant) {
    static OK: std::sync::LazyLock<Handles> =
        std::sync::LazyLock::new(|| HTTP_METRICS.handles(super::STATUS_ROUTE, &Method::GET, 200));
    if status != 200 {
        return record_request(Some(super::STATUS_ROUTE), &Method::GET, status, started);
    }
    let (requests, duration) = &*OK;
    duration.record(started.elapsed().as_secs_f64());
    requests.increment(1);
}

/// Metric handles per (route, method, status). Building a label set and
/// hashing it into the registry on every request costs more than the poll
/// it measures; the handles are made once per combination and reused.
static HTTP_METRICS: std::sync::LazyLock<HttpMetrics> =
    std::sync::LazyLock::new(HttpMetrics::default);

#[derive(Default)]
struct HttpMetrics {
    routes: dashmap::DashMap<Arc<str>, Arc<RouteMetrics>>,
}

type Handles = (metrics::Counter, metrics::Histogram);

#[derive(Default)]
struct RouteMetrics {
    // A handful of (method, status) pairs per route: a scan beats a map.
    entries: std::sync::RwLock<Vec<(Method, u16, Handles)>>,
}

impl HttpMetrics {
    fn handles(&self, route: &str, method: &Method, status: u16) -> Handles {
        let per_route = match self.routes.get(route) {
            Some(r) => Arc::clone(&r),
            None => Arc::clone(&self.routes.entry(Arc::from(route)).or_default()),
        };
        if let Ok(entries) = per_route.entries.read() {
            if let Some((_, _, h)) = entries.iter().find(|(m, s, _)| m == method && *s == status) {
                return h.clone();
            }
        }
        let handles = (
            metrics::counter!("sluice_http_requests_total",
                "route" => route.to_string(), "method" => method.as_str().to_string(), "status" => status.to_string()),
            metrics::histogram!("sluice_http_request_duration_seconds",
                "route" => route.to_string(), "method" => method.as_str().to_string()),
        );
        match per_route.entries.write() {
            Ok(mut entries) => entries.push((method.clone(), status, handles.clone())),
            Err(poisoned) => poisoned
                .into_inner()
                .push((method.clone(), status, handles.clone())),
        }
        handles
    }
}
