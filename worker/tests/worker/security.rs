//! Commands that must never take effect: forged, expired, replayed or
//! misdirected passes, and commands published straight to RabbitMQ.

use crate::helpers::*;
use chrono::Utc;
use enrollment::{Action, Command, Reason, RoundId, StudentId};
use std::time::Duration;
use waitroom::{Keyring, PassClaims};
use worker::decide::Outcome;

fn claims(student: StudentId, round: RoundId, iat: u64, exp: u64, budget: u16) -> PassClaims {
    PassClaims {
        round,
        student,
        lease: uuid::Uuid::now_v7(),
        budget,
        iat,
        exp,
    }
}

#[tokio::test]
async fn bad_passes_are_rejected_with_stable_reasons_and_never_committed() {
    let db = TestDb::new().await;
    let cat = Catalog::new(&db).await;
    let l = ledger(&db, "w1").await;
    let section = cat.section("SAFE1", 3, 10, &[]).await;
    let s = cat.students(2).await;
    let (me, other) = (s[0], s[1]);
    let now = Utc::now().timestamp_millis() as u64;
    let ring = keyring();
    let forger = Keyring::from_spec("t1:an-attacker-guessed-key-0123456789abcd").unwrap();
    let act = Action::Enroll {
        sections: vec![section],
        waitlist: false,
        options: Vec::new(),
    };
    let with = |pass: String, student: StudentId, round: RoundId| {
        Command::new(student, round, pass, act.clone())
    };

    let cases = [
        (
            with(
                forger.sign_pass(&claims(me, cat.round, now, now + 60_000, 5)),
                me,
                cat.round,
            ),
            Reason::PassInvalid,
        ),
        (with("garbage".into(), me, cat.round), Reason::PassInvalid),
        (
            with(
                ring.sign_pass(&claims(me, cat.round, now - 120_000, now - 60_000, 5)),
                me,
                cat.round,
            ),
            Reason::PassExpired,
        ),
        (
            with(
                ring.sign_pass(&claims(other, cat.round, now, now + 60_000, 5)),
                me,
                cat.round,
            ),
            Reason::PassMismatch,
        ),
        (
            with(
                ring.sign_pass(&claims(me, RoundId(cat.round.0 + 1), now, now + 60_000, 5)),
                me,
                cat.round,
            ),
            Reason::PassMismatch,
        ),
        (
            with(
                pass(me, RoundId(cat.round.0 + 1)),
                me,
                RoundId(cat.round.0 + 1),
            ),
            Reason::RoundClosed,
        ),
        (
            with(
                pass(StudentId(4_000_000), cat.round),
                StudentId(4_000_000),
                cat.round,
            ),
            Reason::UnknownStudent,
        ),
    ];
    for (cmd, reason) in &cases {
        let d = l.decide(&[cmd]).await.unwrap();
        assert_eq!(
            d[0].items,
            vec![(section, Outcome::Rejected(*reason))],
            "expected {reason}"
        );
    }
    // A back-dated command cannot revive an expired pass.
    let mut old = with(
        ring.sign_pass(&claims(me, cat.round, now - 7_200_000, now - 7_000_000, 5)),
        me,
        cat.round,
    );
    old.issued_at = Utc::now() - chrono::Duration::seconds(7_100);
    let d = l.decide(&[&old]).await.unwrap();
    assert_eq!(d[0].items[0].1, Outcome::Rejected(Reason::PassExpired));

    assert_eq!(cat.enrolled(section).await, (0, 0));
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT reason FROM command_outcomes ORDER BY decided_at, reason")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(stored.len(), cases.len() + 1);
}

#[tokio::test]
async fn a_pass_carries_no_more_commands_than_its_budget() {
    let db = TestDb::new().await;
    let cat = Catalog::new(&db).await;
    let l = ledger(&db, "w1").await;
    let mut sections = Vec::new();
    for i in 0..4 {
        sections.push(cat.section(&format!("BUD{i}"), 1, 10, &[]).await);
    }
    let me = cat.students(1).await[0];
    let now = Utc::now().timestamp_millis() as u64;
    let token = keyring().sign_pass(&claims(me, cat.round, now, now + 60_000, 2));
    let cmds: Vec<Command> = sections
        .iter()
        .map(|s| {
            Command::new(
                me,
                cat.round,
                token.clone(),
                Action::Enroll {
                    sections: vec![*s],
                    waitlist: false,
                    options: Vec::new(),
                },
            )
        })
        .collect();
    // Two in one transaction, two more later: only the first two count.
    let first = l.decide(&[&cmds[0], &cmds[1], &cmds[2]]).await.unwrap();
    let later = l.decide(&[&cmds[3]]).await.unwrap();
    let got: Vec<Outcome> = first.iter().chain(&later).map(|d| d.items[0].1).collect();
    assert_eq!(
        got,
        [
            Outcome::Enrolled,
            Outcome::Enrolled,
            Outcome::Rejected(Reason::PassExhausted),
            Outcome::Rejected(Reason::PassExhausted)
        ]
    );
}

