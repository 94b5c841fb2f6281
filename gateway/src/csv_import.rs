//! CSV import of the catalog and of students: parsing and validation.
//!
//! A file is first parsed and validated completely, every problem reported
//! with its row (1 is the header), column and what is wrong. Only a file
//! without problems is written ([`crate::db::imports`]), and then in one
//! transaction: a failure in the middle (a constraint, a lost connection)
//! rolls everything back, so a catalog is never half-imported. Rows update
//! what exists (courses by term and code, sections by course and number,
//! students by number) and add what does not; nothing is deleted.
//!
//! Imported students get no password: a password in a spreadsheet is a
//! password leaked, and hashing tens of thousands with argon2 would hold
//! the gateway's cores for minutes. They cannot sign in until one is set
//! (see docs/decisions/032-csv-import.md).

use crate::catalog::parse_meetings;
use crate::db::imports::{Counts, Course, Section, Student};
use crate::db::StoreError;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The whole import must finish within this.
pub const IMPORT_TIMEOUT: Duration = Duration::from_secs(120);

/// Most problems listed; beyond, the report says how many more.
const MAX_PROBLEMS: usize = 200;

/// One thing wrong with one cell (or row) of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub row: usize,
    pub column: String,
    pub problem: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub rows: usize,
    pub courses: usize,
    pub sections: usize,
    pub students: usize,
}

/// Why nothing was imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file has {} problem(s)", .0.len())]
    Invalid(Vec<Problem>, usize),
    #[error("database: {0}")]
    Db(#[from] StoreError),
    #[error("the import took longer than {0:?} and was rolled back")]
    Timeout(Duration),
}

/// Collects problems, keeping the first [`MAX_PROBLEMS`].
#[derive(Debug, Default)]
struct Problems {
    list: Vec<Problem>,
    more: usize,
}

impl Problems {
    fn add(&mut self, row: usize, column: &str, problem: impl Into<String>) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(Problem {
                row,
                column: column.to_string(),
                problem: problem.into(),
            });
        } else {
            self.more += 1;
        }
    }

    fn into_result(self) -> Result<(), ImportError> {
        if self.list.is_empty() {
            Ok(())
        } else {
            Err(ImportError::Invalid(self.list, self.more))
        }
    }
}

/// A parsed file: header names and rows of cells, with their row numbers.
struct Table {
    columns: Vec<String>,
    rows: Vec<(usize, Vec<String>)>,
}

impl Table {
    fn cell<'a>(&self, row: &'a [String], column: &str) -> &'a str {
        self.columns
            .iter()
            .position(|c| c == column)
            .and_then(|i| row.get(i))
            .map_or("", |s| s.trim())
    }
}

fn read_table(
    bytes: &[u8],
    required: &[&str],
    optional: &[&str],
    problems: &mut Problems,
) -> Option<Table> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        problems.add(1, "", "the file is empty");
        return None;
    }
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let columns: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|c| c.trim().to_ascii_lowercase()).collect(),
        Err(e) => {
            problems.add(1, "", format!("the header row cannot be read: {e}"));
            return None;
        }
    };
    for c in required {
        if !columns.iter().any(|h| h == c) {
            problems.add(1, c, "required column is missing");
        }
    }
    for c in &columns {
        if !required.contains(&c.as_str()) && !optional.contains(&c.as_str()) {
            problems.add(
                1,
                c,
                format!(
                    "unknown column (expected: {})",
                    required
                        .iter()
                        .chain(optional)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 2;
        match record {
            Ok(r) => {
                if r.iter().all(|c| c.trim().is_empty()) {
                    continue;
                }
                if r.len() > columns.len() {
                    problems.add(
                        row,
                        "",
                        format!("{} cells, but the header has {}", r.len(), columns.len()),
                    );
                }
                rows.push((row, r.iter().map(str::to_string).collect()));
            }
            Err(e) => problems.add(row, "", format!("cannot be read: {e}")),
        }
    }
    if rows.is_empty() {
        problems.add(1, "", "the file has a header but no rows");
    }
    Some(Table { columns, rows })
}

fn code_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 16 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn text(
    problems: &mut Problems,
    row: usize,
    column: &str,
    value: &str,
    max: usize,
    required: bool,
) -> String {
    if required && value.is_empty() {
        problems.add(row, column, "must not be empty");
    } else if value.chars().count() > max {
        problems.add(row, column, format!("longer than {max} characters"));
    }
    value.to_string()
}

fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    problems: &mut Problems,
    row: usize,
    column: &str,
    value: &str,
    min: T,
    max: T,
) -> Option<T> {
    match value.parse::<T>() {
        Ok(v) if v >= min && v <= max => Some(v),
        _ => {
            problems.add(
                row,
                column,
                format!("must be a whole number from {min} to {max}"),
            );
            None
        }
    }
}

fn codes(problems: &mut Problems, row: usize, column: &str, value: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in value
        .split([' ', ';', '|'])
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        if code_ok(c) {
            if !out.iter().any(|o| o == c) {
                out.push(c.to_string());
            }
        } else {
            problems.add(row, column, format!("{c:?} is not a course code"));
        }
    }
    out
}

