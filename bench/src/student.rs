//! One simulated student: joins the waiting room, polls at the interval the
//! server suggests, and once admitted enrolls their cart, follows each
//! command to its outcome, and (for a share of students) submits twice or
//! drops a section and takes it again. Some behave as phones in the field
//! do: they stop polling for a while (a locked screen) and, told their
//! turn passed, join again as the page asks them to.
//!
//! Each student is one small tokio task that sleeps between requests; every
//! loop is bounded by a try count and by the run's deadline. What the
//! student saw is kept in a [`Journey`] for the promise figures.

use crate::client::{Api, Failure, Identity, ItemChoice, OutcomeItem, Phase, QueueStatus};
use crate::promises::{Got, Journey, Shown};
use crate::stats::{Latency, Stats};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Tries per request before a student gives up on it (`bench surge`).
pub const MAX_TRIES: u32 = 8;

/// Longest a student waits between two polls, whatever the server says.
const MAX_POLL_GAP: Duration = Duration::from_secs(30);

/// Longest gap between two reads of a command's outcome.
const MAX_RESULT_GAP: Duration = Duration::from_secs(4);

/// Times a student joins again after being told their turn passed.
const MAX_REJOINS: u32 = 3;

/// When no estimate tells how long the wait will be, a suspension falls
/// within this long of the first answer.
const SUSPEND_WITHIN: Duration = Duration::from_secs(10);

/// A phone locked once while waiting.
#[derive(Debug, Clone, Copy)]
pub struct Suspend {
    /// Where in the expected wait (0..1 of the first estimate's middle)
    /// polling stops.
    pub at_fraction: f64,
    /// How long it stays stopped.
    pub lasts: Duration,
}

/// What a student does, decided before the run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub who: Identity,
    /// The student's id, and their number when they sign in with the join
    /// itself (`--join-with-credentials`).
    pub student: u32,
    pub credentials: Option<String>,
    /// Arrives before the room opens (the shuffled pre-queue cohort).
    pub prequeue: bool,
    /// Sends the address many students share.
    pub shared_ip: bool,
    /// Section ids, most wanted first.
    pub cart: Vec<u32>,
    pub double_submit: bool,
    pub drop_and_retake: bool,
    /// Time between admission and the first click.
    pub think: Duration,
    pub suspend: Option<Suspend>,
    /// Joins again when told "skipped" (always, when suspended).
    pub rejoin_skipped: bool,
    /// Each cart item's alternates and waitlist choice, parallel to `cart`.
    pub choices: Vec<ItemChoice>,
    /// The cart is on the server and the student asks, while waiting, for
    /// it to be sent at admission.
    pub auto_send: bool,
}

/// Settings every student shares.
#[derive(Debug)]
pub struct Context {
    pub api: Arc<Api>,
    pub round: u32,
    pub result_poll: Duration,
    pub deadline: Instant,
    /// Tries per request before giving up on it.
    pub max_tries: u32,
    /// The start of the surge: journey times count from it.
    pub epoch: Instant,
    /// Password of every seeded student (`--join-with-credentials`).
    pub password: &'static str,
}

impl Context {
    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    async fn join(&self, plan: &Plan, j: &mut Journey) -> Option<QueueStatus> {
        let credentials = plan.credentials.as_deref().map(|n| (n, self.password));
        retry(self, j, || {
            self.api.join(&plan.who, self.round, credentials)
        })
        .await
    }
}

/// What happened to one student.
#[derive(Debug, Default)]
pub struct Report {
    /// Commands answered 202.
    pub accepted: Vec<uuid::Uuid>,
    /// Commands answered 202 whose outcome the student never saw.
    pub undecided: u32,
    pub journey: Journey,
}

