//! A student's record as the registrar looks it up (appeals): who they are,
//! their queue tickets and every decided command item.

use super::{MySqlStore, StoreError};
use chrono::NaiveDateTime;

/// The student behind a number.
#[derive(Debug, sqlx::FromRow)]
pub struct Student {
    pub id: u32,
    pub name: String,
    pub class_year: u8,
}

pub async fn by_number(store: &MySqlStore, number: &str) -> Result<Option<Student>, StoreError> {
    store
        .timed(
            sqlx::query_as("SELECT id, name, class_year FROM students WHERE number = ?")
                .bind(number)
                .fetch_optional(store.pool()),
        )
        .await
}

/// One of the student's queue tickets.
#[derive(Debug, sqlx::FromRow)]
pub struct Ticket {
    pub round: String,
    pub seq: u64,
    pub order_key: Option<u64>,
    pub prequeue: bool,
    pub state: String,
    pub joined_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub admitted_at: Option<NaiveDateTime>,
}

pub async fn tickets(store: &MySqlStore, student: u32) -> Result<Vec<Ticket>, StoreError> {
    store
        .timed(
            sqlx::query_as(
                "SELECT r.name AS round, t.seq, t.order_key, t.prequeue, t.state, t.joined_at, \
                        t.last_seen_at, t.admitted_at \
                 FROM tickets t JOIN rounds r ON r.id = t.round_id WHERE t.student_id = ?",
            )
            .bind(student)
            .fetch_all(store.pool()),
        )
        .await
}

/// One decided command item of the student's.
#[derive(Debug, sqlx::FromRow)]
pub struct Outcome {
    pub command_id: Vec<u8>,
    pub action: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub issued_at: NaiveDateTime,
    pub decided_at: NaiveDateTime,
    pub decided_by: String,
    pub code: Option<String>,
    pub number: Option<u16>,
}

/// The student's first 500 decided items, in the order they were decided.
pub async fn outcomes(store: &MySqlStore, student: u32) -> Result<Vec<Outcome>, StoreError> {
    store
        .timed(
            sqlx::query_as(
                "SELECT o.command_id, o.item, o.action, o.outcome, o.reason, o.issued_at, o.decided_at, \
                        o.decided_by, c.code, s.number FROM command_outcomes o \
                 LEFT JOIN sections s ON s.id = o.section_id LEFT JOIN courses c ON c.id = s.course_id \
                 WHERE o.student_id = ? ORDER BY o.decided_at, o.item LIMIT 500",
            )
            .bind(student)
            .fetch_all(store.pool()),
        )
        .await
}
