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
    let inserted = store
        .timed(
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