/// Runs `plan` to its end.
pub async fn run(ctx: Arc<Context>, plan: Plan) -> Report {
    let mut report = Report {
        journey: Journey {
            student: plan.student,
            prequeue: plan.prequeue,
            shared_ip: plan.shared_ip,
            ..Journey::default()
        },
        ..Report::default()
    };
    let stats = Arc::clone(&ctx.api.stats);
    // The click: before the first join request, and so before the
    // password check when the join carries the credentials.
    report.journey.clicked_us = Some(ctx.now_us());
    let Some(first) = ctx.join(&plan, &mut report.journey).await else {
        Stats::add(&stats.gave_up, 1);
        return report;
    };
    report.journey.joined = true;
    Stats::add(&stats.joined, 1);
    Stats::add(&stats.waiting, 1);
    if plan.auto_send {
        if let Some(token) = first.token.as_deref() {
            // The queue page's "send my cart when I am admitted".
            report.journey.auto_send = retry(&ctx, &mut report.journey, || {
                ctx.api.auto_send(&plan.who, token)
            })
            .await
            .is_some();
        }
    }
    let admitted = wait_for_admission(&ctx, &plan, first, &mut report.journey).await;
    Stats::sub(&stats.waiting, 1);
    let Some((pass, sent_for_me)) = admitted.and_then(|s| Some((s.pass?, s.auto_send))) else {
        Stats::add(&stats.gave_up, 1);
        return report;
    };
    Stats::add(&stats.admitted, 1);

    let mut commands = Vec::new();
    if let Some(sent) = sent_for_me {
        // The gateway sent the cart at admission: nothing to click, only
        // the outcome to watch. It is a command like any accepted one, so
        // the drain and the lost-command check count it.
        Stats::add(&stats.accepted, 1);
        report.accepted.push(sent.command_id);
        report.journey.cart_accepted = true;
        report.journey.sent_at_admission = true;
        commands.push((sent.command_id, Instant::now()));
    } else {
        sleep_until_or_deadline(&ctx, Instant::now() + plan.think).await;
        let sent = Instant::now();
        let cart = Request::Enroll(&plan.cart, &plan.choices);
        if let Some(id) = submit(&ctx, &plan, &pass, cart, &mut report, true).await {
            report.journey.cart_accepted = true;
            commands.push((id, sent));
        }
        if plan.double_submit {
            // The impatient double click: the same cart again at once.
            let sent = Instant::now();
            if let Some(id) = submit(&ctx, &plan, &pass, cart, &mut report, false).await {
                commands.push((id, sent));
            }
        }
    }
    let mut enrolled_in = Vec::new();
    for (k, (id, sent)) in commands.into_iter().enumerate() {
        match follow(&ctx, &plan, &pass, id, sent, &mut report.journey).await {
            Some(items) => {
                if k == 0 {
                    // What the cart came to, item by item.
                    report.journey.cart_decided_us = Some(ctx.now_us());
                    report.journey.cart_command = Some(id);
                    report.journey.cart_items = items.iter().map(Got::of).collect();
                }
                enrolled_in.extend(enrolled(&items));
            }
            None => report.undecided += 1,
        }
    }
    if plan.drop_and_retake {
        if let Some(&section) = enrolled_in.first() {
            for request in [Request::Drop(section), Request::Enroll(&[section], &[])] {
                let sent = Instant::now();
                let Some(id) = submit(&ctx, &plan, &pass, request, &mut report, false).await else {
                    break;
                };
                if follow(&ctx, &plan, &pass, id, sent, &mut report.journey)
                    .await
                    .is_none()
                {
                    report.undecided += 1;
                    break;
                }
            }
        }
    }
    if report.undecided == 0 {
        Stats::add(&stats.decided, 1);
    } else {
        Stats::add(&stats.gave_up, 1);
    }
    report
}

/// Notes what an answer showed the student.
fn observe(ctx: &Context, j: &mut Journey, status: &QueueStatus) {
    let now = ctx.now_us();
    match status.state {
        Phase::Admitted => {
            j.admitted_us.get_or_insert(now);
        }
        Phase::Skipped => j.skipped = true,
        Phase::Waiting => j.waited = true,
        _ => {}
    }
    if let Some(p) = status.pace {
        ctx.api
            .stats
            .pace_per_min
            .store(u64::from(p.per_min), std::sync::atomic::Ordering::Relaxed);
    }
    if status.notice.as_deref() == Some("returned") {
        j.returned = true;
    }
    if status.state != Phase::Admitted {
        if let Some(e) = status.estimate {
            j.shown.push(Shown {
                at_us: now,
                min_secs: e.min_secs,
                max_secs: e.max_secs,
                rough: e.rough,
            });
        }
    }
}

