//! Integration tests of the schema crate against a real MariaDB/MySQL: the
//! migrations, the constraints the seat ledger relies on, and the seed.
//!
//! Each test creates its own database named `sluice_t_<random hex>` and drops
//! it when the test ends, pass or fail. The server defaults to
//! `mysql://root@127.0.0.1:3306`; set `TEST_MYSQL_URL` to use another.

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use chrono::{Duration, TimeZone, Utc};
use schema::seed::{self, Catalog, SeedConfig, SeedOutcome, DEMO_ADMINS, DEMO_STUDENT_PASSWORD};
use std::collections::{HashMap, HashSet};

mod testing;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A migrated database of the test's own ([`schema::testing::TestDb`],
/// dropped with the value), with the helpers these tests share.
struct TestDb(schema::testing::TestDb);

impl std::ops::Deref for TestDb {
    type Target = schema::testing::TestDb;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl TestDb {
    /// A fresh database with every migration applied.
    async fn migrated() -> TestDb {
        TestDb(schema::testing::TestDb::create("sluice_t_", 4).await)
    }

    async fn count(&self, table: &str) -> i64 {
        // Table names come from the tests themselves.
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM `{table}`"))
            .fetch_one(&self.pool)
            .await
            .expect("counting rows")
    }

    /// A term, a department and one course with `sections` sections of
    /// capacity 2; returns (course id, section ids).
    async fn minimal_catalog(&self, sections: u16) -> (u32, Vec<u32>) {
        let pool = &self.pool;
        sqlx::query(
            "INSERT INTO terms (id, code, name, starts_on, ends_on) \
             VALUES (1, 'T', 'Test term', '2027-03-02', '2027-06-21')",
        )
        .execute(pool)
        .await
        .expect("term");
        sqlx::query("INSERT INTO departments (id, code, name_ko, name_en) VALUES (1, 'CSE', '컴퓨터공학과', 'CSE')")
            .execute(pool)
            .await
            .expect("department");
        sqlx::query(
            "INSERT INTO courses (id, term_id, department_id, code, title_ko, title_en, credits) \
             VALUES (1, 1, 1, 'CSE2010', '자료구조', 'Data Structures', 3)",
        )
        .execute(pool)
        .await
        .expect("course");
        let mut ids = Vec::new();
        for number in 1..=sections {
            let done =
                sqlx::query("INSERT INTO sections (course_id, number, capacity) VALUES (1, ?, 2)")
                    .bind(number)
                    .execute(pool)
                    .await
                    .expect("section");
            ids.push(u32::try_from(done.last_insert_id()).expect("small id"));
        }
        sqlx::query(
            "INSERT INTO students (id, number, name, class_year, department_id) \
             VALUES (1, '2027010001', '김민준', 1, 1)",
        )
        .execute(pool)
        .await
        .expect("student");
        (1, ids)
    }
}

fn fresh_url() -> String {
    schema::testing::fresh_url("sluice_t_")
}

fn small_config(seed: u64) -> SeedConfig {
    SeedConfig {
        seed,
        students: 1_500,
        sections: 250,
    }
}

/// MariaDB (error 4025) and MySQL (3819) both name the failed constraint.
fn violates_check(err: &sqlx::Error, constraint: &str) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.message().contains(constraint))
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

// ---------------------------------------------------------------------------
// Migrations and constraints
// ---------------------------------------------------------------------------

#[tokio::test]
async fn migrations_apply_to_an_empty_database_and_are_idempotent() {
    let url = fresh_url();
    let first = schema::db::create_and_migrate(&url)
        .await
        .expect("first run");
    let pool = schema::db::connect(&url, 2).await.expect("connect");
    let db = TestDb(schema::testing::TestDb::adopt(url, pool));

    assert_eq!(first, schema::MIGRATOR.iter().count());
    let second = schema::db::create_and_migrate(&db.url)
        .await
        .expect("second run");
    assert_eq!(second, 0);
    for table in [
        "terms",
        "sections",
        "students",
        "rounds",
        "tickets",
        "enrollments",
        "command_outcomes",
    ] {
        assert_eq!(db.count(table).await, 0, "{table}");
    }
}

