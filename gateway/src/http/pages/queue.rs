//! The home page and the queue page.
//!
//! The queue page works without JavaScript (a `<noscript>` meta refresh at
//! the interval the server suggests); with it, `/static/app.js` polls the
//! status API at that interval and updates the page in place. It shares the
//! layout of [`crate::web`] with the student and registrar pages.

use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::http::api::queue::{self, Phase, Status};
use crate::http::extract::{same_origin, ClientIp};
use crate::i18n::Lang;
use crate::web::{self, Chrome, Ctx};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use axum::Form;
use axum_extra::extract::cookie::{Cookie, CookieJar};
use enrollment::RoundId;
use secrecy::SecretString;
use serde::Deserialize;
use waitroom::RoundState;

/// Every string on the page, per language.
#[derive(Debug)]
pub struct Texts {
    pub title: &'static str,
    pub student_number: &'static str,
    pub password: &'static str,
    pub join: &'static str,
    pub leave: &'static str,
    pub your_place: &'static str,
    pub ahead: &'static str,
    pub estimate: &'static str,
    pub minutes: &'static str,
    pub seconds: &'static str,
    pub unknown: &'static str,
    pub rough: &'static str,
    pub prequeue: &'static str,
    pub opens_in: &'static str,
    pub paused: &'static str,
    pub held: &'static str,
    pub unavailable: &'static str,
    pub slowed: &'static str,
    pub workers_busy: &'static str,
    pub seats_busy: &'static str,
    pub returned: &'static str,
    pub admitted: &'static str,
    pub admitted_until: &'static str,
    pub skipped: &'static str,
    pub left: &'static str,
    pub expired: &'static str,
    pub closed: &'static str,
    pub keep_open: &'static str,
    pub rounds: &'static str,
    pub no_rounds: &'static str,
    pub priority_strict: &'static str,
    pub priority_weighted: &'static str,
    pub your_line: &'static str,
    pub ahead_other: &'static str,
    pub may_grow: &'static str,
}

const KO: Texts = Texts {
    title: "수강신청 대기실",
    student_number: "학번",
    password: "비밀번호",
    join: "대기열 들어가기",
    leave: "대기 취소",
    your_place: "내 순서",
    ahead: "앞에 남은 인원",
    estimate: "예상 대기 시간",
    minutes: "분",
    seconds: "초",
    unknown: "계산 중",
    rough: "대략적인 범위입니다. 입장 속도는 신청 처리 속도에 맞춰 정해지는데, 그 속도를 아직 재는 중입니다. 측정되면 범위가 좁아집니다.",
    prequeue: "아직 열리지 않았습니다. 열리는 순간 사전 대기자의 순서는 무작위로 정해지며, 시드는 공개됩니다.",
    opens_in: "열리기까지",
    paused: "입장이 잠시 멈췄습니다. 순서는 그대로 유지됩니다.",
    held: "시스템 점검으로 입장이 잠시 멈췄습니다. 순서는 그대로 유지됩니다.",
    unavailable: "대기실 상태를 확인할 수 없습니다. 순서는 그대로 유지됩니다.",
    slowed: "관리자가 입장 속도를 낮춰 예상 시간이 늘었습니다.",
    workers_busy: "신청 처리가 밀려 입장 속도가 자동으로 낮아졌습니다. 예상 시간은 바뀐 속도를 따릅니다. 변경 시각:",
    seats_busy: "동시 이용 인원이 가득 차, 다른 학생이 마치는 대로 입장합니다.",
    returned: "자리를 비운 사이 순서가 지나갔지만, 돌아오셨으므로 순서를 지켜 드립니다. 곧 입장합니다.",
    admitted: "입장했습니다! 수강신청을 진행하세요.",
    admitted_until: "입장권 만료까지",
    skipped: "오래 응답이 없어 순서가 지나갔습니다. 다시 들어와 주세요.",
    left: "대기열에서 나왔습니다.",
    expired: "입장 시간이 끝났습니다. 다시 들어와 주세요.",
    closed: "이번 수강신청 차수는 마감되었습니다.",
    keep_open: "이 창을 닫지 마세요. 새로고침해도 순서는 유지됩니다.",
    rounds: "수강신청 차수",
    no_rounds: "열려 있는 차수가 없습니다.",
    priority_strict: "이 차수는 일부 학년에게 먼저 입장 기회를 줍니다: 앞 순위 학년이 모두 입장한 뒤 다음 학년이 입장합니다.",
    priority_weighted: "이 차수는 일부 학년에게 먼저 입장 기회를 줍니다: 입장 기회를 학년 그룹별 비율로 나눕니다.",
    your_line: "내 순서는 같은 학년 그룹 안의 순서입니다. 내 그룹:",
    ahead_other: "먼저 입장할 다른 학년 (예상 시간에 포함)",
    may_grow: "먼저 입장하는 학년의 학생이 계속 들어오면 예상 시간이 늘어날 수 있습니다.",
};

