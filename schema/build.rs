//! Rebuilds the crate when a migration is added, changed or removed: the
//! migrations are embedded at compile time by `sqlx::migrate!`.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