#[tokio::test]
async fn a_forged_command_published_straight_to_rabbitmq_changes_nothing() {
    let (db, queues) = (TestDb::new().await, TestQueues::new());
    let cat = Catalog::new(&db).await;
    let section = cat.section("DIRECT1", 3, 10, &[]).await;
    let me = cat.students(1).await[0];
    let forged = Command::new(
        me,
        cat.round,
        "dev.eyJrIjoicCJ9.AAAA".into(),
        Action::Enroll {
            sections: vec![section],
            waitlist: false,
            options: Vec::new(),
        },
    );
    queues.publisher().await.publish(&forged).await.unwrap();
    let w = RunningWorker::start(worker_config(&db, &queues, "w1")).await;
    wait_decided(&db.pool, 1, Duration::from_secs(30)).await;
    w.stop().await;
    assert_eq!(cat.enrolled(section).await, (0, 0));
    let reason: String =
        sqlx::query_scalar("SELECT reason FROM command_outcomes WHERE command_id = ?")
            .bind(forged.id.0)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(reason, "pass_invalid");
}

#[tokio::test]
async fn a_pass_whose_admission_ended_is_refused() {
    let db = TestDb::new().await;
    let cat = Catalog::new(&db).await;
    let l = ledger(&db, "w1").await;
    let sections = [
        cat.section("END1", 1, 10, &[]).await,
        cat.section("END2", 1, 10, &[]).await,
        cat.section("END3", 1, 10, &[]).await,
    ];
    let me = cat.students(1).await[0];
    let now = Utc::now().timestamp_millis() as u64;
    let admission = claims(me, cat.round, now, now + 60_000, 5);
    let pass = keyring().sign_pass(&admission);
    sqlx::query(
        "INSERT INTO tickets (round_id, student_id, order_key, state, joined_at, last_seen_at, admitted_at, lease_id) \
         VALUES (?, ?, 1, 'admitted', NOW(3), NOW(3), NOW(3), ?)",
    )
    .bind(cat.round.0)
    .bind(me.0)
    .bind(admission.lease)
    .execute(&db.pool)
    .await
    .unwrap();
    let enroll = |s: SectionIdx| {
        Command::new(
            me,
            cat.round,
            pass.clone(),
            Action::Enroll {
                sections: vec![sections[s.0]],
                waitlist: false,
                options: Vec::new(),
            },
        )
    };
    // While the admission runs, the pass works.
    let d = l.decide(&[&enroll(SectionIdx(0))]).await.unwrap();
    assert_eq!(d[0].items, vec![(sections[0], Outcome::Enrolled)]);

    // The student leaves the queue: the pass is over, whatever its expiry.
    sqlx::query("UPDATE tickets SET state = 'left'")
        .execute(&db.pool)
        .await
        .unwrap();
    let d = l.decide(&[&enroll(SectionIdx(1))]).await.unwrap();
    assert_eq!(
        d[0].items,
        vec![(sections[1], Outcome::Rejected(Reason::PassRevoked))]
    );

    // Joined again and admitted anew: only the new admission's pass works,
    // also when both passes' commands arrive in one batch.
    let renewed = claims(me, cat.round, now, now + 60_000, 5);
    sqlx::query("UPDATE tickets SET state = 'admitted', lease_id = ?")
        .bind(renewed.lease)
        .execute(&db.pool)
        .await
        .unwrap();
    let current = Command::new(
        me,
        cat.round,
        keyring().sign_pass(&renewed),
        Action::Enroll {
            sections: vec![sections[1]],
            waitlist: false,
            options: Vec::new(),
        },
    );
    let d = l.decide(&[&enroll(SectionIdx(2)), &current]).await.unwrap();
    assert_eq!(
        d[0].items,
        vec![(sections[2], Outcome::Rejected(Reason::PassRevoked))]
    );
    assert_eq!(d[1].items, vec![(sections[1], Outcome::Enrolled)]);
    assert_eq!(cat.enrolled(sections[2]).await, (0, 0));
}

#[derive(Clone, Copy)]
struct SectionIdx(usize);
