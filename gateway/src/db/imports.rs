//! The writes of a CSV import, all or nothing: one transaction per file,
//! its audit row included. The file was validated before anything here
//! runs (see [`crate::csv_import`]); the only check left is the one that
//! needs the rows locked (a capacity below the seats already taken).
//!
//! The writes are not bounded by the store's per-call timeout: a file of
//! tens of thousands of rows takes longer, and the caller gives the whole
//! import its own ([`crate::csv_import::IMPORT_TIMEOUT`]).

use super::{audit, MySqlStore, StoreError};
use enrollment::rules::Meeting;
use sqlx::{MySql, MySqlConnection, QueryBuilder, Row};
use std::collections::{BTreeMap, HashMap};

/// Rows per multi-row insert.
const CHUNK: usize = 500;

/// Department ids by upper-cased code, to validate files against.
pub async fn departments(store: &MySqlStore) -> Result<HashMap<String, u32>, StoreError> {
    let rows = store
        .timed(sqlx::query("SELECT id, code FROM departments").fetch_all(store.pool()))
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok((
                r.try_get::<String, _>("code")?.to_ascii_uppercase(),
                r.try_get::<u32, _>("id")?,
            ))
        })
        .collect()
}

/// A course of a catalog file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Course {
    pub title_ko: String,
    pub title_en: String,
    pub department: u32,
    pub credits: u8,
    pub prerequisites: Vec<String>,
}

/// A section of a catalog file, with the file row it came from.
#[derive(Debug, Clone)]
pub struct Section {
    pub row: usize,
    pub course: String,
    pub number: u16,
    pub capacity: u32,
    pub instructor: String,
    pub room: String,
    pub meetings: Vec<Meeting>,
}

/// A row of a students file.
#[derive(Debug, Clone)]
pub struct Student {
    pub number: String,
    pub name: String,
    pub class_year: u8,
    pub department: Option<u32>,
    pub max_credits: u8,
    pub completed: Vec<String>,
}

/// What an import wrote, for its audit row.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub rows: usize,
    pub courses: usize,
    pub sections: usize,
    pub students: usize,
}

/// Writes a catalog into `term` (courses by code and sections by number are
/// updated or added, nothing is deleted). Sections whose new capacity is
/// below the students already enrolled are returned as `(file row,
/// enrolled)`, and then nothing is written.
pub async fn write_catalog(
    store: &MySqlStore,
    term: u32,
    courses: &BTreeMap<String, Course>,
    sections: &[Section],
    counts: Counts,
    actor: &str,
) -> Result<Vec<(usize, u32)>, StoreError> {
    let mut tx = store.pool().begin().await?;
    let mut course_ids: HashMap<&str, u32> = HashMap::new();
    for (code, c) in courses {
        sqlx::query(
            "INSERT INTO courses (term_id, department_id, code, title_ko, title_en, credits) \
             VALUES (?, ?, ?, ?, ?, ?) \
             ON DUPLICATE KEY UPDATE department_id = VALUES(department_id), \
               title_ko = VALUES(title_ko), title_en = VALUES(title_en), credits = VALUES(credits)",
        )
        .bind(term)
        .bind(c.department)
        .bind(code)
        .bind(&c.title_ko)
        .bind(&c.title_en)
        .bind(c.credits)
        .execute(&mut *tx)
        .await?;
        let id: u32 = sqlx::query_scalar("SELECT id FROM courses WHERE term_id = ? AND code = ?")
            .bind(term)
            .bind(code)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM course_prerequisites WHERE course_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if !c.prerequisites.is_empty() {
            let mut q = QueryBuilder::<MySql>::new(
                "INSERT INTO course_prerequisites (course_id, required_code) ",
            );
            q.push_values(&c.prerequisites, |mut b, p| {
                b.push_bind(id).push_bind(p);
            });
            q.build().execute(&mut *tx).await?;
        }
        course_ids.insert(code, id);
    }
    let mut too_small = Vec::new();
    for s in sections {
        let course_id = course_ids.get(s.course.as_str()).copied().unwrap_or(0);
        // Locks the existing row, if any, so the capacity check below
        // holds until commit.
        let existing: Option<(u32, u32)> = sqlx::query_as(
            "SELECT id, enrolled FROM sections WHERE course_id = ? AND number = ? FOR UPDATE",
        )
        .bind(course_id)
        .bind(s.number)
        .fetch_optional(&mut *tx)
        .await?;
        let id = match existing {
            Some((_, enrolled)) if enrolled > s.capacity => {
                too_small.push((s.row, enrolled));
                continue;
            }
            Some((id, _)) => {
                sqlx::query(
                    "UPDATE sections SET capacity = ?, instructor = ?, room = ? WHERE id = ?",
                )
                .bind(s.capacity)
                .bind(&s.instructor)
                .bind(&s.room)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                id
            }
            None => {
                let r = sqlx::query(
                    "INSERT INTO sections (course_id, number, capacity, instructor, room) \
                     VALUES (?, ?, ?, ?, ?)",
                )
                .bind(course_id)
                .bind(s.number)
                .bind(s.capacity)
                .bind(&s.instructor)
                .bind(&s.room)
                .execute(&mut *tx)
                .await?;
                u32::try_from(r.last_insert_id()).unwrap_or(0)
            }
        };
        sqlx::query("DELETE FROM section_meetings WHERE section_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if !s.meetings.is_empty() {
            let mut q = QueryBuilder::<MySql>::new(
                "INSERT INTO section_meetings (section_id, weekday, start_min, end_min) ",
            );
            q.push_values(&s.meetings, |mut b, m| {
                b.push_bind(id)
                    .push_bind(m.weekday)
                    .push_bind(m.start_min)
                    .push_bind(m.end_min);
            });
            q.build().execute(&mut *tx).await?;
        }
    }
    // Problems found under the locks: nothing is written.
    if !too_small.is_empty() {
        return Ok(too_small);
    }
    audited(&mut tx, actor, "catalog", counts).await?;
    tx.commit().await?;
    Ok(too_small)
}

