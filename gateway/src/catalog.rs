//! The course catalog as each gateway keeps it in memory, so that search,
//! the cart and the timetable never query MySQL per keystroke.
//!
//! Two refreshes with different costs: seat counts (one narrow read of
//! `sections`) every [`SEATS_EVERY`], and the full catalog (courses,
//! sections, meetings, prerequisites) every [`CATALOG_EVERY`] or at once
//! after a registrar edit on this gateway. Other gateways see an edit at
//! their next full refresh; seat counts shown are at most a couple of
//! seconds old, which the page says. Readers clone an `Arc` under a lock
//! held for a pointer copy, never across an `.await`.

use crate::db::catalog::{self as db_catalog, CatalogRows};
pub use crate::db::catalog::{Department, Seats};
use crate::db::MySqlStore;
use enrollment::rules::Meeting;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often seat counts are re-read.
pub const SEATS_EVERY: Duration = Duration::from_millis(1500);

/// How often the whole catalog is re-read.
pub const CATALOG_EVERY: Duration = Duration::from_secs(15);

/// Longest a page waits for a reload that brings a student's own sections.
pub const COVER_WAIT: Duration = Duration::from_secs(1);

/// One section with everything search and the cart show.
#[derive(Debug, Clone)]
pub struct Section {
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
    pub meetings: Vec<Meeting>,
    pub prerequisites: Vec<String>,
    /// Lower-cased code, titles and instructor, for substring search.
    haystack: String,
}

/// The catalog as of one full refresh.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Sorted by course code, then section number.
    pub sections: Vec<Arc<Section>>,
    by_id: HashMap<u32, usize>,
    pub departments: Vec<Department>,
}

impl Catalog {
    pub fn section(&self, id: u32) -> Option<&Arc<Section>> {
        self.by_id.get(&id).and_then(|&i| self.sections.get(i))
    }
}

/// What a student searches for. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Matched case-insensitively against code, titles and instructor.
    pub text: Option<String>,
    pub department: Option<String>,
    pub weekday: Option<u8>,
    /// Meetings start at or after this minute of the day.
    pub from_min: Option<u16>,
    /// Meetings end at or before this minute of the day.
    pub to_min: Option<u16>,
    pub credits: Option<u8>,
    /// Only sections with a free seat.
    pub open_only: bool,
}

impl Filter {
    fn matches(&self, s: &Section, seats: Seats) -> bool {
        if let Some(text) = &self.text {
            if !s.haystack.contains(text.as_str()) {
                return false;
            }
        }
        if let Some(d) = &self.department {
            if !s.department.eq_ignore_ascii_case(d) {
                return false;
            }
        }
        if let Some(c) = self.credits {
            if s.credits != c {
                return false;
            }
        }
        if self.open_only && (seats.closed || seats.left() == 0) {
            return false;
        }
        if let Some(day) = self.weekday {
            if !s.meetings.iter().any(|m| m.weekday == day) {
                return false;
            }
        }
        if self.from_min.is_some() || self.to_min.is_some() {
            // A time window asks for sections that fit inside it; online
            // sections (no meetings) fit anywhere.
            let relevant = s
                .meetings
                .iter()
                .filter(|m| self.weekday.is_none_or(|d| m.weekday == d));
            for m in relevant {
                if self.from_min.is_some_and(|f| m.start_min < f)
                    || self.to_min.is_some_and(|t| m.end_min > t)
                {
                    return false;
                }
            }
        }
        true
    }
}

/// A page of search results.
#[derive(Debug)]
pub struct Found {
    pub sections: Vec<(Arc<Section>, Seats)>,
    pub total: usize,
}

/// The shared cache.
#[derive(Debug, Default)]
pub struct CatalogCache {
    catalog: RwLock<Arc<Catalog>>,
    seats: RwLock<Arc<HashMap<u32, Seats>>>,
    /// Students waiting on each section's waitlist (sections without a
    /// line are absent), refreshed with the seats.
    waitlists: RwLock<Arc<HashMap<u32, u32>>>,
    reload: Notify,
    loaded: std::sync::atomic::AtomicBool,
}