/// Columns of a catalog file: one row per section.
pub const CATALOG_COLUMNS: [&str; 8] = [
    "course_code",
    "title_ko",
    "title_en",
    "department",
    "credits",
    "section",
    "capacity",
    "meetings",
];
pub const CATALOG_OPTIONAL: [&str; 3] = ["prerequisites", "instructor", "room"];

/// A course as its rows describe it (every row of a course must agree).
#[derive(Debug, Clone, PartialEq, Eq)]
struct CourseRow {
    title_ko: String,
    title_en: String,
    department: String,
    credits: u8,
    prerequisites: Vec<String>,
}

impl Summary {
    /// The counts an import's audit row records.
    pub fn counts(&self) -> Counts {
        Counts {
            rows: self.rows,
            courses: self.courses,
            sections: self.sections,
            students: self.students,
        }
    }
}

/// The problem report for sections whose new capacity is below the
/// students already enrolled (`(row, enrolled)`), found while writing.
pub fn too_small(sections: &[(usize, u32)]) -> ImportError {
    let mut p = Problems::default();
    for (row, enrolled) in sections {
        p.add(
            *row,
            "capacity",
            format!("{enrolled} students are already enrolled, more than the new capacity"),
        );
    }
    ImportError::Invalid(p.list, p.more)
}

/// A valid catalog file: courses by code, sections, and the file's rows.
pub type CatalogRows = (BTreeMap<String, Course>, Vec<Section>, usize);

/// Validates a catalog file against the departments (ids by upper-cased
/// code).
pub fn validate_catalog(
    bytes: &[u8],
    departments: &HashMap<String, u32>,
) -> Result<CatalogRows, ImportError> {
    let mut p = Problems::default();
    let Some(table) = read_table(bytes, &CATALOG_COLUMNS, &CATALOG_OPTIONAL, &mut p) else {
        p.into_result()?;
        return Ok((BTreeMap::new(), Vec::new(), 0));
    };
    let mut courses: BTreeMap<String, (usize, CourseRow)> = BTreeMap::new();
    let mut sections: Vec<Section> = Vec::new();
    let mut seen: HashMap<(String, u16), usize> = HashMap::new();
    for (row, cells) in &table.rows {
        let row = *row;
        let cell = |c: &str| table.cell(cells, c);
        let code = cell("course_code").to_string();
        if !code_ok(&code) {
            p.add(row, "course_code", "must be 1-16 letters, digits or '-'");
        }
        let department = cell("department").to_string();
        if !departments.contains_key(&department.to_ascii_uppercase()) {
            p.add(
                row,
                "department",
                format!("no department with code {department:?}"),
            );
        }
        let course = CourseRow {
            title_ko: text(&mut p, row, "title_ko", cell("title_ko"), 200, true),
            title_en: text(&mut p, row, "title_en", cell("title_en"), 200, true),
            credits: number(&mut p, row, "credits", cell("credits"), 0u8, 12u8).unwrap_or(0),
            prerequisites: codes(&mut p, row, "prerequisites", cell("prerequisites")),
            department,
        };
        if course.prerequisites.contains(&code) {
            p.add(row, "prerequisites", "a course cannot require itself");
        }
        match courses.get(&code) {
            Some((first, c)) if *c != course => p.add(
                row,
                "course_code",
                format!("{code} is described differently on row {first}; every row of a course must agree on titles, department, credits and prerequisites"),
            ),
            Some(_) => {}
            None => {
                courses.insert(code.clone(), (row, course));
            }
        }
        let number = number(&mut p, row, "section", cell("section"), 1u16, 999u16);
        let capacity = number_u32(&mut p, row, cell("capacity"));
        let meetings = match parse_meetings(cell("meetings")) {
            Ok(m) => m,
            Err(e) => {
                p.add(row, "meetings", e);
                Vec::new()
            }
        };
        if let Some(n) = number {
            if let Some(first) = seen.insert((code.clone(), n), row) {
                p.add(
                    row,
                    "section",
                    format!("section {n} of {code} is also on row {first}"),
                );
            }
        }
        sections.push(Section {
            row,
            course: code,
            number: number.unwrap_or(0),
            capacity: capacity.unwrap_or(0),
            instructor: text(&mut p, row, "instructor", cell("instructor"), 100, false),
            room: text(&mut p, row, "room", cell("room"), 50, false),
            meetings,
        });
    }
    p.into_result()?;
    let rows = table.rows.len();
    let courses = courses
        .into_iter()
        .map(|(code, (_, c))| {
            let department = departments
                .get(&c.department.to_ascii_uppercase())
                .copied()
                .unwrap_or(0);
            let course = Course {
                title_ko: c.title_ko,
                title_en: c.title_en,
                department,
                credits: c.credits,
                prerequisites: c.prerequisites,
            };
            (code, course)
        })
        .collect();
    Ok((courses, sections, rows))
}

