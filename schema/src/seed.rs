//! The deterministic data set for development, demos, tests and the bench:
//! one term with its catalog, students with transcripts, and the demo admin
//! accounts.
//!
//! [`generate`] is a pure function of a [`SeedConfig`]: the same seed always
//! yields the same [`Catalog`], ids included, so tests and the bench can know
//! every course code, section id and meeting time without asking the
//! database. [`seed`] writes that catalog into an empty database in one
//! transaction, with multi-row inserts of bound parameters.
//!
//! # Demo data only
//!
//! Every seeded student shares one password, [`DEMO_STUDENT_PASSWORD`],
//! hashed once with Argon2id. Hashing 40,000 distinct passwords would take
//! minutes and would protect nothing in a data set whose passwords are
//! published here. The admin accounts in [`DEMO_ADMINS`] are just as public.
//! Never seed a database that real people log in to.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqlx::query_builder::Separated;
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};
use std::collections::HashMap;
use std::fmt;

/// The code of the one term the seed creates.
pub const TERM_CODE: &str = "2027-1";

/// The password of every seeded student (published demo data).
pub const DEMO_STUDENT_PASSWORD: &str = "sluice-demo";

/// The name of the round that `ensure_demo_round` keeps open.
pub const DEMO_ROUND_NAME: &str = "Demo round";

/// Largest data set [`SeedConfig::validate`] accepts; [`generate`] clamps to
/// these. Student numbers and course codes stay unique well beyond them, but
/// a bigger set is no longer a realistic single university.
pub const MAX_STUDENTS: u32 = 200_000;
pub const MAX_SECTIONS: u32 = 50_000;

/// A published demo admin account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoAdmin {
    pub username: &'static str,
    pub display_name: &'static str,
    pub role: &'static str,
    pub password: &'static str,
}

/// The admin accounts every seed creates (published demo data).
pub const DEMO_ADMINS: [DemoAdmin; 2] = [
    DemoAdmin {
        username: "registrar",
        display_name: "학사지원팀 (Registrar)",
        role: "registrar",
        password: "registrar-demo",
    },
    DemoAdmin {
        username: "ops",
        display_name: "운영팀 (Operations)",
        role: "ops",
        password: "ops-demo",
    },
];

// ---------------------------------------------------------------------------
// Configuration, the in-memory catalog, errors
// ---------------------------------------------------------------------------

/// What to generate. The defaults are the scale of a large university.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedConfig {
    /// Seed of the ChaCha8 generator.
    pub seed: u64,
    pub students: u32,
    pub sections: u32,
}

impl Default for SeedConfig {
    fn default() -> Self {
        SeedConfig {
            seed: 42,
            students: 40_000,
            sections: 4_000,
        }
    }
}

impl SeedConfig {
    /// Rejects sizes outside what the generator is meant for.
    pub fn validate(&self) -> Result<(), SeedError> {
        if self.sections == 0 || self.sections > MAX_SECTIONS {
            return Err(SeedError::InvalidConfig(format!(
                "sections must be between 1 and {MAX_SECTIONS}, got {}",
                self.sections
            )));
        }
        if self.students > MAX_STUDENTS {
            return Err(SeedError::InvalidConfig(format!(
                "students must be at most {MAX_STUDENTS}, got {}",
                self.students
            )));
        }
        Ok(())
    }
}

/// A generated data set. Ids are assigned here, 1-based in generation order,
/// and inserted explicitly; [`seed`] refuses a non-empty catalog, so they
/// cannot collide with existing rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    pub term: Term,
    pub departments: Vec<Department>,
    pub courses: Vec<Course>,
    pub sections: Vec<Section>,
    pub students: Vec<Student>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub id: u32,
    pub code: String,
    pub name: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    pub id: u32,
    pub code: &'static str,
    pub name_ko: &'static str,
    pub name_en: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Course {
    pub id: u32,
    pub department_id: u32,
    /// Department code and a four-digit number whose first digit is the
    /// level, e.g. `CSE2010`.
    pub code: String,
    pub title_ko: String,
    pub title_en: String,
    pub credits: u8,
    /// 1 to 4, the year the course is meant for.
    pub level: u8,
    /// Codes of lower-level courses of the same department.
    pub prerequisites: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub id: u32,
    pub course_id: u32,
    /// 1-based within the course.
    pub number: u16,
    pub capacity: u32,
    pub instructor: String,
    pub room: String,
    /// Empty for online sections, which never conflict with anything.
    pub meetings: Vec<MeetingTime>,
}

/// One weekly meeting: weekday 1 = Monday, minutes after midnight,
/// `[start_min, end_min)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MeetingTime {
    pub weekday: u8,
    pub start_min: u16,
    pub end_min: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Student {
    pub id: u32,
    /// Admission year, department number and serial, e.g. `2024150007`.
    pub number: String,
    pub name: String,
    pub class_year: u8,
    pub department_id: u32,
    pub max_credits: u8,
    /// Course codes passed in earlier terms; only prerequisites are listed,
    /// as nothing else reads a transcript.
    pub completed: Vec<String>,
}

impl Catalog {
    /// Row counts of what [`seed`] writes for this catalog.
    pub fn summary(&self) -> SeedSummary {
        SeedSummary {
            term_code: self.term.code.clone(),
            departments: self.departments.len(),
            courses: self.courses.len(),
            prerequisites: self.courses.iter().map(|c| c.prerequisites.len()).sum(),
            sections: self.sections.len(),
            meetings: self.sections.iter().map(|s| s.meetings.len()).sum(),
            students: self.students.len(),
            completed_courses: self.students.iter().map(|s| s.completed.len()).sum(),
            admins: DEMO_ADMINS.len(),
        }
    }
}

/// What a successful [`seed`] inserted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSummary {
    pub term_code: String,
    pub departments: usize,
    pub courses: usize,
    pub prerequisites: usize,
    pub sections: usize,
    pub meetings: usize,
    pub students: usize,
    pub completed_courses: usize,
    pub admins: usize,
}

/// Rows already present in the tables a seed writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CatalogCounts {
    pub terms: u64,
    pub departments: u64,
    pub courses: u64,
    pub sections: u64,
    pub students: u64,
    pub admins: u64,
}

impl CatalogCounts {
    pub fn is_empty(&self) -> bool {
        *self == CatalogCounts::default()
    }
}

/// The answer of [`seed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedOutcome {
    Seeded(SeedSummary),
    /// The catalog was not empty, so nothing was written.
    AlreadySeeded(CatalogCounts),
}

/// One step of a running seed, for progress output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub table: &'static str,
    pub done: usize,
    pub total: usize,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.table, self.done, self.total)
    }
}