/// Writes students (by number: updated or added, nothing deleted). Their
/// completed courses are replaced when the file lists some.
pub async fn write_students(
    store: &MySqlStore,
    students: &[Student],
    counts: Counts,
    actor: &str,
) -> Result<(), StoreError> {
    let mut tx = store.pool().begin().await?;
    for chunk in students.chunks(CHUNK) {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO students (number, name, class_year, department_id, max_credits) ",
        );
        q.push_values(chunk, |mut b, s| {
            b.push_bind(&s.number)
                .push_bind(&s.name)
                .push_bind(s.class_year)
                .push_bind(s.department)
                .push_bind(s.max_credits);
        });
        // The password hash is left as it is: re-importing never locks
        // anyone out, and never sets a password.
        q.push(
            " ON DUPLICATE KEY UPDATE name = VALUES(name), class_year = VALUES(class_year), \
             department_id = VALUES(department_id), max_credits = VALUES(max_credits)",
        );
        q.build().execute(&mut *tx).await?;
        let mut q = QueryBuilder::<MySql>::new("SELECT id, number FROM students WHERE number IN (");
        let mut sep = q.separated(", ");
        for s in chunk {
            sep.push_bind(&s.number);
        }
        q.push(")");
        let ids: HashMap<String, u32> = q
            .build()
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("number")?,
                    r.try_get::<u32, _>("id")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()?;
        let with_completed: Vec<&Student> =
            chunk.iter().filter(|s| !s.completed.is_empty()).collect();
        if with_completed.is_empty() {
            continue;
        }
        let mut q = QueryBuilder::<MySql>::new(
            "DELETE FROM student_completed_courses WHERE student_id IN (",
        );
        let mut sep = q.separated(", ");
        for s in &with_completed {
            sep.push_bind(ids.get(&s.number).copied().unwrap_or(0));
        }
        q.push(")");
        q.build().execute(&mut *tx).await?;
        let pairs: Vec<(u32, &String)> = with_completed
            .iter()
            .flat_map(|s| {
                let id = ids.get(&s.number).copied().unwrap_or(0);
                s.completed.iter().map(move |c| (id, c))
            })
            .collect();
        for part in pairs.chunks(CHUNK) {
            let mut q = QueryBuilder::<MySql>::new(
                "INSERT INTO student_completed_courses (student_id, course_code) ",
            );
            q.push_values(part, |mut b, (id, code)| {
                b.push_bind(*id).push_bind(*code);
            });
            q.build().execute(&mut *tx).await?;
        }
    }
    audited(&mut tx, actor, "students", counts).await?;
    tx.commit().await?;
    Ok(())
}

/// The import's audit row, in the import's own transaction.
async fn audited(
    conn: &mut MySqlConnection,
    actor: &str,
    kind: &str,
    c: Counts,
) -> Result<(), StoreError> {
    audit::record(
        conn,
        actor,
        "import",
        &format!("import:{kind}"),
        serde_json::json!({ "rows": c.rows, "courses": c.courses,
                            "sections": c.sections, "students": c.students }),
    )
    .await
}
