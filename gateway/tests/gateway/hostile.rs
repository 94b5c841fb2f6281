//! Hostile input through real HTTP: malformed and oversized requests,
//! injection-shaped strings in every field, tokens and passes from
//! elsewhere, cross-site writes, admin surfaces without the role, and
//! floods. Every answer must be a clear 4xx (never a 5xx or a dropped
//! gateway), nothing may be stored half-way, and refusals are counted in
//! `sluice_http_rejected_total`.
//!
//! Floods count statuses rather than time anything: a limiter either let a
//! request through or it did not.

use crate::helpers::*;
use enrollment::{RoundId, StudentId};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use waitroom::{PassClaims, QueueClaims, SessionClaims, Subject};

const FOREIGN: &str = "https://evil.example";

/// Strings an attacker types into every field.
const HOSTILE: &[&str] = &[
    "' OR '1'='1",
    "1; DROP TABLE students; --",
    "20260001' -- ",
    "\" UNION SELECT password_hash FROM admins --",
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "{{ 7*7 }}",
    "../../etc/passwd",
    "\u{0}\u{202e}null-and-rtl",
    "%00%27%22",
];

/// Tables a refused request must leave untouched.
const TABLES: &[&str] = &[
    "students",
    "admins",
    "rounds",
    "tickets",
    "courses",
    "sections",
    "enrollments",
    "command_outcomes",
    "audit_log",
];

async fn row_counts(app: &TestApp) -> Vec<(String, i64)> {
    let mut counts = Vec::new();
    for t in TABLES {
        let n = app.db.count(&format!("SELECT COUNT(*) FROM {t}")).await;
        counts.push((t.to_string(), n));
    }
    counts
}

/// `sluice_http_rejected_total{reason}` as this gateway reports it.
async fn rejected(app: &TestApp, reason: &str) -> f64 {
    let text = app.get("/metrics").fetch_text().await;
    metric(
        &text,
        &format!("sluice_http_rejected_total{{reason=\"{reason}\"}}"),
    )
    .unwrap_or(0.0)
}

/// Percent-encodes a path segment or query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn pass_for(app: &TestApp, student: StudentId, round: RoundId, budget: u16) -> String {
    let now = now_ms();
    app.keyring.sign_pass(&PassClaims {
        round,
        student,
        lease: uuid::Uuid::now_v7(),
        budget,
        iat: now,
        exp: now + 600_000,
    })
}

fn cookie_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A cookie-keeping client signed in through the API; returns its CSRF value.
async fn signed_in(app: &TestApp, body: Value) -> (reqwest::Client, String) {
    app.sign_in(cookie_client(), body).await
}

fn origin(app: &TestApp) -> String {
    format!("http://{}", app.addr)
}

/// Sends `request` on a fresh connection and returns the status line's
/// code, or `None` when the gateway closed the connection without one.
async fn raw(app: &TestApp, request: &[u8]) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    // A write cut short by the gateway refusing the rest is fine: what it
    // answered (if anything) is what counts.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the gateway neither answered nor closed");
    let head = String::from_utf8_lossy(&answer);
    head.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

/// A raw request, what it is, and the answers allowed (`None`: closed).
type RawCase = (&'static str, Vec<u8>, &'static [Option<u16>]);

