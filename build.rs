//! Build script: rebuilds the crate when a migration file changes. The migrations are embedded
//! at compile time (`sqlx::migrate!` in `src/store/mod.rs`), and cargo does not otherwise know
//! about those files: without this, a new migration would be left out of an incremental build.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
