//! The cart (장바구니): the page with its warnings, computed with the
//! worker's own rules, the lines the student waits in, and the add,
//! remove and "join the waitlist if full" forms.

use super::commands::form_key;
use super::{current_pass, load_student, section_number, slots_of, student_form, title};
use crate::catalog::{self, Seats, Section};
use crate::db::{self, cart::Added};
use crate::error::ApiResult;
use crate::i18n::outcomes::{place_in_line, reason_text};
use crate::i18n::student::{cart_notice, overlaps_in_cart, same_course_in_cart};
use crate::i18n::Lang;
use crate::web::{self, Chrome, Ctx};
use crate::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use axum_extra::extract::cookie::CookieJar;
use enrollment::rules::{self, Held, SectionInfo, StudentState};
use enrollment::{CourseId, Reason, SectionId, MAX_ALTERNATES, MAX_CART_SECTIONS};
use serde::Deserialize;
use std::sync::Arc;

/// One warning about a cart item, in words.
#[derive(Debug, Clone)]
pub struct Warning {
    pub code: &'static str,
    pub text: String,
}

/// A cart or enrolled section as the cart page shows it.
struct Item {
    id: u32,
    code: String,
    title: String,
    number: u16,
    credits: u8,
    times: String,
    instructor: String,
    left: u32,
    capacity: u32,
    warnings: Vec<Warning>,
    slots: String,
    course_id: u32,
    /// One `<select>` per alternate slot: (section, label, chosen) for
    /// each other section of the course.
    alternate_slots: Vec<Vec<(u32, String, bool)>>,
    /// The item asks for the waitlist when full.
    waitlist: bool,
}

/// A line the student waits in, with their place.
pub(super) struct PlaceRow {
    pub section_id: u32,
    pub section: String,
    pub place: String,
}

/// The student's places in line, in words.
pub(super) fn place_rows(places: Vec<db::waitlist::Place>, lang: Lang) -> Vec<PlaceRow> {
    places
        .into_iter()
        .map(|p| PlaceRow {
            section_id: p.section_id,
            section: format!("{}-{:02}", p.course_code, p.section_number),
            place: place_in_line(p.position, p.waiting, lang),
        })
        .collect()
}

/// The cart's warnings, computed with the worker's own rules so that what
/// the page warns about is what the worker will refuse.
///
/// For each cart item: the rules against what the student already holds
/// (closed, same course, time conflict, prerequisites, credit limit), then
/// the cart against itself (two sections of one course, overlapping
/// meetings), and the whole cart against the credit maximum.
pub fn cart_warnings(
    lang: Lang,
    held: &[Arc<Section>],
    cart: &[(Arc<Section>, Seats)],
    completed: &[String],
    max_credits: u8,
) -> (Vec<Vec<Warning>>, Option<Warning>) {
    let info = |s: &Section, seats: Seats| SectionInfo {
        id: SectionId(s.id),
        course_id: CourseId(s.course_id),
        credits: s.credits,
        closed: seats.closed,
        capacity: seats.capacity,
        enrolled: seats.enrolled,
        meetings: s.meetings.clone(),
        prerequisites: s.prerequisites.clone(),
    };
    let state = StudentState {
        class_year: 0,
        max_credits,
        completed: completed.to_vec(),
        held: held
            .iter()
            .map(|s| Held {
                section_id: SectionId(s.id),
                course_id: CourseId(s.course_id),
                credits: s.credits,
                meetings: s.meetings.clone(),
            })
            .collect(),
    };
    let reason = |r: Reason| Warning {
        code: r.code(),
        text: reason_text(r, lang).to_string(),
    };
    let mut out = Vec::with_capacity(cart.len());
    for (i, (s, seats)) in cart.iter().enumerate() {
        let mut w = Vec::new();
        let si = info(s, *seats);
        match rules::check_enroll(&state, &si) {
            Ok(()) => {}
            // The whole-cart credit warning below says it better.
            Err(Reason::CreditLimit) => {}
            Err(r) => w.push(reason(r)),
        }
        if !seats.closed && rules::check_seat(&si).is_err() {
            w.push(reason(Reason::Full));
        }
        for (j, (other, _)) in cart.iter().enumerate() {
            if i == j {
                continue;
            }
            if other.course_id == s.course_id {
                w.push(Warning {
                    code: "duplicate_course",
                    text: format!(
                        "{} {} ({})",
                        same_course_in_cart(lang),
                        other.code,
                        other.number
                    ),
                });
            } else if s
                .meetings
                .iter()
                .any(|m| other.meetings.iter().any(|n| m.overlaps(n)))
            {
                w.push(Warning {
                    code: "time_overlap",
                    text: format!(
                        "{} {} ({})",
                        overlaps_in_cart(lang),
                        other.code,
                        other.number
                    ),
                });
            }
        }
        out.push(w);
    }
    let total: u32 = state.credits() + cart.iter().map(|(s, _)| u32::from(s.credits)).sum::<u32>();
    let over = (total > u32::from(max_credits)).then(|| Warning {
        code: "credit_limit",
        text: format!(
            "{} ({total} / {max_credits})",
            reason_text(Reason::CreditLimit, lang)
        ),
    });
    (out, over)
}

