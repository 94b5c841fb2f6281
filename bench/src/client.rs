//! The gateway's JSON API as a simulated student calls it: one pooled HTTP
//! client for the whole run, requests spread round-robin over the gateways
//! that are currently routable, bounded in flight, every request timed
//! and every failure counted by kind.

use crate::stats::{Latency, Stats};
use anyhow::Context;
use reqwest::header::{HeaderMap, HeaderValue, COOKIE, RETRY_AFTER, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Cookie the gateway signs a login session into.
const SESSION_COOKIE: &str = "sluice_session";

/// One request may take this long before it counts as a timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Where a student stands, as `/api/queue/status` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Prequeue,
    Waiting,
    Paused,
    Admitted,
    Skipped,
    Left,
    Expired,
    Closed,
    #[serde(other)]
    Unknown,
}

/// The fields of a join or status answer the student acts on.
#[derive(Debug, Clone, Deserialize)]
pub struct QueueStatus {
    pub state: Phase,
    #[serde(default)]
    pub poll_after_ms: u64,
    pub token: Option<String>,
    pub pass: Option<String>,
    /// The wait range shown with the answer, while waiting.
    #[serde(default)]
    pub estimate: Option<Estimate>,
    /// Why the page shows a message (`returned`: a skipped place was given
    /// back). Kept as text so a notice the bench does not know yet still
    /// decodes.
    #[serde(default)]
    pub notice: Option<String>,
    /// The cart the gateway sent at admission (`--auto-send`).
    #[serde(default)]
    pub auto_send: Option<Accepted>,
    /// The admission pace, as the page shows it.
    #[serde(default)]
    pub pace: Option<Pace>,
}

/// The pace of admission a status answer carries.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Pace {
    pub per_min: u32,
}

/// A wait-time range in whole seconds, as the queue page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Estimate {
    pub min_secs: u64,
    pub max_secs: u64,
    /// Absent from gateways that never mark a range rough.
    #[serde(default)]
    pub rough: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Accepted {
    pub command_id: uuid::Uuid,
}

#[derive(Debug, Deserialize)]
pub struct OutcomeItem {
    pub section: Option<u32>,
    pub outcome: String,
    /// 0 when `section` is the item's first choice, k for its k-th
    /// alternate.
    #[serde(default)]
    pub choice: u8,
}

/// One cart item's choices: the alternates to try in order, and whether
/// to take a place on the waitlist when every choice is full.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ItemChoice {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternates: Vec<u32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub waitlist: bool,
}

#[derive(Debug, Deserialize)]
pub struct Outcome {
    pub state: String,
    #[serde(default)]
    pub items: Vec<OutcomeItem>,
}

/// Why a request did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// An HTTP error status, with the Retry-After it carried.
    Status(StatusCode, Option<Duration>),
    /// No answer: connection refused or reset, timeout, unreadable body.
    Transport(&'static str),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status(s, _) => write!(f, "HTTP {s}"),
            Failure::Transport(kind) => write!(f, "no answer ({kind})"),
        }
    }
}

impl Failure {
    /// Whether trying again later may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            Failure::Status(s, _) => *s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error(),
            Failure::Transport(_) => true,
        }
    }

    /// Refused as not authorized: a token or pass that does not (or no
    /// longer) verifies.
    pub fn is_401(&self) -> bool {
        matches!(self, Failure::Status(s, _) if *s == StatusCode::UNAUTHORIZED)
    }

    /// Refused by a rate limit.
    pub fn is_429(&self) -> bool {
        matches!(self, Failure::Status(s, _) if *s == StatusCode::TOO_MANY_REQUESTS)
    }

    pub fn retry_after(&self) -> Duration {
        match self {
            Failure::Status(_, Some(d)) => *d,
            _ => Duration::from_millis(500),
        }
    }
}

/// Who the request is for: the headers a browser behind a trusting
/// ingress would send.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// `sluice_session=...`, once signed in.
    pub cookie: Option<HeaderValue>,
    /// The session's CSRF value, sent with cookie-authenticated writes.
    pub csrf: Option<HeaderValue>,
    /// A per-student client address, sent as X-Forwarded-For so per-IP
    /// limits apply per student, as they would on the internet.
    pub forwarded_for: Option<HeaderValue>,
}

