//! Terms (semesters), as the registrar's forms offer them.

use super::{MySqlStore, StoreError};

/// A term a round or a course belongs to.
#[derive(Debug, sqlx::FromRow)]
pub struct Term {
    pub id: u32,
    pub code: String,
    pub name: String,
}

/// Every term, newest first.
pub async fn all(store: &MySqlStore) -> Result<Vec<Term>, StoreError> {
    store
        .timed(
            sqlx::query_as("SELECT id, code, name FROM terms ORDER BY starts_on DESC")
                .fetch_all(store.pool()),
        )
        .await
}