fn number_u32(p: &mut Problems, row: usize, value: &str) -> Option<u32> {
    number(p, row, "capacity", value, 0u32, 100_000u32)
}

/// Columns of a students file.
pub const STUDENT_COLUMNS: [&str; 3] = ["number", "name", "class_year"];
pub const STUDENT_OPTIONAL: [&str; 3] = ["department", "max_credits", "completed"];

/// Validates a students file against the departments (ids by upper-cased
/// code).
pub fn validate_students(
    bytes: &[u8],
    departments: &HashMap<String, u32>,
) -> Result<Vec<Student>, ImportError> {
    let mut p = Problems::default();
    let Some(table) = read_table(bytes, &STUDENT_COLUMNS, &STUDENT_OPTIONAL, &mut p) else {
        p.into_result()?;
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(table.rows.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (row, cells) in &table.rows {
        let row = *row;
        let cell = |c: &str| table.cell(cells, c);
        let student_number = cell("number").to_string();
        if student_number.is_empty()
            || student_number.len() > 16
            || !student_number.chars().all(|c| c.is_ascii_digit())
        {
            p.add(row, "number", "must be 1-16 digits");
        } else if let Some(first) = seen.insert(student_number.clone(), row) {
            p.add(row, "number", format!("also on row {first}"));
        }
        let department = match cell("department") {
            "" => None,
            d => match departments.get(&d.to_ascii_uppercase()) {
                Some(id) => Some(*id),
                None => {
                    p.add(row, "department", format!("no department with code {d:?}"));
                    None
                }
            },
        };
        let max_credits = match cell("max_credits") {
            "" => 18,
            v => number(&mut p, row, "max_credits", v, 1u8, 40u8).unwrap_or(18),
        };
        out.push(Student {
            name: text(&mut p, row, "name", cell("name"), 100, true),
            class_year: number(&mut p, row, "class_year", cell("class_year"), 1u8, 8u8)
                .unwrap_or(1),
            department,
            max_credits,
            completed: codes(&mut p, row, "completed", cell("completed")),
            number: student_number,
        });
    }
    p.into_result()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depts() -> HashMap<String, u32> {
        HashMap::from([("CSE".to_string(), 1)])
    }

    fn problems(r: Result<impl std::fmt::Debug, ImportError>) -> Vec<(usize, String)> {
        match r {
            Err(ImportError::Invalid(p, _)) => p.into_iter().map(|p| (p.row, p.column)).collect(),
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn a_good_catalog_validates() {
        let csv = "course_code,title_ko,title_en,department,credits,prerequisites,section,capacity,instructor,room,meetings\n\
                   CSE1010,프로그래밍,Programming,CSE,3,,1,40,Kim,E 101,Mon 09:00-10:15; Wed 09:00-10:15\n\
                   CSE1010,프로그래밍,Programming,CSE,3,,2,40,Lee,E 102,\n\
                   CSE2010,자료구조,Data Structures,cse,3,CSE1010,1,30,Park,E 201,Tue 13:00-14:15\n";
        let (courses, sections, rows) = validate_catalog(csv.as_bytes(), &depts()).unwrap();
        assert_eq!((courses.len(), sections.len(), rows), (2, 3, 3));
        assert_eq!(courses["CSE2010"].prerequisites, vec!["CSE1010"]);
    }

    #[test]
    fn catalog_problems_name_row_and_column() {
        let csv =
            "course_code,title_ko,title_en,department,credits,section,capacity,meetings,colour\n\
                   CSE1010,프로그래밍,Programming,XXX,13,1,-5,Mon 10:00-09:00,red\n\
                   CSE1010,다른 제목,Other,CSE,3,1,40,\n";
        let p = problems(validate_catalog(csv.as_bytes(), &depts()));
        for expected in [
            (1, "colour"),
            (2, "department"),
            (2, "credits"),
            (2, "capacity"),
            (2, "meetings"),
            (3, "course_code"),
            (3, "section"),
        ] {
            assert!(
                p.contains(&(expected.0, expected.1.to_string())),
                "{expected:?} missing from {p:?}"
            );
        }
    }

    #[test]
    fn student_problems_name_row_and_column() {
        let csv = "number,name,class_year,department,max_credits\n\
                   2026001,Kim,1,CSE,18\n\
                   2026001,Lee,9,ZZZ,\n\
                   abc,,2,,\n";
        let p = problems(validate_students(csv.as_bytes(), &depts()));
        assert_eq!(
            p,
            vec![
                (3, "number".to_string()),
                (3, "department".to_string()),
                (3, "class_year".to_string()),
                (4, "number".to_string()),
                (4, "name".to_string()),
            ]
        );
        assert!(matches!(
            validate_students(b"", &depts()),
            Err(ImportError::Invalid(..))
        ));
    }
}
