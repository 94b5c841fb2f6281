//! CSV downloads streamed from the database as rows arrive.
//!
//! An export of a whole term (every enrollment, every decided command) is
//! written in chunks of about [`CHUNK`] bytes while MySQL returns rows, so it
//! never sits whole in a gateway's memory. The response starts only with
//! the first chunk: a database that cannot answer is a 503 like any other
//! read. A failure after that cuts the download off, which browsers and
//! `curl` report as an incomplete transfer rather than a silently short file.

use crate::db::{MySqlStore, StoreError};
use crate::error::{ApiError, ApiResult};
use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use std::time::Duration;

/// Bytes gathered before a chunk is sent.
pub const CHUNK: usize = 64 * 1024;

/// Longest wait for the database's next row.
pub const ROW_WAIT: Duration = Duration::from_secs(30);

/// Streams the rows `rows` reads (one of [`crate::db::exports`]) as `name`,
/// one CSV record per row (`record`), under the `header` line.
pub async fn export<T, R, F>(
    store: &MySqlStore,
    name: &str,
    header: &'static [&'static str],
    rows: R,
    record: F,
) -> ApiResult<Response>
where
    T: Send + 'static,
    R: for<'a> FnOnce(&'a MySqlStore) -> BoxStream<'a, Result<T, StoreError>> + Send + 'static,
    F: Fn(T) -> Vec<String> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let store = store.clone();
    tokio::spawn(async move {
        if let Err(e) = produce(rows(&store), header, record, &tx).await {
            // The receiver is gone only if the client went away.
            let _ = tx.send(Err(e)).await;
        }
    });
    let first = match rx.recv().await {
        Some(Ok(bytes)) => bytes,
        Some(Err(e)) => {
            tracing::warn!(export = name, error = %e, "export failed before its first byte");
            return Err(ApiError::Unavailable {
                retry_after: Duration::from_secs(10),
            });
        }
        None => Bytes::new(),
    };
    let rest = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let body = Body::from_stream(futures_util::stream::once(async move { Ok(first) }).chain(rest));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response())
}

async fn produce<T, F>(
    mut rows: BoxStream<'_, Result<T, StoreError>>,
    header: &'static [&'static str],
    record: F,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), std::io::Error>
where
    F: Fn(T) -> Vec<String>,
{
    let mut w = writer();
    w.write_record(header)?;
    loop {
        let row = match tokio::time::timeout(ROW_WAIT, rows.next()).await {
            Ok(Some(row)) => row.map_err(std::io::Error::other)?,
            Ok(None) => break,
            Err(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the database stopped sending rows",
                ))
            }
        };
        w.write_record(record(row))?;
        if w.get_ref().len() >= CHUNK {
            let full = std::mem::replace(&mut w, writer());
            if tx.send(Ok(Bytes::from(finish(full)?))).await.is_err() {
                return Ok(()); // the client went away
            }
        }
    }
    let _ = tx.send(Ok(Bytes::from(finish(w)?))).await;
    Ok(())
}

fn writer() -> csv::Writer<Vec<u8>> {
    csv::Writer::from_writer(Vec::with_capacity(CHUNK + 8 * 1024))
}

/// The bytes of a chunk's writer, its buffer flushed.
fn finish(w: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, std::io::Error> {
    w.into_inner().map_err(|e| e.into_error())
}
