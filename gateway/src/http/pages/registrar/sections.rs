//! Sections of a course: create, save (capacity, instructor, room, meeting
//! times), close and reopen. Their forms live on the course's page.

use super::courses::{course_page, Kept, SectionForm};
use super::{change_form, not_saved};
use crate::catalog::parse_meetings;
use crate::db::sections::Fields;
use crate::error::{ApiError, ApiResult};
use crate::i18n::registrar as text;
use crate::i18n::Lang;
use crate::web::{Ctx, FieldErrors};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;

/// The section form's fields, each problem added to `errors`; the number
/// only when creating (it never changes after).
fn validate_section(
    lang: Lang,
    form: &SectionForm,
    errors: &mut FieldErrors,
    need_number: bool,
) -> Option<Fields> {
    let number = if need_number {
        match form.number.trim().parse::<u16>() {
            Ok(n) if (1..=999).contains(&n) => Some(n),
            _ => {
                errors.add("number", text::SECTION_NUMBER.get(lang));
                None
            }
        }
    } else {
        Some(0)
    };
    let capacity = match form.capacity.trim().parse::<u32>() {
        Ok(c) if c <= 100_000 => Some(c),
        _ => {
            errors.add("capacity", text::CAPACITY.get(lang));
            None
        }
    };
    if form.instructor.trim().chars().count() > 100 {
        errors.add("instructor", text::AT_MOST_100.get(lang));
    }
    if form.room.trim().chars().count() > 50 {
        errors.add("room", text::AT_MOST_50.get(lang));
    }
    let meetings = match parse_meetings(&form.meetings) {
        Ok(m) => Some(m),
        Err(e) => {
            errors.add(
                "meetings",
                format!("{} {e}", text::MEETINGS_EXAMPLE.get(lang)),
            );
            None
        }
    };
    if !errors.is_empty() {
        return None;
    }
    Some(Fields {
        number: number?,
        capacity: capacity?,
        instructor: form.instructor.trim().to_string(),
        room: form.room.trim().to_string(),
        meetings: meetings?,
    })
}

/// `POST /admin/courses/{id}/sections`
pub async fn create_section(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<u32>,
    Form(form): Form<SectionForm>,
) -> ApiResult<Response> {
    let actor = change_form(&ctx, &headers, &form.csrf)?;
    let lang = ctx.lang();
    let mut errors = FieldErrors::default();
    let Some(s) = validate_section(lang, &form, &mut errors, true) else {
        let kept = Kept {
            new_section: form,
            errors,
            ..Kept::default()
        };
        return course_page(&app, ctx, id, kept, None).await;
    };
    match crate::db::sections::create(&app.store, id, &s, &actor).await {
        Err(e) if e.is_unique_violation() => {
            errors.add("number", text::DUPLICATE_SECTION.get(lang));
            let kept = Kept {
                new_section: form,
                errors,
                ..Kept::default()
            };
            return course_page(&app, ctx, id, kept, None).await;
        }
        Err(e) if e.is_foreign_key_violation() => return Err(ApiError::NotFound),
        r => r.map_err(not_saved)?,
    }
    app.catalog.invalidate();
    Ok(Redirect::to(&format!("/admin/courses/{id}?msg=saved")).into_response())
}

/// `POST /admin/sections/{id}`: save, close or reopen a section.
pub async fn update_section(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(sid): Path<u32>,
    Form(form): Form<SectionForm>,
) -> ApiResult<Response> {
    let actor = change_form(&ctx, &headers, &form.csrf)?;
    let lang = ctx.lang();
    let course = crate::db::sections::course_of(&app.store, sid)
        .await?
        .ok_or(ApiError::NotFound)?;
    let saved = Redirect::to(&format!("/admin/courses/{course}?msg=saved")).into_response();
    if form.op == "close" || form.op == "reopen" {
        crate::db::sections::set_closed(&app.store, sid, form.op == "close", &actor)
            .await
            .map_err(not_saved)?;
        app.catalog.invalidate();
        return Ok(saved);
    }
    let mut errors = FieldErrors::default();
    let refused = |errors| Kept {
        errors,
        error_section: sid,
        ..Kept::default()
    };
    let Some(s) = validate_section(lang, &form, &mut errors, false) else {
        return course_page(&app, ctx, course, refused(errors), None).await;
    };
    let too_small = crate::db::sections::update(&app.store, sid, &s, &actor)
        .await
        .map_err(not_saved)?;
    if let Some(enrolled) = too_small {
        errors.add(
            "capacity",
            format!("{} ({enrolled})", text::BELOW_ENROLLED.get(lang)),
        );
        return course_page(&app, ctx, course, refused(errors), None).await;
    }
    app.catalog.invalidate();
    Ok(saved)
}