const EN: Texts = Texts {
    title: "Course registration waiting room",
    student_number: "Student number",
    password: "Password",
    join: "Join the queue",
    leave: "Leave the queue",
    your_place: "Your place",
    ahead: "Ahead of you",
    estimate: "Estimated wait",
    minutes: "min",
    seconds: "s",
    unknown: "calculating",
    rough: "A rough range: the pace of admission follows how fast registrations are processed, and that is still being measured. The range narrows once it is.",
    prequeue: "Not open yet. When it opens, everyone already waiting is put in a random order; the seed is published.",
    opens_in: "Opens in",
    paused: "Admission is paused. Your place is kept.",
    held: "Admission is held during a system problem. Your place is kept.",
    unavailable: "The waiting room cannot be reached right now. Your place is kept.",
    slowed: "The admission rate was lowered, so the estimate grew.",
    workers_busy: "The pace slowed down automatically because the workers are busy; the estimate follows it. Changed at",
    seats_busy: "Every slot is in use; you will be let in as others finish.",
    returned: "Your turn came while you were away; you came back in time, so it is kept. You will be let in shortly.",
    admitted: "You're in! Go ahead and register.",
    admitted_until: "Your pass expires in",
    skipped: "Your turn passed while you were away. Please join again.",
    left: "You left the queue.",
    expired: "Your admission time ended. Please join again.",
    closed: "This registration round is closed.",
    keep_open: "Keep this page open. Reloading keeps your place.",
    rounds: "Registration rounds",
    no_rounds: "No round is open.",
    priority_strict: "This round gives some classes an earlier turn: each group of class years is admitted once the groups before it are in.",
    priority_weighted: "This round gives some classes an earlier turn: admissions are shared among groups of class years by weight.",
    your_line: "Your place is in your own group's line. Your group: year",
    ahead_other: "Other classes admitted before you (counted in the estimate)",
    may_grow: "If students of classes that go before yours keep arriving, your wait may grow.",
};

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    chrome: Chrome,
    t: &'static Texts,
    rounds: Vec<(u32, String, &'static str)>,
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    chrome: Chrome,
    t: &'static Texts,
    round: u32,
    round_name: String,
    /// `join`, or a [`Phase`] name.
    phase: &'static str,
    error: Option<String>,
    position: String,
    ahead: String,
    estimate: String,
    /// The estimate is a rough range (see [`waitroom::estimate::Estimate::rough`]).
    rough: bool,
    progress_pct: u32,
    message: Option<String>,
    /// The notice the page was rendered with (its JSON name, or empty), and
    /// the words of every notice: when a poll answers another notice the
    /// script shows its words in place (or hides the message), without a
    /// reload. Gateways may disagree for a while (a gateway started after a
    /// rate cut has not seen it), so polls spread over them may alternate;
    /// a reload on each change would reload the page poll after poll.
    notice: &'static str,
    notice_texts: Vec<NoticeText>,
    opens_in: String,
    refresh_secs: u64,
    poll_ms: u64,
    /// The CSRF value of the join form (session or pre-login cookie).
    form_csrf: String,
    /// The cart while waiting or admitted: its seats and the opt-in.
    cart: Option<QueueCart>,
    /// In a round with priority: what it means, and the student's line.
    priority: Option<PriorityNote>,
}

/// A notice's JSON name and its words on this page.
struct NoticeText {
    name: &'static str,
    text: String,
}

/// The queue page's words on a round that gives some classes an earlier
/// turn.
struct PriorityNote {
    policy: &'static str,
    years: String,
    ahead_other: u64,
    may_grow: bool,
}