#[tokio::test]
async fn a_section_never_holds_more_than_its_capacity() {
    let db = TestDb::migrated().await;
    db.minimal_catalog(0).await;

    let over = sqlx::query(
        "INSERT INTO sections (course_id, number, capacity, enrolled) VALUES (1, 1, 2, 3)",
    )
    .execute(&db.pool)
    .await
    .expect_err("enrolled above capacity must be refused");
    assert!(violates_check(&over, "ck_sections_seats"), "{over}");

    sqlx::query("INSERT INTO sections (course_id, number, capacity, enrolled) VALUES (1, 1, 2, 2)")
        .execute(&db.pool)
        .await
        .expect("a full section is fine");
    let bump = sqlx::query("UPDATE sections SET enrolled = enrolled + 1 WHERE course_id = 1")
        .execute(&db.pool)
        .await
        .expect_err("overselling by update must be refused");
    assert!(violates_check(&bump, "ck_sections_seats"), "{bump}");
}

#[tokio::test]
async fn a_student_cannot_hold_two_sections_of_one_course() {
    let db = TestDb::migrated().await;
    let (course, sections) = db.minimal_catalog(2).await;
    let enroll = |section: u32| {
        sqlx::query(
            "INSERT INTO enrollments (student_id, section_id, course_id, enrolled_at) \
             VALUES (1, ?, ?, NOW(3))",
        )
        .bind(section)
        .bind(course)
        .execute(&db.pool)
    };

    enroll(sections[0]).await.expect("first section");
    let second = enroll(sections[1])
        .await
        .expect_err("second section of the same course");
    assert!(is_unique_violation(&second), "{second}");
    assert_eq!(db.count("enrollments").await, 1);
}

#[tokio::test]
async fn a_command_item_is_decided_exactly_once() {
    let db = TestDb::migrated().await;
    let command_id = [7u8; 16];
    let record = |item: u16, outcome: &'static str| {
        sqlx::query(
            "INSERT INTO command_outcomes (command_id, item, student_id, round_id, section_id, \
                                           action, outcome, issued_at, decided_at, decided_by) \
             VALUES (?, ?, 1, 1, 1, 'enroll', ?, NOW(3), NOW(3), 'test')",
        )
        .bind(&command_id[..])
        .bind(item)
        .bind(outcome)
        .execute(&db.pool)
    };

    record(0, "enrolled").await.expect("first decision");
    record(1, "rejected")
        .await
        .expect("another item of the same command");
    let again = record(0, "rejected")
        .await
        .expect_err("a second decision of item 0");
    assert!(is_unique_violation(&again), "{again}");
    assert_eq!(db.count("command_outcomes").await, 2);
}

// ---------------------------------------------------------------------------
// The generator (pure)
// ---------------------------------------------------------------------------

#[test]
fn generate_is_deterministic_per_seed() {
    let a = seed::generate(&small_config(42));
    assert_eq!(a, seed::generate(&small_config(42)));
    let b = seed::generate(&small_config(43));
    assert_ne!(a.sections, b.sections);
    assert_ne!(a.students, b.students);
}

#[test]
fn generate_makes_the_requested_counts() {
    let catalog = seed::generate(&SeedConfig::default());
    assert_eq!(catalog.students.len(), 40_000);
    assert_eq!(catalog.sections.len(), 4_000);
    assert!((20..=30).contains(&catalog.departments.len()));
    let years: HashSet<u8> = catalog.students.iter().map(|s| s.class_year).collect();
    assert_eq!(years, HashSet::from([1, 2, 3, 4]));
}

#[test]
fn every_meeting_is_a_weekday_daytime_block() {
    let catalog = seed::generate(&SeedConfig::default());
    let mut online = 0;
    for section in &catalog.sections {
        online += usize::from(section.meetings.is_empty());
        assert!(section.meetings.len() <= 2, "{section:?}");
        for m in &section.meetings {
            assert!((1..=5).contains(&m.weekday), "{section:?}");
            assert!(m.start_min < m.end_min, "{section:?}");
            assert!(m.start_min >= 9 * 60 && m.end_min <= 21 * 60, "{section:?}");
        }
    }
    assert!(
        online > 0 && online * 10 < catalog.sections.len(),
        "{online} online sections"
    );
}

