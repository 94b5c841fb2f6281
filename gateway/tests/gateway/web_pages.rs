//! The student and registrar pages over HTTP: CSRF on every form, role
//! checks, CSV import (validation report, all or nothing), cart warnings,
//! search filters, and bad query strings answered 4xx with a message.

use crate::helpers::*;
use reqwest::redirect::Policy;
use reqwest::Client;
use serde_json::Value;
use std::time::Duration;

/// A browser-like client: keeps cookies, does not follow redirects.
pub(crate) fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// The value of the first `name="csrf"` field of a page.
pub(crate) fn csrf_field(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string()
}

/// Signs in through the login form; returns the session's CSRF value.
pub(crate) async fn sign_in(
    app: &TestApp,
    c: &Client,
    name: &str,
    password: &str,
    staff: bool,
) -> String {
    let form = c.get(app.url("/login")).fetch_text().await;
    let r = c
        .post(app.url("/login"))
        .form(&[
            ("csrf", csrf_field(&form).as_str()),
            ("kind", if staff { "staff" } else { "student" }),
            ("name", name),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "sign-in of {name}");
    let info: Value = c
        .get(app.url("/api/session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    info["csrf"].as_str().unwrap().to_string()
}

async fn add_admin(app: &TestApp, username: &str, role: &str) {
    sqlx::query(
        "INSERT INTO admins (username, display_name, role, password_hash) VALUES (?, ?, ?, ?)",
    )
    .bind(username)
    .bind(username)
    .bind(role)
    .bind(hash("admin-pw"))
    .execute(&app.pool)
    .await
    .unwrap();
}

async fn departments(app: &TestApp) {
    sqlx::query("INSERT INTO departments (code, name_ko, name_en) VALUES ('CSE', '컴퓨터공학과', 'Computer Science'), ('MAT', '수학과', 'Mathematics')")
        .execute(&app.pool)
        .await
        .unwrap();
}

const CATALOG: &str = "course_code,title_ko,title_en,department,credits,prerequisites,section,capacity,instructor,room,meetings\n\
CSE1010,프로그래밍기초,Programming Basics,CSE,3,,1,40,Kim,E101,Mon 09:00-10:15; Wed 09:00-10:15\n\
CSE1010,프로그래밍기초,Programming Basics,CSE,3,,2,40,Lee,E102,Tue 09:00-10:15; Thu 09:00-10:15\n\
CSE2010,자료구조,Data Structures,CSE,3,CSE1010,1,30,Park,E201,Mon 10:00-11:15\n\
MAT1010,미적분학,Calculus,MAT,4,,1,60,Choi,M101,Fri 13:00-14:40\n";

async fn import(app: &TestApp, c: &Client, csrf: &str, kind: &str, csv: &str) -> (u16, String) {
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.to_string())
        .text("kind", kind.to_string())
        .text("term", "1")
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("x.csv"),
        );
    let r = c
        .post(app.url("/admin/import"))
        .header("accept-language", "en")
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Imports the test catalog and waits until this gateway's cache has it.
async fn catalog(app: &TestApp) -> (Client, String) {
    departments(app).await;
    let c = browser();
    let csrf = sign_in(app, &c, "registrar", "admin-pw", true).await;
    let (status, html) = import(app, &c, &csrf, "catalog", CATALOG).await;
    assert_eq!(status, 200, "{html}");
    // The search box echoes the query, so wait for the result count: the
    // cache holds the catalog once it shows every imported section.
    let sections = app.db.count("SELECT COUNT(*) FROM sections").await;
    let whole = format!("{sections} sections");
    let anon = browser();
    wait_until(Duration::from_secs(10), || {
        let anon = anon.clone();
        let url = app.url("/courses?lang=en");
        let whole = whole.clone();
        async move { anon.get(url).fetch_text().await.contains(&whole) }
    })
    .await;
    (c, csrf)
}

async fn section_id(app: &TestApp, code: &str, number: u16) -> u32 {
    sqlx::query_scalar("SELECT s.id FROM sections s JOIN courses c ON c.id = s.course_id WHERE c.code = ? AND s.number = ?")
        .bind(code)
        .bind(number)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_form_refuses_a_missing_or_wrong_csrf_value() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 6000).await;
    app.student("20269001", 1).await;
    let (admin, admin_csrf) = catalog(&app).await;
    let section = section_id(&app, "CSE1010", 1).await.to_string();
    let course: u32 = sqlx::query_scalar("SELECT id FROM courses WHERE code = 'CSE1010'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let student = browser();
    sign_in(&app, &student, "20269001", "pw", false).await;

    let student_forms = [
        "/cart/add".to_string(),
        "/cart/remove".into(),
        "/cart/waitlist".into(),
        "/waitlist/leave".into(),
        "/enroll".into(),
        "/drop".into(),
        format!("/rounds/{round}/join"),
        format!("/rounds/{round}/leave"),
        "/logout".into(),
    ];
    let admin_forms = [
        "/admin/rounds".to_string(),
        format!("/admin/rounds/{round}/control"),
        format!("/admin/rounds/{round}/schedule"),
        "/admin/courses".into(),
        format!("/admin/courses/{course}"),
        format!("/admin/courses/{course}/sections"),
        format!("/admin/sections/{section}"),
    ];
    for (client, forms) in [(&student, &student_forms[..]), (&admin, &admin_forms[..])] {
        for path in forms {
            for csrf in [None, Some("forged-value")] {
                let mut fields = vec![("section", section.as_str()), ("rate", "5"), ("name", "x")];
                if let Some(v) = csrf {
                    fields.push(("csrf", v));
                }
                let r = client
                    .post(app.url(path))
                    .form(&fields)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 403, "{path} with csrf {csrf:?}");
                let html = r.text().await.unwrap();
                assert!(html.contains("<html"), "{path}: an HTML page, not JSON");
            }
        }
    }
    // The import form too, and the login form (before any session).
    let (status, _) = import(&app, &admin, "forged-value", "catalog", CATALOG).await;
    assert_eq!(status, 403);
    let r = browser()
        .post(app.url("/login"))
        .form(&[
            ("csrf", "x"),
            ("kind", "student"),
            ("name", "20269001"),
            ("password", "pw"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "login without the pre-login cookie");
    // A form from another site is refused even with the right value.
    let r = admin
        .post(app.url(&format!("/admin/rounds/{round}/control")))
        .header("origin", "https://evil.example")
        .form(&[("csrf", admin_csrf.as_str()), ("rate", "5")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let rate: u32 = sqlx::query_scalar("SELECT admission_per_min FROM rounds WHERE id = ?")
        .bind(round.0)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rate, 6000, "nothing changed");
    app.finish().await;
}

#[tokio::test]
async fn viewers_only_look_and_students_never_reach_admin_pages() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 6000).await;
    app.student("20269002", 1).await;
    add_admin(&app, "viewer", "viewer").await;

    let viewer = browser();
    let csrf = sign_in(&app, &viewer, "viewer", "admin-pw", true).await;
    let page = viewer
        .get(app.url(&format!("/admin/rounds/{round}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("Apply rate") && !html.contains("속도 적용"),
        "no controls for a viewer"
    );
    let r = viewer
        .post(app.url(&format!("/admin/rounds/{round}/control")))
        .form(&[("csrf", csrf.as_str()), ("rate", "5")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Nor through the JSON API with the session.
    let r = viewer
        .post(app.url(&format!("/api/admin/rounds/{round}")))
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({ "admission_per_min": 5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let rate: u32 = sqlx::query_scalar("SELECT admission_per_min FROM rounds WHERE id = ?")
        .bind(round.0)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rate, 6000);

    // A registrar's session works on the JSON API too (with its CSRF value).
    let registrar = browser();
    let csrf = sign_in(&app, &registrar, "registrar", "admin-pw", true).await;
    let r = registrar
        .post(app.url(&format!("/api/admin/rounds/{round}")))
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({ "admission_per_min": 120 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let actor: String = sqlx::query_scalar("SELECT actor FROM audit_log ORDER BY id DESC LIMIT 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(actor, "registrar");

    let student = browser();
    sign_in(&app, &student, "20269002", "pw", false).await;
    for path in [
        "/admin",
        "/admin/courses",
        "/admin/import",
        "/admin/students",
        "/admin/export/enrollments.csv",
    ] {
        let r = student.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    let r = browser().get(app.url("/admin")).send().await.unwrap();
    assert_eq!(r.status(), 303, "signed out: to the login form");
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?next=/admin"));
    app.finish().await;
}

#[tokio::test]
async fn a_csv_import_reports_every_problem_and_writes_nothing_or_everything() {
    let app = TestApp::spawn(|_| {}).await;
    departments(&app).await;
    let c = browser();
    let csrf = sign_in(&app, &c, "registrar", "admin-pw", true).await;

    let bad =
        format!("{CATALOG}MAT2010,선형대수,Linear Algebra,XYZ,3,,1,abc,Choi,M102,Someday 9-10\n");
    let (status, html) = import(&app, &c, &csrf, "catalog", &bad).await;
    assert_eq!(status, 422);
    for needle in [
        "<td>6</td><td>department</td>",
        "<td>6</td><td>capacity</td>",
        "<td>6</td><td>meetings</td>",
    ] {
        assert!(html.contains(needle), "{needle} in the report");
    }
    assert_eq!(
        app.db.count("SELECT COUNT(*) FROM courses").await,
        0,
        "nothing half-imported"
    );

    let (status, html) = import(&app, &c, &csrf, "catalog", CATALOG).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(app.db.count("SELECT COUNT(*) FROM courses").await, 3);
    assert_eq!(app.db.count("SELECT COUNT(*) FROM sections").await, 4);
    assert_eq!(
        app.db.count("SELECT COUNT(*) FROM section_meetings").await,
        6
    );
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) FROM course_prerequisites")
            .await,
        1
    );

    // A capacity below what is already enrolled is found under the row
    // lock, mid-transaction: the earlier rows of the file roll back too.
    sqlx::query("UPDATE sections s JOIN courses c ON c.id = s.course_id SET s.enrolled = 20 WHERE c.code = 'CSE2010'")
        .execute(&app.pool)
        .await
        .unwrap();
    let shrink = "course_code,title_ko,title_en,department,credits,section,capacity,meetings\n\
                  CSE1010,새 제목,New Title,CSE,3,1,40,\n\
                  CSE2010,자료구조,Data Structures,CSE,3,1,10,Mon 10:00-11:15\n";
    let (status, html) = import(&app, &c, &csrf, "catalog", shrink).await;
    assert_eq!(status, 422);
    assert!(html.contains("<td>3</td><td>capacity</td>"), "{html}");
    let title: String = sqlx::query_scalar("SELECT title_en FROM courses WHERE code = 'CSE1010'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(title, "Programming Basics", "the first row rolled back");

    // Students: problems reported, then a clean import without passwords.
    let (status, html) = import(
        &app,
        &c,
        &csrf,
        "students",
        "number,name,class_year\n2027001,Kim,9\n",
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("<td>2</td><td>class_year</td>"));
    let (status, _) = import(
        &app,
        &c,
        &csrf,
        "students",
        "number,name,class_year,department,completed\n2027001,Kim,1,CSE,CSE1010\n",
    )
    .await;
    assert_eq!(status, 200);
    let hash: Option<String> =
        sqlx::query_scalar("SELECT password_hash FROM students WHERE number = '2027001'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(hash.is_none(), "imported students get no password");
    app.finish().await;
}

#[tokio::test]
async fn the_cart_warns_about_overlaps_duplicates_and_the_credit_limit() {
    let app = TestApp::spawn(|_| {}).await;
    let id = app.student("20269003", 1).await;
    sqlx::query("UPDATE students SET max_credits = 9 WHERE id = ?")
        .bind(id.0)
        .execute(&app.pool)
        .await
        .unwrap();
    catalog(&app).await;
    let c = browser();
    let csrf = sign_in(&app, &c, "20269003", "pw", false).await;
    for (code, n) in [
        ("CSE1010", 1),
        ("CSE1010", 2),
        ("CSE2010", 1),
        ("MAT1010", 1),
    ] {
        let section = section_id(&app, code, n).await.to_string();
        let r = c
            .post(app.url("/cart/add"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("section", section.as_str()),
                ("back", "/cart"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
    }
    assert_eq!(app.db.count("SELECT COUNT(*) FROM cart_items").await, 4);
    let html = c.get(app.url("/cart?lang=en")).fetch_text().await;
    assert!(
        html.contains("data-code=\"duplicate_course\""),
        "two sections of CSE1010"
    );
    assert!(
        html.contains("data-code=\"time_overlap\""),
        "CSE1010-01 and CSE2010-01 on Monday"
    );
    assert!(
        html.contains("data-code=\"prerequisite_missing\""),
        "CSE2010 needs CSE1010"
    );
    assert!(html.contains("over your credit limit"), "13 credits > 9");

    let r = c
        .post(app.url("/cart/add"))
        .form(&[("csrf", csrf.as_str()), ("section", "not-a-number")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a bad section is a 400 with a message");
    app.finish().await;
}

#[tokio::test]
async fn a_section_opened_after_the_cache_loaded_can_be_added_at_once() {
    let app = TestApp::spawn(|_| {}).await;
    app.student("20269004", 1).await;
    catalog(&app).await;
    // A new section straight into the database: no reload is asked for, so
    // the catalog cache does not know it yet.
    sqlx::query(
        "INSERT INTO sections (course_id, number, capacity) \
         SELECT id, 9, 30 FROM courses WHERE code = 'MAT1010'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let fresh = section_id(&app, "MAT1010", 9).await.to_string();
    let c = browser();
    let csrf = sign_in(&app, &c, "20269004", "pw", false).await;
    let add = |section: String| {
        let c = c.clone();
        let url = app.url("/cart/add");
        let csrf = csrf.clone();
        async move {
            let r = c
                .post(url)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("section", section.as_str()),
                    ("back", "/cart"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 303);
            r.headers()["location"].to_str().unwrap().to_string()
        }
    };
    assert_eq!(add(fresh.clone()).await, "/cart?msg=added");
    assert_eq!(
        app.db
            .count(&format!(
                "SELECT COUNT(*) FROM cart_items WHERE section_id = {fresh}"
            ))
            .await,
        1
    );
    // The cart and the timetable preview show it at once, not after the
    // next scheduled refresh.
    for page in ["/cart?lang=en", "/timetable?cart=1&lang=en"] {
        let html = c.get(app.url(page)).fetch_text().await;
        assert!(html.contains("MAT1010-09"), "{page} lacks the new section");
    }
    assert_eq!(add(fresh).await, "/cart?msg=added", "adding twice is fine");
    assert_eq!(add("4000000".into()).await, "/cart?msg=unknown");
    assert_eq!(app.db.count("SELECT COUNT(*) FROM cart_items").await, 1);
    app.finish().await;
}

/// A registrar's change and its audit row commit together: when the audit
/// row cannot be written, the change is not made either.
#[tokio::test]
async fn no_registrar_change_lands_without_its_audit_row() {
    let app = TestApp::spawn(|_| {}).await;
    let (admin, csrf) = catalog(&app).await;
    let section = section_id(&app, "CSE1010", 1).await;
    let close = || {
        admin
            .post(app.url(&format!("/admin/sections/{section}")))
            .form(&[("csrf", csrf.as_str()), ("op", "close")])
            .send()
    };
    let closed = || async {
        app.db
            .count(&format!(
                "SELECT COUNT(*) FROM sections WHERE id = {section} AND closed"
            ))
            .await
    };
    let audits = "SELECT COUNT(*) FROM audit_log";
    let before = app.db.count(audits).await;
    let students = "SELECT COUNT(*) FROM students";
    let students_before = app.db.count(students).await;

    // The audit log refuses any new row.
    sqlx::query(
        "CREATE TRIGGER test_refuse BEFORE INSERT ON audit_log FOR EACH ROW \
         SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit log refused by the test'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let r = close().await.unwrap();
    assert_eq!(r.status(), 503, "the change is refused as a whole");
    assert_eq!(closed().await, 0, "the section stayed open");
    let (_, html) = import(
        &app,
        &admin,
        &csrf,
        "students",
        "number,name,class_year,department,completed\n2027101,Lee,1,CSE,\n",
    )
    .await;
    assert!(!html.contains("2027101"), "{html}");
    assert_eq!(
        app.db.count(students).await,
        students_before,
        "no student imported"
    );
    assert_eq!(app.db.count(audits).await, before);

    // With the log writable again, the same change lands with its row.
    sqlx::query("DROP TRIGGER test_refuse")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(close().await.unwrap().status(), 303);
    assert_eq!(closed().await, 1);
    assert_eq!(
        app.db
            .count(&format!(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'close_section' AND subject = 'section:{section}'"
            ))
            .await,
        1
    );
    app.finish().await;
}

/// Exports are streamed in chunks; the whole file arrives, in order, and a
/// database that cannot answer is a 503 before any byte.
#[tokio::test]
async fn a_large_export_streams_whole_and_a_failing_one_is_a_503() {
    let app = TestApp::spawn(|_| {}).await;
    let (admin, _) = catalog(&app).await;
    let section = section_id(&app, "CSE1010", 1).await;
    let n = 3000;
    sqlx::query(&format!(
        "INSERT INTO students (number, name, class_year) \
         SELECT CONCAT('3', LPAD(seq, 7, '0')), CONCAT('학생 ', seq), 1 FROM seq_1_to_{n}"
    ))
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO enrollments (student_id, section_id, course_id, enrolled_at) \
         SELECT st.id, s.id, s.course_id, UTC_TIMESTAMP(3) FROM students st JOIN sections s \
         WHERE st.number LIKE '3%' AND s.id = ?",
    )
    .bind(section)
    .execute(&app.pool)
    .await
    .unwrap();

    let r = admin
        .get(app.url("/admin/export/enrollments.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("enrollments.csv"));
    let body = r.text().await.unwrap();
    assert!(
        body.len() > 2 * 64 * 1024,
        "several chunks: {} bytes",
        body.len()
    );
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), n + 1, "a header and every enrollment");
    assert!(lines[0].starts_with("student_number,student_name,course_code"));
    assert!(
        lines[1].starts_with("30000001,학생 1,CSE1010,1,"),
        "{}",
        lines[1]
    );
    assert!(
        lines[n].starts_with("30003000,학생 3000,CSE1010,1,"),
        "{}",
        lines[n]
    );

    // An export with no rows is its header line.
    let round = app.round("open", 60).await;
    let body = admin
        .get(app.url(&format!("/admin/rounds/{round}/outcomes.csv")))
        .fetch_text()
        .await;
    assert_eq!(
        body,
        "command_id,item,student_number,course_code,section,action,outcome,reason,issued_at,decided_at,decided_by\n"
    );

    sqlx::query("RENAME TABLE enrollments TO enrollments_away")
        .execute(&app.pool)
        .await
        .unwrap();
    let r = admin
        .get(app.url("/admin/export/enrollments.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    sqlx::query("RENAME TABLE enrollments_away TO enrollments")
        .execute(&app.pool)
        .await
        .unwrap();
    app.finish().await;
}

#[tokio::test]
async fn search_filters_and_bad_query_strings() {
    let app = TestApp::spawn(|_| {}).await;
    catalog(&app).await;
    let c = browser();
    let get = |path: &str| {
        let c = c.clone();
        let url = app.url(path);
        async move {
            let r = c
                .get(url)
                .header("accept-language", "en")
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    // Wait with this client's own headers until the whole catalog shows.
    wait_until(Duration::from_secs(10), || {
        let get = &get;
        async move { get("/courses").await.1.contains("4 sections") }
    })
    .await;
    let (status, html) = get("/courses").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("4 sections"),
        "{}",
        html.split("role=\"status\"")
            .nth(1)
            .unwrap_or("")
            .chars()
            .take(200)
            .collect::<String>()
    );
    let (_, html) = get("/courses?q=calculus").await;
    assert!(html.contains("MAT1010") && !html.contains("CSE1010"));
    let (_, html) = get("/courses?q=%EC%9E%90%EB%A3%8C").await; // 자료
    assert!(html.contains("CSE2010") && !html.contains("MAT1010"));
    let (_, html) = get("/courses?dept=MAT").await;
    assert!(html.contains("1 sections"));
    let (_, html) = get("/courses?day=2").await;
    assert!(html.contains("CSE1010-02") && !html.contains("CSE1010-01"));
    let (_, html) = get("/courses?from=09%3A30").await;
    assert!(html.contains("MAT1010") && html.contains("CSE2010") && !html.contains("CSE1010-01"));
    let (_, html) = get("/courses?credits=4").await;
    assert!(html.contains("MAT1010") && html.contains("1 sections"));

    for (path, message) in [
        ("/courses?day=funday", "Pick a weekday"),
        ("/courses?credits=99", "Credits are a number"),
        ("/courses?from=25%3A99", "Enter a time like 09:00"),
        (
            "/courses?from=12%3A00&to=09%3A00",
            "The end must be after the start",
        ),
        ("/courses?page=0", "Not a valid page number"),
        ("/courses?dept=%27%3B--", "Not a department code"),
    ] {
        let (status, html) = get(path).await;
        assert_eq!(status, 400, "{path}");
        assert!(html.contains(message), "{path}: {message}");
        assert!(
            html.contains("aria-invalid=\"true\"") || path.contains("page="),
            "{path}: the field is marked"
        );
    }
    let registrar = browser();
    sign_in(&app, &registrar, "registrar", "admin-pw", true).await;
    for (path, status) in [
        ("/admin/courses?page=x", 400),
        ("/admin/students?number=abc", 400),
        ("/admin/students?number=99999999", 404),
        ("/admin/rounds/notanumber", 400),
        ("/admin/rounds/424242", 404),
    ] {
        let r = registrar.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        assert!(
            r.text().await.unwrap().contains("<html"),
            "{path}: a page, not a bare error"
        );
    }
    app.finish().await;
}