/// The round [`ensure_demo_round`] found or created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoRound {
    pub id: u32,
    pub created: bool,
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("invalid seed configuration: {0}")]
    InvalidConfig(String),
    #[error("term {} does not exist; seed the database first", TERM_CODE)]
    NotSeeded,
    #[error("refusing to reset table {0:?}: not a plain identifier")]
    UnexpectedTable(String),
    #[error("{context}")]
    Database {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    // password_hash::Error implements std::error::Error only with argon2's
    // `std` feature, so it is shown rather than chained.
    #[error("hashing a demo password: {0}")]
    Hash(argon2::password_hash::Error),
    #[error("the generator task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// Attaches what we were doing to a database error.
trait DbContext<T> {
    fn during(self, context: &'static str) -> Result<T, SeedError>;
}

impl<T> DbContext<T> for Result<T, sqlx::Error> {
    fn during(self, context: &'static str) -> Result<T, SeedError> {
        self.map_err(|source| SeedError::Database { context, source })
    }
}

// ---------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------

/// Parts of the data set draw from separate ChaCha streams of the same seed,
/// so changing the student count leaves the catalog untouched.
const STREAM_CATALOG: u64 = 1;
const STREAM_STUDENTS: u64 = 2;

const TERM_YEAR: u16 = 2027;
const TERM_STARTS: NaiveDate = date(2027, 3, 2);
const TERM_ENDS: NaiveDate = date(2027, 6, 21);

const fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(d) => d,
        // Evaluated at compile time: a bad constant fails the build.
        None => panic!("invalid date constant"),
    }
}

/// Builds the data set for `config`, clamped to [`MAX_STUDENTS`] and
/// [`MAX_SECTIONS`]. Pure and deterministic.
pub fn generate(config: &SeedConfig) -> Catalog {
    let departments = DEPARTMENTS
        .iter()
        .enumerate()
        .map(|(index, d)| Department {
            id: department_id(index),
            code: d.code,
            name_ko: d.name_ko,
            name_en: d.name_en,
        })
        .collect();

    let mut rng = stream(config.seed, STREAM_CATALOG);
    let (mut courses, sections) = generate_courses(&mut rng, config.sections.min(MAX_SECTIONS));
    assign_prerequisites(&mut rng, &mut courses);

    let mut rng = stream(config.seed, STREAM_STUDENTS);
    let students = generate_students(&mut rng, config.students.min(MAX_STUDENTS), &courses);

    Catalog {
        term: Term {
            id: 1,
            code: TERM_CODE.to_string(),
            name: format!("{TERM_YEAR}학년도 1학기"),
            starts_on: TERM_STARTS,
            ends_on: TERM_ENDS,
        },
        departments,
        courses,
        sections,
        students,
    }
}

fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Picks from a non-empty table of `(value, weight)` with positive weights.
fn pick<T: Copy>(rng: &mut ChaCha8Rng, table: &[(T, u32)]) -> T {
    let total: u32 = table.iter().map(|&(_, w)| w).sum();
    let mut roll = rng.gen_range(0..total);
    for &(value, weight) in table {
        if roll < weight {
            return value;
        }
        roll -= weight;
    }
    table[table.len() - 1].0
}

fn one_of<T: Copy>(rng: &mut ChaCha8Rng, items: &[T]) -> T {
    items[rng.gen_range(0..items.len())]
}

/// Intro courses outnumber seminars.
const LEVEL_WEIGHTS: [(u8, u32); 4] = [(1, 35), (2, 30), (3, 20), (4, 15)];
const CREDIT_WEIGHTS: [(u8, u32); 4] = [(3, 70), (2, 12), (1, 8), (4, 10)];
const SECTIONS_PER_COURSE: [(u32, u32); 4] = [(1, 45), (2, 30), (3, 15), (4, 10)];

/// Course numbers per (department, level): `x010`, `x020` .. `x990`, then
/// `x011` .. `x991` and so on, so codes look like a real catalog's and stay
/// unique for 990 courses per level.
const COURSES_PER_BUCKET: u16 = 990;

fn course_number(level: u8, k: u16) -> u16 {
    u16::from(level) * 1000 + (k % 99 + 1) * 10 + k / 99
}

fn generate_courses(rng: &mut ChaCha8Rng, target_sections: u32) -> (Vec<Course>, Vec<Section>) {
    let department_weights: Vec<(usize, u32)> = DEPARTMENTS
        .iter()
        .enumerate()
        .map(|(i, d)| (i, d.course_weight))
        .collect();
    let mut next_in_bucket = vec![[0u16; 4]; DEPARTMENTS.len()];
    let mut instructors: Vec<Vec<String>> = vec![Vec::new(); DEPARTMENTS.len()];
    let mut courses = Vec::new();
    let mut sections = Vec::new();
    let (mut course_id, mut section_id) = (0u32, 0u32);
    let mut remaining = target_sections;

    while remaining > 0 {
        let wanted = (pick(rng, &department_weights), pick(rng, &LEVEL_WEIGHTS));
        let Some((dept, level)) = free_bucket(&next_in_bucket, wanted) else {
            break;
        };
        let bucket = &mut next_in_bucket[dept][usize::from(level - 1)];
        let k = *bucket;
        *bucket += 1;

        let spec = &DEPARTMENTS[dept];
        let (title_ko, title_en) = course_title(spec, level, k);
        course_id += 1;
        let credits = pick(rng, &CREDIT_WEIGHTS);
        courses.push(Course {
            id: course_id,
            department_id: department_id(dept),
            code: format!("{}{}", spec.code, course_number(level, k)),
            title_ko,
            title_en,
            credits,
            level,
            prerequisites: Vec::new(),
        });

        let count = pick(rng, &SECTIONS_PER_COURSE).min(remaining);
        remaining -= count;
        for number in 1..=count {
            section_id += 1;
            let capacity = capacity(rng);
            let meetings = meetings(rng, credits);
            let room = if meetings.is_empty() {
                "온라인 (Online)".to_string()
            } else {
                room(rng, spec.building, capacity)
            };
            sections.push(Section {
                id: section_id,
                course_id,
                // At most four sections per course.
                number: u16::try_from(number).unwrap_or(u16::MAX),
                capacity,
                instructor: instructor(rng, &mut instructors[dept]),
                room,
                meetings,
            });
        }
    }
    (courses, sections)
}

/// The wanted (department, level) bucket, or the next one with room left.
fn free_bucket(next: &[[u16; 4]], (dept, level): (usize, u8)) -> Option<(usize, u8)> {
    let start = dept * 4 + usize::from(level - 1);
    (0..next.len() * 4)
        .map(|offset| (start + offset) % (next.len() * 4))
        .find(|&slot| next[slot / 4][slot % 4] < COURSES_PER_BUCKET)
        .map(|slot| (slot / 4, u8::try_from(slot % 4 + 1).unwrap_or(4)))
}

/// Rotates through topics first and title patterns second, so titles in a
/// department repeat only after every combination was used.
fn course_title(spec: &DepartmentSpec, level: u8, k: u16) -> (String, String) {
    let k = usize::from(k);
    let (topic_ko, topic_en) = spec.topics[k % spec.topics.len()];
    let patterns = &TITLE_PATTERNS[usize::from(level - 1)];
    let (ko, en) = patterns[(k / spec.topics.len()) % patterns.len()];
    (ko.replace("{}", topic_ko), en.replace("{}", topic_en))
}

