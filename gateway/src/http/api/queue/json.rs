//! The status answer written by hand: it is most of the traffic on
//! registration day, and writing it through the derived serializer took
//! 14 % of a poll, half of that escaping strings, mostly field names that
//! never need it. The fields, their
//! order and their `null`s are those of [`Status`]'s `Serialize`; a test
//! holds the two to the same JSON for every shape the answer takes.

use super::{Notice, Phase, Status};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

impl Phase {
    /// The JSON name (as `Serialize` writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Prequeue => "prequeue",
            Phase::Waiting => "waiting",
            Phase::Paused => "paused",
            Phase::Admitted => "admitted",
            Phase::Skipped => "skipped",
            Phase::Left => "left",
            Phase::Expired => "expired",
            Phase::Closed => "closed",
        }
    }
}

impl Notice {
    /// The JSON name (as `Serialize` writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            Notice::Paused => "paused",
            Notice::Held => "held",
            Notice::Unavailable => "unavailable",
            Notice::Slowed => "slowed",
            Notice::SeatsBusy => "seats_busy",
            Notice::Returned => "returned",
            Notice::WorkersBusy => "workers_busy",
        }
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn raw(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }

    fn u64(&mut self, n: u64) {
        self.raw(itoa::Buffer::new().format(n));
    }

    fn opt_u64(&mut self, n: Option<u64>) {
        match n {
            Some(n) => self.u64(n),
            None => self.raw("null"),
        }
    }

    /// A string from outside (a round's name, a token): escaped.
    fn string(&mut self, s: &str) {
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.0, s);
    }

    /// What only the rarer answers carry, through its derived serializer.
    fn value<T: serde::Serialize>(&mut self, v: &T) {
        let _ = serde_json::to_writer(&mut self.0, v);
    }
}

impl Status {
    /// The answer as JSON, the same as `serde_json::to_vec(self)` gives.
    pub fn to_json(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(384));
        w.raw("{\"state\":\"");
        w.raw(self.state.as_str());
        w.raw("\",\"round\":");
        w.u64(u64::from(self.round.0));
        w.raw(",\"round_name\":");
        w.string(&self.round_name);
        w.raw(",\"position\":");
        w.opt_u64(self.position);
        w.raw(",\"ahead\":");
        w.opt_u64(self.ahead);
        w.raw(",\"estimate\":");
        match self.estimate {
            Some(e) => {
                w.raw("{\"min_secs\":");
                w.u64(e.min_secs);
                w.raw(",\"max_secs\":");
                w.u64(e.max_secs);
                w.raw(if e.rough {
                    ",\"rough\":true}"
                } else {
                    ",\"rough\":false}"
                });
            }
            None => w.raw("null"),
        }
        w.raw(",\"progress\":");
        // A float as serde_json writes it (shortest round trip; null if not finite).
        w.value(&self.progress);
        w.raw(",\"notice\":");
        match self.notice {
            Some(n) => {
                w.raw("\"");
                w.raw(n.as_str());
                w.raw("\"");
            }
            None => w.raw("null"),
        }
        w.raw(",\"opens_in_secs\":");
        w.opt_u64(self.opens_in_secs);
        w.raw(",\"poll_after_ms\":");
        w.u64(self.poll_after_ms);
        if let Some(token) = &self.token {
            w.raw(",\"token\":");
            w.string(token);
        }
        if let Some(pass) = &self.pass {
            w.raw(",\"pass\":");
            w.string(pass);
        }
        if let Some(at) = self.pass_expires_at_ms {
            w.raw(",\"pass_expires_at_ms\":");
            w.u64(at);
        }
        if let Some(pace) = &self.pace {
            w.raw(",\"pace\":");
            w.value(pace);
        }
        if let Some(auto_send) = &self.auto_send {
            w.raw(",\"auto_send\":");
            w.value(auto_send);
        }
        if let Some(priority) = &self.priority {
            w.raw(",\"priority\":");
            w.value(priority);
        }
        w.raw("}");
        w.0
    }
}

impl IntoResponse for Status {
    fn into_response(self) -> Response {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.to_json(),
        )
            .into_response()
    }
}

impl Status {
    /// The answer as the edge would finish it: the security headers already
    /// in place ([`crate::http::headers::json_answer_headers`]), then the
    /// jar's cookies. The listener's direct path sends this as it is.
    pub fn secured_response(self, jar: CookieJar, tls: bool) -> Response {
        let mut response = Response::new(axum::body::Body::from(self.to_json()));
        *response.headers_mut() = crate::http::headers::json_answer_headers(tls);
        (jar, response).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AutoSendCommand, PaceInfo, PriorityInfo};
    use super::*;
    use enrollment::RoundId;
    use proptest::prelude::*;
    use waitroom::estimate::Estimate;