/// A round the student can join now, for the "go to the queue" link.
struct OpenRound {
    id: u32,
    name: String,
}

#[derive(Template)]
#[template(path = "cart.html")]
struct CartPage {
    chrome: Chrome,
    number: String,
    name: String,
    items: Vec<Item>,
    enrolled: Vec<Item>,
    cart_credits: u32,
    enrolled_credits: u32,
    max_credits: u8,
    over: Option<Warning>,
    pass_until: Option<String>,
    rounds: Vec<OpenRound>,
    message: Option<String>,
    cart_full: bool,
    /// The enroll and drop forms' idempotency key.
    form_key: String,
    places: Vec<PlaceRow>,
}

#[derive(Debug, Deserialize)]
pub struct CartQuery {
    pub msg: Option<String>,
}

fn item(s: &Section, seats: Seats, lang: Lang, warnings: Vec<Warning>) -> Item {
    Item {
        id: s.id,
        code: s.code.clone(),
        title: title(s, lang),
        number: s.number,
        credits: s.credits,
        times: catalog::meetings_text(&s.meetings, lang),
        instructor: s.instructor.clone(),
        left: seats.left(),
        capacity: seats.capacity,
        warnings,
        slots: slots_of(&s.meetings),
        course_id: s.course_id,
        waitlist: false,
        alternate_slots: Vec::new(),
    }
}

/// The alternate pickers of a cart item: as many slots as there are other
/// sections of its course (at most [`MAX_ALTERNATES`]), each listing them,
/// with the stored choice selected.
fn alternate_slots(
    catalog: &catalog::Catalog,
    app: &AppState,
    s: &Section,
    chosen: &[u32],
    lang: Lang,
) -> Vec<Vec<(u32, String, bool)>> {
    let others: Vec<&Arc<Section>> = catalog
        .sections
        .iter()
        .filter(|o| o.course_id == s.course_id && o.id != s.id)
        .collect();
    (0..others.len().min(MAX_ALTERNATES))
        .map(|k| {
            others
                .iter()
                .map(|o| {
                    let seats = app.catalog.seats_of(o.id);
                    let label = format!(
                        "{}-{:02} ({} {}/{})",
                        o.code,
                        o.number,
                        lang.t("여석", "seats"),
                        seats.left(),
                        seats.capacity
                    );
                    (o.id, label, chosen.get(k) == Some(&o.id))
                })
                .collect()
        })
        .collect()
}