#[test]
fn prerequisites_name_existing_lower_level_courses() {
    let catalog = seed::generate(&SeedConfig::default());
    let level: HashMap<&str, u8> = catalog
        .courses
        .iter()
        .map(|c| (c.code.as_str(), c.level))
        .collect();
    for course in &catalog.courses {
        assert!(course.prerequisites.len() <= 2, "{course:?}");
        for code in &course.prerequisites {
            let required = level
                .get(code.as_str())
                .unwrap_or_else(|| panic!("{code} does not exist"));
            assert!(*required < course.level, "{course:?}");
        }
    }
    for student in &catalog.students {
        assert!(student
            .completed
            .iter()
            .all(|code| level.contains_key(code.as_str())));
    }
}

#[test]
fn capacities_are_positive_and_sections_belong_to_courses() {
    let catalog = seed::generate(&SeedConfig::default());
    let courses: HashSet<u32> = catalog.courses.iter().map(|c| c.id).collect();
    for section in &catalog.sections {
        assert!(section.capacity > 0, "{section:?}");
        assert!(courses.contains(&section.course_id), "{section:?}");
    }
}

// ---------------------------------------------------------------------------
// Seeding a database
// ---------------------------------------------------------------------------

async fn assert_matches_catalog(db: &TestDb, catalog: &Catalog) {
    let summary = catalog.summary();
    let expected = [
        ("terms", 1),
        ("departments", summary.departments),
        ("courses", summary.courses),
        ("course_prerequisites", summary.prerequisites),
        ("sections", summary.sections),
        ("section_meetings", summary.meetings),
        ("students", summary.students),
        ("student_completed_courses", summary.completed_courses),
        ("admins", DEMO_ADMINS.len()),
    ];
    for (table, rows) in expected {
        assert_eq!(
            db.count(table).await,
            i64::try_from(rows).expect("small"),
            "{table}"
        );
    }
    let seats: u64 = sqlx::query_scalar("SELECT CAST(SUM(capacity) AS UNSIGNED) FROM sections")
        .fetch_one(&db.pool)
        .await
        .expect("seats");
    let generated: u64 = catalog.sections.iter().map(|s| u64::from(s.capacity)).sum();
    assert_eq!(seats, generated);
    let first = &catalog.students[0];
    let stored: (u32, u8, String) =
        sqlx::query_as("SELECT id, class_year, name FROM students WHERE number = ?")
            .bind(&first.number)
            .fetch_one(&db.pool)
            .await
            .expect("first student");
    assert_eq!(stored, (first.id, first.class_year, first.name.clone()));
}

#[tokio::test]
async fn seed_writes_the_generated_catalog() {
    let db = TestDb::migrated().await;
    let config = small_config(42);
    let outcome = seed::seed(&db.pool, &config).await.expect("seed");
    let catalog = seed::generate(&config);
    assert_eq!(outcome, SeedOutcome::Seeded(catalog.summary()));
    assert_eq!(catalog.students.len(), 1_500);
    assert_eq!(catalog.sections.len(), 250);
    assert_matches_catalog(&db, &catalog).await;
}

#[tokio::test]
async fn seeding_a_seeded_database_changes_nothing_until_reset() {
    let db = TestDb::migrated().await;
    let config = small_config(42);
    seed::seed(&db.pool, &config).await.expect("first seed");

    let again = seed::seed(&db.pool, &small_config(9))
        .await
        .expect("second seed");
    let SeedOutcome::AlreadySeeded(counts) = again else {
        panic!("expected AlreadySeeded, got {again:?}");
    };
    assert_eq!((counts.students, counts.sections), (1_500, 250));
    assert_matches_catalog(&db, &seed::generate(&config)).await;

    seed::ensure_demo_round(&db.pool, Utc::now())
        .await
        .expect("demo round");
    seed::reset(&db.pool).await.expect("reset");
    let counts = seed::catalog_counts(&db.pool).await.expect("counts");
    assert!(counts.is_empty(), "{counts:?}");
    assert_eq!(db.count("rounds").await, 0, "reset empties every table");
    let migrated = schema::db::create_and_migrate(&db.url)
        .await
        .expect("migrate");
    assert_eq!(migrated, 0, "reset keeps the migration history");
    let other = small_config(9);
    let outcome = seed::seed(&db.pool, &other)
        .await
        .expect("seed after reset");
    assert!(matches!(outcome, SeedOutcome::Seeded(_)));
    assert_matches_catalog(&db, &seed::generate(&other)).await;
}