/// Polls until admitted and returns the answer that said so; `None` when
/// the place ended otherwise.
async fn wait_for_admission(
    ctx: &Context,
    plan: &Plan,
    mut status: QueueStatus,
    j: &mut Journey,
) -> Option<QueueStatus> {
    let mut token = status.token.clone()?;
    let mut suspend = plan.suspend;
    let mut suspend_at: Option<Instant> = None;
    let mut rejoins = 0;
    while Instant::now() < ctx.deadline {
        observe(ctx, j, &status);
        match status.state {
            Phase::Admitted => return Some(status),
            Phase::Prequeue | Phase::Waiting | Phase::Paused => {}
            Phase::Skipped if (plan.rejoin_skipped || j.suspended) && rejoins < MAX_REJOINS => {
                // The page says "your turn passed, join again"; the
                // student does, at once.
                rejoins += 1;
                let Some(again) = ctx.join(plan, j).await else {
                    Stats::add(&ctx.api.stats.stopped_waiting, 1);
                    return None;
                };
                status = again;
                if let Some(t) = &status.token {
                    token.clone_from(t);
                }
                continue;
            }
            Phase::Skipped | Phase::Left | Phase::Expired | Phase::Closed | Phase::Unknown => {
                ctx.api
                    .stats
                    .error(format!("queue ended {:?}", status.state).to_lowercase());
                return None;
            }
        }
        let gap = Duration::from_millis(status.poll_after_ms)
            .clamp(Duration::from_millis(100), MAX_POLL_GAP);
        let mut next = Instant::now() + gap;
        if let Some(s) = suspend {
            let at = *suspend_at.get_or_insert_with(|| {
                // A random moment of the wait the first answer announced.
                let expected = status.estimate.map_or(SUSPEND_WITHIN, |e| {
                    Duration::from_secs_f64((e.min_secs + e.max_secs) as f64 / 2.0)
                });
                Instant::now() + expected.mul_f64(s.at_fraction.clamp(0.0, 1.0))
            });
            if at <= next {
                sleep_until_or_deadline(ctx, at).await;
                j.suspended = true;
                suspend = None;
                next = Instant::now() + s.lasts;
            }
        }
        sleep_until_or_deadline(ctx, next).await;
        let Some(next) = retry(ctx, j, || ctx.api.status(&plan.who, &token)).await else {
            Stats::add(&ctx.api.stats.stopped_waiting, 1);
            return None;
        };
        status = next;
        if let Some(t) = &status.token {
            token.clone_from(t);
        }
    }
    Stats::add(&ctx.api.stats.stopped_waiting, 1);
    None
}

#[derive(Debug, Clone, Copy)]
enum Request<'a> {
    /// Sections, and their choices (parallel, or empty).
    Enroll(&'a [u32], &'a [ItemChoice]),
    Drop(u32),
}

/// Sends one command with the pass. `first` marks the cart's enroll right
/// after admission: a 401 to it means the pass did not last the time it
/// promised (later commands may legitimately outlive a pass).
async fn submit(
    ctx: &Context,
    plan: &Plan,
    pass: &str,
    request: Request<'_>,
    report: &mut Report,
    first: bool,
) -> Option<uuid::Uuid> {
    let refused = std::sync::atomic::AtomicBool::new(false);
    let accepted = retry(ctx, &mut report.journey, || async {
        let answer = match request {
            Request::Enroll(sections, choices) => {
                ctx.api.enroll(&plan.who, pass, sections, choices).await
            }
            Request::Drop(section) => ctx.api.drop_section(&plan.who, pass, section).await,
        };
        if answer.as_ref().is_err_and(Failure::is_401) {
            refused.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        answer
    })
    .await;
    report.journey.pass_refused |= first && refused.into_inner();
    let accepted = accepted?;
    Stats::add(&ctx.api.stats.accepted, 1);
    report.accepted.push(accepted.command_id);
    Some(accepted.command_id)
}

/// The sections a decided command enrolled in.
fn enrolled(items: &[OutcomeItem]) -> impl Iterator<Item = u32> + '_ {
    items
        .iter()
        .filter(|i| i.outcome == "enrolled")
        .filter_map(|i| i.section)
}

/// Polls a command until it is decided; returns its outcome items, or
/// `None` if no outcome came before the deadline.
async fn follow(
    ctx: &Context,
    plan: &Plan,
    pass: &str,
    id: uuid::Uuid,
    sent: Instant,
    j: &mut Journey,
) -> Option<Vec<OutcomeItem>> {
    let mut next = Instant::now();
    let mut gap = ctx.result_poll;
    while Instant::now() < ctx.deadline {
        next += gap;
        // Back off while the queue is long, as a patient page would: a
        // backlog must not turn into a storm of result reads.
        gap = gap.mul_f64(1.5).min(MAX_RESULT_GAP.max(ctx.result_poll));
        sleep_until_or_deadline(ctx, next).await;
        let Some(outcome) = retry(ctx, j, || ctx.api.outcome(&plan.who, pass, id)).await else {
            continue;
        };
        if outcome.state == "decided" {
            ctx.api.stats.record(Latency::Decision, sent.elapsed());
            return Some(outcome.items);
        }
    }
    None
}

/// Tries `call` until it succeeds, fails for good, runs out of tries or
/// reaches the deadline; waits the server's Retry-After between tries.
/// Rate-limit refusals are counted in the student's journey.
async fn retry<T, F, Fut>(ctx: &Context, j: &mut Journey, mut call: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    for _ in 0..ctx.max_tries.max(1) {
        let answer = call().await;
        if answer.as_ref().is_err_and(Failure::is_429) {
            j.refused_429 += 1;
        }
        match answer {
            Ok(v) => return Some(v),
            Err(f) if f.retryable() && Instant::now() < ctx.deadline => {
                sleep_until_or_deadline(ctx, Instant::now() + f.retry_after()).await;
            }
            Err(_) => return None,
        }
    }
    None
}

async fn sleep_until_or_deadline(ctx: &Context, at: Instant) {
    tokio::time::sleep_until(at.min(ctx.deadline)).await;
}