/// The cart as the queue page shows it.
struct QueueCart {
    auto_send: bool,
    /// `waiting`, `sent`, `empty` or `expired` once opted in.
    auto_state: String,
    items: Vec<crate::cart::ItemSeats>,
    /// Sections in the cart with no seat left, for the page's script.
    filled: String,
    /// The sent command's id, while its outcome is awaited.
    pending: Option<String>,
    /// The sent command's items as decided: (section, outcome, why);
    /// empty until decided.
    outcomes: Vec<(String, &'static str, String)>,
}

impl Texts {
    /// What a priority policy means, by its mode's name (`strict` or `weighted`).
    fn policy(&self, mode: &str) -> &'static str {
        if mode == "strict" {
            self.priority_strict
        } else {
            self.priority_weighted
        }
    }
}

fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::Ko => &KO,
        Lang::En => &EN,
    }
}

/// `GET /`: the rounds students can join, and where to go next.
pub async fn index(State(app): State<AppState>, ctx: Ctx) -> ApiResult<Response> {
    let class_year = ctx.student().ok().map(|(_, y)| y);
    let rounds = super::student::joinable(&app, class_year)
        .into_iter()
        .map(|(id, name, state)| (id, name, state.as_str()))
        .collect();
    let ctx = ctx.in_section("home");
    web::page(IndexPage {
        t: texts(ctx.lang()),
        chrome: ctx.chrome,
        rounds,
    })
}

/// `GET /rounds/{id}`: the queue page.
pub async fn queue(
    State(app): State<AppState>,
    Path(round): Path<u32>,
    ctx: Ctx,
    jar: CookieJar,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let ctx = ctx.in_section("queue");
    let token = queue::queue_token(&headers, &jar);
    let polled = match token {
        Some(t) => Some(queue::poll(&app, &t).await),
        None => None,
    };
    match polled {
        Some(Ok(status)) if status.round == RoundId(round) => {
            let jar = queue::with_cookies(&app, jar, &status);
            let signed_in = ctx.claims.is_some();
            let lang = ctx.lang();
            let mut page = status_page(ctx.chrome, &status);
            if status.state == Phase::Prequeue {
                page.priority = prequeue_priority(&app, &status, ctx.claims.as_ref(), lang);
            }
            if matches!(
                status.state,
                Phase::Prequeue | Phase::Waiting | Phase::Paused | Phase::Admitted
            ) {
                if let Ok((r, student)) =
                    queue::holder(&app, &headers, &jar, crate::clock::now_ms()).await
                {
                    let sent_as = status.auto_send.as_ref().map(|a| a.command_id);
                    page.cart = queue_cart(&app, r, student, lang, sent_as).await;
                }
                if page.cart.as_ref().is_some_and(|c| c.pending.is_some()) {
                    // Without script, look again soon for the outcome.
                    page.refresh_secs = 2;
                }
            }
            let jar = if signed_in {
                jar
            } else {
                let (jar, csrf) = web::anon_csrf(&app, jar);
                page.form_csrf = csrf;
                jar
            };
            Ok((jar, web::render(page, StatusCode::OK)).into_response())
        }
        Some(Err(e @ (ApiError::RateLimited { .. } | ApiError::Overloaded { .. }))) => Err(e),
        // A token that no longer works: say so, instead of silently showing
        // the join form as if the student had never been in line.
        Some(Err(ApiError::BadToken | ApiError::TokenExpired)) => {
            let message = match ctx.lang() {
                crate::i18n::Lang::Ko => {
                    "대기열 정보가 만료되었거나 올바르지 않습니다. 다시 줄을 서 주세요."
                }
                crate::i18n::Lang::En => {
                    "Your place in line has expired or is not valid here. Please join again."
                }
            };
            join_page(
                &app,
                ctx,
                jar,
                round,
                Some(message.to_string()),
                StatusCode::OK,
            )
        }
        _ => join_page(&app, ctx, jar, round, None, StatusCode::OK),
    }
}

