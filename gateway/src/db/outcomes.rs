//! Command outcomes: what the worker decided for each item of a student's
//! enroll or drop command, read back by the results page and
//! `GET /api/commands/{id}`.

use super::{MySqlStore, StoreError};
use chrono::NaiveDateTime;
use enrollment::{CommandId, StudentId};

/// One decided item of a command, as the API reports it.
#[derive(Debug, Clone)]
pub struct CommandItem {
    pub section_id: Option<u32>,
    pub action: String,
    pub outcome: String,
    /// A reason code when the item was refused.
    pub reason: Option<String>,
    /// 0 for the item's first choice, k when `section_id` is its k-th
    /// alternate.
    pub choice: u8,
}

/// (section, action, outcome, reason, choice) as stored.
type ItemRow = (Option<u32>, String, String, Option<String>, u8);

/// The items of `command`, if it is `student`'s and decided (empty while
/// it is still queued, or when it is someone else's).
pub async fn of_command(
    store: &MySqlStore,
    command: CommandId,
    student: StudentId,
) -> Result<Vec<CommandItem>, StoreError> {
    let rows: Vec<ItemRow> = store
        .timed(
            sqlx::query_as(
                "SELECT section_id, action, outcome, reason, choice FROM command_outcomes \
                 WHERE command_id = ? AND student_id = ? ORDER BY item",
            )
            .bind(command.0)
            .bind(student.0)
            .fetch_all(store.pool()),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(section_id, action, outcome, reason, choice)| CommandItem {
                section_id,
                action,
                outcome,
                reason,
                choice,
            },
        )
        .collect())
}

/// One decided item on the student's results page, with its section named.
#[derive(Debug, Clone)]
pub struct StudentResult {
    /// `None` if the stored id is not a UUID (it always is in practice).
    pub command_id: Option<uuid::Uuid>,
    pub action: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub decided_at: NaiveDateTime,
    pub section_id: Option<u32>,
    /// The course code and section number, while the section exists.
    pub course_code: Option<String>,
    pub section_number: Option<u16>,
    /// 0 for the first choice, k for the item's k-th alternate.
    pub choice: u8,
}

type ResultRow = (
    Vec<u8>,
    String,
    String,
    Option<String>,
    NaiveDateTime,
    Option<u32>,
    Option<String>,
    Option<u16>,
    u8,
);

/// The student's 200 most recently decided items, newest first.
pub async fn of_student(
    store: &MySqlStore,
    student: StudentId,
) -> Result<Vec<StudentResult>, StoreError> {
    let rows: Vec<ResultRow> = store
        .timed(
            sqlx::query_as(
                "SELECT o.command_id, o.action, o.outcome, o.reason, o.decided_at, \
                        o.section_id, c.code, s.number, o.choice \
                 FROM command_outcomes o \
                 LEFT JOIN sections s ON s.id = o.section_id \
                 LEFT JOIN courses c ON c.id = s.course_id \
                 WHERE o.student_id = ? ORDER BY o.decided_at DESC, o.item LIMIT 200",
            )
            .bind(student.0)
            .fetch_all(store.pool()),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                action,
                outcome,
                reason,
                decided_at,
                section_id,
                course_code,
                section_number,
                choice,
            )| {
                StudentResult {
                    command_id: uuid::Uuid::from_slice(&id).ok(),
                    action,
                    outcome,
                    reason,
                    decided_at,
                    section_id,
                    course_code,
                    section_number,
                    choice,
                }
            },
        )
        .collect())
}
