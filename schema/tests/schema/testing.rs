//! The throw-away test database cleans up after a failing test: dropped
//! when the test panics, under both runtime flavours and without one.

use schema::testing::TestDb;

/// Whether the server still lists a database called `name`.
async fn exists(name: &str) -> bool {
    let server = format!("{}/information_schema", schema::testing::server());
    let pool = schema::db::connect(&server, 1)
        .await
        .expect("connecting to the server");
    // What SHOW DATABASES lists, with the name bound as a parameter.
    let listed: Vec<String> = sqlx::query_scalar(
        "SELECT schema_name FROM information_schema.schemata WHERE schema_name = ?",
    )
    .bind(name)
    .fetch_all(&pool)
    .await
    .expect("listing databases");
    pool.close().await;
    listed.iter().any(|n| n == name)
}

/// Runs a task that holds a fresh database, uses it and panics; returns the
/// database's name once the panic has unwound.
async fn panicking_test() -> String {
    let db = TestDb::create("sluice_t_", 2).await;
    let name = db.name.clone();
    let test = tokio::spawn(async move {
        // A session still open on the database when the test fails.
        let held = db.pool.acquire().await.expect("a connection");
        assert_eq!(db.pool.size(), 0, "a failing assertion");
        drop(held);
    });
    let failed = test.await.expect_err("the test panicked");
    assert!(failed.is_panic());
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_database_is_dropped_when_its_test_panics_on_a_multi_thread_runtime() {
    let name = panicking_test().await;
    assert!(!exists(&name).await, "{name} outlived its test");
}

#[tokio::test(flavor = "current_thread")]
async fn a_test_database_is_dropped_when_its_test_panics_on_a_current_thread_runtime() {
    let name = panicking_test().await;
    assert!(!exists(&name).await, "{name} outlived its test");
}

#[test]
fn a_test_database_is_dropped_when_a_blocking_test_panics() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut name = String::new();
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let db = runtime.block_on(TestDb::create("sluice_t_", 2));
        name = db.name.clone();
        panic!("a failing test holding {}", db.name);
    }));
    assert!(failed.is_err());
    assert!(!name.is_empty());
    assert!(!runtime.block_on(exists(&name)), "{name} outlived its test");
}

#[tokio::test]
async fn a_removed_test_database_is_gone_and_the_value_keeps_quiet() {
    let db = TestDb::create("sluice_t_", 2).await;
    let name = db.name.clone();
    assert!(exists(&name).await);
    db.remove().await.expect("remove");
    assert!(!exists(&name).await);
}
