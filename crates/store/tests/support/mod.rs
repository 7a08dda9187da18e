//! What the store's test binaries share.

pub mod pg;

use switchboard_store::{CallOptions, PgStore, Store};

/// The store the tests that hold for both stores run on: with `SWITCHBOARD_TEST_STORE=postgres`
/// a PostgreSQL store on a database of its own (kept as long as the returned guard), else
/// SQLite in `dir`. `scripts/test` runs those tests both ways.
#[allow(dead_code)]
pub async fn store_under_test(
    dir: &std::path::Path,
    options: CallOptions,
) -> (Store, Option<pg::FreshDatabase>) {
    match std::env::var("SWITCHBOARD_TEST_STORE").as_deref() {
        Ok("postgres") => {
            let db = pg::FreshDatabase::new("store").await;
            let store = PgStore::connect(&db.url, options).await.unwrap();
            (Store::Postgres(store), Some(db))
        }
        _ => (Store::open_with(dir, options).unwrap(), None),
    }
}