/// Median 30 (most sections seat exactly 30), a fifth of small seminars and
/// a few large lectures of 100 to 200.
fn capacity(rng: &mut ChaCha8Rng) -> u32 {
    match rng.gen_range(0..100) {
        0..=19 => 15 + 5 * rng.gen_range(0..=2),
        20..=59 => 30,
        60..=84 => 35 + 5 * rng.gen_range(0..=5),
        85..=94 => 70 + 10 * rng.gen_range(0..=2),
        _ => 100 + 10 * rng.gen_range(0..=10),
    }
}

const fn hm(hour: u16, minute: u16) -> u16 {
    hour * 60 + minute
}

/// 75-minute blocks, twice a week: the usual three-credit timetable.
const BLOCKS_75: [u16; 6] = [
    hm(9, 0),
    hm(10, 30),
    hm(12, 0),
    hm(13, 30),
    hm(15, 0),
    hm(16, 30),
];
/// 100-minute blocks: two-credit courses once, four-credit courses twice.
const BLOCKS_100: [u16; 4] = [hm(9, 0), hm(11, 0), hm(13, 0), hm(15, 0)];
/// 150-minute blocks once a week; a few evening classes until 21:00.
const BLOCKS_150: [(u16, u32); 4] = [
    (hm(9, 0), 35),
    (hm(13, 0), 35),
    (hm(15, 30), 25),
    (hm(18, 30), 5),
];
/// Mon/Wed, Tue/Thu, Wed/Fri.
const DAY_PAIRS: [((u8, u8), u32); 3] = [((1, 3), 40), ((2, 4), 40), ((3, 5), 20)];

fn meetings(rng: &mut ChaCha8Rng, credits: u8) -> Vec<MeetingTime> {
    // Recorded lectures: no meeting time, so they never conflict.
    if rng.gen_bool(0.03) {
        return Vec::new();
    }
    let at = |weekday: u8, start: u16, minutes: u16| MeetingTime {
        weekday,
        start_min: start,
        end_min: start + minutes,
    };
    match credits {
        1 => vec![at(rng.gen_range(1..=5), hm(rng.gen_range(9..=17), 0), 50)],
        2 => vec![at(rng.gen_range(1..=5), one_of(rng, &BLOCKS_100), 100)],
        4 => {
            let (a, b) = pick(rng, &DAY_PAIRS);
            let start = one_of(rng, &BLOCKS_100);
            vec![at(a, start, 100), at(b, start, 100)]
        }
        _ if rng.gen_bool(0.3) => vec![at(rng.gen_range(1..=5), pick(rng, &BLOCKS_150), 150)],
        _ => {
            let (a, b) = pick(rng, &DAY_PAIRS);
            let start = one_of(rng, &BLOCKS_75);
            vec![at(a, start, 75), at(b, start, 75)]
        }
    }
}

/// Large lectures sit in the ground-floor halls of their building.
fn room(rng: &mut ChaCha8Rng, building: &str, capacity: u32) -> String {
    if capacity >= 100 {
        format!("{building} 1{:02}", rng.gen_range(1..=3))
    } else {
        format!(
            "{building} {}{:02}",
            rng.gen_range(2..=6),
            rng.gen_range(1..=20)
        )
    }
}

/// Most instructors teach more than one section a term.
fn instructor(rng: &mut ChaCha8Rng, pool: &mut Vec<String>) -> String {
    if !pool.is_empty() && rng.gen_bool(0.6) {
        return pool[rng.gen_range(0..pool.len())].clone();
    }
    let name = korean_name(rng);
    pool.push(name.clone());
    name
}

/// About 15% of all courses (a fifth of those above level 1) require one or
/// two lower-level courses of their own department.
fn assign_prerequisites(rng: &mut ChaCha8Rng, courses: &mut [Course]) {
    let mut lower: Vec<Vec<(u8, String)>> = vec![Vec::new(); DEPARTMENTS.len()];
    for course in courses.iter() {
        lower[department_index(course.department_id)].push((course.level, course.code.clone()));
    }
    for course in courses.iter_mut() {
        if course.level < 2 || !rng.gen_bool(0.2) {
            continue;
        }
        let candidates: Vec<&String> = lower[department_index(course.department_id)]
            .iter()
            .filter(|(level, _)| *level < course.level)
            .map(|(_, code)| code)
            .collect();
        let wanted = if rng.gen_bool(0.7) { 1 } else { 2 };
        let mut chosen: Vec<String> = candidates
            .choose_multiple(rng, wanted)
            .map(|code| (*code).clone())
            .collect();
        chosen.sort();
        course.prerequisites = chosen;
    }
}