/// The API client.
#[derive(Debug)]
pub struct Api {
    http: reqwest::Client,
    gateways: RwLock<Arc<[String]>>,
    next: AtomicUsize,
    in_flight: Semaphore,
    pub stats: Arc<Stats>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Api {
    /// A client for `gateways` with at most `max_in_flight` requests at once.
    pub fn new(
        gateways: Vec<String>,
        max_in_flight: usize,
        stats: Arc<Stats>,
    ) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(max_in_flight)
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .context("building the HTTP client")?;
        Ok(Api {
            http,
            gateways: RwLock::new(gateways.into()),
            next: AtomicUsize::new(0),
            in_flight: Semaphore::new(max_in_flight.max(1)),
            stats,
        })
    }

    /// Replaces the routable gateways (the cluster adds and drains them).
    pub fn set_gateways(&self, gateways: Vec<String>) {
        *self
            .gateways
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = gateways.into();
    }

    pub fn gateways(&self) -> Arc<[String]> {
        Arc::clone(&read(&self.gateways))
    }

    fn url(&self, path: &str) -> String {
        let gateways = self.gateways();
        let i = self.next.fetch_add(1, Ordering::Relaxed) % gateways.len().max(1);
        let base = gateways.get(i).map(String::as_str).unwrap_or("");
        format!("{base}{path}")
    }