impl CatalogCache {
    pub fn catalog(&self) -> Arc<Catalog> {
        match self.catalog.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    pub fn seats(&self) -> Arc<HashMap<u32, Seats>> {
        match self.seats.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Whether the first full load finished.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Asks for a full reload now (after a registrar edit).
    pub fn invalidate(&self) {
        self.reload.notify_one();
    }

    /// The catalog, reloaded first if it lacks any of `sections` (opened
    /// since the last refresh, perhaps through another gateway). Waits at
    /// most [`COVER_WAIT`]; a student's own cart and enrollments must not
    /// silently vanish from their pages.
    pub async fn covering(&self, sections: &[u32]) -> Arc<Catalog> {
        let knows_all = |c: &Catalog| sections.iter().all(|&id| c.section(id).is_some());
        let catalog = self.catalog();
        if knows_all(&catalog) {
            return catalog;
        }
        self.invalidate();
        let deadline = tokio::time::Instant::now() + COVER_WAIT;
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let catalog = self.catalog();
            if knows_all(&catalog) || tokio::time::Instant::now() >= deadline {
                return catalog;
            }
        }
    }

    /// Students waiting on `section`'s waitlist, as of the last seat
    /// refresh.
    pub fn waiting_of(&self, section: u32) -> u32 {
        let lines = match self.waitlists.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        };
        lines.get(&section).copied().unwrap_or(0)
    }

    /// Seats of `section` (zeros when unknown).
    pub fn seats_of(&self, section: u32) -> Seats {
        self.seats().get(&section).copied().unwrap_or_default()
    }

    /// Sections matching `filter`, `per_page` at a time (page 1-based).
    pub fn search(&self, filter: &Filter, page: usize, per_page: usize) -> Found {
        let catalog = self.catalog();
        let seats = self.seats();
        let skip = page.saturating_sub(1).saturating_mul(per_page);
        let mut total = 0;
        let mut sections = Vec::with_capacity(per_page);
        for s in &catalog.sections {
            let st = seats.get(&s.id).copied().unwrap_or_default();
            if filter.matches(s, st) {
                if total >= skip && sections.len() < per_page {
                    sections.push((Arc::clone(s), st));
                }
                total += 1;
            }
        }
        Found { sections, total }
    }

    fn publish_catalog(&self, catalog: Catalog) {
        let catalog = Arc::new(catalog);
        match self.catalog.write() {
            Ok(mut g) => *g = catalog,
            Err(p) => *p.into_inner() = catalog,
        }
        self.loaded
            .store(true, std::sync::atomic::Ordering::Release);
    }

    fn publish_seats(&self, seats: HashMap<u32, Seats>, waitlists: HashMap<u32, u32>) {
        let seats = Arc::new(seats);
        match self.seats.write() {
            Ok(mut g) => *g = seats,
            Err(p) => *p.into_inner() = seats,
        }
        let waitlists = Arc::new(waitlists);
        match self.waitlists.write() {
            Ok(mut g) => *g = waitlists,
            Err(p) => *p.into_inner() = waitlists,
        }
    }
}

impl Catalog {
    /// A catalog of `sections`, for unit tests.
    #[cfg(test)]
    pub fn for_tests(sections: Vec<Section>) -> Catalog {
        let mut c = Catalog {
            sections: Vec::new(),
            by_id: HashMap::new(),
            departments: Vec::new(),
        };
        for s in sections {
            c.by_id.insert(s.id, c.sections.len());
            c.sections.push(Arc::new(s));
        }
        c
    }
}

/// Keeps `cache` fresh until `shutdown`.
pub async fn refresh(
    store: Arc<MySqlStore>,
    cache: Arc<CatalogCache>,
    shutdown: CancellationToken,
) {
    let mut seats = tokio::time::interval(SEATS_EVERY);
    seats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut full = tokio::time::interval(CATALOG_EVERY);
    full.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = full.tick() => load_all(&store, &cache).await,
            _ = cache.reload.notified() => load_all(&store, &cache).await,
            _ = seats.tick() => load_seats(&store, &cache).await,
        };
        match result {
            Ok(()) if failing => {
                tracing::info!("catalog cache refreshed again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "catalog cache refresh failed; pages show the last copy");
                }
                failing = true;
            }
        }
    }
}

