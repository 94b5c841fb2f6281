//! Waitlists as people read them: a student's places in line, and a
//! section's whole line for the registrar. Reads only; every change to a
//! waitlist is the worker's, under the section lock.

use super::{MySqlStore, StoreError};
use chrono::NaiveDateTime;
use enrollment::StudentId;

/// One line the student is waiting in.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Place {
    pub section_id: u32,
    pub course_code: String,
    pub section_number: u16,
    /// 1 for the head of the line.
    pub position: i64,
    /// Everyone waiting in this line, the student included.
    pub waiting: i64,
    pub since: NaiveDateTime,
}

/// The student's places in every line they wait in, oldest entry first.
/// Reads the student's own rows, then counts along each section's
/// `(section_id, state, id)` index: cheap at any line length.
pub async fn places(store: &MySqlStore, student: StudentId) -> Result<Vec<Place>, StoreError> {
    store
        .timed(
            sqlx::query_as(
                "SELECT w.section_id, c.code AS course_code, s.number AS section_number, \
                   (SELECT COUNT(*) FROM waitlist_entries x WHERE x.section_id = w.section_id \
                      AND x.state = 'waiting' AND x.id <= w.id) AS position, \
                   (SELECT COUNT(*) FROM waitlist_entries x WHERE x.section_id = w.section_id \
                      AND x.state = 'waiting') AS waiting, \
                   w.created_at AS since \
                 FROM waitlist_entries w \
                 JOIN sections s ON s.id = w.section_id JOIN courses c ON c.id = s.course_id \
                 WHERE w.student_id = ? AND w.state = 'waiting' ORDER BY w.id",
            )
            .bind(student.0)
            .fetch_all(store.pool()),
        )
        .await
}

/// One entry of a section's line, as the registrar sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Entry {
    pub student_number: String,
    pub name: String,
    pub state: String,
    pub since: NaiveDateTime,
    pub resolved_at: Option<NaiveDateTime>,
}

/// Most entries of one line a page shows.
pub const LINE_LIMIT: u32 = 500;

/// A section's line: those waiting first, in line order, then those
/// resolved (promoted, passed over, left), most recent first; at most
/// [`LINE_LIMIT`].
pub async fn line(store: &MySqlStore, section: u32) -> Result<Vec<Entry>, StoreError> {
    store
        .timed(
            sqlx::query_as(
                "SELECT st.number AS student_number, st.name, w.state, w.created_at AS since, \
                        w.resolved_at \
                 FROM waitlist_entries w JOIN students st ON st.id = w.student_id \
                 WHERE w.section_id = ? \
                 ORDER BY w.state <> 'waiting', \
                   CASE WHEN w.state = 'waiting' THEN w.id END, w.resolved_at DESC \
                 LIMIT ?",
            )
            .bind(section)
            .bind(LINE_LIMIT)
            .fetch_all(store.pool()),
        )
        .await
}

/// Entries per state for each section of a course: (section, state, n).
pub async fn counts_of_course(
    store: &MySqlStore,
    course: u32,
) -> Result<Vec<(u32, String, i64)>, StoreError> {
    store
        .timed(
            sqlx::query_as(
                "SELECT w.section_id, w.state, COUNT(*) FROM waitlist_entries w \
                 JOIN sections s ON s.id = w.section_id WHERE s.course_id = ? \
                 GROUP BY w.section_id, w.state",
            )
            .bind(course)
            .fetch_all(store.pool()),
        )
        .await
}
