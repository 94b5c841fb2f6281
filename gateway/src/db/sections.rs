//! Sections as the registrar edits them: a course's sections with their
//! meeting times, create, update, close and reopen (each with its audit
//! row, in one transaction).

use super::{audit, MySqlStore, StoreError};
use crate::catalog::format_meetings;
use enrollment::rules::Meeting;
use sqlx::MySqlConnection;

/// One section of a course, its meetings written as the form takes them.
#[derive(Debug, sqlx::FromRow)]
pub struct Listed {
    pub id: u32,
    pub number: u16,
    pub capacity: u32,
    pub enrolled: u32,
    pub instructor: String,
    pub room: String,
    pub closed: bool,
    #[sqlx(skip)]
    pub meetings: String,
}

/// A course's sections, by number, each with its meetings.
pub async fn of_course(store: &MySqlStore, course: u32) -> Result<Vec<Listed>, StoreError> {
    let mut rows: Vec<Listed> = store
        .timed(
            sqlx::query_as(
                "SELECT id, number, capacity, enrolled, instructor, room, closed FROM sections \
                 WHERE course_id = ? ORDER BY number",
            )
            .bind(course)
            .fetch_all(store.pool()),
        )
        .await?;
    for row in &mut rows {
        row.meetings = format_meetings(&meetings(store, row.id).await?);
    }
    Ok(rows)
}

/// A section's weekly meetings, by day and time.
pub async fn meetings(store: &MySqlStore, section: u32) -> Result<Vec<Meeting>, StoreError> {
    let rows: Vec<(u8, u16, u16)> = store
        .timed(
            sqlx::query_as(
                "SELECT weekday, start_min, end_min FROM section_meetings WHERE section_id = ? \
                 ORDER BY weekday, start_min",
            )
            .bind(section)
            .fetch_all(store.pool()),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|(weekday, start_min, end_min)| Meeting {
            weekday,
            start_min,
            end_min,
        })
        .collect())
}

/// The course a section belongs to.
pub async fn course_of(store: &MySqlStore, section: u32) -> Result<Option<u32>, StoreError> {
    store
        .timed(
            sqlx::query_scalar("SELECT course_id FROM sections WHERE id = ?")
                .bind(section)
                .fetch_optional(store.pool()),
        )
        .await
}

/// A section's editable fields, validated.
#[derive(Debug, Clone)]
pub struct Fields {
    pub number: u16,
    pub capacity: u32,
    pub instructor: String,
    pub room: String,
    pub meetings: Vec<Meeting>,
}

/// Adds a section to `course`. A number the course already has is a unique
/// violation, a course that does not exist a foreign key one.
pub async fn create(
    store: &MySqlStore,
    course: u32,
    s: &Fields,
    actor: &str,
) -> Result<(), StoreError> {
    let work = async {
        let mut tx = store.pool().begin().await?;
        let r = sqlx::query(
            "INSERT INTO sections (course_id, number, capacity, instructor, room) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(course)
        .bind(s.number)
        .bind(s.capacity)
        .bind(&s.instructor)
        .bind(&s.room)
        .execute(&mut *tx)
        .await?;
        let id = u32::try_from(r.last_insert_id()).unwrap_or(0);
        replace_meetings(&mut tx, id, &s.meetings).await?;
        audit::record(
            &mut tx,
            actor,
            "create_section",
            &format!("section:{id}"),
            serde_json::json!({ "course": course, "number": s.number, "capacity": s.capacity,
                                "meetings": format_meetings(&s.meetings) }),
        )
        .await?;
        tx.commit().await?;
        Ok::<(), StoreError>(())
    };
    store.timed(work).await
}

/// Closes a section to new enrollments, or reopens it.
pub async fn set_closed(
    store: &MySqlStore,
    section: u32,
    closed: bool,
    actor: &str,
) -> Result<(), StoreError> {
    let work = async {
        let mut tx = store.pool().begin().await?;
        sqlx::query("UPDATE sections SET closed = ? WHERE id = ?")
            .bind(closed)
            .bind(section)
            .execute(&mut *tx)
            .await?;
        let action = if closed {
            "close_section"
        } else {
            "reopen_section"
        };
        audit::record(
            &mut tx,
            actor,
            action,
            &format!("section:{section}"),
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok::<(), StoreError>(())
    };
    store.timed(work).await
}

/// Saves a section's capacity, instructor, room and meetings (its number
/// stays). A capacity below the students already enrolled changes nothing
/// and returns `Some(enrolled)`.
pub async fn update(
    store: &MySqlStore,
    section: u32,
    s: &Fields,
    actor: &str,
) -> Result<Option<u32>, StoreError> {
    let work = async {
        let mut tx = store.pool().begin().await?;
        // The row lock makes the capacity check and the update one step
        // against the worker's seat changes.
        let enrolled: u32 =
            sqlx::query_scalar("SELECT enrolled FROM sections WHERE id = ? FOR UPDATE")
                .bind(section)
                .fetch_one(&mut *tx)
                .await?;
        if enrolled > s.capacity {
            return Ok(Some(enrolled));
        }
        sqlx::query("UPDATE sections SET capacity = ?, instructor = ?, room = ? WHERE id = ?")
            .bind(s.capacity)
            .bind(&s.instructor)
            .bind(&s.room)
            .bind(section)
            .execute(&mut *tx)
            .await?;
        replace_meetings(&mut tx, section, &s.meetings).await?;
        audit::record(
            &mut tx,
            actor,
            "update_section",
            &format!("section:{section}"),
            serde_json::json!({ "capacity": s.capacity, "meetings": format_meetings(&s.meetings) }),
        )
        .await?;
        tx.commit().await?;
        Ok::<Option<u32>, StoreError>(None)
    };
    store.timed(work).await
}

async fn replace_meetings(
    conn: &mut MySqlConnection,
    section: u32,
    ms: &[Meeting],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM section_meetings WHERE section_id = ?")
        .bind(section)
        .execute(&mut *conn)
        .await?;
    for m in ms {
        sqlx::query(
            "INSERT INTO section_meetings (section_id, weekday, start_min, end_min) VALUES (?, ?, ?, ?)",
        )
        .bind(section)
        .bind(m.weekday)
        .bind(m.start_min)
        .bind(m.end_min)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