#[tokio::test]
async fn seeded_accounts_log_in_with_the_demo_credentials() {
    let db = TestDb::migrated().await;
    seed::seed(
        &db.pool,
        &SeedConfig {
            students: 20,
            sections: 5,
            seed: 1,
        },
    )
    .await
    .expect("seed");

    let hashes: Vec<String> = sqlx::query_scalar("SELECT DISTINCT password_hash FROM students")
        .fetch_all(&db.pool)
        .await
        .expect("student hashes");
    assert_eq!(hashes.len(), 1, "every demo student shares one hash");
    let verify = |hash: &str, password: &str| {
        let parsed = PasswordHash::new(hash).expect("a PHC string");
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    };
    assert!(verify(&hashes[0], DEMO_STUDENT_PASSWORD));
    assert!(!verify(&hashes[0], "wrong"));

    for admin in DEMO_ADMINS {
        let (role, hash): (String, String) =
            sqlx::query_as("SELECT role, password_hash FROM admins WHERE username = ?")
                .bind(admin.username)
                .fetch_one(&db.pool)
                .await
                .expect("admin");
        assert_eq!(role, admin.role);
        assert!(verify(&hash, admin.password), "{}", admin.username);
    }
}

#[tokio::test]
async fn the_demo_round_opens_now_for_every_year_and_is_kept() {
    let db = TestDb::migrated().await;
    let now = Utc
        .with_ymd_and_hms(2027, 2, 10, 0, 0, 0)
        .single()
        .expect("a date");
    let missing = seed::ensure_demo_round(&db.pool, now).await;
    assert!(
        matches!(missing, Err(seed::SeedError::NotSeeded)),
        "{missing:?}"
    );

    seed::seed(&db.pool, &small_config(3)).await.expect("seed");
    let round = seed::ensure_demo_round(&db.pool, now)
        .await
        .expect("demo round");
    assert!(round.created);
    assert_eq!(
        (round.opens_at, round.closes_at),
        (now, now + Duration::days(7))
    );

    let (mask, state, rate, prequeue_at): (u8, String, u32, chrono::DateTime<Utc>) = sqlx::query_as(
        "SELECT eligible_years_mask, state, admission_per_min, prequeue_at FROM rounds WHERE id = ?",
    )
    .bind(round.id)
    .fetch_one(&db.pool)
    .await
    .expect("round row");
    assert_eq!((mask, state.as_str(), rate), (0x0F, "open", 600));
    assert_eq!(prequeue_at, now - Duration::minutes(1));

    let later = seed::ensure_demo_round(&db.pool, now + Duration::hours(1))
        .await
        .expect("again");
    assert_eq!((later.id, later.created), (round.id, false));
    let expired = seed::ensure_demo_round(&db.pool, now + Duration::days(8))
        .await
        .expect("expired");
    assert!(expired.created && expired.id != round.id);
    assert_eq!(db.count("rounds").await, 2);
}

#[tokio::test]
async fn set_password_hashes_with_argon2_and_refuses_unknown_or_short() {
    use schema::accounts::{set_password, Account};
    let db = TestDb::migrated().await;
    sqlx::query(
        "INSERT INTO students (number, name, class_year) VALUES ('2027000001', '새학생', 1)",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let account = Account::Student("2027000001".into());
    set_password(&db.pool, &account, "correct horse".into())
        .await
        .unwrap();
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM students WHERE number = '2027000001'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    let parsed = PasswordHash::new(&stored).unwrap();
    assert!(Argon2::default()
        .verify_password(b"correct horse", &parsed)
        .is_ok());
    assert!(Argon2::default()
        .verify_password(b"wrong", &parsed)
        .is_err());

    assert!(set_password(&db.pool, &account, "short".into())
        .await
        .is_err());
    let unknown = Account::Admin("nobody".into());
    assert!(set_password(&db.pool, &unknown, "long enough".into())
        .await
        .is_err());
}