    /// Sends one request and decodes a 2xx JSON answer. Latency is recorded
    /// under `latency` for successes only, so failures (counted apart)
    /// cannot hide in the percentiles.
    async fn send<T: DeserializeOwned>(
        &self,
        label: &'static str,
        latency: Option<Latency>,
        request: reqwest::RequestBuilder,
    ) -> Result<(T, HeaderMap), Failure> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| Failure::Transport("closed"))?;
        Stats::add(&self.stats.requests, 1);
        let started = Instant::now();
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "transport"
                };
                self.stats.error(format!("{label} {kind}"));
                return Err(Failure::Transport(kind));
            }
        };
        let status = response.status();
        if !status.is_success() {
            if status.is_server_error() {
                Stats::add(&self.stats.http_5xx, 1);
            }
            self.stats.error(format!("{label} {}", status.as_u16()));
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(Failure::Status(status, retry_after));
        }
        let headers = response.headers().clone();
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(_) => {
                self.stats.error(format!("{label} body"));
                return Err(Failure::Transport("body"));
            }
        };
        if let Some(kind) = latency {
            self.stats.record(kind, started.elapsed());
        }
        match serde_json::from_slice(&body) {
            Ok(v) => Ok((v, headers)),
            Err(_) => {
                self.stats.error(format!("{label} undecodable"));
                Err(Failure::Transport("undecodable"))
            }
        }
    }

    fn request(&self, method: Method, path: &str, who: &Identity) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, self.url(path));
        if let Some(c) = &who.cookie {
            r = r.header(COOKIE, c.clone());
        }
        if let Some(ip) = &who.forwarded_for {
            r = r.header("x-forwarded-for", ip.clone());
        }
        r
    }

    /// `POST /api/session`: signs in and returns the session cookie and
    /// its CSRF value.
    pub async fn login(
        &self,
        who: &Identity,
        student_number: &str,
        password: &str,
    ) -> Result<(HeaderValue, Option<HeaderValue>), Failure> {
        #[derive(Serialize)]
        struct Body<'a> {
            student_number: &'a str,
            password: &'a str,
        }
        let req = self.request(Method::POST, "/api/session", who).json(&Body {
            student_number,
            password,
        });
        let (body, headers): (serde_json::Value, _) = self.send("login", None, req).await?;
        let csrf = body["csrf"]
            .as_str()
            .and_then(|v| HeaderValue::from_str(v).ok());
        let cookie = headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|v| v.starts_with(SESSION_COOKIE) && v[SESSION_COOKIE.len()..].starts_with('='))
            .and_then(|v| HeaderValue::from_str(v).ok())
            .ok_or(Failure::Transport("no session cookie"))?;
        Ok((cookie, csrf))
    }

    /// `POST /api/rounds/{id}/join` with the session cookie, or, as an app
    /// does, with `credentials` (student number, password) in the body.
    pub async fn join(
        &self,
        who: &Identity,
        round: u32,
        credentials: Option<(&str, &str)>,
    ) -> Result<QueueStatus, Failure> {
        #[derive(Serialize)]
        struct Body<'a> {
            student_number: &'a str,
            password: &'a str,
        }
        let req = self.request(Method::POST, &format!("/api/rounds/{round}/join"), who);
        let req = match credentials {
            Some((student_number, password)) => req.json(&Body {
                student_number,
                password,
            }),
            None => req.header("content-type", "application/json").body("{}"),
        };
        self.send("join", Some(Latency::Join), req)
            .await
            .map(|(s, _)| s)
    }

    /// `GET /api/queue/status` with the queue token.
    pub async fn status(&self, who: &Identity, token: &str) -> Result<QueueStatus, Failure> {
        let req = self
            .request(Method::GET, "/api/queue/status", who)
            .header("x-queue-token", token);
        self.send("poll", Some(Latency::Poll), req)
            .await
            .map(|(s, _)| s)
    }

    /// `POST /api/enroll` with the pass; `options` (parallel to
    /// `sections`) only when some item has a choice.
    pub async fn enroll(
        &self,
        who: &Identity,
        pass: &str,
        sections: &[u32],
        options: &[ItemChoice],
    ) -> Result<Accepted, Failure> {
        #[derive(Serialize)]
        struct Body<'a> {
            sections: &'a [u32],
            #[serde(skip_serializing_if = "<[ItemChoice]>::is_empty")]
            options: &'a [ItemChoice],
        }
        let options = if options.iter().all(|o| *o == ItemChoice::default()) {
            &[]
        } else {
            options
        };
        let req = self
            .request(Method::POST, "/api/enroll", who)
            .header("x-pass", pass)
            .json(&Body { sections, options });
        self.send("enroll", Some(Latency::Enroll), req)
            .await
            .map(|(a, _)| a)
    }

    /// `POST /api/drop` with the pass.
    pub async fn drop_section(
        &self,
        who: &Identity,
        pass: &str,
        section: u32,
    ) -> Result<Accepted, Failure> {
        #[derive(Serialize)]
        struct Body {
            section: u32,
        }
        let req = self
            .request(Method::POST, "/api/drop", who)
            .header("x-pass", pass)
            .json(&Body { section });
        self.send("drop", Some(Latency::Enroll), req)
            .await
            .map(|(a, _)| a)
    }

    /// `GET /api/commands/{id}` with the pass.
    pub async fn outcome(
        &self,
        who: &Identity,
        pass: &str,
        id: uuid::Uuid,
    ) -> Result<Outcome, Failure> {
        let req = self
            .request(Method::GET, &format!("/api/commands/{id}"), who)
            .header("x-pass", pass);
        self.send("outcome", None, req).await.map(|(o, _)| o)
    }

    /// A cookie-authenticated write: the session and its CSRF value.
    fn write(&self, method: Method, path: &str, who: &Identity) -> reqwest::RequestBuilder {
        let r = self.request(method, path, who);
        match &who.csrf {
            Some(c) => r.header("x-csrf-token", c.clone()),
            None => r,
        }
    }

    /// `POST /api/cart`: adds a section to the student's cart, with its
    /// waitlist choice.
    pub async fn cart_add(
        &self,
        who: &Identity,
        section: u32,
        waitlist: bool,
    ) -> Result<(), Failure> {
        let req = self
            .write(Method::POST, "/api/cart", who)
            .json(&serde_json::json!({ "section": section, "waitlist": waitlist }));
        self.send::<serde_json::Value>("cart", None, req)
            .await
            .map(|_| ())
    }

    /// `PUT /api/cart/alternates`: the item's alternates, in order.
    pub async fn cart_alternates(
        &self,
        who: &Identity,
        section: u32,
        alternates: &[u32],
    ) -> Result<(), Failure> {
        let req = self
            .write(Method::PUT, "/api/cart/alternates", who)
            .json(&serde_json::json!({ "section": section, "alternates": alternates }));
        self.send::<serde_json::Value>("cart", None, req)
            .await
            .map(|_| ())
    }

    /// `PUT /api/queue/auto-send` with the queue token: "send my cart when
    /// I am admitted".
    pub async fn auto_send(&self, who: &Identity, token: &str) -> Result<(), Failure> {
        let req = self
            .request(Method::PUT, "/api/queue/auto-send", who)
            .header("x-queue-token", token)
            .json(&serde_json::json!({ "on": true }));
        self.send::<serde_json::Value>("auto-send", None, req)
            .await
            .map(|_| ())
    }

    /// `POST /api/admin/rounds/{id}` as a registrar (HTTP Basic).
    pub async fn admin_change(
        &self,
        round: u32,
        admin: &(String, String),
        change: &serde_json::Value,
    ) -> Result<serde_json::Value, Failure> {
        let req = self
            .http
            .post(self.url(&format!("/api/admin/rounds/{round}")))
            .basic_auth(&admin.0, Some(&admin.1))
            .json(change);
        self.send("admin", None, req).await.map(|(v, _)| v)
    }
}