    const PHASES: [Phase; 8] = [
        Phase::Prequeue,
        Phase::Waiting,
        Phase::Paused,
        Phase::Admitted,
        Phase::Skipped,
        Phase::Left,
        Phase::Expired,
        Phase::Closed,
    ];
    const NOTICES: [Notice; 7] = Notice::ALL;

    /// Fails to compile when a variant is added, until the lists above
    /// (which the tests below walk, `Notice::ALL` for the notices) name it
    /// too.
    #[allow(dead_code)]
    fn every_variant_is_listed(p: Phase, n: Notice) -> usize {
        let p = match p {
            Phase::Prequeue
            | Phase::Waiting
            | Phase::Paused
            | Phase::Admitted
            | Phase::Skipped
            | Phase::Left
            | Phase::Expired
            | Phase::Closed => PHASES.len(),
        };
        let n = match n {
            Notice::Paused
            | Notice::Held
            | Notice::Unavailable
            | Notice::Slowed
            | Notice::SeatsBusy
            | Notice::Returned
            | Notice::WorkersBusy => NOTICES.len(),
        };
        p + n
    }

    #[test]
    fn names_are_those_serde_writes() {
        for p in PHASES {
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        for n in NOTICES {
            assert_eq!(serde_json::to_value(n).unwrap(), n.as_str());
        }
    }

    fn status_strategy() -> impl Strategy<Value = Status> {
        let text = proptest::option::of("[ -~가-힣\"\\\\\u{0}-\u{1f}]{0,24}");
        (
            (
                0..PHASES.len(),
                any::<u32>(),
                "[ -~가-힣\"\\\\\u{0}-\u{1f}]{0,24}",
                proptest::option::of(any::<u64>()),
                proptest::option::of(any::<u64>()),
                proptest::option::of((any::<u64>(), any::<u64>(), any::<bool>())),
                proptest::option::of(prop_oneof![
                    0.0f64..=1.0,
                    Just(f64::NAN),
                    Just(1e-7),
                    Just(0.1 + 0.2)
                ]),
            ),
            (
                proptest::option::of(0..NOTICES.len()),
                proptest::option::of(any::<u64>()),
                any::<u64>(),
                text.clone(),
                text,
                proptest::option::of(any::<u64>()),
                any::<[bool; 3]>(),
            ),
        )
            .prop_map(
                |(
                    (phase, round, name, position, ahead, estimate, progress),
                    (notice, opens, poll, token, pass, pass_at, [pace, send, prio]),
                )| Status {
                    state: PHASES[phase],
                    round: RoundId(round),
                    round_name: name.into(),
                    position,
                    ahead,
                    estimate: estimate.map(|(min_secs, max_secs, rough)| Estimate {
                        min_secs,
                        max_secs,
                        rough,
                    }),
                    progress,
                    notice: notice.map(|n| NOTICES[n]),
                    opens_in_secs: opens,
                    poll_after_ms: poll,
                    token,
                    pass,
                    pass_expires_at_ms: pass_at,
                    pace: pace.then_some(PaceInfo {
                        mode: "auto",
                        per_min: 600,
                        floor: 60,
                        ceiling: 6_000,
                        reason: Some(waitroom::autopace::PaceReason::Backlog),
                        signal: Some(1_200),
                        changed_at_ms: None,
                        capacity_per_min: Some(11_000),
                    }),
                    auto_send: send.then(|| AutoSendCommand::new(enrollment::CommandId::new())),
                    priority: prio.then(|| PriorityInfo {
                        mode: "strict",
                        lane: 1,
                        lanes: 2,
                        years: "1-3".into(),
                        ahead_in_other_classes: 40,
                        may_grow: true,
                    }),
                },
            )
    }

    proptest! {
        /// Byte for byte what the derived serializer writes, so no client
        /// (and not the published schema) can tell the two apart.
        #[test]
        fn the_hand_written_answer_is_the_derived_one(status in status_strategy()) {
            let derived = serde_json::to_vec(&status).unwrap();
            let ours = status.to_json();
            prop_assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(derived).unwrap()
            );
        }
    }

    #[tokio::test]
    async fn the_response_says_it_is_json() {
        let status = Status {
            state: Phase::Waiting,
            round: RoundId(7),
            round_name: "2학기 수강신청".into(),
            position: Some(3),
            ahead: Some(2),
            estimate: Some(Estimate {
                min_secs: 4,
                max_secs: 7,
                rough: true,
            }),
            progress: Some(0.5),
            notice: None,
            opens_in_secs: None,
            poll_after_ms: 1_000,
            token: Some("k1.abc.def".into()),
            pass: None,
            pass_expires_at_ms: None,
            pace: None,
            auto_send: None,
            priority: None,
        };
        let response = status.into_response();
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["round_name"], "2학기 수강신청");
        assert_eq!(v["ahead"], 2);
        assert_eq!(v["estimate"]["max_secs"], 7);
        assert_eq!(v["estimate"]["rough"], true);
    }
}
