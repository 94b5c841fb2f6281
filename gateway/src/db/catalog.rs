//! The course catalog as the pages' in-memory cache reads it: sections
//! with their courses, meetings, prerequisites, departments, and every
//! section's seats.

use super::{MySqlStore, StoreError};
use enrollment::rules::Meeting;
use sqlx::Row;
use std::collections::HashMap;

/// A department for the search filter.
#[derive(Debug, Clone)]
pub struct Department {
    pub code: String,
    pub name_ko: String,
    pub name_en: String,
}

/// Seats of one section, as of the last seat refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seats {
    pub capacity: u32,
    pub enrolled: u32,
    pub closed: bool,
}

impl Seats {
    pub fn left(&self) -> u32 {
        self.capacity.saturating_sub(self.enrolled)
    }
}

/// One section with its course, as stored.
#[derive(Debug, Clone)]
pub struct SectionRow {
    pub id: u32,
    pub course_id: u32,
    pub code: String,
    pub title_ko: String,
    pub title_en: String,
    pub credits: u8,
    pub department: String,
    pub number: u16,
    pub instructor: String,
    pub room: String,
}

/// The whole catalog, as stored.
#[derive(Debug, Default)]
pub struct CatalogRows {
    /// Sorted by course code, then section number.
    pub sections: Vec<SectionRow>,
    /// By section id, each section's in weekday and start order.
    pub meetings: HashMap<u32, Vec<Meeting>>,
    /// By course id, the codes of the courses it requires.
    pub prerequisites: HashMap<u32, Vec<String>>,
    /// Sorted by code.
    pub departments: Vec<Department>,
}

/// Every section's seats, by section id.
pub async fn seats(store: &MySqlStore) -> Result<HashMap<u32, Seats>, StoreError> {
    let rows = store
        .timed(
            sqlx::query("SELECT id, capacity, enrolled, closed FROM sections")
                .fetch_all(store.pool()),
        )
        .await?;
    let mut seats = HashMap::with_capacity(rows.len());
    for r in rows {
        seats.insert(
            r.try_get::<u32, _>("id")?,
            Seats {
                capacity: r.try_get("capacity")?,
                enrolled: r.try_get("enrolled")?,
                closed: r.try_get("closed")?,
            },
        );
    }
    Ok(seats)
}

/// How many students wait on each section's waitlist.
pub async fn waitlists(store: &MySqlStore) -> Result<HashMap<u32, u32>, StoreError> {
    let rows: Vec<(u32, i64)> = store
        .timed(
            sqlx::query_as(
                "SELECT section_id, COUNT(*) FROM waitlist_entries \
                 WHERE state = 'waiting' GROUP BY section_id",
            )
            .fetch_all(store.pool()),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|(s, n)| (s, u32::try_from(n).unwrap_or(u32::MAX)))
        .collect())
}

/// The whole catalog.
pub async fn load(store: &MySqlStore) -> Result<CatalogRows, StoreError> {
    let pool = store.pool();
    let rows = store
        .timed(
            sqlx::query(
                "SELECT s.id, s.course_id, s.number, s.instructor, s.room, \
                        c.code, c.title_ko, c.title_en, c.credits, d.code AS dept \
                 FROM sections s JOIN courses c ON c.id = s.course_id \
                 JOIN departments d ON d.id = c.department_id \
                 ORDER BY c.code, s.number",
            )
            .fetch_all(pool),
        )
        .await?;
    let meeting_rows = store
        .timed(
            sqlx::query(
                "SELECT section_id, weekday, start_min, end_min FROM section_meetings \
                 ORDER BY section_id, weekday, start_min",
            )
            .fetch_all(pool),
        )
        .await?;
    let prereq_rows = store
        .timed(
            sqlx::query("SELECT course_id, required_code FROM course_prerequisites")
                .fetch_all(pool),
        )
        .await?;
    let dept_rows = store
        .timed(
            sqlx::query("SELECT code, name_ko, name_en FROM departments ORDER BY code")
                .fetch_all(pool),
        )
        .await?;

    let mut out = CatalogRows::default();
    for r in meeting_rows {
        out.meetings
            .entry(r.try_get("section_id")?)
            .or_default()
            .push(Meeting {
                weekday: r.try_get("weekday")?,
                start_min: r.try_get("start_min")?,
                end_min: r.try_get("end_min")?,
            });
    }
    for r in prereq_rows {
        out.prerequisites
            .entry(r.try_get("course_id")?)
            .or_default()
            .push(r.try_get("required_code")?);
    }
    for r in dept_rows {
        out.departments.push(Department {
            code: r.try_get("code")?,
            name_ko: r.try_get("name_ko")?,
            name_en: r.try_get("name_en")?,
        });
    }
    for r in rows {
        out.sections.push(SectionRow {
            id: r.try_get("id")?,
            course_id: r.try_get("course_id")?,
            code: r.try_get("code")?,
            title_ko: r.try_get("title_ko")?,
            title_en: r.try_get("title_en")?,
            credits: r.try_get("credits")?,
            department: r.try_get("dept")?,
            number: r.try_get("number")?,
            instructor: r.try_get("instructor")?,
            room: r.try_get("room")?,
        });
    }
    Ok(out)
}