/// `GET /cart`
pub async fn page(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    jar: CookieJar,
    Query(q): Query<CartQuery>,
) -> ApiResult<Response> {
    let ctx = ctx.in_section("cart");
    let (student, class_year) = ctx.student()?;
    let lang = ctx.lang();
    let (me, cart_items) = tokio::try_join!(load_student(&app, student), async {
        Ok(db::cart::items(&app.store, student).await?)
    },)?;
    let catalog = app.catalog.covering(&me.sections()).await;
    let held: Vec<Arc<Section>> = me
        .standing
        .enrolled
        .iter()
        .filter_map(|id| catalog.section(*id).cloned())
        .collect();
    // Sections already held are not "to enroll" any more.
    let cart: Vec<(Arc<Section>, Seats)> = me
        .to_enroll()
        .filter_map(|id| {
            catalog
                .section(id)
                .map(|s| (Arc::clone(s), app.catalog.seats_of(id)))
        })
        .collect();
    let standing = &me.standing;
    let (warnings, over) = cart_warnings(
        lang,
        &held,
        &cart,
        &standing.completed,
        standing.max_credits,
    );
    let places = db::waitlist::places(&app.store, student).await?;
    let items: Vec<Item> = cart
        .iter()
        .zip(warnings)
        .map(|((s, seats), w)| {
            let mine = cart_items.iter().find(|c| c.section == s.id);
            let chosen = mine.map(|c| c.alternates.as_slice()).unwrap_or_default();
            Item {
                alternate_slots: alternate_slots(&catalog, &app, s, chosen, lang),
                waitlist: mine.is_some_and(|c| c.waitlist),
                ..item(s, *seats, lang, w)
            }
        })
        .collect();
    let enrolled: Vec<Item> = held
        .iter()
        .map(|s| item(s, app.catalog.seats_of(s.id), lang, Vec::new()))
        .collect();
    let pass = current_pass(&app, &headers, &jar, student).await;
    let snapshot = app.rooms.snapshot();
    let mut rounds: Vec<OpenRound> = snapshot
        .rounds
        .values()
        .filter(|r| r.view.state.accepts_joins() && r.view.admits_year(class_year))
        .map(|r| OpenRound {
            id: r.view.id.0,
            name: r.view.name.clone(),
        })
        .collect();
    rounds.sort_by_key(|r| r.id);
    let message = q.msg.as_deref().map(|m| cart_notice(m, lang).to_string());
    let page = CartPage {
        pass_until: pass.map(|p| ctx.chrome.at_ms(p.exp)),
        cart_credits: items.iter().map(|i| u32::from(i.credits)).sum(),
        enrolled_credits: enrolled.iter().map(|i| u32::from(i.credits)).sum(),
        cart_full: me.cart.len() >= MAX_CART_SECTIONS,
        chrome: ctx.chrome,
        number: me.standing.number,
        name: me.standing.name,
        items,
        enrolled,
        max_credits: me.standing.max_credits,
        over,
        rounds,
        message,
        form_key: form_key(),
        places: place_rows(places, lang),
    };
    web::page(page)
}

#[derive(Debug, Deserialize)]
pub struct SectionForm {
    #[serde(default)]
    pub csrf: String,
    /// Read as text so that a bad value is a clear 400, not a rejection.
    #[serde(default)]
    pub section: String,
    #[serde(default)]
    pub back: String,
}

fn back_to(back: &str, msg: &str) -> Redirect {
    let base = web::safe_next(Some(back)).unwrap_or_else(|| "/cart".to_string());
    let sep = if base.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{base}{sep}msg={msg}"))
}

/// `POST /cart/add`
pub async fn add(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<SectionForm>,
) -> ApiResult<Response> {
    let student = student_form(&ctx, &headers, &form.csrf)?;
    let section = section_number(&form.section)?;
    app.limits.check_student(student)?;
    let msg = match db::cart::add(&app.store, student, section, MAX_CART_SECTIONS).await? {
        Added::Added | Added::AlreadyThere => "added",
        Added::NoSuchSection => "unknown",
        Added::Full => "full",
    };
    Ok(back_to(&form.back, msg).into_response())
}