fn join_page(
    app: &AppState,
    ctx: Ctx,
    jar: CookieJar,
    round: u32,
    error: Option<String>,
    status: StatusCode,
) -> ApiResult<Response> {
    let snapshot = app.rooms.snapshot();
    let room = snapshot
        .rounds
        .get(&RoundId(round))
        .ok_or(ApiError::NotFound)?;
    // Signed in: the session's CSRF value; otherwise the pre-login cookie's.
    let (jar, form_csrf) = if ctx.claims.is_some() {
        (jar, ctx.chrome.csrf.clone())
    } else {
        web::anon_csrf(app, jar)
    };
    let page = QueuePage {
        t: texts(ctx.lang()),
        chrome: ctx.chrome,
        round,
        round_name: room.view.name.clone(),
        phase: if room.view.state == RoundState::Closed {
            "closed"
        } else {
            "join"
        },
        error,
        position: String::new(),
        ahead: String::new(),
        estimate: String::new(),
        rough: false,
        progress_pct: 0,
        message: None,
        notice: "",
        notice_texts: Vec::new(),
        opens_in: String::new(),
        refresh_secs: 0,
        poll_ms: 0,
        form_csrf,
        cart: None,
        priority: None,
    };
    Ok((jar, web::render(page, status)).into_response())
}

fn duration_text(t: &Texts, secs: u64) -> String {
    if secs < 120 {
        format!("{secs}{}", t.seconds)
    } else {
        format!("{}{}", secs / 60, t.minutes)
    }
}

/// Before opening, a round with priority is explained too: the lines are
/// drawn at opening, but which line is the student's follows from their
/// class year, known from their session (without one, the policy alone).
fn prequeue_priority(
    app: &AppState,
    s: &Status,
    claims: Option<&waitroom::SessionClaims>,
    lang: Lang,
) -> Option<PriorityNote> {
    let snapshot = app.rooms.snapshot();
    let p = snapshot.rounds.get(&s.round)?.view.priority?;
    let t = texts(lang);
    let year = claims.and_then(|c| match c.subject {
        waitroom::Subject::Student { class_year, .. } => Some(class_year),
        waitroom::Subject::Admin { .. } => None,
    });
    let lane = year.map(|y| usize::from(p.lane_of(y)));
    Some(PriorityNote {
        policy: t.policy(p.mode().as_str()),
        years: lane
            .map(|l| waitroom::priority::years_text(p.lane_years(l)))
            .unwrap_or_default(),
        ahead_other: 0,
        may_grow: lane.is_some_and(|l| p.may_grow(l)),
    })
}

fn status_page(chrome: Chrome, s: &Status) -> QueuePage {
    let t = texts(chrome.lang);
    let phase = s.state.as_str();
    let workers_busy = s.pace.and_then(|p| p.changed_at_ms).map(|ms| {
        let at = i64::try_from(ms)
            .ok()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.with_timezone(&chrome.tz).format("%H:%M %Z").to_string())
            .unwrap_or_default();
        format!("{} {at}", t.workers_busy)
    });
    let notice_text = |n: queue::Notice| match n {
        queue::Notice::WorkersBusy => workers_busy.as_deref(),
        queue::Notice::Paused => Some(t.paused),
        queue::Notice::Held => Some(t.held),
        queue::Notice::Unavailable => Some(t.unavailable),
        queue::Notice::SeatsBusy => Some(t.seats_busy),
        queue::Notice::Slowed => Some(t.slowed),
        queue::Notice::Returned => Some(t.returned),
    };
    let message = match (s.state, s.notice) {
        (_, Some(n)) => notice_text(n),
        (Phase::Prequeue, _) => Some(t.prequeue),
        (Phase::Admitted, _) => Some(t.admitted),
        (Phase::Skipped, _) => Some(t.skipped),
        (Phase::Left, _) => Some(t.left),
        (Phase::Expired, _) => Some(t.expired),
        (Phase::Closed, _) => Some(t.closed),
        _ => None,
    };
    let estimate = match s.estimate {
        Some(e) => format!(
            "{} – {}",
            duration_text(t, e.min_secs),
            duration_text(t, e.max_secs)
        ),
        None => t.unknown.to_string(),
    };
    let opens_in = match (s.opens_in_secs, s.pass_expires_at_ms) {
        (Some(secs), _) => duration_text(t, secs),
        (None, Some(exp)) => duration_text(t, exp.saturating_sub(crate::clock::now_ms()) / 1000),
        _ => String::new(),
    };
    QueuePage {
        form_csrf: chrome.csrf.clone(),
        chrome,
        t,
        round: s.round.0,
        round_name: s.round_name.to_string(),
        phase,
        error: None,
        position: s
            .position
            .map(|p| p.to_string())
            .unwrap_or_else(|| "–".into()),
        ahead: s.ahead.map(|p| p.to_string()).unwrap_or_else(|| "–".into()),
        estimate,
        rough: s.estimate.is_some_and(|e| e.rough),
        progress_pct: (s.progress.unwrap_or(0.0) * 100.0).round() as u32,
        message: message.map(str::to_string),
        notice: s.notice.map_or("", queue::Notice::as_str),
        // Only a page that polls needs them.
        notice_texts: if s.poll_after_ms > 0 {
            queue::Notice::ALL
                .into_iter()
                .filter_map(|n| {
                    Some(NoticeText {
                        name: n.as_str(),
                        text: notice_text(n)?.to_string(),
                    })
                })
                .collect()
        } else {
            Vec::new()
        },
        opens_in,
        refresh_secs: s.poll_after_ms.div_ceil(1000),
        poll_ms: s.poll_after_ms,
        cart: None,
        priority: s.priority.as_ref().map(|p| PriorityNote {
            policy: t.policy(p.mode),
            years: p.years.clone(),
            ahead_other: p.ahead_in_other_classes,
            may_grow: p.may_grow,
        }),
    }
}

