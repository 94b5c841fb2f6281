//! Seats left in the hottest sections (for the seat gauges): the sections
//! with the most commands decided lately in the running rounds, or the
//! fullest ones when nothing was decided.

use super::{to_datetime, MySqlStore, StoreError};
use sqlx::{MySql, QueryBuilder, Row};
use std::collections::HashSet;

/// Sections reported.
pub const HOTTEST: u32 = 20;

/// How far back demand is measured.
const DEMAND_WINDOW_MS: u64 = 60_000;

/// One reported section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatCount {
    /// Course code and section number, for example `CSE101-01`.
    pub code: String,
    pub remaining: i64,
}

/// The hottest sections' remaining seats.
pub async fn hottest(
    store: &MySqlStore,
    rounds: &[u32],
    now_ms: u64,
) -> Result<Vec<SeatCount>, StoreError> {
    store
        .timed(async {
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            if !rounds.is_empty() {
                let mut q = QueryBuilder::<MySql>::new(
                    "SELECT c.code, s.number, CAST(s.capacity AS SIGNED) - CAST(s.enrolled AS SIGNED) AS remaining \
                     FROM (SELECT section_id, COUNT(*) AS demand FROM command_outcomes \
                           WHERE section_id IS NOT NULL AND decided_at > ",
                );
                q.push_bind(to_datetime(now_ms.saturating_sub(DEMAND_WINDOW_MS)))
                    .push(" AND round_id IN (");
                let mut ids = q.separated(", ");
                for &r in rounds {
                    ids.push_bind(r);
                }
                q.push(") GROUP BY section_id ORDER BY demand DESC LIMIT ")
                    .push_bind(HOTTEST)
                    .push(
                        ") hot JOIN sections s ON s.id = hot.section_id \
                         JOIN courses c ON c.id = s.course_id",
                    );
                for row in q.build().fetch_all(store.pool()).await? {
                    push_row(&row, &mut seen, &mut out)?;
                }
            }
            if out.is_empty() {
                let rows = sqlx::query(
                    "SELECT c.code, s.number, CAST(s.capacity AS SIGNED) - CAST(s.enrolled AS SIGNED) AS remaining \
                     FROM sections s JOIN courses c ON c.id = s.course_id \
                     WHERE NOT s.closed ORDER BY s.enrolled DESC, s.id LIMIT ?",
                )
                .bind(HOTTEST)
                .fetch_all(store.pool())
                .await?;
                for row in rows {
                    push_row(&row, &mut seen, &mut out)?;
                }
            }
            Ok::<_, sqlx::Error>(out)
        })
        .await
}

fn push_row(
    row: &sqlx::mysql::MySqlRow,
    seen: &mut HashSet<String>,
    out: &mut Vec<SeatCount>,
) -> Result<(), sqlx::Error> {
    let course: String = row.try_get("code")?;
    let number: u16 = row.try_get("number")?;
    let code = format!("{course}-{number:02}");
    if seen.insert(code.clone()) {
        out.push(SeatCount {
            code,
            remaining: row.try_get("remaining")?,
        });
    }
    Ok(())
}
