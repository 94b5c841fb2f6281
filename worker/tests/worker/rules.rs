//! The enrollment rules, decided through the ledger on a real database.

use crate::helpers::*;
use enrollment::{Action, Command, Reason};
use worker::decide::Outcome;

async fn decide_one(ledger: &worker::ledger::Ledger, cmd: &Command) -> Vec<Outcome> {
    let d = ledger.decide(&[cmd]).await.expect("decide");
    assert_eq!(d.len(), 1);
    d[0].items.iter().map(|(_, o)| *o).collect()
}

#[tokio::test]
async fn every_rule_is_enforced_with_a_stable_reason() {
    let db = TestDb::new().await;
    let cat = Catalog::new(&db).await;
    let l = ledger(&db, "w1").await;
    let mon_9 = cat.section("A101", 3, 10, &[(1, 540, 615)]).await;
    let mon_915 = cat.section("B101", 3, 10, &[(1, 555, 630)]).await;
    let mon_1015 = cat.section("C101", 3, 10, &[(1, 615, 690)]).await; // touches mon_9
    let big = cat.section("D101", 12, 10, &[]).await;
    let needs_prereq = cat.section("E201", 3, 10, &[]).await;
    sqlx::query("INSERT INTO course_prerequisites (course_id, required_code) VALUES (?, 'E101')")
        .bind(cat.course_of(needs_prereq).await)
        .execute(&db.pool)
        .await
        .unwrap();
    let a101_s2 = cat
        .another_section(cat.course_of(mon_9).await, 2, 10, &[(3, 540, 615)])
        .await;
    let s = cat.students(2).await;
    let (st, other) = (s[0], s[1]);
    let r = cat.round;

    assert_eq!(
        decide_one(&l, &enroll(st, r, &[mon_9])).await,
        [Outcome::Enrolled]
    );
    assert_eq!(
        decide_one(&l, &enroll(st, r, &[mon_915])).await,
        [Outcome::Rejected(Reason::TimeConflict)]
    );
    assert_eq!(
        decide_one(&l, &enroll(st, r, &[mon_1015])).await,
        [Outcome::Enrolled],
        "touching is fine"
    );
    assert_eq!(
        decide_one(&l, &enroll(st, r, &[a101_s2])).await,
        [Outcome::Rejected(Reason::AlreadyEnrolled)]
    );
    // 6 credits held + 12 = 18 would fit the default maximum; lower it.
    sqlx::query("UPDATE students SET max_credits = 17 WHERE id = ?")
        .bind(st.0)
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        decide_one(&l, &enroll(st, r, &[big])).await,
        [Outcome::Rejected(Reason::CreditLimit)]
    );
    assert_eq!(
        decide_one(&l, &enroll(st, r, &[needs_prereq])).await,
        [Outcome::Rejected(Reason::PrerequisiteMissing)]
    );
    sqlx::query(
        "INSERT INTO student_completed_courses (student_id, course_code) VALUES (?, 'E101')",
    )
    .bind(st.0)
    .execute(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        decide_one(&l, &enroll(st, r, &[needs_prereq])).await,
        [Outcome::Enrolled]
    );

    // Closed section, unknown section.
    sqlx::query("UPDATE sections SET closed = TRUE WHERE id = ?")
        .bind(mon_915.0)
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        decide_one(&l, &enroll(other, r, &[mon_915])).await,
        [Outcome::Rejected(Reason::SectionClosed)]
    );
    assert_eq!(
        decide_one(&l, &enroll(other, r, &[enrollment::SectionId(999_999)])).await,
        [Outcome::Rejected(Reason::UnknownSection)]
    );

    // Drop frees the seat; a second drop answers not_enrolled.
    assert_eq!(
        decide_one(&l, &drop_cmd(st, r, mon_9)).await,
        [Outcome::Dropped]
    );
    assert_eq!(
        decide_one(&l, &drop_cmd(st, r, mon_9)).await,
        [Outcome::Rejected(Reason::NotEnrolled)]
    );
    assert_eq!(cat.enrolled(mon_9).await, (0, 0));

    // Eligibility: class year 1 is not in a seniors-only round.
    sqlx::query("UPDATE rounds SET eligible_years_mask = 8 WHERE id = ?")
        .bind(r.0)
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        decide_one(&l, &enroll(other, r, &[mon_9])).await,
        [Outcome::Rejected(Reason::NotEligible)]
    );
    sqlx::query("UPDATE rounds SET state = 'closed', eligible_years_mask = 15 WHERE id = ?")
        .bind(r.0)
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        decide_one(&l, &enroll(other, r, &[mon_9])).await,
        [Outcome::Rejected(Reason::RoundClosed)]
    );

    let report = worker::invariants::check(&db.pool).await.unwrap();
    assert!(report.holds(), "{report:?}");
}

#[tokio::test]
async fn a_cart_is_decided_item_by_item_in_order() {
    let db = TestDb::new().await;
    let cat = Catalog::new(&db).await;
    let l = ledger(&db, "w1").await;
    let a = cat.section("A101", 3, 10, &[(2, 540, 615)]).await;
    let full = cat.section("B101", 3, 0, &[]).await;
    let clash = cat.section("C101", 3, 10, &[(2, 600, 660)]).await;
    let d = cat.section("D101", 3, 10, &[(4, 540, 615)]).await;
    let st = cat.students(1).await[0];
    let out = decide_one(&l, &enroll(st, cat.round, &[a, full, clash, d])).await;
    assert_eq!(
        out,
        [
            Outcome::Enrolled,
            Outcome::Rejected(Reason::Full),
            Outcome::Rejected(Reason::TimeConflict),
            Outcome::Enrolled
        ]
    );
    let rows: Vec<(u16, Option<String>)> =
        sqlx::query_as("SELECT item, reason FROM command_outcomes ORDER BY item")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[1].1.as_deref(), Some("full"));
}

