//! The cart (장바구니): the sections a student means to enroll in, kept
//! in `cart_items` before and during registration.

use super::{MySqlStore, StoreError};
use enrollment::StudentId;

/// The sections in a student's cart, in the order they were added.
pub async fn sections(store: &MySqlStore, student: StudentId) -> Result<Vec<u32>, StoreError> {
    store
        .timed(
            sqlx::query_scalar::<_, u32>(
                "SELECT section_id FROM cart_items WHERE student_id = ? \
                 ORDER BY added_at, section_id",
            )
            .bind(student.0)
            .fetch_all(store.pool()),
        )
        .await
}

/// What adding a section to a cart came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Added,
    /// It was in the cart already (a second click, say).
    AlreadyThere,
    NoSuchSection,
    /// The cart holds its maximum.
    Full,
}

/// Adds `section` to the cart unless the cart holds `max` sections.
///
/// Counting and inserting is one statement, so two quick clicks cannot
/// push the cart past its size. The database, not the catalog cache,
/// decides whether the section exists: a section opened since the cache's
/// last refresh must be addable at once.
pub async fn add(
    store: &MySqlStore,
    student: StudentId,
    section: u32,
    max: usize,
) -> Result<Added, StoreError> {
    let max = u32::try_from(max).unwrap_or(u32::MAX);
    let inserted = super::retry_deadlock(|| {
        store.timed(
            sqlx::query(
                "INSERT IGNORE INTO cart_items (student_id, section_id) \
                 SELECT ?, s.id FROM sections s \
                 WHERE s.id = ? AND (SELECT COUNT(*) FROM cart_items c WHERE c.student_id = ?) < ?",
            )
            .bind(student.0)
            .bind(section)
            .bind(student.0)
            .bind(max)
            .execute(store.pool()),
        )
    })
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Added::Added);
    }
    // Why nothing was inserted: already there, no such section, or full.
    let (present, exists): (i64, i64) = store
        .timed(
            sqlx::query_as(
                "SELECT \
                   (SELECT COUNT(*) FROM cart_items WHERE student_id = ? AND section_id = ?), \
                   (SELECT COUNT(*) FROM sections WHERE id = ?)",
            )
            .bind(student.0)
            .bind(section)
            .bind(section)
            .fetch_one(store.pool()),
        )
        .await?;
    Ok(if present > 0 {
        Added::AlreadyThere
    } else if exists == 0 {
        Added::NoSuchSection
    } else {
        Added::Full
    })
}

/// Takes `section` out of the cart (nothing happens if it was not there).
pub async fn remove(
    store: &MySqlStore,
    student: StudentId,
    section: u32,
) -> Result<(), StoreError> {
    store
        .timed(
            sqlx::query("DELETE FROM cart_items WHERE student_id = ? AND section_id = ?")
                .bind(student.0)
                .bind(section)
                .execute(store.pool()),
        )
        .await?;
    Ok(())
}

/// One cart item with the alternates its student named for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartItem {
    pub section: u32,
    /// Sections of the same course to try, in order, when `section` is
    /// refused.
    pub alternates: Vec<u32>,
    /// Join the first choice's waitlist when every choice is full.
    pub waitlist: bool,
}

/// The cart's items with their alternates, in the order they were added.
pub async fn items(store: &MySqlStore, student: StudentId) -> Result<Vec<CartItem>, StoreError> {
    let rows: Vec<(u32, String, bool)> = store
        .timed(
            sqlx::query_as(
                "SELECT section_id, alternates, waitlist FROM cart_items WHERE student_id = ? \
                 ORDER BY added_at, section_id",
            )
            .bind(student.0)
            .fetch_all(store.pool()),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|(section, alternates, waitlist)| CartItem {
            section,
            alternates: parse_alternates(&alternates),
            waitlist,
        })
        .collect())
}

/// The stored list: ids separated by commas. Anything else is skipped
/// rather than failing the whole cart (the list is only ever written by
/// [`set_alternates`]).
fn parse_alternates(text: &str) -> Vec<u32> {
    text.split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// Sets the alternates of the cart item `section` (already checked by the
/// caller: same course, distinct, few enough). False when the item is not
/// in the cart.
pub async fn set_alternates(
    store: &MySqlStore,
    student: StudentId,
    section: u32,
    alternates: &[u32],
) -> Result<bool, StoreError> {
    let text = alternates
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let found: i64 = store
        .timed(
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM cart_items WHERE student_id = ? AND section_id = ?",
            )
            .bind(student.0)
            .bind(section)
            .fetch_one(store.pool()),
        )
        .await?;
    if found == 0 {
        return Ok(false);
    }
    store
        .timed(
            sqlx::query(
                "UPDATE cart_items SET alternates = ? WHERE student_id = ? AND section_id = ?",
            )
            .bind(text)
            .bind(student.0)
            .bind(section)
            .execute(store.pool()),
        )
        .await?;
    Ok(true)
}

/// The sections of the cart whose item says "join the waitlist if full".
pub async fn waitlisted(store: &MySqlStore, student: StudentId) -> Result<Vec<u32>, StoreError> {
    store
        .timed(
            sqlx::query_scalar::<_, u32>(
                "SELECT section_id FROM cart_items WHERE student_id = ? AND waitlist",
            )
            .bind(student.0)
            .fetch_all(store.pool()),
        )
        .await
}

/// Sets the item's "join the waitlist if full" choice. False when the
/// section is not in the cart.
pub async fn set_waitlist(
    store: &MySqlStore,
    student: StudentId,
    section: u32,
    waitlist: bool,
) -> Result<bool, StoreError> {
    // Affected rows count only changed rows: ask whether the item exists.
    store
        .timed(
            sqlx::query(
                "UPDATE cart_items SET waitlist = ? WHERE student_id = ? AND section_id = ?",
            )
            .bind(waitlist)
            .bind(student.0)
            .bind(section)
            .execute(store.pool()),
        )
        .await?;
    let present: i64 = store
        .timed(
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM cart_items WHERE student_id = ? AND section_id = ?",
            )
            .bind(student.0)
            .bind(section)
            .fetch_one(store.pool()),
        )
        .await?;
    Ok(present > 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn stored_alternates_parse_in_order_and_skip_junk() {
        assert_eq!(super::parse_alternates("9,3, 12"), vec![9, 3, 12]);
        assert_eq!(super::parse_alternates(""), Vec::<u32>::new());
        assert_eq!(super::parse_alternates("4,x,5"), vec![4, 5]);
    }
}
