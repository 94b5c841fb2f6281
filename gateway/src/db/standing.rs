//! A student's standing, as their own pages need it: who they are (number,
//! name, credit maximum), the courses they completed and the sections they
//! hold. The cart is its own entity ([`super::cart`]).

use super::{MySqlStore, StoreError};
use enrollment::StudentId;

/// The signed-in student's row and what the enrollment rules check
/// against.
#[derive(Debug, Clone, Default)]
pub struct Standing {
    pub number: String,
    pub name: String,
    pub max_credits: u8,
    /// Course codes, for prerequisites.
    pub completed: Vec<String>,
    /// Held sections, oldest enrollment first.
    pub enrolled: Vec<u32>,
}

/// The student's standing, or `None` when the account is gone (deleted or
/// re-imported since the session was issued). The three reads run at once.
pub async fn of(store: &MySqlStore, student: StudentId) -> Result<Option<Standing>, StoreError> {
    let pool = store.pool();
    let (row, completed, enrolled) = tokio::try_join!(
        store.timed(
            sqlx::query_as::<_, (String, String, u8)>(
                "SELECT number, name, max_credits FROM students WHERE id = ?"
            )
            .bind(student.0)
            .fetch_optional(pool)
        ),
        store.timed(
            sqlx::query_scalar::<_, String>(
                "SELECT course_code FROM student_completed_courses WHERE student_id = ?"
            )
            .bind(student.0)
            .fetch_all(pool)
        ),
        store.timed(
            sqlx::query_scalar::<_, u32>(
                "SELECT section_id FROM enrollments WHERE student_id = ? ORDER BY enrolled_at"
            )
            .bind(student.0)
            .fetch_all(pool)
        ),
    )?;
    Ok(row.map(|(number, name, max_credits)| Standing {
        number,
        name,
        max_credits,
        completed,
        enrolled,
    }))
}