#[derive(Debug, Deserialize)]
pub struct WaitlistChoiceForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub section: String,
    /// `on` to join the waitlist when full, `off` not to.
    #[serde(default)]
    pub waitlist: String,
}

/// `POST /cart/waitlist`: the item's "join the waitlist if full" choice.
pub async fn waitlist_choice(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<WaitlistChoiceForm>,
) -> ApiResult<Response> {
    let student = student_form(&ctx, &headers, &form.csrf)?;
    let section = section_number(&form.section)?;
    let on = match form.waitlist.as_str() {
        "on" => true,
        "off" => false,
        _ => {
            return Err(crate::error::ApiError::Invalid(
                "waitlist must be on or off".into(),
            ))
        }
    };
    let msg = match db::cart::set_waitlist(&app.store, student, section, on).await? {
        false => "not_in_cart",
        true if on => "waitlist_on",
        true => "waitlist_off",
    };
    Ok(back_to("/cart", msg).into_response())
}

/// The alternates form: the item, and one field per slot (empty: none).
#[derive(Debug, Deserialize)]
pub struct AlternatesForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub section: String,
    #[serde(default)]
    pub alt0: String,
    #[serde(default)]
    pub alt1: String,
    #[serde(default)]
    pub alt2: String,
    #[serde(default)]
    pub alt3: String,
}

/// `POST /cart/alternates`: the sections to try, in order, when the
/// item's own is refused.
pub async fn alternates(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<AlternatesForm>,
) -> ApiResult<Response> {
    let student = student_form(&ctx, &headers, &form.csrf)?;
    let section = section_number(&form.section)?;
    app.limits.check_student(student)?;
    let mut wanted = Vec::new();
    for f in [&form.alt0, &form.alt1, &form.alt2, &form.alt3] {
        if !f.trim().is_empty() {
            wanted.push(section_number(f)?);
        }
    }
    let msg = match crate::http::api::alternates::save(&app, student, section, &wanted).await? {
        Ok(()) => "alternates",
        Err(code) => code,
    };
    Ok(back_to("/cart", msg).into_response())
}

/// `POST /cart/remove`
pub async fn remove(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<SectionForm>,
) -> ApiResult<Response> {
    let student = student_form(&ctx, &headers, &form.csrf)?;
    let section = section_number(&form.section)?;
    db::cart::remove(&app.store, student, section).await?;
    Ok(back_to(&form.back, "removed").into_response())
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{m, open, sec};
    use super::*;

    #[test]
    fn cart_warns_about_overlaps_duplicates_and_credits() {
        let held = vec![sec(1, 1, 3, vec![m(1, 540, 615)])];
        let cart = vec![
            (sec(2, 2, 3, vec![m(1, 600, 675)]), open()),
            (sec(3, 3, 3, vec![m(2, 540, 615)]), open()),
            (sec(4, 3, 3, vec![m(4, 540, 615)]), open()),
            (sec(5, 5, 3, vec![m(2, 600, 700)]), open()),
        ];
        let (w, over) = cart_warnings(Lang::En, &held, &cart, &[], 12);
        let codes = |i: usize| w[i].iter().map(|w| w.code).collect::<Vec<_>>();
        assert_eq!(codes(0), vec!["time_conflict"]);
        assert_eq!(codes(1), vec!["duplicate_course", "time_overlap"]);
        assert_eq!(codes(2), vec!["duplicate_course"]);
        assert_eq!(codes(3), vec!["time_overlap"]);
        assert_eq!(over.unwrap().code, "credit_limit");
        let (_, over) = cart_warnings(Lang::En, &held, &cart, &[], 15);
        assert!(over.is_none(), "3 + 4 * 3 = 15 is within 15");
    }
}
