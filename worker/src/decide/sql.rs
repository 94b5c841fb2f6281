//! Bound `IN` lists shared by the statements that load and write.

use sqlx::{MySql, QueryBuilder};

/// Rows per multi-row statement, well under MySQL's 65,535 placeholders.
pub(super) const CHUNK: usize = 500;

/// Appends `(a, b, c)` as a bound IN list.
pub(super) fn push_in<'a, T>(qb: &mut QueryBuilder<'a, MySql>, values: impl IntoIterator<Item = T>)
where
    T: 'a + sqlx::Encode<'a, MySql> + sqlx::Type<MySql> + Send,
{
    qb.push("(");
    let mut sep = qb.separated(", ");
    for v in values {
        sep.push_bind(v);
    }
    qb.push(")");
}

/// Appends `((a1, b1), (a2, b2))` as a bound IN list of pairs.
pub(super) fn push_pairs<'a>(
    qb: &mut QueryBuilder<'a, MySql>,
    pairs: impl IntoIterator<Item = (u32, u32)>,
) {
    qb.push("(");
    let mut sep = qb.separated(", ");
    for (a, b) in pairs {
        sep.push("(")
            .push_bind_unseparated(a)
            .push_unseparated(", ")
            .push_bind_unseparated(b)
            .push_unseparated(")");
    }
    qb.push(")");
}