fn assert_secure_headers(r: &reqwest::Response, what: &str) {
    let h = r.headers();
    let csp = h
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no CSP"))
        .to_str()
        .unwrap();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{what}: CSP lacks {directive}");
    }
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["x-frame-options"], "DENY", "{what}");
    assert_eq!(
        h["referrer-policy"], "strict-origin-when-cross-origin",
        "{what}"
    );
    assert!(h.contains_key("cache-control"), "{what}");
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 60).await;
    app.student("20260101", 1).await;

    let joined = app.join(round, "20260101").await;
    assert_eq!(joined.status(), 200);
    assert_secure_headers(&joined, "join");
    assert_eq!(joined.headers()["cache-control"], "no-store");
    assert!(!joined.headers().contains_key("strict-transport-security"));
    for cookie in joined.headers().get_all("set-cookie") {
        let cookie = cookie.to_str().unwrap();
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    }
    let token = joined.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();

    let answers = [
        // Polls are answered before the router, with headers of their own.
        (
            "status poll",
            app.get("/api/queue/status")
                .header("x-queue-token", &token)
                .send()
                .await
                .unwrap(),
        ),
        (
            "status poll without a token",
            reqwest::Client::new()
                .get(app.url("/api/queue/status"))
                .send()
                .await
                .unwrap(),
        ),
        ("page", app.get("/").send().await.unwrap()),
        (
            "unknown route",
            app.get("/no/such/page").send().await.unwrap(),
        ),
        (
            "api error",
            app.enroll(None, json!({ "sections": [1] })).await,
        ),
        ("health", app.get("/healthz").send().await.unwrap()),
        ("metrics", app.get("/metrics").send().await.unwrap()),
        (
            "wrong method",
            app.client.put(app.url("/api/enroll")).send().await.unwrap(),
        ),
    ];
    assert_eq!(answers[0].1.status(), 200);
    assert_eq!(answers[1].1.status(), 401);
    for (what, r) in &answers {
        assert_secure_headers(r, what);
        assert_eq!(r.headers()["cache-control"], "no-store", "{what}");
        assert_eq!(
            r.headers().get_all("cache-control").iter().count(),
            1,
            "{what}: one of each"
        );
    }
    let asset = app.get("/static/app.css").send().await.unwrap();
    assert_eq!(asset.status(), 200);
    assert_secure_headers(&asset, "static");
    assert_eq!(
        asset.headers()["cache-control"],
        "public, max-age=300",
        "a handler's own caching is kept"
    );
    app.finish().await;

    // Behind TLS: HSTS, and every cookie is Secure.
    let tls = TestApp::spawn(|c| c.secure_cookies = true).await;
    let round = tls.round("open", 60).await;
    tls.student("20260102", 1).await;
    let joined = tls.join(round, "20260102").await;
    assert_eq!(joined.status(), 200);
    assert_eq!(
        joined.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    for cookie in joined.headers().get_all("set-cookie") {
        assert!(cookie.to_str().unwrap().contains("Secure"));
    }
    let token = joined.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let polled = tls
        .get("/api/queue/status")
        .header("x-queue-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(polled.status(), 200);
    assert_eq!(
        polled.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    assert_secure_headers(&polled, "status poll behind TLS");
    let missing = tls.get("/nope").send().await.unwrap();
    assert!(missing.headers().contains_key("strict-transport-security"));
    tls.finish().await;
}

#[tokio::test]
async fn malformed_oversized_and_misrouted_requests_get_clear_json_4xx() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 60).await;
    let student = app.student("20260111", 1).await;
    let pass = pass_for(&app, student, round, 50);
    let join = app.url(&format!("/api/rounds/{round}/join"));
    let before = row_counts(&app).await;
    let invalid_before = rejected(&app, "invalid").await;
    let large_before = rejected(&app, "too_large").await;

    let send_json = |url: String, body: Vec<u8>| {
        app.client
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases: Vec<(&str, reqwest::Response, u16, &str)> = vec![
        (
            "truncated JSON",
            send_json(join.clone(), br#"{"student_number":"#.to_vec())
                .await
                .unwrap(),
            400,
            "invalid_request",
        ),
        (
            "invalid UTF-8 in the body",
            send_json(join.clone(), b"{\"student_number\":\"\xff\xfe\"}".to_vec())
                .await
                .unwrap(),
            400,
            "invalid_request",
        ),
        (
            "wrong JSON types",
            send_json(
                join.clone(),
                br#"{"student_number":1,"password":[]}"#.to_vec(),
            )
            .await
            .unwrap(),
            400,
            "invalid_request",
        ),
        (
            "unknown field",
            send_json(
                join.clone(),
                br#"{"student_number":"20260111","password":"pw","admin":true}"#.to_vec(),
            )
            .await
            .unwrap(),
            400,
            "invalid_request",
        ),
        (
            "form body on a JSON route",
            app.client
                .post(join.clone())
                .header("content-type", "application/x-www-form-urlencoded")
                .body("student_number=20260111&password=pw")
                .send()
                .await
                .unwrap(),
            415,
            "unsupported_media_type",
        ),
        (
            "no content type",
            app.client
                .post(join.clone())
                .body("{}")
                .send()
                .await
                .unwrap(),
            415,
            "unsupported_media_type",
        ),
        (
            "oversized JSON body",
            send_json(
                join.clone(),
                format!(r#"{{"student_number":"{}"}}"#, "9".repeat(20_000)).into_bytes(),
            )
            .await
            .unwrap(),
            413,
            "too_large",
        ),
        (
            "oversized form body",
            app.client
                .post(app.url("/login"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("name={}", "a".repeat(40_000)))
                .send()
                .await
                .unwrap(),
            413,
            "too_large",
        ),
        (
            "unknown API route",
            app.get("/api/no-such-thing").send().await.unwrap(),
            404,
            "not_found",
        ),
        (
            "unknown page",
            app.get("/no-such-page").send().await.unwrap(),
            404,
            "not_found",
        ),
        (
            "GET on a POST route",
            app.get("/api/enroll").send().await.unwrap(),
            405,
            "method_not_allowed",
        ),
        (
            "PATCH on the session",
            app.client
                .patch(app.url("/api/session"))
                .send()
                .await
                .unwrap(),
            405,
            "method_not_allowed",
        ),
        (
            "round id not a number",
            app.get("/api/rounds/abc").send().await.unwrap(),
            400,
            "invalid_request",
        ),
        (
            "round id past u32",
            app.get("/api/rounds/99999999999").send().await.unwrap(),
            400,
            "invalid_request",
        ),
        (
            "invalid UTF-8 in the path",
            app.get("/api/rounds/%FF%FE").send().await.unwrap(),
            400,
            "invalid_request",
        ),
        (
            "command id not a UUID",
            app.get("/api/commands/not-a-uuid").send().await.unwrap(),
            400,
            "invalid_request",
        ),
    ];
    for (what, r, status, code_expected) in cases {
        assert_eq!(r.status(), status, "{what}");
        let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
        if content_type.starts_with("application/json") {
            assert_eq!(code(r).await, code_expected, "{what}");
        } else {
            // Page routes answer with an HTML error page of the same status.
            assert!(
                content_type.starts_with("text/html"),
                "{what}: {content_type}"
            );
        }
    }
    let allow = app.get("/api/enroll").send().await.unwrap();
    assert_eq!(allow.headers()["allow"], "POST");

    // Carts that are not carts, with a valid pass: refused before RabbitMQ.
    for body in [
        json!({ "sections": ["1 OR 1=1"] }),
        json!({ "sections": [-1] }),
        json!({ "sections": [4_294_967_296u64] }),
        json!({ "sections": [1.5] }),
        json!({ "sections": [] }),
        json!({ "sections": (1..=13).collect::<Vec<u32>>() }),
        json!({ "sections": [7, 7] }),
        json!({ "sections": null }),
        json!({ "section": 1 }),
        json!([1, 2, 3]),
    ] {
        let r = app.enroll(Some(&pass), body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(code(r).await, "invalid_request", "{body}");
    }
    let r = app
        .client
        .post(app.url("/api/drop"))
        .header("x-pass", &pass)
        .json(&json!({ "section": "1; DELETE FROM enrollments" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    assert!(app.sink.sent().is_empty(), "nothing reached RabbitMQ");
    assert_eq!(row_counts(&app).await, before, "nothing stored");
    assert!(rejected(&app, "invalid").await >= invalid_before + 20.0);
    assert!(rejected(&app, "too_large").await >= large_before + 1.0);
    app.finish().await;
}

#[tokio::test]
async fn raw_protocol_abuse_is_refused_without_hurting_the_gateway() {
    let app = TestApp::spawn(|_| {}).await;
    let head = |path: &[u8], extra: &[u8]| {
        let mut r = b"GET ".to_vec();
        r.extend_from_slice(path);
        r.extend_from_slice(b" HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n");
        r.extend_from_slice(extra);
        r.extend_from_slice(b"\r\n");
        r
    };
    let many_headers: Vec<u8> = (0..200)
        .flat_map(|i| format!("X-Filler-{i}: {i}\r\n").into_bytes())
        .collect();
    let big = |n: usize| format!("X-Big: {}\r\n", "a".repeat(n)).into_bytes();
    let cases: Vec<RawCase> =
        vec![
        (
            "raw invalid UTF-8 in the path",
            head(b"/api/rounds/\xff\xfe", b""),
            &[Some(400)],
        ),
        (
            "invalid UTF-8 in the query",
            head(b"/courses?q=%FF%FE&page=%C0", b""),
            &[Some(200), Some(400)],
        ),
        ("200 headers", head(b"/healthz", &many_headers), &[Some(431)]),
        ("a 32 KiB header", head(b"/healthz", &big(32 * 1024)), &[Some(200)]),
        (
            "a 1 MiB header",
            head(b"/healthz", &big(1024 * 1024)),
            &[Some(431), None],
        ),
        (
            "a control byte in a header",
            head(b"/healthz", b"X-Bad: a\x01b\r\n"),
            &[Some(400)],
        ),
        (
            "not HTTP at all",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
            &[Some(400), None],
        ),
        (
            "a body longer than its length",
            b"POST /api/session HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n\
              Content-Length: 99999999\r\nConnection: close\r\n\r\n{}"
                .to_vec(),
            &[Some(413)],
        ),
        (
            "a form declaring ten gigabytes",
            b"POST /login HTTP/1.1\r\nHost: gateway\r\n\
              Content-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 10000000000\r\nConnection: close\r\n\r\nname=x"
                .to_vec(),
            &[Some(413)],
        ),
    ];
    for (what, request, allowed) in cases {
        let status = raw(&app, &request).await;
        assert!(allowed.contains(&status), "{what}: answered {status:?}");
    }
    // Still serving.
    let r = app.get("/healthz").send().await.unwrap();
    assert_eq!(r.status(), 200);
    app.finish().await;
}

#[tokio::test]
async fn injection_shaped_strings_are_refused_or_escaped_and_nothing_is_stored() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 60).await;
    let student = app.student("20260121", 1).await;
    let pass = pass_for(&app, student, round, 100);
    let (admin, _) = signed_in(
        &app,
        json!({ "username": "registrar", "password": "admin-pw" }),
    )
    .await;
    // A browser on the login form: the pre-login CSRF cookie and value.
    let browser = cookie_client();
    let form = browser.get(app.url("/login")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let html = form.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the login form carries a CSRF value")
        .to_string();
    let before = row_counts(&app).await;

    for p in HOSTILE {
        let what = format!("payload {p:?}");
        let r = app.join_with(round, p, p).await;
        assert_eq!(r.status(), 401, "{what}: join");
        assert_eq!(code(r).await, "bad_credentials", "{what}");
        for body in [
            json!({ "student_number": p, "password": p }),
            json!({ "username": p, "password": p }),
        ] {
            let r = app
                .client
                .post(app.url("/api/session"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "{what}: session");
        }
        let r = app.enroll(Some(&pass), json!({ "sections": [p] })).await;
        assert_eq!(r.status(), 400, "{what}: enroll");
        for body in [json!({ "action": p }), json!({ "admission_per_min": p })] {
            let r = app
                .client
                .post(app.url(&format!("/api/admin/rounds/{round}")))
                .basic_auth("registrar", Some("admin-pw"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{what}: admin");
        }
        let r = app
            .client
            .post(app.url(&format!("/api/admin/rounds/{round}")))
            .basic_auth(p, Some(p))
            .json(&json!({ "action": "close" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{what}: basic auth");
        for path in [
            format!("/api/rounds/{}", enc(p)),
            format!("/api/commands/{}", enc(p)),
            format!("/api/rounds/{}/join", enc(p)),
        ] {
            let r = if path.ends_with("/join") {
                app.client
                    .post(app.url(&path))
                    .json(&json!({}))
                    .send()
                    .await
            } else {
                app.get(&path).send().await
            }
            .unwrap();
            assert!(
                [400, 404].contains(&r.status().as_u16()),
                "{what}: {path} answered {}",
                r.status()
            );
        }

        // Pages: refused or shown, and never echoed unescaped.
        let login = browser
            .post(app.url("/login"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", p),
                ("password", p),
                ("next", p),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 401, "{what}: login form");
        let page = login.text().await.unwrap();
        assert!(!page.contains("<script>alert"), "{what}: echoed raw");
        assert!(!page.contains("<img src=x"), "{what}: echoed raw");
        for path in [
            format!("/courses?q={0}&credits={0}&page={0}&dept={0}", enc(p)),
            format!("/login?next={}", enc(p)),
        ] {
            let r = app.get(&path).send().await.unwrap();
            // Shown, or refused with the form's own messages.
            assert!(
                [200, 400].contains(&r.status().as_u16()),
                "{what}: {path}: {}",
                r.status()
            );
            let page = r.text().await.unwrap();
            assert!(!page.contains("<script>alert"), "{what}: {path} echoed raw");
        }
        let r = admin
            .get(app.url(&format!("/admin/students?number={}", enc(p))))
            .send()
            .await
            .unwrap();
        assert!(
            r.status().as_u16() < 500,
            "{what}: admin search {}",
            r.status()
        );
        assert!(!r.text().await.unwrap().contains("<script>alert"));
    }

    assert!(app.sink.sent().is_empty(), "nothing reached RabbitMQ");
    assert_eq!(row_counts(&app).await, before, "nothing stored half-way");
    app.finish().await;
}

#[tokio::test]
async fn tokens_of_the_wrong_kind_key_time_or_round_are_refused() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 60).await;
    let student = app.student("20260131", 1).await;
    let now = now_ms();
    let bad_before = rejected(&app, "bad_token").await;
    let session = app.keyring.sign_session(&SessionClaims::new(
        Subject::Student {
            id: student,
            class_year: 1,
        },
        now,
        60_000,
    ));
    let queue = app.keyring.sign_queue(&QueueClaims {
        round,
        student,
        seq: 1,
        order_key: Some(1),
        mark_at_join: 0,
        iat: now,
        exp: now + 60_000,
    });
    let future_pass = app.keyring.sign_pass(&PassClaims {
        round,
        student,
        lease: uuid::Uuid::now_v7(),
        budget: 5,
        iat: now + 3_600_000,
        exp: now + 7_200_000,
    });
    let section = json!({ "sections": [1] });

    let as_pass = [
        ("a session as a pass", session.clone(), "bad_token"),
        ("a queue token as a pass", queue.clone(), "bad_token"),
        ("a pass issued in the future", future_pass, "token_expired"),
        ("an overlong token", "k.".repeat(400), "bad_token"),
        ("an empty token", String::new(), "bad_token"),
        ("an unknown key id", "zz.e30.AAAA".to_string(), "bad_token"),
    ];
    for (what, token, expected) in as_pass {
        let r = app.enroll(Some(&token), section.clone()).await;
        assert_eq!(r.status(), 401, "{what}");
        assert_eq!(code(r).await, expected, "{what}");
    }
    let r = app
        .get("/api/queue/status")
        .header("x-queue-token", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, "bad_token", "a session is not a queue token");

    // A queue token for a round this gateway does not know.
    let elsewhere = app.keyring.sign_queue(&QueueClaims {
        round: RoundId(round.0 + 500),
        ..app.keyring.verify_queue(&queue, now).unwrap()
    });
    let r = app
        .get("/api/queue/status")
        .header("x-queue-token", &elsewhere)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // An expired session cookie signs nobody in; a session signed with
    // another key does not make anyone an admin.
    let stale = app.keyring.sign_session(&SessionClaims::new(
        Subject::Student {
            id: student,
            class_year: 1,
        },
        now - 120_000,
        60_000,
    ));
    let r = app
        .client
        .post(app.url(&format!("/api/rounds/{round}/join")))
        .header("cookie", format!("sluice_session={stale}"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, "sign_in_required");
    let forger = waitroom::Keyring::from_spec("t1:an-attacker-guessed-key-0123456789abcd").unwrap();
    let fake_admin = forger.sign_session(&SessionClaims::new(
        Subject::Admin {
            id: 1,
            username: "registrar".into(),
            role: "registrar".into(),
        },
        now,
        60_000,
    ));
    let r = app
        .client
        .post(app.url(&format!("/api/admin/rounds/{round}")))
        .header("cookie", format!("sluice_session={fake_admin}"))
        .json(&json!({ "action": "close" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    assert!(rejected(&app, "bad_token").await >= bad_before + 7.0);
    assert!(app.sink.sent().is_empty());
    let state: String = sqlx::query_scalar("SELECT state FROM rounds WHERE id = ?")
        .bind(round.0)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(state, "open");
    app.finish().await;
}

#[tokio::test]
async fn a_pass_carries_no_more_commands_than_its_budget_through_one_gateway() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 60).await;
    let student = app.student("20260141", 1).await;
    let before = rejected(&app, "pass_exhausted").await;
    let pass = pass_for(&app, student, round, 3);

    let mut statuses = Vec::new();
    for section in 1..=6u32 {
        let r = app
            .enroll(Some(&pass), json!({ "sections": [section] }))
            .await;
        statuses.push(r.status().as_u16());
        if r.status() == 403 {
            assert_eq!(code(r).await, "pass_exhausted");
        }
    }
    assert_eq!(statuses, [202, 202, 202, 403, 403, 403]);
    assert_eq!(app.sink.sent().len(), 3);
    assert_eq!(rejected(&app, "pass_exhausted").await, before + 3.0);

    // A command the broker never confirmed does not use up the budget.
    let other = app.student("20260142", 1).await;
    let single = pass_for(&app, other, round, 1);
    app.sink.fail(true);
    let r = app.enroll(Some(&single), json!({ "sections": [1] })).await;
    assert_eq!(r.status(), 503);
    app.sink.fail(false);
    let r = app.enroll(Some(&single), json!({ "sections": [1] })).await;
    assert_eq!(r.status(), 202);
    let r = app.enroll(Some(&single), json!({ "sections": [2] })).await;
    assert_eq!(r.status(), 403);
    app.finish().await;
}

#[tokio::test]
async fn cookie_writes_need_the_csrf_value_and_the_same_origin() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 60).await;
    let student = app.student("20260151", 1).await;
    let csrf_before = rejected(&app, "csrf").await;
    let home = origin(&app);
    let (browser, csrf) = signed_in(
        &app,
        json!({ "student_number": "20260151", "password": "pw" }),
    )
    .await;
    let mut refused = 0.0;
    let mut refuse = |r: reqwest::Response, what: &str| {
        assert_eq!(r.status(), 403, "{what}");
        refused += 1.0;
    };

    // JSON API with the session cookie.
    let join = app.url(&format!("/api/rounds/{round}/join"));
    let r = browser
        .post(&join)
        .header("origin", FOREIGN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    refuse(r, "join from another site");
    let r = browser
        .delete(app.url("/api/session"))
        .header("origin", FOREIGN)
        .send()
        .await
        .unwrap();
    refuse(r, "sign-out from another site");

    // Pass and queue cookies.
    let pass = pass_for(&app, student, round, 10);
    let r = app
        .client
        .post(app.url("/api/enroll"))
        .header("cookie", format!("sluice_pass={pass}"))
        .header("origin", FOREIGN)
        .json(&json!({ "sections": [1] }))
        .send()
        .await
        .unwrap();
    refuse(r, "enroll with the pass cookie from another site");
    let r = app
        .client
        .post(app.url("/api/drop"))
        .header("cookie", format!("sluice_pass={pass}"))
        .header("origin", "null")
        .json(&json!({ "section": 1 }))
        .send()
        .await
        .unwrap();
    refuse(r, "drop from a sandboxed frame");

    // Student forms from another site, even with the right value (missing
    // and wrong values: `web_pages::every_form_refuses_a_missing_or_wrong_csrf_value`).
    for (path, fields) in [
        ("/cart/add", vec![("section", "1")]),
        ("/cart/remove", vec![("section", "1")]),
        ("/enroll", vec![("section", "1")]),
        ("/drop", vec![("section", "1")]),
        (&format!("/rounds/{round}/join") as &str, vec![]),
        (&format!("/rounds/{round}/leave") as &str, vec![]),
        ("/logout", vec![]),
    ] {
        let mut right = fields.clone();
        right.push(("csrf", csrf.as_str()));
        let r = browser
            .post(app.url(path))
            .header("origin", FOREIGN)
            .form(&right)
            .send()
            .await
            .unwrap();
        refuse(r, &format!("{path} from another site"));
    }
    let r = browser
        .post(&join)
        .header("origin", &home)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the same site may join");

    // A registrar's session: the JSON admin API and the admin forms.
    let (registrar, admin_csrf) = signed_in(
        &app,
        json!({ "username": "registrar", "password": "admin-pw" }),
    )
    .await;
    let admin_api = app.url(&format!("/api/admin/rounds/{round}"));
    let r = registrar
        .post(&admin_api)
        .json(&json!({ "action": "pause" }))
        .send()
        .await
        .unwrap();
    refuse(r, "admin API without X-CSRF-Token");
    let r = registrar
        .post(&admin_api)
        .header("x-csrf-token", &admin_csrf)
        .header("origin", FOREIGN)
        .json(&json!({ "action": "pause" }))
        .send()
        .await
        .unwrap();
    refuse(r, "admin API from another site");
    for (path, fields) in [
        (
            format!("/admin/rounds/{round}/control"),
            vec![("action", "pause")],
        ),
        ("/admin/rounds".to_string(), vec![("name", "x")]),
        ("/admin/courses".to_string(), vec![("code", "X1")]),
    ] {
        let mut with = fields.clone();
        with.push(("csrf", admin_csrf.as_str()));
        let r = registrar
            .post(app.url(&path))
            .header("origin", FOREIGN)
            .form(&with)
            .send()
            .await
            .unwrap();
        refuse(r, &format!("{path} from another site"));
    }
    let state: String = sqlx::query_scalar("SELECT state FROM rounds WHERE id = ?")
        .bind(round.0)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(state, "open", "no refused write took effect");
    let r = registrar
        .post(&admin_api)
        .header("x-csrf-token", &admin_csrf)
        .header("origin", &home)
        .json(&json!({ "action": "pause" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "with the value, from the site: accepted");

    assert!(app.sink.sent().is_empty());
    assert!(rejected(&app, "csrf").await >= csrf_before + refused);
    app.finish().await;
}

#[tokio::test]
async fn admin_surfaces_refuse_everyone_but_registrars() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 60).await;
    app.student("20260161", 1).await;
    sqlx::query("INSERT INTO admins (username, display_name, role, password_hash) VALUES ('viewer', 'Viewer', 'viewer', ?)")
        .bind(hash("viewer-pw"))
        .execute(&app.pool)
        .await
        .unwrap();
    let forbidden_before = rejected(&app, "forbidden").await;
    let api = app.url(&format!("/api/admin/rounds/{round}"));
    let (student, student_csrf) = signed_in(
        &app,
        json!({ "student_number": "20260161", "password": "pw" }),
    )
    .await;
    let (viewer, viewer_csrf) = signed_in(
        &app,
        json!({ "username": "viewer", "password": "viewer-pw" }),
    )
    .await;
    let anonymous = cookie_client();
    let mut refused = 0.0;

    for (who, client, csrf) in [
        ("nobody", &anonymous, ""),
        ("a student", &student, student_csrf.as_str()),
        ("a viewer", &viewer, viewer_csrf.as_str()),
    ] {
        let r = client.get(&api).send().await.unwrap();
        assert_eq!(r.status(), 403, "{who} reads the admin API");
        let r = client
            .post(&api)
            .header("x-csrf-token", csrf)
            .json(&json!({ "action": "close" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{who} changes a round");
        refused += 2.0;
    }
    // Wrong credentials are challenged (401); right ones of another role
    // are forbidden (403).
    for (user, password, status) in [
        ("20260161", "pw", 401),
        ("viewer", "viewer-pw", 403),
        ("registrar", "", 401),
    ] {
        let r = app
            .client
            .post(&api)
            .basic_auth(user, Some(password))
            .json(&json!({ "action": "close" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "basic auth as {user}");
        assert_eq!(r.headers().contains_key("www-authenticate"), status == 401);
        if status == 403 {
            refused += 1.0;
        }
    }
    let r = app
        .client
        .get(&api)
        .header("authorization", "Basic !!!not-base64!!!")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let state: String = sqlx::query_scalar("SELECT state FROM rounds WHERE id = ?")
        .bind(round.0)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(state, "open");
    let audit = app.db.count("SELECT COUNT(*) FROM audit_log").await;
    assert_eq!(audit, 0, "no refused change was audited as done");
    assert!(rejected(&app, "forbidden").await >= forbidden_before + refused);
    app.finish().await;
}

/// Beyond `limits.rs` (one flooder, one polite client): behind an ingress
/// a flooder cannot dodge the per-IP limit by inventing forwarding hops, a
/// student cannot dodge the per-student limit by changing address, and
/// every 429 is counted.
#[tokio::test]
async fn floods_cannot_dodge_the_limits_by_changing_address() {
    let app = TestApp::spawn(|c| {
        c.trust_forwarded = true;
        c.ip_rate = 1;
        c.ip_burst = 5;
        c.student_rate = 1;
        c.student_burst = 5;
    })
    .await;
    let round = app.round("paused", 60).await;
    for n in ["20260171", "20260172", "20260173"] {
        app.student(n, 1).await;
    }
    let limited_before = rejected(&app, "rate_limited").await;
    let count = |statuses: &[u16], s: u16| statuses.iter().filter(|&&x| x == s).count();
    let token_of = |number: &'static str, ip: &'static str| {
        let app = &app;
        async move {
            let r = app
                .client
                .post(app.url(&format!("/api/rounds/{round}/join")))
                .header("x-forwarded-for", ip)
                .json(&json!({ "student_number": number, "password": "pw" }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let v: Value = r.json().await.unwrap();
            v["token"].as_str().unwrap().to_string()
        }
    };
    let flooder = token_of("20260171", "10.1.0.1").await;
    let steady = token_of("20260172", "10.1.0.2").await;
    let also_steady = token_of("20260173", "10.1.0.3").await;
    let poll = |token: &str, forwarded: String| {
        app.get("/api/queue/status")
            .header("x-forwarded-for", forwarded)
            .header("x-queue-token", token)
            .send()
    };
    let mut slowed = 0;
    // A burst of 5 and one more a second: what may get through a flood
    // depends on how long the flood took on this machine.
    let allowed = |started: std::time::Instant| 5 + started.elapsed().as_secs() as usize + 1;

    // The client writes the first hops; the ingress appends the address it
    // saw (10.0.0.1). Rotating the invented hops changes nothing.
    let mut flood = Vec::new();
    let mut polite = Vec::new();
    let started = std::time::Instant::now();
    for i in 0..30 {
        let r = poll("not-a-token", format!("192.0.2.{}, 10.0.0.1", i + 1))
            .await
            .unwrap();
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
        }
        flood.push(r.status().as_u16());
        if i % 10 == 5 {
            let r = poll(&steady, "10.0.0.2".into()).await.unwrap();
            polite.push(r.status().as_u16());
        }
    }
    assert!(
        flood.len() - count(&flood, 429) <= allowed(started),
        "spoofed hops: {flood:?}"
    );
    assert!(flood.iter().all(|s| [401, 429].contains(s)), "{flood:?}");
    assert_eq!(polite, [200, 200, 200], "another address is untouched");
    slowed += count(&flood, 429);

    // One student from ever-new addresses: the per-student limit holds.
    let mut flood = Vec::new();
    let mut polite = Vec::new();
    let started = std::time::Instant::now();
    for i in 0..30 {
        let r = poll(&flooder, format!("10.2.0.{}", i + 1)).await.unwrap();
        flood.push(r.status().as_u16());
        if i % 10 == 5 {
            let r = poll(&also_steady, "10.3.0.1".into()).await.unwrap();
            polite.push(r.status().as_u16());
        }
    }
    assert!(
        flood.len() - count(&flood, 429) <= allowed(started),
        "student flood: {flood:?}"
    );
    assert_eq!(polite, [200, 200, 200]);
    slowed += count(&flood, 429);

    // Commands too: an admitted student flooding enroll from new addresses.
    let open = app.round("open", 60).await;
    let loud = app.student("20260175", 1).await;
    let quiet = app.student("20260176", 1).await;
    let loud_pass = pass_for(&app, loud, open, 100);
    let quiet_pass = pass_for(&app, quiet, open, 100);
    let enroll = |pass: &str, forwarded: String, section: u32| {
        app.client
            .post(app.url("/api/enroll"))
            .header("x-forwarded-for", forwarded)
            .header("x-pass", pass)
            .json(&json!({ "sections": [section] }))
            .send()
    };
    let mut flood = Vec::new();
    let mut polite = Vec::new();
    let started = std::time::Instant::now();
    for i in 0..30u32 {
        let r = enroll(&loud_pass, format!("10.4.0.{}", i + 1), i + 1)
            .await
            .unwrap();
        flood.push(r.status().as_u16());
        if i % 10 == 5 {
            let r = enroll(&quiet_pass, "10.5.0.1".into(), i + 1).await.unwrap();
            polite.push(r.status().as_u16());
        }
    }
    assert!(
        flood.len() - count(&flood, 429) <= allowed(started),
        "enroll flood: {flood:?}"
    );
    assert_eq!(polite, [202, 202, 202]);
    slowed += count(&flood, 429);
    let published = app.sink.sent();
    assert_eq!(
        published.iter().filter(|c| c.student == loud).count(),
        count(&flood, 202),
        "only accepted commands were published"
    );

    let limited = rejected(&app, "rate_limited").await - limited_before;
    assert!(
        limited >= slowed as f64,
        "{slowed} answered 429, {limited} counted"
    );
    app.finish().await;
}

#[tokio::test]
async fn one_student_cannot_hold_two_places() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("paused", 60).await;
    app.student("20260181", 1).await;
    let (browser, _) = signed_in(
        &app,
        json!({ "student_number": "20260181", "password": "pw" }),
    )
    .await;
    let url = app.url(&format!("/api/rounds/{round}/join"));
    let joins = (0..8).map(|_| {
        let (browser, url) = (browser.clone(), url.clone());
        async move {
            let r = browser.post(url).json(&json!({})).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let v: Value = r.json().await.unwrap();
            v["token"].as_str().unwrap().to_string()
        }
    });
    let tokens = futures_util::future::join_all(joins).await;
    let seqs: std::collections::HashSet<u64> = tokens
        .iter()
        .map(|t| app.keyring.verify_queue(t, now_ms()).unwrap().seq)
        .collect();
    assert_eq!(seqs.len(), 1, "every device holds the same place");
    let tickets = app
        .db
        .count("SELECT COUNT(*) FROM tickets WHERE state = 'waiting'")
        .await;
    assert_eq!(tickets, 1);
    app.finish().await;
}