/// The cart panel of a student waiting or admitted in `round`: the seats
/// of each section (from the in-memory snapshot), the opt-in, and once
/// sent at admission, the command's outcome as far as it is decided.
async fn queue_cart(
    app: &AppState,
    round: RoundId,
    student: enrollment::StudentId,
    lang: Lang,
    sent_as: Option<enrollment::CommandId>,
) -> Option<QueueCart> {
    let view = crate::http::api::queue::cart::view(app, round, student)
        .await
        .ok()?;
    let mut outcomes = Vec::new();
    let mut pending = None;
    // Once admitted the command id is known before the send is recorded
    // (it follows from the admission), so the outcome is looked for at once.
    let live = matches!(view.auto_send.state.as_deref(), Some("waiting" | "sent"));
    if let Some(id) = view.auto_send.command_id.or(sent_as.filter(|_| live)) {
        let items = crate::db::outcomes::of_command(&app.store, id, student)
            .await
            .unwrap_or_default();
        if items.is_empty() {
            pending = Some(id.to_string());
        }
        let catalog = app.catalog.catalog();
        for i in items {
            let name = i
                .section_id
                .and_then(|s| catalog.section(s))
                .map(|s| format!("{}-{:02}", s.code, s.number))
                .unwrap_or_else(|| "–".into());
            let mut why = crate::i18n::outcomes::reason_words(i.reason.as_deref(), lang);
            if i.choice > 0 {
                why = crate::i18n::outcomes::alternate_words(
                    i.section_id
                        .and_then(|s| catalog.section(s))
                        .map(|s| s.number),
                    lang,
                );
            }
            outcomes.push((
                name,
                crate::i18n::outcomes::outcome_words(&i.outcome, lang),
                why,
            ));
        }
    }
    Some(QueueCart {
        auto_send: view.auto_send.on,
        auto_state: view.auto_send.state.unwrap_or_default(),
        filled: view
            .filled
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        items: view.items,
        pending,
        outcomes,
    })
}

/// A queue-page form: same origin, and the CSRF value of the session, or
/// of the anonymous form cookie for a holder who is not signed in.
fn queue_form_allowed(
    ctx: &Ctx,
    jar: &CookieJar,
    headers: &HeaderMap,
    csrf: &str,
) -> ApiResult<()> {
    same_origin(headers)?;
    if ctx.claims.is_some() {
        ctx.check_csrf(csrf)
    } else {
        web::check_anon_csrf(jar, csrf)
    }
}

#[derive(Debug, Deserialize)]
pub struct AutoSendForm {
    #[serde(default)]
    pub csrf: String,
    /// `1` to opt in, anything else to opt out.
    #[serde(default)]
    pub on: String,
}

