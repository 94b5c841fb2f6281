//! Courses as the registrar edits them: search, one course, create and
//! update (each with its prerequisites and audit row, in one transaction).

use super::{audit, MySqlStore, StoreError};
use sqlx::MySqlConnection;

/// One line of the course search.
#[derive(Debug, sqlx::FromRow)]
pub struct Listed {
    pub id: u32,
    pub code: String,
    pub title_ko: String,
    pub title_en: String,
    pub dept: String,
    pub credits: u8,
    /// How many sections it has.
    pub n: i64,
}

/// Courses whose code or title matches the `LIKE` pattern, by code.
pub async fn search(
    store: &MySqlStore,
    like: &str,
    limit: u32,
    offset: u32,
) -> Result<Vec<Listed>, StoreError> {
    store
        .timed(
            sqlx::query_as(
                "SELECT c.id, c.code, c.title_ko, c.title_en, d.code AS dept, c.credits, \
                        (SELECT COUNT(*) FROM sections s WHERE s.course_id = c.id) AS n \
                 FROM courses c JOIN departments d ON d.id = c.department_id \
                 WHERE c.code LIKE ? OR c.title_ko LIKE ? OR c.title_en LIKE ? \
                 ORDER BY c.code LIMIT ? OFFSET ?",
            )
            .bind(like)
            .bind(like)
            .bind(like)
            .bind(limit)
            .bind(offset)
            .fetch_all(store.pool()),
        )
        .await
}

/// The id of the department with this code.
pub async fn department_id(store: &MySqlStore, code: &str) -> Result<Option<u32>, StoreError> {
    store
        .timed(
            sqlx::query_scalar("SELECT id FROM departments WHERE code = ?")
                .bind(code)
                .fetch_optional(store.pool()),
        )
        .await
}

/// One course as its page shows it.
#[derive(Debug, sqlx::FromRow)]
pub struct Course {
    pub code: String,
    pub title_ko: String,
    pub title_en: String,
    pub dept: String,
    pub credits: u8,
}

pub async fn get(store: &MySqlStore, id: u32) -> Result<Option<Course>, StoreError> {
    store
        .timed(
            sqlx::query_as(
                "SELECT c.code, c.title_ko, c.title_en, d.code AS dept, c.credits \
                 FROM courses c JOIN departments d ON d.id = c.department_id WHERE c.id = ?",
            )
            .bind(id)
            .fetch_optional(store.pool()),
        )
        .await
}

/// The codes a course requires, sorted.
pub async fn prerequisites(store: &MySqlStore, id: u32) -> Result<Vec<String>, StoreError> {
    store
        .timed(
            sqlx::query_scalar(
                "SELECT required_code FROM course_prerequisites WHERE course_id = ? \
                 ORDER BY required_code",
            )
            .bind(id)
            .fetch_all(store.pool()),
        )
        .await
}

/// A course's editable fields, validated.
#[derive(Debug, Clone)]
pub struct Fields {
    pub code: String,
    pub title_ko: String,
    pub title_en: String,
    pub department: u32,
    pub credits: u8,
    pub prerequisites: Vec<String>,
}

/// Creates a course in `term`; returns its id. A code the term already has
/// is a unique violation, a term that does not exist a foreign key one.
pub async fn create(
    store: &MySqlStore,
    term: u32,
    c: &Fields,
    actor: &str,
) -> Result<u32, StoreError> {
    let work = async {
        let mut tx = store.pool().begin().await?;
        let r = sqlx::query(
            "INSERT INTO courses (term_id, department_id, code, title_ko, title_en, credits) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(term)
        .bind(c.department)
        .bind(&c.code)
        .bind(&c.title_ko)
        .bind(&c.title_en)
        .bind(c.credits)
        .execute(&mut *tx)
        .await?;
        let id = u32::try_from(r.last_insert_id()).unwrap_or(0);
        replace_prerequisites(&mut tx, id, &c.prerequisites).await?;
        audit::record(
            &mut tx,
            actor,
            "create_course",
            &format!("course:{id}"),
            serde_json::json!({ "code": c.code }),
        )
        .await?;
        tx.commit().await?;
        Ok::<u32, StoreError>(id)
    };
    store.timed(work).await
}

/// Updates a course's titles, department, credits and prerequisites (its
/// code stays).
pub async fn update(
    store: &MySqlStore,
    id: u32,
    c: &Fields,
    actor: &str,
) -> Result<(), StoreError> {
    let work = async {
        let mut tx = store.pool().begin().await?;
        sqlx::query(
            "UPDATE courses SET title_ko = ?, title_en = ?, department_id = ?, credits = ? WHERE id = ?",
        )
        .bind(&c.title_ko)
        .bind(&c.title_en)
        .bind(c.department)
        .bind(c.credits)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        replace_prerequisites(&mut tx, id, &c.prerequisites).await?;
        audit::record(
            &mut tx,
            actor,
            "update_course",
            &format!("course:{id}"),
            serde_json::json!({ "title_ko": c.title_ko, "title_en": c.title_en,
                                "credits": c.credits, "prerequisites": c.prerequisites }),
        )
        .await?;
        tx.commit().await?;
        Ok::<(), StoreError>(())
    };
    store.timed(work).await
}

async fn replace_prerequisites(
    conn: &mut MySqlConnection,
    course: u32,
    codes: &[String],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM course_prerequisites WHERE course_id = ?")
        .bind(course)
        .execute(&mut *conn)
        .await?;
    for code in codes {
        sqlx::query("INSERT INTO course_prerequisites (course_id, required_code) VALUES (?, ?)")
            .bind(course)
            .bind(code)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