/// Department ids are their 1-based position in [`DEPARTMENTS`].
fn department_id(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

fn department_index(id: u32) -> usize {
    usize::try_from(id.saturating_sub(1)).unwrap_or(0)
}

/// A few more freshmen than seniors, as some seniors graduate early.
const CLASS_YEAR_WEIGHTS: [(u8, u32); 4] = [(1, 27), (2, 26), (3, 24), (4, 23)];

fn generate_students(rng: &mut ChaCha8Rng, count: u32, courses: &[Course]) -> Vec<Student> {
    let department_weights: Vec<(usize, u32)> = DEPARTMENTS
        .iter()
        .enumerate()
        .filter(|(_, d)| d.student_weight > 0)
        .map(|(i, d)| (i, d.student_weight))
        .collect();

    // The prerequisite codes of each department, in catalog order, so that
    // transcripts can make upper-year students eligible for upper courses.
    let level: HashMap<&str, u8> = courses.iter().map(|c| (c.code.as_str(), c.level)).collect();
    let mut prerequisites: Vec<Vec<(u8, &str)>> = vec![Vec::new(); DEPARTMENTS.len()];
    for course in courses {
        let list = &mut prerequisites[department_index(course.department_id)];
        for code in &course.prerequisites {
            if !list.iter().any(|&(_, known)| known == code) {
                list.push((level.get(code.as_str()).copied().unwrap_or(1), code));
            }
        }
    }

    let mut serials = vec![[0u32; 4]; DEPARTMENTS.len()];
    (1..=count)
        .map(|id| {
            let class_year = pick(rng, &CLASS_YEAR_WEIGHTS);
            let dept = pick(rng, &department_weights);
            let serial = &mut serials[dept][usize::from(class_year - 1)];
            *serial += 1;
            let admitted = TERM_YEAR + 1 - u16::from(class_year);
            let name = korean_name(rng);
            // Freshmen start at the normal load; some others earned more.
            let max_credits = if class_year > 1 && rng.gen_bool(0.1) {
                21
            } else {
                18
            };
            let completed = prerequisites[dept]
                .iter()
                .filter(|(level, _)| *level < class_year)
                .filter(|_| rng.gen_bool(0.8))
                .map(|(_, code)| (*code).to_string())
                .collect();
            Student {
                id,
                number: format!("{admitted}{:02}{:04}", dept + 1, serial),
                name,
                class_year,
                department_id: department_id(dept),
                max_credits,
                completed,
            }
        })
        .collect()
}

/// Weighted roughly like the census: 김, 이 and 박 cover almost half.
const SURNAMES: [(&str, u32); 30] = [
    ("김", 215),
    ("이", 147),
    ("박", 84),
    ("최", 47),
    ("정", 48),
    ("강", 24),
    ("조", 21),
    ("윤", 20),
    ("장", 20),
    ("임", 16),
    ("한", 15),
    ("오", 15),
    ("서", 15),
    ("신", 14),
    ("권", 14),
    ("황", 14),
    ("안", 13),
    ("송", 13),
    ("류", 12),
    ("전", 11),
    ("홍", 11),
    ("고", 9),
    ("문", 9),
    ("양", 9),
    ("손", 9),
    ("배", 8),
    ("백", 8),
    ("허", 7),
    ("남", 6),
    ("노", 6),
];

const GIVEN_SYLLABLES: [&str; 50] = [
    "민", "서", "지", "현", "준", "우", "예", "하", "도", "윤", "수", "진", "영", "은", "연", "성",
    "재", "혜", "유", "주", "시", "승", "태", "건", "희", "원", "경", "동", "상", "나", "다", "채",
    "아", "린", "호", "빈", "율", "온", "결", "솔", "정", "훈", "석", "규", "소", "인", "혁", "찬",
    "명", "세",
];

fn korean_name(rng: &mut ChaCha8Rng) -> String {
    let mut name = String::from(pick(rng, &SURNAMES));
    name.push_str(one_of(rng, &GIVEN_SYLLABLES));
    // Single-syllable given names are rare but real.
    if !rng.gen_bool(0.04) {
        name.push_str(one_of(rng, &GIVEN_SYLLABLES));
    }
    name
}

/// Title patterns per course level; `{}` is the topic.
const TITLE_PATTERNS: [[(&str, &str); 3]; 4] = [
    [
        ("{}개론", "Introduction to {}"),
        ("기초{}", "Fundamentals of {}"),
        ("{} 1", "{} I"),
    ],
    [
        ("{} 2", "{} II"),
        ("{}실습", "{} Practicum"),
        ("{}의 이해", "Understanding {}"),
    ],
    [
        ("고급{}", "Advanced {}"),
        ("응용{}", "Applied {}"),
        ("{}설계", "{} Design"),
    ],
    [
        ("{}특론", "Special Topics in {}"),
        ("{}세미나", "Seminar in {}"),
        ("{}캡스톤디자인", "Capstone Design in {}"),
    ],
];

struct DepartmentSpec {
    code: &'static str,
    name_ko: &'static str,
    name_en: &'static str,
    building: &'static str,
    /// Relative share of the catalog.
    course_weight: u32,
    /// Relative share of the students; zero for departments without majors.
    student_weight: u32,
    topics: &'static [(&'static str, &'static str)],
}

const DEPARTMENTS: [DepartmentSpec; 26] = [
    DepartmentSpec {
        code: "KOR",
        name_ko: "국어국문학과",
        name_en: "Korean Language and Literature",
        building: "인문관",
        course_weight: 3,
        student_weight: 3,
        topics: &[
            ("국어학", "Korean Linguistics"),
            ("현대소설", "Modern Korean Fiction"),
            ("고전문학", "Classical Korean Literature"),
            ("현대시", "Modern Korean Poetry"),
            ("국어문법", "Korean Grammar"),
            ("문학비평", "Literary Criticism"),
        ],
    },
    DepartmentSpec {
        code: "ENG",
        name_ko: "영어영문학과",
        name_en: "English Language and Literature",
        building: "인문관",
        course_weight: 3,
        student_weight: 3,
        topics: &[
            ("영어학", "English Linguistics"),
            ("영미소설", "British and American Fiction"),
            ("영미시", "British and American Poetry"),
            ("영어작문", "English Composition"),
            ("셰익스피어", "Shakespeare"),
            ("영미드라마", "British and American Drama"),
        ],
    },
    DepartmentSpec {
        code: "HIS",
        name_ko: "사학과",
        name_en: "History",
        building: "인문관",
        course_weight: 2,
        student_weight: 2,
        topics: &[
            ("한국사", "Korean History"),
            ("동양사", "East Asian History"),
            ("서양사", "Western History"),
            ("역사학방법론", "Historical Methods"),
            ("근현대사", "Modern History"),
            ("고고학", "Archaeology"),
        ],
    },
    DepartmentSpec {
        code: "PHI",
        name_ko: "철학과",
        name_en: "Philosophy",
        building: "인문관",
        course_weight: 2,
        student_weight: 2,
        topics: &[
            ("논리학", "Logic"),
            ("윤리학", "Ethics"),
            ("서양철학", "Western Philosophy"),
            ("동양철학", "Eastern Philosophy"),
            ("인식론", "Epistemology"),
            ("과학철학", "Philosophy of Science"),
        ],
    },
    DepartmentSpec {
        code: "ECO",
        name_ko: "경제학과",
        name_en: "Economics",
        building: "사회과학관",
        course_weight: 5,
        student_weight: 5,
        topics: &[
            ("미시경제학", "Microeconomics"),
            ("거시경제학", "Macroeconomics"),
            ("계량경제학", "Econometrics"),
            ("국제경제학", "International Economics"),
            ("노동경제학", "Labor Economics"),
            ("금융경제학", "Financial Economics"),
            ("공공경제학", "Public Economics"),
        ],
    },
    DepartmentSpec {
        code: "POL",
        name_ko: "정치외교학과",
        name_en: "Political Science and International Relations",
        building: "사회과학관",
        course_weight: 3,
        student_weight: 3,
        topics: &[
            ("정치학", "Political Science"),
            ("국제정치학", "International Politics"),
            ("비교정치", "Comparative Politics"),
            ("정치사상", "Political Thought"),
            ("외교정책", "Foreign Policy"),
            ("행정학", "Public Administration"),
        ],
    },
    DepartmentSpec {
        code: "PSY",
        name_ko: "심리학과",
        name_en: "Psychology",
        building: "사회과학관",
        course_weight: 3,
        student_weight: 3,
        topics: &[
            ("심리학", "Psychology"),
            ("인지심리학", "Cognitive Psychology"),
            ("발달심리학", "Developmental Psychology"),
            ("사회심리학", "Social Psychology"),
            ("임상심리학", "Clinical Psychology"),
            ("심리통계", "Psychological Statistics"),
        ],
    },
    DepartmentSpec {
        code: "SOC",
        name_ko: "사회학과",
        name_en: "Sociology",
        building: "사회과학관",
        course_weight: 2,
        student_weight: 2,
        topics: &[
            ("사회학", "Sociology"),
            ("사회조사방법", "Social Research Methods"),
            ("도시사회학", "Urban Sociology"),
            ("가족사회학", "Sociology of the Family"),
            ("사회이론", "Social Theory"),
            ("인구학", "Demography"),
        ],
    },
    DepartmentSpec {
        code: "BUS",
        name_ko: "경영학과",
        name_en: "Business Administration",
        building: "경영관",
        course_weight: 7,
        student_weight: 8,
        topics: &[
            ("경영학", "Business Administration"),
            ("회계학", "Accounting"),
            ("마케팅", "Marketing"),
            ("재무관리", "Financial Management"),
            ("조직행동", "Organizational Behavior"),
            ("경영정보시스템", "Management Information Systems"),
            ("생산운영관리", "Operations Management"),
        ],
    },
    DepartmentSpec {
        code: "MTH",
        name_ko: "수학과",
        name_en: "Mathematics",
        building: "자연과학관",
        course_weight: 4,
        student_weight: 3,
        topics: &[
            ("미적분학", "Calculus"),
            ("선형대수학", "Linear Algebra"),
            ("해석학", "Analysis"),
            ("현대대수학", "Abstract Algebra"),
            ("위상수학", "Topology"),
            ("미분방정식", "Differential Equations"),
            ("확률론", "Probability Theory"),
        ],
    },
    DepartmentSpec {
        code: "PHY",
        name_ko: "물리학과",
        name_en: "Physics",
        building: "자연과학관",
        course_weight: 3,
        student_weight: 2,
        topics: &[
            ("일반물리학", "General Physics"),
            ("역학", "Mechanics"),
            ("전자기학", "Electromagnetism"),
            ("양자역학", "Quantum Mechanics"),
            ("열통계물리", "Thermal and Statistical Physics"),
            ("고체물리", "Solid State Physics"),
        ],
    },
    DepartmentSpec {
        code: "CHM",
        name_ko: "화학과",
        name_en: "Chemistry",
        building: "자연과학관",
        course_weight: 3,
        student_weight: 2,
        topics: &[
            ("일반화학", "General Chemistry"),
            ("유기화학", "Organic Chemistry"),
            ("물리화학", "Physical Chemistry"),
            ("분석화학", "Analytical Chemistry"),
            ("무기화학", "Inorganic Chemistry"),
            ("생화학", "Biochemistry"),
        ],
    },
    DepartmentSpec {
        code: "BIO",
        name_ko: "생명과학과",
        name_en: "Life Science",
        building: "자연과학관",
        course_weight: 3,
        student_weight: 3,
        topics: &[
            ("일반생물학", "General Biology"),
            ("세포생물학", "Cell Biology"),
            ("분자생물학", "Molecular Biology"),
            ("유전학", "Genetics"),
            ("생태학", "Ecology"),
            ("미생물학", "Microbiology"),
        ],
    },
    DepartmentSpec {
        code: "STA",
        name_ko: "통계학과",
        name_en: "Statistics",
        building: "자연과학관",
        course_weight: 2,
        student_weight: 2,
        topics: &[
            ("통계학", "Statistics"),
            ("수리통계학", "Mathematical Statistics"),
            ("회귀분석", "Regression Analysis"),
            ("실험계획법", "Design of Experiments"),
            ("베이지안통계", "Bayesian Statistics"),
            ("데이터마이닝", "Data Mining"),
        ],
    },
    DepartmentSpec {
        code: "CSE",
        name_ko: "컴퓨터공학과",
        name_en: "Computer Science and Engineering",
        building: "공학관",
        course_weight: 8,
        student_weight: 8,
        topics: &[
            ("프로그래밍", "Programming"),
            ("자료구조", "Data Structures"),
            ("알고리즘", "Algorithms"),
            ("운영체제", "Operating Systems"),
            ("데이터베이스", "Databases"),
            ("컴퓨터네트워크", "Computer Networks"),
            ("인공지능", "Artificial Intelligence"),
            ("컴퓨터구조", "Computer Architecture"),
        ],
    },
    DepartmentSpec {
        code: "ELE",
        name_ko: "전자공학과",
        name_en: "Electronic Engineering",
        building: "공학관",
        course_weight: 6,
        student_weight: 6,
        topics: &[
            ("회로이론", "Circuit Theory"),
            ("전자회로", "Electronic Circuits"),
            ("신호및시스템", "Signals and Systems"),
            ("디지털논리", "Digital Logic"),
            ("반도체소자", "Semiconductor Devices"),
            ("통신공학", "Communication Engineering"),
            ("제어공학", "Control Engineering"),
        ],
    },
    DepartmentSpec {
        code: "MEC",
        name_ko: "기계공학과",
        name_en: "Mechanical Engineering",
        building: "공학관",
        course_weight: 6,
        student_weight: 6,
        topics: &[
            ("정역학", "Statics"),
            ("동역학", "Dynamics"),
            ("열역학", "Thermodynamics"),
            ("유체역학", "Fluid Mechanics"),
            ("고체역학", "Solid Mechanics"),
            ("기계설계", "Machine Design"),
        ],
    },
    DepartmentSpec {
        code: "CHE",
        name_ko: "화학공학과",
        name_en: "Chemical Engineering",
        building: "공학관",
        course_weight: 4,
        student_weight: 4,
        topics: &[
            ("화공양론", "Chemical Process Calculations"),
            ("반응공학", "Chemical Reaction Engineering"),
            ("이동현상", "Transport Phenomena"),
            ("공정제어", "Process Control"),
            ("화공열역학", "Chemical Engineering Thermodynamics"),
            ("고분자공학", "Polymer Engineering"),
        ],
    },
    DepartmentSpec {
        code: "CIV",
        name_ko: "건설환경공학과",
        name_en: "Civil and Environmental Engineering",
        building: "공학관",
        course_weight: 3,
        student_weight: 3,
        topics: &[
            ("구조역학", "Structural Mechanics"),
            ("토질역학", "Soil Mechanics"),
            ("수리학", "Hydraulics"),
            ("환경공학", "Environmental Engineering"),
            ("교통공학", "Transportation Engineering"),
            ("측량학", "Surveying"),
        ],
    },
    DepartmentSpec {
        code: "IND",
        name_ko: "산업공학과",
        name_en: "Industrial Engineering",
        building: "공학관",
        course_weight: 3,
        student_weight: 3,
        topics: &[
            ("경영과학", "Operations Research"),
            ("생산관리", "Production Management"),
            ("품질공학", "Quality Engineering"),
            ("인간공학", "Human Factors Engineering"),
            ("시뮬레이션", "Simulation"),
            ("공급사슬관리", "Supply Chain Management"),
        ],
    },
    DepartmentSpec {
        code: "ARC",
        name_ko: "건축학과",
        name_en: "Architecture",
        building: "공학관",
        course_weight: 2,
        student_weight: 2,
        topics: &[
            ("건축설계", "Architectural Design"),
            ("건축사", "History of Architecture"),
            ("건축구조", "Building Structures"),
            ("건축환경", "Building Environment"),
            ("도시설계", "Urban Design"),
            ("건축시공", "Building Construction"),
        ],
    },
    DepartmentSpec {
        code: "EDU",
        name_ko: "교육학과",
        name_en: "Education",
        building: "사범관",
        course_weight: 2,
        student_weight: 2,
        topics: &[
            ("교육학", "Education"),
            ("교육심리", "Educational Psychology"),
            ("교육과정", "Curriculum Studies"),
            ("교육공학", "Educational Technology"),
            ("교육평가", "Educational Evaluation"),
            ("교육사회학", "Sociology of Education"),
        ],
    },
    DepartmentSpec {
        code: "NUR",
        name_ko: "간호학과",
        name_en: "Nursing",
        building: "의생명관",
        course_weight: 3,
        student_weight: 3,
        topics: &[
            ("간호학", "Nursing"),
            ("성인간호학", "Adult Health Nursing"),
            ("아동간호학", "Child Health Nursing"),
            ("모성간호학", "Women's Health Nursing"),
            ("정신간호학", "Psychiatric Nursing"),
            ("지역사회간호학", "Community Health Nursing"),
        ],
    },
    DepartmentSpec {
        code: "MUS",
        name_ko: "음악학과",
        name_en: "Music",
        building: "예술관",
        course_weight: 1,
        student_weight: 1,
        topics: &[
            ("음악이론", "Music Theory"),
            ("화성학", "Harmony"),
            ("서양음악사", "History of Western Music"),
            ("국악", "Korean Traditional Music"),
            ("시창청음", "Ear Training"),
            ("합창", "Choir"),
        ],
    },
    DepartmentSpec {
        code: "ART",
        name_ko: "미술학과",
        name_en: "Fine Arts",
        building: "예술관",
        course_weight: 1,
        student_weight: 1,
        topics: &[
            ("드로잉", "Drawing"),
            ("회화", "Painting"),
            ("조소", "Sculpture"),
            ("미술사", "Art History"),
            ("판화", "Printmaking"),
            ("디지털미디어아트", "Digital Media Art"),
        ],
    },
    DepartmentSpec {
        code: "GED",
        name_ko: "교양학부",
        name_en: "General Education",
        building: "교양관",
        course_weight: 6,
        student_weight: 0,
        topics: &[
            ("대학글쓰기", "College Writing"),
            ("영어회화", "English Conversation"),
            ("세계문화", "Global Cultures"),
            ("과학기술과 사회", "Science, Technology and Society"),
            ("컴퓨팅사고", "Computational Thinking"),
            ("리더십", "Leadership"),
        ],
    },
];

// ---------------------------------------------------------------------------
// Writing to the database
// ---------------------------------------------------------------------------

/// MySQL's prepared statements take at most 65,535 placeholders.
const MAX_PLACEHOLDERS: usize = 65_535;
/// Rows per INSERT: big enough that round trips stop mattering, small
/// enough to stay far below `max_allowed_packet`.
const CHUNK_ROWS: usize = 1_000;

/// Rows in the tables a seed writes.
pub async fn catalog_counts(pool: &MySqlPool) -> Result<CatalogCounts, SeedError> {
    let (terms, departments, courses, sections, students, admins): (i64, i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM terms), (SELECT COUNT(*) FROM departments), \
                    (SELECT COUNT(*) FROM courses), (SELECT COUNT(*) FROM sections), \
                    (SELECT COUNT(*) FROM students), (SELECT COUNT(*) FROM admins)",
        )
        .fetch_one(pool)
        .await
        .during("counting catalog rows (is the database migrated?)")?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(CatalogCounts {
        terms: count(terms),
        departments: count(departments),
        courses: count(courses),
        sections: count(sections),
        students: count(students),
        admins: count(admins),
    })
}