/// `POST /rounds/{id}/auto-send`: the no-JS opt-in to send the cart at
/// admission.
pub async fn auto_send(
    State(app): State<AppState>,
    Path(round): Path<u32>,
    ctx: Ctx,
    jar: CookieJar,
    headers: HeaderMap,
    Form(form): Form<AutoSendForm>,
) -> ApiResult<Response> {
    queue_form_allowed(&ctx, &jar, &headers, &form.csrf)?;
    let (r, student) = queue::holder(&app, &headers, &jar, crate::clock::now_ms()).await?;
    if r != RoundId(round) {
        return Err(ApiError::BadToken);
    }
    app.limits.check_student(student)?;
    crate::http::api::queue::cart::set_as(&app, r, student, form.on.trim() == "1").await?;
    Ok(Redirect::to(&format!("/rounds/{round}")).into_response())
}

/// The join form: a signed-in student sends only the CSRF value; anyone
/// else signs in with it (student number and password).
#[derive(Debug, Deserialize)]
pub struct JoinForm {
    #[serde(default)]
    pub csrf: String,
    pub student_number: Option<String>,
    pub password: Option<String>,
}

/// `POST /rounds/{id}/join`: the no-JS join form.
pub async fn join(
    State(app): State<AppState>,
    Path(round): Path<u32>,
    ClientIp(ip): ClientIp,
    ctx: Ctx,
    jar: CookieJar,
    headers: HeaderMap,
    Form(form): Form<JoinForm>,
) -> ApiResult<Response> {
    same_origin(&headers)?;
    // Signed-in students are limited per student (in `join_as`); only a
    // join with typed credentials meets the per-address ceiling.
    if ctx.claims.is_none() {
        app.limits.check_ip(ip)?;
    }
    let ctx = ctx.in_section("queue");
    let session_student = match (&ctx.claims, ctx.student()) {
        (Some(_), Ok(_)) => {
            ctx.check_csrf(&form.csrf)?;
            crate::session::current(&app, &jar)
                .and_then(crate::session::StudentSession::from_claims)
                .map(|s| s.student())
        }
        _ => {
            web::check_anon_csrf(&jar, &form.csrf)?;
            None
        }
    };
    let result = async {
        let student = match session_student {
            Some(s) => s,
            None => {
                auth::student(
                    &app.store,
                    &app.passwords,
                    form.student_number.as_deref().unwrap_or("").trim(),
                    SecretString::from(form.password.clone().unwrap_or_default()),
                )
                .await?
            }
        };
        queue::join_as(&app, RoundId(round), student).await
    }
    .await;
    match result {
        Ok(status) => {
            let jar = queue::with_cookies(&app, jar, &status);
            Ok((jar, Redirect::to(&format!("/rounds/{round}"))).into_response())
        }
        Err(
            e @ (ApiError::Internal(_)
            | ApiError::Unavailable { .. }
            | ApiError::Overloaded { .. }
            | ApiError::RateLimited { .. }),
        ) => Err(e),
        Err(e) => {
            let status = e.status();
            let lang = ctx.lang();
            let message = match &e {
                ApiError::BadCredentials => lang
                    .t(
                        "학번 또는 비밀번호가 올바르지 않습니다.",
                        "The student number or password is wrong.",
                    )
                    .to_string(),
                ApiError::NotEligible => lang
                    .t(
                        "이번 차수에 신청할 수 있는 학년이 아닙니다.",
                        "Your class year cannot register in this round.",
                    )
                    .to_string(),
                ApiError::RoundNotOpen => lang
                    .t(
                        "지금은 대기열에 들어갈 수 없습니다.",
                        "The queue does not take students now.",
                    )
                    .to_string(),
                other => other.to_string(),
            };
            join_page(&app, ctx, jar, round, Some(message), status)
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LeaveForm {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /rounds/{id}/leave`
pub async fn leave(
    State(app): State<AppState>,
    Path(round): Path<u32>,
    ctx: Ctx,
    jar: CookieJar,
    headers: HeaderMap,
    Form(form): Form<LeaveForm>,
) -> ApiResult<Response> {
    queue_form_allowed(&ctx, &jar, &headers, &form.csrf)?;
    if let Ok((r, student)) = queue::holder(&app, &headers, &jar, crate::clock::now_ms()).await {
        queue::leave_as(&app, r, student).await?;
    }
    let jar = jar
        .remove(Cookie::build(queue::QUEUE_COOKIE).path("/"))
        .remove(Cookie::build(queue::PASS_COOKIE).path("/"));
    Ok((jar, Redirect::to(&format!("/rounds/{round}"))).into_response())
}
