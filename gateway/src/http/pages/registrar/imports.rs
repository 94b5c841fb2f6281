//! CSV import of the catalog or of students: the form, and the upload that
//! is validated whole and then written in one transaction, or not at all.

use super::{terms, Term};
use crate::csv_import::{self, ImportError, Problem, Summary, IMPORT_TIMEOUT};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::same_origin;
use crate::i18n::registrar as text;
use crate::web::{self, Chrome, Ctx};
use crate::AppState;
use askama::Template;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

#[derive(Template)]
#[template(path = "admin_import.html")]
struct ImportPage {
    chrome: Chrome,
    terms: Vec<Term>,
    problems: Vec<Problem>,
    more: usize,
    error: Option<String>,
    done: Option<Summary>,
    catalog_columns: String,
    student_columns: String,
}

fn columns(required: &[&str], optional: &[&str]) -> String {
    required
        .iter()
        .chain(optional)
        .copied()
        .collect::<Vec<_>>()
        .join(",")
}

async fn import_page(
    app: &AppState,
    ctx: Ctx,
    outcome: Option<Result<Summary, ImportError>>,
) -> ApiResult<Response> {
    let ctx = ctx.in_section("import");
    ctx.admin()?;
    let lang = ctx.lang();
    let mut page = ImportPage {
        chrome: ctx.chrome.clone(),
        terms: terms(app).await?,
        problems: Vec::new(),
        more: 0,
        error: None,
        done: None,
        catalog_columns: columns(&csv_import::CATALOG_COLUMNS, &csv_import::CATALOG_OPTIONAL),
        student_columns: columns(&csv_import::STUDENT_COLUMNS, &csv_import::STUDENT_OPTIONAL),
    };
    let status = match outcome {
        None => StatusCode::OK,
        Some(Ok(summary)) => {
            page.done = Some(summary);
            StatusCode::OK
        }
        Some(Err(ImportError::Invalid(problems, more))) => {
            page.problems = problems;
            page.more = more;
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Some(Err(ImportError::Timeout(_))) => {
            page.error = Some(text::IMPORT_TOO_LONG.get(lang).to_string());
            StatusCode::SERVICE_UNAVAILABLE
        }
        Some(Err(ImportError::Db(e))) => {
            tracing::warn!(error = %e, "CSV import failed and was rolled back");
            page.error = Some(text::IMPORT_DB_ERROR.get(lang).to_string());
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    Ok(web::render(page, status))
}

/// `GET /admin/import`
pub async fn import_form(State(app): State<AppState>, ctx: Ctx) -> ApiResult<Response> {
    import_page(&app, ctx, None).await
}

/// The fields of the import form.
#[derive(Default)]
struct Upload {
    csrf: String,
    kind: String,
    term: String,
    file: Vec<u8>,
}

async fn read_upload(multipart: &mut Multipart) -> ApiResult<Upload> {
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        ApiError::Invalid(format!("the upload could not be read: {}", e.body_text()))
    };
    let mut upload = Upload::default();
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or("").to_string();
        let bytes = field.bytes().await.map_err(unreadable)?;
        match name.as_str() {
            "csrf" => upload.csrf = String::from_utf8_lossy(&bytes).into_owned(),
            "kind" => upload.kind = String::from_utf8_lossy(&bytes).into_owned(),
            "term" => upload.term = String::from_utf8_lossy(&bytes).into_owned(),
            "file" => upload.file = bytes.to_vec(),
            _ => {}
        }
    }
    Ok(upload)
}

/// `POST /admin/import`: multipart with `csrf`, `kind` (catalog|students),
/// `term` (catalog) and `file`.
pub async fn import(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> ApiResult<Response> {
    same_origin(&headers)?;
    let actor = ctx.registrar()?;
    let upload = read_upload(&mut multipart).await?;
    ctx.check_csrf(&upload.csrf)?;
    let outcome = match upload.kind.as_str() {
        "catalog" => {
            let Ok(term) = upload.term.trim().parse::<u32>() else {
                let p = Problem {
                    row: 0,
                    column: "term".into(),
                    problem: text::PICK_TERM.get(ctx.lang()).into(),
                };
                return import_page(&app, ctx, Some(Err(ImportError::Invalid(vec![p], 0)))).await;
            };
            let outcome = import_catalog(&app, term, &upload.file, &actor).await;
            if outcome.is_ok() {
                app.catalog.invalidate();
            }
            outcome
        }
        "students" => import_students(&app, &upload.file, &actor).await,
        _ => return Err(ApiError::Invalid("kind must be catalog or students".into())),
    };
    import_page(&app, ctx, Some(outcome)).await
}

/// Validates a catalog file and writes it into `term`, within
/// [`IMPORT_TIMEOUT`].
async fn import_catalog(
    app: &AppState,
    term: u32,
    bytes: &[u8],
    actor: &str,
) -> Result<Summary, ImportError> {
    let departments = crate::db::imports::departments(&app.store).await?;
    let (courses, sections, rows) = csv_import::validate_catalog(bytes, &departments)?;
    let summary = Summary {
        rows,
        courses: courses.len(),
        sections: sections.len(),
        students: 0,
    };
    let write = crate::db::imports::write_catalog(
        &app.store,
        term,
        &courses,
        &sections,
        summary.counts(),
        actor,
    );
    match tokio::time::timeout(IMPORT_TIMEOUT, write).await {
        Ok(Ok(too_small)) if too_small.is_empty() => Ok(summary),
        Ok(Ok(too_small)) => Err(csv_import::too_small(&too_small)),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(ImportError::Timeout(IMPORT_TIMEOUT)),
    }
}

/// Validates a students file and writes it, within [`IMPORT_TIMEOUT`].
async fn import_students(
    app: &AppState,
    bytes: &[u8],
    actor: &str,
) -> Result<Summary, ImportError> {
    let departments = crate::db::imports::departments(&app.store).await?;
    let students = csv_import::validate_students(bytes, &departments)?;
    let summary = Summary {
        rows: students.len(),
        students: students.len(),
        ..Summary::default()
    };
    let write = crate::db::imports::write_students(&app.store, &students, summary.counts(), actor);
    match tokio::time::timeout(IMPORT_TIMEOUT, write).await {
        Ok(r) => r.map(|()| summary).map_err(ImportError::from),
        Err(_) => Err(ImportError::Timeout(IMPORT_TIMEOUT)),
    }
}