/// Seeds an empty database; see [`seed_with_progress`].
pub async fn seed(pool: &MySqlPool, config: &SeedConfig) -> Result<SeedOutcome, SeedError> {
    seed_with_progress(pool, config, |_| {}).await
}

/// Generates the data set for `config` and writes it in one transaction, so
/// an interrupted seed leaves nothing behind. Writes nothing and answers
/// [`SeedOutcome::AlreadySeeded`] if the catalog is not empty.
pub async fn seed_with_progress<P>(
    pool: &MySqlPool,
    config: &SeedConfig,
    mut progress: P,
) -> Result<SeedOutcome, SeedError>
where
    P: FnMut(Progress) + Send,
{
    config.validate()?;
    let existing = catalog_counts(pool).await?;
    if !existing.is_empty() {
        return Ok(SeedOutcome::AlreadySeeded(existing));
    }

    // Generation and Argon2 are CPU work: keep them off the async runtime.
    let config = config.clone();
    let (catalog, hashes) = tokio::task::spawn_blocking(move || {
        let hashes = DemoHashes::compute()?;
        Ok::<_, SeedError>((generate(&config), hashes))
    })
    .await??;

    let mut tx = pool.begin().await.during("starting the seed transaction")?;
    write_catalog(&mut tx, &catalog, &hashes, &mut progress).await?;
    tx.commit().await.during("committing the seed")?;
    Ok(SeedOutcome::Seeded(catalog.summary()))
}