/// Seats first, then the catalog: a section that appears in the catalog
/// always has its seat counts, so a fresh import never shows as full.
async fn load_all(store: &MySqlStore, cache: &CatalogCache) -> Result<(), crate::db::StoreError> {
    load_seats(store, cache).await?;
    load_catalog(store, cache).await
}

async fn load_seats(store: &MySqlStore, cache: &CatalogCache) -> Result<(), crate::db::StoreError> {
    let (seats, waitlists) =
        tokio::try_join!(db_catalog::seats(store), db_catalog::waitlists(store))?;
    cache.publish_seats(seats, waitlists);
    Ok(())
}

async fn load_catalog(
    store: &MySqlStore,
    cache: &CatalogCache,
) -> Result<(), crate::db::StoreError> {
    let CatalogRows {
        sections,
        mut meetings,
        prerequisites,
        departments,
    } = db_catalog::load(store).await?;
    let mut catalog = Catalog {
        sections: Vec::with_capacity(sections.len()),
        by_id: HashMap::with_capacity(sections.len()),
        departments,
    };
    for r in sections {
        let haystack =
            format!("{} {} {} {}", r.code, r.title_ko, r.title_en, r.instructor).to_lowercase();
        catalog.by_id.insert(r.id, catalog.sections.len());
        catalog.sections.push(Arc::new(Section {
            id: r.id,
            course_id: r.course_id,
            credits: r.credits,
            department: r.department,
            number: r.number,
            room: r.room,
            meetings: meetings.remove(&r.id).unwrap_or_default(),
            prerequisites: prerequisites.get(&r.course_id).cloned().unwrap_or_default(),
            code: r.code,
            title_ko: r.title_ko,
            title_en: r.title_en,
            instructor: r.instructor,
            haystack,
        }));
    }
    cache.publish_catalog(catalog);
    // Seats of new sections should not wait for the next seat tick.
    load_seats(store, cache).await
}

/// `Mon 09:00-10:15`-style text of a meeting, in either language.
pub fn meeting_text(m: &Meeting, lang: crate::i18n::Lang) -> String {
    format!(
        "{} {}-{}",
        weekday_name(m.weekday, lang),
        hhmm(m.start_min),
        hhmm(m.end_min)
    )
}

/// All meetings of a section, or "online" when it has none.
pub fn meetings_text(ms: &[Meeting], lang: crate::i18n::Lang) -> String {
    if ms.is_empty() {
        return lang
            .t("시간 미정(온라인)", "no fixed time (online)")
            .to_string();
    }
    ms.iter()
        .map(|m| meeting_text(m, lang))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Short weekday names, 1 = Monday.
pub fn weekday_name(day: u8, lang: crate::i18n::Lang) -> &'static str {
    const KO: [&str; 7] = ["월", "화", "수", "목", "금", "토", "일"];
    const EN: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let i = usize::from(day.clamp(1, 7) - 1);
    match lang {
        crate::i18n::Lang::Ko => KO[i],
        crate::i18n::Lang::En => EN[i],
    }
}

/// Minutes after midnight as `HH:MM`.
pub fn hhmm(min: u16) -> String {
    format!("{:02}:{:02}", min / 60, min % 60)
}

