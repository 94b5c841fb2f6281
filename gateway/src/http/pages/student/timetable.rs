//! The weekly timetable: the sections a student holds on a weekday ×
//! 15-minute grid, with the cart previewed on top on request, and a
//! "change section" form per section held (a swap: both or neither).

use super::commands::form_key;
use super::{current_pass, load_student, title};
use crate::catalog::{self, Section};
use crate::error::ApiResult;
use crate::i18n::Lang;
use crate::web::{self, Chrome, Ctx};
use crate::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use std::sync::Arc;

/// Grid rows are this many minutes.
const SLOT_MIN: u16 = 15;

/// A section's meeting drawn on the timetable.
#[derive(Debug)]
pub struct Block {
    pub rows: u16,
    pub code: String,
    pub title: String,
    pub room: String,
    pub time: String,
    pub color: usize,
    /// A cart section shown on top of the enrolled ones.
    pub preview: bool,
}

/// One cell of the timetable table.
#[derive(Debug)]
pub enum Cell {
    Empty,
    /// Covered by a block that started in an earlier row.
    Covered,
    Block(Block),
}

impl Cell {
    pub fn block(&self) -> Option<&Block> {
        match self {
            Cell::Block(b) => Some(b),
            _ => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Cell::Empty)
    }
}

#[derive(Debug)]
pub struct GridRow {
    pub label: String,
    pub hour: bool,
    pub cells: Vec<Cell>,
}

/// A section held, with the other sections of its course to change to.
#[derive(Debug)]
pub struct Change {
    pub id: u32,
    pub name: String,
    pub others: Vec<Other>,
}

/// Another section of the same course, as the change form offers it.
#[derive(Debug)]
pub struct Other {
    pub id: u32,
    pub label: String,
}