/// Argon2id hashes of the demo passwords, each computed once.
struct DemoHashes {
    student: String,
    admins: Vec<String>,
}

impl DemoHashes {
    fn compute() -> Result<Self, SeedError> {
        Ok(DemoHashes {
            student: hash_password(DEMO_STUDENT_PASSWORD)?,
            admins: DEMO_ADMINS
                .iter()
                .map(|admin| hash_password(admin.password))
                .collect::<Result<_, _>>()?,
        })
    }
}

fn hash_password(password: &str) -> Result<String, SeedError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(SeedError::Hash)
}

async fn write_catalog<P>(
    conn: &mut MySqlConnection,
    catalog: &Catalog,
    hashes: &DemoHashes,
    progress: &mut P,
) -> Result<(), SeedError>
where
    P: FnMut(Progress) + Send,
{
    let term = &catalog.term;
    sqlx::query("INSERT INTO terms (id, code, name, starts_on, ends_on) VALUES (?, ?, ?, ?, ?)")
        .bind(term.id)
        .bind(&term.code)
        .bind(&term.name)
        .bind(term.starts_on)
        .bind(term.ends_on)
        .execute(&mut *conn)
        .await
        .during("inserting the term")?;

    insert_rows(
        conn,
        "departments",
        "INSERT INTO departments (id, code, name_ko, name_en) ",
        4,
        &catalog.departments,
        |row, d| {
            row.push_bind(d.id)
                .push_bind(d.code)
                .push_bind(d.name_ko)
                .push_bind(d.name_en);
        },
        progress,
    )
    .await?;

    insert_rows(
        conn,
        "courses",
        "INSERT INTO courses (id, term_id, department_id, code, title_ko, title_en, credits) ",
        7,
        &catalog.courses,
        |row, c| {
            row.push_bind(c.id)
                .push_bind(term.id)
                .push_bind(c.department_id)
                .push_bind(c.code.as_str())
                .push_bind(c.title_ko.as_str())
                .push_bind(c.title_en.as_str())
                .push_bind(c.credits);
        },
        progress,
    )
    .await?;

    let prerequisites: Vec<(u32, &str)> = catalog
        .courses
        .iter()
        .flat_map(|c| c.prerequisites.iter().map(move |p| (c.id, p.as_str())))
        .collect();
    insert_rows(
        conn,
        "prerequisites",
        "INSERT INTO course_prerequisites (course_id, required_code) ",
        2,
        &prerequisites,
        |row, &(course, code)| {
            row.push_bind(course).push_bind(code);
        },
        progress,
    )
    .await?;

    insert_rows(
        conn,
        "sections",
        "INSERT INTO sections (id, course_id, number, capacity, instructor, room) ",
        6,
        &catalog.sections,
        |row, s| {
            row.push_bind(s.id)
                .push_bind(s.course_id)
                .push_bind(s.number)
                .push_bind(s.capacity)
                .push_bind(s.instructor.as_str())
                .push_bind(s.room.as_str());
        },
        progress,
    )
    .await?;

    let meetings: Vec<(u32, MeetingTime)> = catalog
        .sections
        .iter()
        .flat_map(|s| s.meetings.iter().map(move |m| (s.id, *m)))
        .collect();
    insert_rows(
        conn,
        "meetings",
        "INSERT INTO section_meetings (section_id, weekday, start_min, end_min) ",
        4,
        &meetings,
        |row, &(section, m)| {
            row.push_bind(section)
                .push_bind(m.weekday)
                .push_bind(m.start_min)
                .push_bind(m.end_min);
        },
        progress,
    )
    .await?;

    let student_hash = hashes.student.as_str();
    insert_rows(
        conn,
        "students",
        "INSERT INTO students \
         (id, number, name, class_year, department_id, max_credits, password_hash) ",
        7,
        &catalog.students,
        |row, s| {
            row.push_bind(s.id)
                .push_bind(s.number.as_str())
                .push_bind(s.name.as_str())
                .push_bind(s.class_year)
                .push_bind(s.department_id)
                .push_bind(s.max_credits)
                .push_bind(student_hash);
        },
        progress,
    )
    .await?;

    let completed: Vec<(u32, &str)> = catalog
        .students
        .iter()
        .flat_map(|s| s.completed.iter().map(move |c| (s.id, c.as_str())))
        .collect();
    insert_rows(
        conn,
        "completed courses",
        "INSERT INTO student_completed_courses (student_id, course_code) ",
        2,
        &completed,
        |row, &(student, code)| {
            row.push_bind(student).push_bind(code);
        },
        progress,
    )
    .await?;

    let admins: Vec<(&DemoAdmin, &str)> = DEMO_ADMINS
        .iter()
        .zip(hashes.admins.iter().map(String::as_str))
        .collect();
    insert_rows(
        conn,
        "admins",
        "INSERT INTO admins (username, display_name, role, password_hash) ",
        4,
        &admins,
        |row, &(admin, hash)| {
            row.push_bind(admin.username)
                .push_bind(admin.display_name)
                .push_bind(admin.role)
                .push_bind(hash);
        },
        progress,
    )
    .await?;
    Ok(())
}

