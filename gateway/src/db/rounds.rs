//! Registration rounds as the registrar's pages create, list and reschedule
//! them. State changes (open, pause, ...) go through the room store
//! ([`super::room`]), shared with the JSON admin API.

use super::{audit, MySqlStore, StoreError};
use chrono::NaiveDateTime;

/// One line of the rounds list.
#[derive(Debug, sqlx::FromRow)]
pub struct Listed {
    pub id: u32,
    pub name: String,
    pub term: String,
    pub state: String,
    pub eligible_years_mask: u8,
    pub prequeue_at: NaiveDateTime,
    pub opens_at: NaiveDateTime,
    pub closes_at: NaiveDateTime,
    pub admission_per_min: u32,
}

/// The newest 200 rounds, by opening time.
pub async fn list(store: &MySqlStore) -> Result<Vec<Listed>, StoreError> {
    store
        .timed(
            sqlx::query_as(
                "SELECT r.id, r.name, t.code AS term, r.state, r.eligible_years_mask, r.prequeue_at, \
                        r.opens_at, r.closes_at, r.admission_per_min \
                 FROM rounds r JOIN terms t ON t.id = r.term_id \
                 ORDER BY r.opens_at DESC, r.id DESC LIMIT 200",
            )
            .fetch_all(store.pool()),
        )
        .await
}

/// A round's name, eligible years and times (UTC).
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub years_mask: u8,
    pub prequeue_at: NaiveDateTime,
    pub opens_at: NaiveDateTime,
    pub closes_at: NaiveDateTime,
}

/// Creates a round with its audit row; returns its id. A term that does
/// not exist is a foreign key violation.
pub async fn create(
    store: &MySqlStore,
    term: u32,
    s: &Schedule,
    rate: u32,
    max_active: Option<u32>,
    actor: &str,
) -> Result<u64, StoreError> {
    let work = async {
        let mut tx = store.pool().begin().await?;
        let id = sqlx::query(
            "INSERT INTO rounds (term_id, name, eligible_years_mask, prequeue_at, opens_at, closes_at, \
                                 admission_per_min, max_active) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(term)
        .bind(&s.name)
        .bind(s.years_mask)
        .bind(s.prequeue_at)
        .bind(s.opens_at)
        .bind(s.closes_at)
        .bind(rate)
        .bind(max_active)
        .execute(&mut *tx)
        .await?
        .last_insert_id();
        audit::record(
            &mut tx,
            actor,
            "create_round",
            &format!("round:{id}"),
            serde_json::json!({ "name": s.name, "years": s.years_mask, "rate": rate,
                                "max_active": max_active }),
        )
        .await?;
        tx.commit().await?;
        Ok::<u64, StoreError>(id)
    };
    store.timed(work).await
}

/// One round as its page shows it.
#[derive(Debug, sqlx::FromRow)]
pub struct Round {
    pub name: String,
    pub state: String,
    pub eligible_years_mask: u8,
    pub prequeue_at: NaiveDateTime,
    pub opens_at: NaiveDateTime,
    pub closes_at: NaiveDateTime,
    pub admission_per_min: u32,
    pub max_active: Option<u32>,
    pub shuffle_seed: Option<u64>,
}

pub async fn get(store: &MySqlStore, id: u32) -> Result<Option<Round>, StoreError> {
    store
        .timed(
            sqlx::query_as(
                "SELECT name, state, eligible_years_mask, prequeue_at, opens_at, closes_at, \
                        admission_per_min, max_active, shuffle_seed FROM rounds WHERE id = ?",
            )
            .bind(id)
            .fetch_optional(store.pool()),
        )
        .await
}

/// Changes a round's schedule, with its audit row, while it has not opened;
/// returns whether it changed (false: opened already, or no such round).
pub async fn reschedule(
    store: &MySqlStore,
    id: u32,
    s: &Schedule,
    actor: &str,
) -> Result<bool, StoreError> {
    let work = async {
        let mut tx = store.pool().begin().await?;
        let updated = sqlx::query(
            "UPDATE rounds SET name = ?, eligible_years_mask = ?, prequeue_at = ?, opens_at = ?, \
                    closes_at = ?, updated_at = UTC_TIMESTAMP(3) \
             WHERE id = ? AND state IN ('scheduled', 'prequeue')",
        )
        .bind(&s.name)
        .bind(s.years_mask)
        .bind(s.prequeue_at)
        .bind(s.opens_at)
        .bind(s.closes_at)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated > 0 {
            audit::record(
                &mut tx,
                actor,
                "schedule",
                &format!("round:{id}"),
                serde_json::json!({ "name": s.name, "years": s.years_mask,
                                    "prequeue_at": s.prequeue_at.to_string(),
                                    "opens_at": s.opens_at.to_string(),
                                    "closes_at": s.closes_at.to_string() }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok::<bool, StoreError>(updated > 0)
    };
    store.timed(work).await
}