/// For each section held, the other sections of its course among `all`
/// (the catalog, in its order), with their times and seats left.
pub fn changes(
    lang: Lang,
    all: &[Arc<Section>],
    held: &[Arc<Section>],
    seats_left: &dyn Fn(u32) -> u32,
) -> Vec<Change> {
    held.iter()
        .map(|h| Change {
            id: h.id,
            name: format!("{}-{:02} {}", h.code, h.number, title(h, lang)),
            others: all
                .iter()
                .filter(|s| s.course_id == h.course_id && s.id != h.id)
                .map(|s| Other {
                    id: s.id,
                    label: format!(
                        "{}-{:02} · {} · {} {}",
                        s.code,
                        s.number,
                        catalog::meetings_text(&s.meetings, lang),
                        lang.t("남은 자리", "seats left"),
                        seats_left(s.id)
                    ),
                })
                .collect(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "timetable.html")]
struct TimetablePage {
    chrome: Chrome,
    changes: Vec<Change>,
    /// The change forms are live only while the student holds a pass.
    pass_until: Option<String>,
    form_key: String,
    days: Vec<&'static str>,
    rows: Vec<GridRow>,
    unplaced: Vec<String>,
    online: Vec<String>,
    credits: u32,
    with_cart: bool,
    empty: bool,
}

#[derive(Debug, Deserialize)]
pub struct TimetableQuery {
    pub cart: Option<String>,
}

/// Lays sections out on a weekday × 15-minute grid. Sections that would
/// overlap one already placed (possible only in a cart preview) are not
/// drawn but listed, and sections without meetings are listed apart.
pub fn layout(
    lang: Lang,
    sections: &[(Arc<Section>, bool)],
) -> (Vec<&'static str>, Vec<GridRow>, Vec<String>, Vec<String>) {
    let last_day = sections
        .iter()
        .flat_map(|(s, _)| s.meetings.iter().map(|m| m.weekday))
        .max()
        .unwrap_or(5)
        .max(5);
    let days: Vec<u8> = (1..=last_day).collect();
    let start = sections
        .iter()
        .flat_map(|(s, _)| s.meetings.iter().map(|m| m.start_min))
        .min()
        .unwrap_or(540)
        .min(540)
        / 60
        * 60;
    let end = sections
        .iter()
        .flat_map(|(s, _)| s.meetings.iter().map(|m| m.end_min))
        .max()
        .unwrap_or(1080)
        .max(1080)
        .div_ceil(60)
        * 60;
    let n_rows = usize::from((end - start) / SLOT_MIN);
    let mut cells: Vec<Vec<Cell>> = (0..n_rows)
        .map(|_| days.iter().map(|_| Cell::Empty).collect())
        .collect();
    let mut unplaced = Vec::new();
    let mut online = Vec::new();
    for (i, (s, preview)) in sections.iter().enumerate() {
        let name = format!("{}-{:02} {}", s.code, s.number, title(s, lang));
        if s.meetings.is_empty() {
            online.push(name);
            continue;
        }
        for m in &s.meetings {
            let day = usize::from(m.weekday - 1);
            let first = usize::from((m.start_min - start) / SLOT_MIN);
            let last = usize::from((m.end_min - start).div_ceil(SLOT_MIN)).min(n_rows);
            let free = (first..last).all(|r| matches!(cells[r][day], Cell::Empty));
            if !free || first >= last {
                unplaced.push(format!("{name} ({})", catalog::meeting_text(m, lang)));
                continue;
            }
            cells[first][day] = Cell::Block(Block {
                rows: u16::try_from(last - first).unwrap_or(1),
                code: format!("{}-{:02}", s.code, s.number),
                title: title(s, lang),
                room: s.room.clone(),
                time: format!(
                    "{}-{}",
                    catalog::hhmm(m.start_min),
                    catalog::hhmm(m.end_min)
                ),
                color: i % 8,
                preview: *preview,
            });
            for row in cells.iter_mut().take(last).skip(first + 1) {
                row[day] = Cell::Covered;
            }
        }
    }
    let rows = cells
        .into_iter()
        .enumerate()
        .map(|(r, cells)| {
            let at = start + SLOT_MIN * u16::try_from(r).unwrap_or(0);
            GridRow {
                label: catalog::hhmm(at),
                hour: at.is_multiple_of(60),
                cells,
            }
        })
        .collect();
    let names = days
        .iter()
        .map(|&d| catalog::weekday_name(d, lang))
        .collect();
    (names, rows, unplaced, online)
}

/// `GET /timetable` (`?cart=1` previews the cart on top).
pub async fn page(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    jar: CookieJar,
    Query(q): Query<TimetableQuery>,
) -> ApiResult<Response> {
    let ctx = ctx.in_section("timetable");
    let (student, _) = ctx.student()?;
    let lang = ctx.lang();
    let me = load_student(&app, student).await?;
    let catalog = app.catalog.covering(&me.sections()).await;
    let with_cart = q.cart.as_deref().is_some_and(|v| !v.is_empty() && v != "0");
    let mut sections: Vec<(Arc<Section>, bool)> = me
        .standing
        .enrolled
        .iter()
        .filter_map(|id| catalog.section(*id).map(|s| (Arc::clone(s), false)))
        .collect();
    let credits = sections.iter().map(|(s, _)| u32::from(s.credits)).sum();
    let held: Vec<Arc<Section>> = sections.iter().map(|(s, _)| Arc::clone(s)).collect();
    let changes = changes(lang, &catalog.sections, &held, &|id| {
        app.catalog.seats_of(id).left()
    });
    let pass_until = current_pass(&app, &headers, &jar, student)
        .await
        .map(|p| ctx.chrome.at_ms(p.exp));
    if with_cart {
        sections.extend(
            me.to_enroll()
                .filter_map(|id| catalog.section(id).map(|s| (Arc::clone(s), true))),
        );
    }
    let (days, rows, unplaced, online) = layout(lang, &sections);
    web::page(TimetablePage {
        chrome: ctx.chrome,
        changes,
        pass_until,
        form_key: form_key(),
        empty: sections.is_empty(),
        days,
        rows,
        unplaced,
        online,
        credits,
        with_cart,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{m, sec};
    use super::*;

    #[test]
    fn change_offers_the_other_sections_of_the_same_course() {
        let a = sec(1, 1, 3, vec![m(1, 540, 615)]);
        let mut a2 = (*sec(2, 1, 3, vec![m(2, 540, 615)])).clone();
        a2.number = 2;
        let other_course = sec(3, 2, 3, vec![]);
        let all = vec![Arc::clone(&a), Arc::new(a2), other_course];
        let found = changes(Lang::En, &all, &[a], &|_| 4);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, 1);
        let offered: Vec<u32> = found[0].others.iter().map(|o| o.id).collect();
        assert_eq!(offered, [2]);
        assert!(
            found[0].others[0].label.contains("seats left 4"),
            "{}",
            found[0].others[0].label
        );
    }

    #[test]
    fn timetable_places_blocks_and_lists_conflicts() {
        let sections = vec![
            (sec(1, 1, 3, vec![m(1, 540, 615), m(3, 540, 615)]), false),
            (sec(2, 2, 3, vec![m(1, 600, 700)]), true),
            (sec(3, 3, 3, vec![]), false),
        ];
        let (days, rows, unplaced, online) = layout(Lang::En, &sections);
        assert_eq!(days.len(), 5);
        assert_eq!(rows[0].label, "09:00");
        assert_eq!(rows[0].cells[0].block().map(|b| b.rows), Some(5));
        assert!(matches!(rows[1].cells[0], Cell::Covered));
        assert_eq!(unplaced.len(), 1);
        assert_eq!(online.len(), 1);
    }
}