/// Inserts `rows` with multi-row `INSERT ... VALUES` statements of bound
/// parameters, reporting progress after each statement.
async fn insert_rows<'r, T, B, P>(
    conn: &mut MySqlConnection,
    table: &'static str,
    head: &'static str,
    columns: usize,
    rows: &'r [T],
    mut bind: B,
    progress: &mut P,
) -> Result<(), SeedError>
where
    B: FnMut(&mut Separated<'_, 'r, MySql, &'static str>, &'r T),
    P: FnMut(Progress),
{
    let per_statement = CHUNK_ROWS.min(MAX_PLACEHOLDERS / columns.max(1));
    let mut done = 0;
    for chunk in rows.chunks(per_statement) {
        let mut insert = QueryBuilder::<MySql>::new(head);
        insert.push_values(chunk, |mut row, item| bind(&mut row, item));
        insert
            .build()
            .execute(&mut *conn)
            .await
            .map_err(|source| SeedError::Database {
                context: table,
                source,
            })?;
        done += chunk.len();
        progress(Progress {
            table,
            done,
            total: rows.len(),
        });
    }
    Ok(())
}

/// Empties every table but the migration history: the catalog, people,
/// rounds, tickets and the ledger, which all refer to seeded rows and mean
/// nothing without them. Tables added by later migrations are included.
pub async fn reset(pool: &MySqlPool) -> Result<(), SeedError> {
    let mut conn = pool.acquire().await.during("connecting for the reset")?;
    // FOREIGN_KEY_CHECKS is per session, and TRUNCATE refuses a referenced
    // table while it is on. Closing this connection afterwards guarantees it
    // never returns to the pool with the checks off, even after a failure.
    conn.close_on_drop();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' \
           AND table_name <> '_sqlx_migrations' \
         ORDER BY table_name",
    )
    .fetch_all(&mut *conn)
    .await
    .during("listing tables to reset")?;

    sqlx::raw_sql("SET FOREIGN_KEY_CHECKS = 0")
        .execute(&mut *conn)
        .await
        .during("disabling foreign key checks")?;
    for table in &tables {
        // Identifiers cannot be bound; only plain names are formatted in.
        if !table
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(SeedError::UnexpectedTable(table.clone()));
        }
        sqlx::raw_sql(&format!("TRUNCATE TABLE `{table}`"))
            .execute(&mut *conn)
            .await
            .during("truncating tables")?;
    }
    sqlx::raw_sql("SET FOREIGN_KEY_CHECKS = 1")
        .execute(&mut *conn)
        .await
        .during("re-enabling foreign key checks")?;
    Ok(())
}

/// Makes sure an open "Demo round" for every class year exists in the seeded
/// term: keeps one that is still open at `now`, else creates one that opens
/// at `now` (pre-queue a minute earlier) and closes a week later.
pub async fn ensure_demo_round(
    pool: &MySqlPool,
    now: DateTime<Utc>,
) -> Result<DemoRound, SeedError> {
    // DATETIME(3) keeps milliseconds; truncating here makes the returned
    // times equal to what was stored.
    let now = now.trunc_subsecs(3);
    let term_id: u32 = sqlx::query_scalar("SELECT id FROM terms WHERE code = ?")
        .bind(TERM_CODE)
        .fetch_optional(pool)
        .await
        .during("looking up the seeded term")?
        .ok_or(SeedError::NotSeeded)?;

    let existing: Option<(u32, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT id, opens_at, closes_at FROM rounds \
         WHERE term_id = ? AND name = ? AND state <> 'closed' AND closes_at > ? \
         ORDER BY id DESC LIMIT 1",
    )
    .bind(term_id)
    .bind(DEMO_ROUND_NAME)
    .bind(now)
    .fetch_optional(pool)
    .await
    .during("looking for the demo round")?;
    if let Some((id, opens_at, closes_at)) = existing {
        return Ok(DemoRound {
            id,
            created: false,
            opens_at,
            closes_at,
        });
    }

    let prequeue_at = now - chrono::Duration::minutes(1);
    let closes_at = now + chrono::Duration::days(7);
    let inserted = sqlx::query(
        "INSERT INTO rounds (term_id, name, eligible_years_mask, prequeue_at, opens_at, \
                             closes_at, state, admission_per_min) \
         VALUES (?, ?, ?, ?, ?, ?, 'open', ?)",
    )
    .bind(term_id)
    .bind(DEMO_ROUND_NAME)
    .bind(0x0F_u8) // class years 1 to 4
    .bind(prequeue_at)
    .bind(now)
    .bind(closes_at)
    .bind(600_u32)
    .execute(pool)
    .await
    .during("creating the demo round")?;
    Ok(DemoRound {
        id: u32::try_from(inserted.last_insert_id()).unwrap_or(u32::MAX),
        created: true,
        opens_at: now,
        closes_at,
    })
}

