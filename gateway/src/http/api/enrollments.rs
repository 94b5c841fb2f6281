//! `GET /api/enrollments`: the sections the signed-in student holds, and
//! the read of a student's standing the cart and timetable share.

use super::catalog::SectionView;
use crate::catalog::{Catalog, Section};
use crate::db::{self, standing::Standing};
use crate::error::{ApiError, ApiResult};
use crate::http::api::openapi::responses::{
    Forbidden, Internal, TooMany, Unauthorized, Unavailable,
};
use crate::session::StudentSession;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use enrollment::StudentId;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// A student's standing, cart and the catalog covering both.
#[derive(Debug)]
pub struct Mine {
    pub standing: Standing,
    pub cart: Vec<u32>,
    pub catalog: Arc<Catalog>,
}

impl Mine {
    /// Held sections, oldest enrollment first.
    pub fn held(&self) -> impl Iterator<Item = &Arc<Section>> + '_ {
        self.standing
            .enrolled
            .iter()
            .filter_map(|id| self.catalog.section(*id))
    }

    /// Cart sections not held yet, in the order they were added.
    pub fn to_enroll(&self) -> impl Iterator<Item = &Arc<Section>> + '_ {
        self.cart
            .iter()
            .filter(|id| !self.standing.enrolled.contains(id))
            .filter_map(|id| self.catalog.section(*id))
    }
}

/// Reads `student`'s standing and cart at once, and the catalog that
/// names every section in them.
pub async fn mine(app: &AppState, student: StudentId) -> ApiResult<Mine> {
    let (standing, cart) = tokio::try_join!(
        db::standing::of(&app.store, student),
        db::cart::sections(&app.store, student),
    )?;
    // The session outlived the account (deleted or re-imported).
    let standing = standing.ok_or(ApiError::SignInRequired)?;
    let wanted: Vec<u32> = standing.enrolled.iter().chain(&cart).copied().collect();
    let catalog = app.catalog.covering(&wanted).await;
    Ok(Mine {
        standing,
        cart,
        catalog,
    })
}

/// What the student holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct Enrollments {
    /// Oldest enrollment first.
    pub sections: Vec<SectionView>,
    pub credits: u32,
    pub max_credits: u8,
}

/// The signed-in student's enrollments.
#[utoipa::path(
    get,
    path = "/api/enrollments",
    tag = "student",
    security(("session" = [])),
    responses(
        (status = 200, description = "The sections held", body = Enrollments),
        Unauthorized,
        Forbidden,
        TooMany,
        Internal,
        Unavailable,
    )
)]
pub async fn list(State(app): State<AppState>, me: StudentSession) -> ApiResult<Json<Enrollments>> {
    app.limits.check_reads(me.id)?;
    let mine = mine(&app, me.id).await?;
    let sections: Vec<SectionView> = mine
        .held()
        .map(|s| SectionView::new(s, app.catalog.seats_of(s.id)))
        .collect();
    Ok(Json(Enrollments {
        credits: sections.iter().map(|s| u32::from(s.credits)).sum(),
        max_credits: mine.standing.max_credits,
        sections,
    }))
}
