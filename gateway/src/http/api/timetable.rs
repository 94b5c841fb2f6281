//! `GET /api/timetable`: the signed-in student's week as a list of
//! meetings (apps draw their own grid), the cart previewed on request.

use super::enrollments::mine;
use crate::catalog::{self, Section};
use crate::error::ApiResult;
use crate::http::api::openapi::responses::{
    Forbidden, Internal, TooMany, Unauthorized, Unavailable,
};
use crate::session::StudentSession;
use crate::AppState;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimetableQuery {
    /// Any value but `0`, `false` or empty: the cart's sections too, marked
    /// `preview`.
    pub cart: Option<String>,
}

/// One meeting of a section in the week.
#[derive(Debug, Serialize, ToSchema)]
pub struct Slot {
    pub section_id: u32,
    pub code: String,
    pub number: u16,
    pub title_ko: String,
    pub title_en: String,
    pub room: String,
    /// 1 = Monday.
    pub weekday: u8,
    /// `HH:MM`.
    pub start: String,
    pub end: String,
    pub start_min: u16,
    pub end_min: u16,
    /// A cart section, not held.
    pub preview: bool,
}

/// The week.
#[derive(Debug, Serialize, ToSchema)]
pub struct Timetable {
    /// Ordered by weekday, then start.
    pub slots: Vec<Slot>,
    /// Sections without fixed times (online), by id.
    pub unscheduled: Vec<u32>,
    /// Credits held (the preview not counted).
    pub credits: u32,
}

/// The meetings of `sections` in weekday and time order.
pub fn week(sections: &[(Arc<Section>, bool)]) -> Timetable {
    let mut slots = Vec::new();
    let mut unscheduled = Vec::new();
    for (s, preview) in sections {
        if s.meetings.is_empty() {
            unscheduled.push(s.id);
        }
        for m in &s.meetings {
            slots.push(Slot {
                section_id: s.id,
                code: s.code.clone(),
                number: s.number,
                title_ko: s.title_ko.clone(),
                title_en: s.title_en.clone(),
                room: s.room.clone(),
                weekday: m.weekday,
                start: catalog::hhmm(m.start_min),
                end: catalog::hhmm(m.end_min),
                start_min: m.start_min,
                end_min: m.end_min,
                preview: *preview,
            });
        }
    }
    slots.sort_by_key(|s| (s.weekday, s.start_min, s.preview, s.section_id));
    let credits = sections
        .iter()
        .filter(|(_, preview)| !preview)
        .map(|(s, _)| u32::from(s.credits))
        .sum();
    Timetable {
        slots,
        unscheduled,
        credits,
    }
}

/// The signed-in student's timetable.
#[utoipa::path(
    get,
    path = "/api/timetable",
    tag = "student",
    params(TimetableQuery),
    security(("session" = [])),
    responses(
        (status = 200, description = "The week", body = Timetable),
        Unauthorized,
        Forbidden,
        TooMany,
        Internal,
        Unavailable,
    )
)]
pub async fn show(
    State(app): State<AppState>,
    me: StudentSession,
    Query(q): Query<TimetableQuery>,
) -> ApiResult<Json<Timetable>> {
    app.limits.check_reads(me.id)?;
    let with_cart = q
        .cart
        .as_deref()
        .map(str::trim)
        .is_some_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"));
    let mine = mine(&app, me.id).await?;
    let mut sections: Vec<(Arc<Section>, bool)> =
        mine.held().map(|s| (Arc::clone(s), false)).collect();
    if with_cart {
        sections.extend(mine.to_enroll().map(|s| (Arc::clone(s), true)));
    }
    Ok(Json(week(&sections)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use enrollment::rules::Meeting;

    fn sec(id: u32, credits: u8, meetings: Vec<Meeting>) -> Arc<Section> {
        let mut s = crate::catalog::tests_support::section();
        s.id = id;
        s.credits = credits;
        s.meetings = meetings;
        Arc::new(s)
    }

    #[test]
    fn the_week_is_in_order_and_previews_add_no_credits() {
        let m = |weekday, start_min, end_min| Meeting {
            weekday,
            start_min,
            end_min,
        };
        let t = week(&[
            (sec(1, 3, vec![m(3, 540, 615), m(1, 600, 675)]), false),
            (sec(2, 2, vec![m(1, 540, 590)]), true),
            (sec(3, 1, vec![]), false),
        ]);
        let order: Vec<(u8, u32)> = t.slots.iter().map(|s| (s.weekday, s.section_id)).collect();
        assert_eq!(order, vec![(1, 2), (1, 1), (3, 1)]);
        assert_eq!(t.slots[0].start, "09:00");
        assert!(t.slots[0].preview);
        assert_eq!(t.unscheduled, vec![3]);
        assert_eq!(t.credits, 4);
    }
}