/// Parses `HH:MM` (or `H`, `HH`) into minutes after midnight.
pub fn parse_hhmm(s: &str) -> Option<u16> {
    let s = s.trim();
    let (h, m) = match s.split_once(':') {
        Some((h, m)) => (h.parse::<u16>().ok()?, m.parse::<u16>().ok()?),
        None => (s.parse::<u16>().ok()?, 0),
    };
    (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
}

/// Parses a weekday in English or Korean, or 1-7.
pub fn parse_weekday(s: &str) -> Option<u8> {
    let s = s.trim().to_lowercase();
    let names: [(&[&str], u8); 7] = [
        (&["1", "mon", "monday", "월", "월요일"], 1),
        (&["2", "tue", "tuesday", "화", "화요일"], 2),
        (&["3", "wed", "wednesday", "수", "수요일"], 3),
        (&["4", "thu", "thursday", "목", "목요일"], 4),
        (&["5", "fri", "friday", "금", "금요일"], 5),
        (&["6", "sat", "saturday", "토", "토요일"], 6),
        (&["7", "sun", "sunday", "일", "일요일"], 7),
    ];
    names
        .iter()
        .find(|(n, _)| n.contains(&s.as_str()))
        .map(|&(_, d)| d)
}

/// Parses meeting times such as `Mon 09:00-10:15; Wed 09:00-10:15` (also
/// `월 9:00-10:15`). Empty text means no meetings.
pub fn parse_meetings(s: &str) -> Result<Vec<Meeting>, String> {
    let mut out = Vec::new();
    for part in s
        .split([';', ',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (day, span) = part.split_once(char::is_whitespace).ok_or_else(|| {
            format!("{part:?}: expected a weekday and a time span like Mon 09:00-10:15")
        })?;
        let weekday = parse_weekday(day).ok_or_else(|| format!("{day:?} is not a weekday"))?;
        let (a, b) = span
            .trim()
            .split_once('-')
            .ok_or_else(|| format!("{span:?}: expected start-end like 09:00-10:15"))?;
        let start_min = parse_hhmm(a).ok_or_else(|| format!("{a:?} is not a time of day"))?;
        let end_min = parse_hhmm(b).ok_or_else(|| format!("{b:?} is not a time of day"))?;
        if start_min >= end_min {
            return Err(format!("{part:?}: the end must be after the start"));
        }
        out.push(Meeting {
            weekday,
            start_min,
            end_min,
        });
    }
    Ok(out)
}

/// The inverse of [`parse_meetings`], in English day names.
pub fn format_meetings(ms: &[Meeting]) -> String {
    ms.iter()
        .map(|m| meeting_text(m, crate::i18n::Lang::En))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A plain three-credit section with no meetings.
    pub fn section() -> Section {
        Section {
            id: 1,
            course_id: 1,
            code: "CSE2010".into(),
            title_ko: "자료구조".into(),
            title_en: "Data Structures".into(),
            credits: 3,
            department: "CSE".into(),
            number: 1,
            instructor: "Kim".into(),
            room: String::new(),
            haystack: "cse2010 자료구조 data structures kim".into(),
            meetings: Vec::new(),
            prerequisites: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(meetings: Vec<Meeting>) -> Section {
        Section {
            meetings,
            ..tests_support::section()
        }
    }

    fn mtg(weekday: u8, start_min: u16, end_min: u16) -> Meeting {
        Meeting {
            weekday,
            start_min,
            end_min,
        }
    }

    #[test]
    fn filters_by_text_day_time_and_seats() {
        let s = section(vec![mtg(1, 540, 615), mtg(3, 540, 615)]);
        let seats = Seats {
            capacity: 10,
            enrolled: 3,
            closed: false,
        };
        let f = |f: Filter| f.matches(&s, seats);
        assert!(f(Filter::default()));
        assert!(f(Filter {
            text: Some("data".into()),
            ..Default::default()
        }));
        assert!(f(Filter {
            text: Some("자료".into()),
            ..Default::default()
        }));
        assert!(!f(Filter {
            weekday: Some(2),
            ..Default::default()
        }));
        assert!(f(Filter {
            weekday: Some(3),
            from_min: Some(540),
            to_min: Some(615),
            ..Default::default()
        }));
        assert!(!f(Filter {
            from_min: Some(600),
            ..Default::default()
        }));
        assert!(!Filter {
            open_only: true,
            ..Default::default()
        }
        .matches(
            &s,
            Seats {
                capacity: 3,
                enrolled: 3,
                closed: false
            }
        ));
    }

    #[test]
    fn parses_and_formats_meetings() {
        let ms = parse_meetings("Mon 09:00-10:15; 수 9:00-10:15").unwrap();
        assert_eq!(ms, vec![mtg(1, 540, 615), mtg(3, 540, 615)]);
        assert_eq!(format_meetings(&ms), "Mon 09:00-10:15; Wed 09:00-10:15");
        assert!(parse_meetings("").unwrap().is_empty());
        assert!(parse_meetings("Mon 10:00-09:00").is_err());
        assert!(parse_meetings("Funday 10:00-11:00").is_err());
        assert!(parse_meetings("Mon 25:00-26:00").is_err());
    }
}
