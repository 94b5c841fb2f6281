//! Throw-away databases and queues for a bench run, and fast bulk catalog
//! inserts shaped for the scenario being measured.

use anyhow::Context;
use enrollment::{RoundId, SectionId, StudentId};
use rand::Rng;
use sqlx::{MySqlPool, QueryBuilder};

/// A database created for one run and dropped afterwards (unless kept).
#[derive(Debug)]
pub struct BenchDb {
    pub url: String,
    pub pool: MySqlPool,
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{:012x}",
        rand::thread_rng().gen::<u64>() & 0xffff_ffff_ffff
    )
}

impl BenchDb {
    /// Creates `sluice_bench_<random>` on the server `mysql://user@host:port`.
    pub async fn create(server: &str) -> anyhow::Result<BenchDb> {
        let url = format!(
            "{}/{}",
            server.trim_end_matches('/'),
            unique("sluice_bench_")
        );
        schema::db::create_and_migrate(&url).await?;
        let pool = schema::db::connect(&url, 8).await?;
        Ok(BenchDb { url, pool })
    }

    pub async fn drop(self) -> anyhow::Result<()> {
        self.pool.close().await;
        schema::db::drop_database(&self.url).await
    }
}

/// A term, a department and one open round for every class year.
pub async fn round(pool: &MySqlPool) -> anyhow::Result<RoundId> {
    let term = sqlx::query("INSERT INTO terms (code, name, starts_on, ends_on) VALUES ('B1', 'Bench term', '2027-03-02', '2027-06-20')")
        .execute(pool)
        .await?
        .last_insert_id();
    sqlx::query("INSERT INTO departments (code, name_ko, name_en) VALUES ('BEN', '벤치마크학과', 'Benchmarking')")
        .execute(pool)
        .await?;
    let round = sqlx::query(
        "INSERT INTO rounds (term_id, name, eligible_years_mask, prequeue_at, opens_at, closes_at, state) \
         VALUES (?, 'Bench round', 15, NOW(3) - INTERVAL 1 HOUR, NOW(3) - INTERVAL 1 MINUTE, NOW(3) + INTERVAL 1 DAY, 'open')",
    )
    .bind(term)
    .execute(pool)
    .await?
    .last_insert_id();
    Ok(RoundId(u32::try_from(round).context("round id")?))
}

/// `n` one-section courses of 3 credits with `capacity` seats and no
/// meeting times (so only seats and duplicates decide).
pub async fn sections(pool: &MySqlPool, n: usize, capacity: u32) -> anyhow::Result<Vec<SectionId>> {
    let term: u32 = sqlx::query_scalar("SELECT MIN(id) FROM terms")
        .fetch_one(pool)
        .await?;
    let dept: u32 = sqlx::query_scalar("SELECT MIN(id) FROM departments")
        .fetch_one(pool)
        .await?;
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut qb = QueryBuilder::new(
            "INSERT INTO courses (term_id, department_id, code, title_ko, title_en, credits) ",
        );
        qb.push_values(chunk, |mut b, i| {
            b.push_bind(term)
                .push_bind(dept)
                .push_bind(format!("BEN{i:05}"))
                .push_bind(format!("벤치 과목 {i}"))
                .push_bind(format!("Bench course {i}"))
                .push_bind(3u8);
        });
        let first = qb.build().execute(pool).await?.last_insert_id();
        let mut qb = QueryBuilder::new("INSERT INTO sections (course_id, number, capacity) ");
        qb.push_values(0..chunk.len() as u64, |mut b, k| {
            b.push_bind(first + k).push_bind(1u16).push_bind(capacity);
        });
        let first_section = qb.build().execute(pool).await?.last_insert_id();
        ids.extend((0..chunk.len() as u64).map(|k| SectionId((first_section + k) as u32)));
    }
    Ok(ids)
}

/// `n` first-year students with an 18-credit maximum.
pub async fn students(pool: &MySqlPool, n: usize) -> anyhow::Result<Vec<StudentId>> {
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(2000) {
        let mut qb =
            QueryBuilder::new("INSERT INTO students (number, name, class_year, max_credits) ");
        qb.push_values(chunk, |mut b, i| {
            b.push_bind(format!("B{i:09}"))
                .push_bind(format!("학생{i}"))
                .push_bind(1u8)
                .push_bind(18u8);
        });
        let first = qb.build().execute(pool).await?.last_insert_id();
        ids.extend((0..chunk.len() as u64).map(|k| StudentId((first + k) as u32)));
    }
    Ok(ids)
}

/// Deletes the queues and exchanges named by `prefix` (best effort: a run
/// that failed half-way still cleans up what it can).
pub async fn delete_queues(amqp_url: &str, prefix: &str) {
    let topology = broker::Topology::new(prefix);
    let timeout = std::time::Duration::from_secs(5);
    if let Ok(conn) = broker::connect(amqp_url, "bench-cleanup", timeout).await {
        if let Ok(ch) = conn.create_channel().await {
            let _ = broker::delete(&ch, &topology).await;
            let _ = ch.close(200, "done").await;
        }
        let _ = conn.close(200, "done").await;
    }
}