/// The first student number of each class year, to print as demo logins.
pub async fn demo_students(pool: &MySqlPool) -> Result<Vec<(u8, String)>, SeedError> {
    sqlx::query_as(
        "SELECT class_year, MIN(number) FROM students GROUP BY class_year ORDER BY class_year",
    )
    .fetch_all(pool)
    .await
    .during("listing demo students")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn small(seed: u64) -> SeedConfig {
        SeedConfig {
            seed,
            students: 3_000,
            sections: 600,
        }
    }

    #[test]
    fn course_numbers_are_unique_per_bucket_and_keep_their_level() {
        let numbers: HashSet<u16> = (0..COURSES_PER_BUCKET)
            .map(|k| course_number(3, k))
            .collect();
        assert_eq!(numbers.len(), usize::from(COURSES_PER_BUCKET));
        assert!(numbers.iter().all(|n| (3000..4000).contains(n)));
        assert_eq!(course_number(2, 0), 2010);
        assert_eq!(course_number(2, 98), 2990);
        assert_eq!(course_number(2, 99), 2011);
    }

    #[test]
    fn capacities_have_median_30_and_some_large_lectures() {
        let catalog = generate(&SeedConfig::default());
        let mut capacities: Vec<u32> = catalog.sections.iter().map(|s| s.capacity).collect();
        capacities.sort_unstable();
        assert_eq!(capacities[capacities.len() / 2], 30);
        assert!(capacities.iter().all(|&c| (15..=200).contains(&c)));
        let large = capacities.iter().filter(|&&c| c >= 100).count();
        assert!(large * 100 > capacities.len() * 2, "{large} large sections");
    }

    #[test]
    fn courses_have_one_to_four_sections_numbered_from_one() {
        let catalog = generate(&small(7));
        let mut per_course = vec![Vec::new(); catalog.courses.len()];
        for section in &catalog.sections {
            let course = usize::try_from(section.course_id - 1).expect("small");
            per_course[course].push(section.number);
        }
        for numbers in per_course {
            let expected: Vec<u16> = (1..=u16::try_from(numbers.len()).expect("small")).collect();
            assert_eq!(numbers, expected);
            assert!((1..=4).contains(&numbers.len()));
        }
    }

    #[test]
    fn course_codes_are_unique_and_name_their_department_and_level() {
        let catalog = generate(&SeedConfig::default());
        let codes: HashSet<&str> = catalog.courses.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(codes.len(), catalog.courses.len());
        for course in &catalog.courses {
            let department = &catalog.departments[department_index(course.department_id)];
            let digits = course
                .code
                .strip_prefix(department.code)
                .expect("department prefix");
            assert_eq!(digits.len(), 4, "{}", course.code);
            assert_eq!(digits[..1], course.level.to_string(), "{}", course.code);
        }
    }

    #[test]
    fn most_courses_are_worth_three_credits() {
        let catalog = generate(&SeedConfig::default());
        let three = catalog.courses.iter().filter(|c| c.credits == 3).count();
        assert!(three * 2 > catalog.courses.len());
        assert!(catalog.courses.iter().all(|c| (1..=4).contains(&c.credits)));
    }

    #[test]
    fn about_fifteen_percent_of_courses_have_prerequisites() {
        let catalog = generate(&SeedConfig::default());
        let with = catalog
            .courses
            .iter()
            .filter(|c| !c.prerequisites.is_empty())
            .count();
        let share = with * 100 / catalog.courses.len();
        assert!((10..=20).contains(&share), "{share}%");
    }

    #[test]
    fn student_numbers_are_unique_and_start_with_the_admission_year() {
        let catalog = generate(&SeedConfig::default());
        let numbers: HashSet<&str> = catalog.students.iter().map(|s| s.number.as_str()).collect();
        assert_eq!(numbers.len(), catalog.students.len());
        for student in &catalog.students {
            let admitted = 2028 - u32::from(student.class_year);
            assert!(
                student.number.starts_with(&admitted.to_string()),
                "{student:?}"
            );
            assert_eq!(student.number.len(), 10);
            assert!(matches!(student.max_credits, 18 | 21));
            assert!(student.name.chars().count() >= 2);
        }
    }

    #[test]
    fn only_upper_years_have_completed_courses_and_only_lower_levels() {
        let catalog = generate(&small(11));
        let level: HashMap<&str, u8> = catalog
            .courses
            .iter()
            .map(|c| (c.code.as_str(), c.level))
            .collect();
        for student in &catalog.students {
            for code in &student.completed {
                assert!(level[code.as_str()] < student.class_year, "{student:?}");
            }
        }
        assert!(catalog.students.iter().any(|s| !s.completed.is_empty()));
    }

    #[test]
    fn the_catalog_does_not_depend_on_the_student_count() {
        let few = generate(&SeedConfig {
            students: 10,
            ..small(5)
        });
        let many = generate(&SeedConfig {
            students: 5_000,
            ..small(5)
        });
        assert_eq!(few.courses, many.courses);
        assert_eq!(few.sections, many.sections);
        assert_eq!(few.students[..], many.students[..10]);
    }

    #[test]
    fn validate_rejects_empty_and_oversized_sets() {
        let zero = SeedConfig {
            sections: 0,
            ..SeedConfig::default()
        };
        assert!(matches!(zero.validate(), Err(SeedError::InvalidConfig(_))));
        let huge = SeedConfig {
            students: MAX_STUDENTS + 1,
            ..SeedConfig::default()
        };
        assert!(huge.validate().is_err());
        assert!(SeedConfig::default().validate().is_ok());
    }

    #[test]
    fn the_largest_allowed_catalog_has_every_section() {
        let catalog = generate(&SeedConfig {
            seed: 1,
            students: 0,
            sections: MAX_SECTIONS,
        });
        assert_eq!(
            catalog.sections.len(),
            usize::try_from(MAX_SECTIONS).expect("fits")
        );
    }

    #[test]
    fn progress_reads_as_table_done_total() {
        let p = Progress {
            table: "students",
            done: 20_000,
            total: 40_000,
        };
        assert_eq!(p.to_string(), "students 20000/40000");
    }
}
