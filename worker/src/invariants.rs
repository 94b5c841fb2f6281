//! The domain invariants (`docs/domain.md`), checked against the database. Used by the
//! tests and by the bench after every run.

use serde::Serialize;
use sqlx::MySqlPool;

/// Counts of violations; all zero means every invariant holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Sections whose `enrolled` exceeds capacity.
    pub oversold: u64,
    /// Sections whose `enrolled` differs from their enrollment rows.
    pub miscounted: u64,
    /// (student, course) pairs held more than once.
    pub duplicates: u64,
    /// Pairs of a student's sections whose meetings overlap.
    pub overlaps: u64,
    /// Students above their credit maximum.
    pub over_credit: u64,
    /// Commands with outcome items that are not numbered 0..n.
    pub ragged_outcomes: u64,
    /// Students waiting (in a round still open) for a section that has a
    /// free seat and is not closed: a freed seat skipped the line.
    pub waiting_behind_free_seat: u64,
    /// Promoted waitlist entries without a `promoted` outcome their student
    /// can read.
    pub unseen_promotions: u64,
    /// Seats taken from the waitlist whose entry does not say `promoted`.
    pub mislabelled_promotions: u64,
}

impl Report {
    pub fn holds(&self) -> bool {
        *self == Report::default()
    }
}

async fn count(pool: &MySqlPool, sql: &str) -> Result<u64, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(sql).fetch_one(pool).await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Checks every invariant (a few full scans: for tests and benches, not for
/// the hot path).
pub async fn check(pool: &MySqlPool) -> Result<Report, sqlx::Error> {
    Ok(Report {
        oversold: count(pool, "SELECT COUNT(*) FROM sections WHERE enrolled > capacity").await?,
        miscounted: count(
            pool,
            "SELECT COUNT(*) FROM sections s LEFT JOIN \
             (SELECT section_id, COUNT(*) n FROM enrollments GROUP BY section_id) e \
             ON e.section_id = s.id WHERE s.enrolled <> COALESCE(e.n, 0)",
        )
        .await?,
        duplicates: count(
            pool,
            "SELECT COUNT(*) FROM (SELECT student_id, course_id FROM enrollments \
             GROUP BY student_id, course_id HAVING COUNT(*) > 1) d",
        )
        .await?,
        overlaps: count(
            pool,
            "SELECT COUNT(*) FROM enrollments a JOIN enrollments b \
               ON a.student_id = b.student_id AND a.section_id < b.section_id \
             JOIN section_meetings ma ON ma.section_id = a.section_id \
             JOIN section_meetings mb ON mb.section_id = b.section_id \
             WHERE ma.weekday = mb.weekday AND ma.start_min < mb.end_min AND mb.start_min < ma.end_min",
        )
        .await?,
        over_credit: count(
            pool,
            "SELECT COUNT(*) FROM (SELECT e.student_id, SUM(c.credits) total, MAX(st.max_credits) mx \
             FROM enrollments e JOIN courses c ON c.id = e.course_id \
             JOIN students st ON st.id = e.student_id GROUP BY e.student_id) t WHERE t.total > t.mx",
        )
        .await?,
        ragged_outcomes: count(
            pool,
            "SELECT COUNT(*) FROM (SELECT command_id FROM command_outcomes GROUP BY command_id \
             HAVING MIN(item) <> 0 OR MAX(item) <> COUNT(*) - 1) r",
        )
        .await?,
        waiting_behind_free_seat: count(
            pool,
            "SELECT COUNT(*) FROM waitlist_entries w \
             JOIN sections s ON s.id = w.section_id \
             JOIN rounds r ON r.id = w.round_id \
             WHERE w.state = 'waiting' AND s.enrolled < s.capacity AND NOT s.closed \
               AND r.state IN ('open', 'paused')",
        )
        .await?,
        unseen_promotions: count(
            pool,
            "SELECT COUNT(*) FROM waitlist_entries w WHERE w.state = 'promoted' AND NOT EXISTS \
             (SELECT 1 FROM command_outcomes o WHERE o.command_id = w.resolved_by \
              AND o.student_id = w.student_id AND o.section_id = w.section_id \
              AND o.outcome = 'promoted')",
        )
        .await?,
        mislabelled_promotions: count(
            pool,
            "SELECT COUNT(*) FROM enrollments e JOIN waitlist_entries w \
             ON w.section_id = e.section_id AND w.student_id = e.student_id \
             AND w.command_id = e.command_id WHERE w.state <> 'promoted'",
        )
        .await?,
    })
}