#[tokio::test]
async fn a_drop_promotes_the_first_eligible_waitlisted_student() {
    let db = TestDb::new().await;
    let cat = Catalog::new(&db).await;
    let l = ledger(&db, "w1").await;
    let hot = cat.section("H101", 3, 1, &[(5, 540, 615)]).await;
    let clash = cat.section("X101", 3, 10, &[(5, 540, 600)]).await;
    let s = cat.students(3).await;
    let (holder, conflicted, next) = (s[0], s[1], s[2]);
    let wl = |st| {
        Command::new(
            st,
            cat.round,
            pass(st, cat.round),
            Action::Enroll {
                sections: vec![hot],
                waitlist: true,
                options: Vec::new(),
            },
        )
    };
    assert_eq!(
        decide_one(&l, &enroll(holder, cat.round, &[hot])).await,
        [Outcome::Enrolled]
    );
    assert_eq!(decide_one(&l, &wl(conflicted)).await, [Outcome::Waitlisted]);
    assert_eq!(decide_one(&l, &wl(next)).await, [Outcome::Waitlisted]);
    assert_eq!(
        decide_one(&l, &wl(next)).await,
        [Outcome::Rejected(Reason::AlreadyWaitlisted)]
    );
    // The first in line takes a clashing section meanwhile, so is skipped.
    assert_eq!(
        decide_one(&l, &enroll(conflicted, cat.round, &[clash])).await,
        [Outcome::Enrolled]
    );
    assert_eq!(
        decide_one(&l, &drop_cmd(holder, cat.round, hot)).await,
        [Outcome::Dropped]
    );

    let holders: Vec<u32> =
        sqlx::query_scalar("SELECT student_id FROM enrollments WHERE section_id = ?")
            .bind(hot.0)
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(holders, vec![next.0]);
    let states: Vec<(u32, String)> =
        sqlx::query_as("SELECT student_id, state FROM waitlist_entries ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        states,
        vec![
            (conflicted.0, "skipped".into()),
            (next.0, "promoted".into())
        ]
    );
    assert_eq!(cat.enrolled(hot).await, (1, 1));
    assert!(worker::invariants::check(&db.pool).await.unwrap().holds());
}

/// One student enrolling in two overlapping sections concurrently
/// through two workers: at most one succeeds. Same for the credit limit.
#[tokio::test]
async fn concurrent_conflicting_commands_through_two_workers() {
    let db = TestDb::new().await;
    let cat = Catalog::new(&db).await;
    let (w1, w2) = (ledger(&db, "w1").await, ledger(&db, "w2").await);
    let mut overlap_pairs = Vec::new();
    for i in 0..10u16 {
        let a = cat
            .section(&format!("OA{i:03}"), 3, 5, &[(1, 540 + i, 615 + i)])
            .await;
        let b = cat
            .section(&format!("OB{i:03}"), 3, 5, &[(1, 560 + i, 640 + i)])
            .await;
        overlap_pairs.push((a, b));
    }
    let students = cat.students(20).await;
    for (i, (a, b)) in overlap_pairs.iter().enumerate() {
        let st = students[i];
        let (c1, c2) = (enroll(st, cat.round, &[*a]), enroll(st, cat.round, &[*b]));
        let (b1, b2) = ([&c1], [&c2]);
        let (r1, r2) = tokio::join!(w1.decide(&b1), w2.decide(&b2));
        let enrolled = [r1.unwrap(), r2.unwrap()]
            .iter()
            .filter(|d| d[0].items[0].1 == Outcome::Enrolled)
            .count();
        assert_eq!(enrolled, 1, "exactly one of two overlapping sections");
    }
    // Credit limit: 18 max; 12 held, two concurrent 6-credit commands.
    let base = cat.section("BIG12", 12, 50, &[]).await;
    for (i, &st) in students[10..].iter().enumerate() {
        w1.decide(&[&enroll(st, cat.round, &[base])]).await.unwrap();
        let x = cat.section(&format!("CX{i:03}"), 6, 5, &[]).await;
        let y = cat.section(&format!("CY{i:03}"), 6, 5, &[]).await;
        let (c1, c2) = (enroll(st, cat.round, &[x]), enroll(st, cat.round, &[y]));
        let (b1, b2) = ([&c1], [&c2]);
        let (r1, r2) = tokio::join!(w1.decide(&b1), w2.decide(&b2));
        let outcomes: Vec<Outcome> = [r1.unwrap(), r2.unwrap()]
            .iter()
            .map(|d| d[0].items[0].1)
            .collect();
        assert!(outcomes.contains(&Outcome::Enrolled), "{outcomes:?}");
        assert!(
            outcomes.contains(&Outcome::Rejected(Reason::CreditLimit)),
            "{outcomes:?}"
        );
    }
    let report = worker::invariants::check(&db.pool).await.unwrap();
    assert!(report.holds(), "{report:?}");
}
