//! The rows of the registrar's CSV downloads, streamed as MySQL returns
//! them so a whole term's export never sits in memory.

use super::{MySqlStore, StoreError};
use chrono::NaiveDateTime;
use futures_util::stream::{BoxStream, StreamExt};

/// One enrollment: student number and name, course code, section number,
/// when.
pub type Enrollment = (String, String, String, u16, NaiveDateTime);

/// Every enrollment, by course, section and student.
pub fn enrollments(store: &MySqlStore) -> BoxStream<'_, Result<Enrollment, StoreError>> {
    sqlx::query_as(
        "SELECT st.number, st.name, c.code, s.number, e.enrolled_at FROM enrollments e \
         JOIN students st ON st.id = e.student_id JOIN sections s ON s.id = e.section_id \
         JOIN courses c ON c.id = e.course_id ORDER BY c.code, s.number, st.number",
    )
    .fetch(store.pool())
    .map(|r| r.map_err(StoreError::from))
    .boxed()
}

/// One decided command item.
#[derive(Debug, sqlx::FromRow)]
pub struct Outcome {
    pub command_id: Vec<u8>,
    pub item: u16,
    pub student_number: String,
    pub course_code: Option<String>,
    pub section: Option<u16>,
    pub action: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub issued_at: NaiveDateTime,
    pub decided_at: NaiveDateTime,
    pub decided_by: String,
}

/// Every decided command item of a round, in the order decided.
pub fn outcomes(store: &MySqlStore, round: u32) -> BoxStream<'_, Result<Outcome, StoreError>> {
    sqlx::query_as(
        "SELECT o.command_id, o.item, st.number AS student_number, c.code AS course_code, \
                s.number AS section, o.action, o.outcome, o.reason, o.issued_at, o.decided_at, \
                o.decided_by \
         FROM command_outcomes o JOIN students st ON st.id = o.student_id \
         LEFT JOIN sections s ON s.id = o.section_id LEFT JOIN courses c ON c.id = s.course_id \
         WHERE o.round_id = ? ORDER BY o.decided_at, o.command_id, o.item",
    )
    .bind(round)
    .fetch(store.pool())
    .map(|r| r.map_err(StoreError::from))
    .boxed()
}
