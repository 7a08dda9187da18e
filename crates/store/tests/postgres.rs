//! The PostgreSQL store against a real PostgreSQL: each test makes a database of its own on
//! the server `SWITCHBOARD_TEST_POSTGRES` names (default
//! `postgres://postgres:postgres@127.0.0.1:5432/postgres`; `scripts/test` starts one when none
//! runs) and drops it afterwards.

use switchboard_store::postgres::PgStore;
use switchboard_store::StoreError;

fn server_url() -> String {
    std::env::var("SWITCHBOARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into())
}

/// A database made for one test, dropped when the test ends.
struct FreshDatabase {
    name: String,
    url: String,
}

impl FreshDatabase {
    async fn new(test: &str) -> FreshDatabase {
        let server = server_url();
        let (client, conn) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {server} (SWITCHBOARD_TEST_POSTGRES): {e}"));
        tokio::spawn(conn);
        let name = format!(
            "switchboard_test_{test}_{}_{}",
            std::process::id(),
            jiff::Timestamp::now().as_microsecond()
        );
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(&server);
        let url = format!("{base}/{name}");
        FreshDatabase { name, url }
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Its own thread and runtime: the test's runtime may be finishing.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&server_url(), tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            })
        })
        .join();
    }
}

#[tokio::test]
async fn nodes_starting_together_migrate_the_database_once() {
    let db = FreshDatabase::new("migrate").await;
    let nodes = (0..3).map(|_| {
        let url = db.url.clone();
        tokio::spawn(async move { PgStore::connect(&url, 4).await })
    });
    let mut stores = Vec::new();
    for node in nodes {
        stores.push(node.await.unwrap().expect("every node starts"));
    }
    let version = stores[0].schema_version().await.unwrap();
    assert!(version >= 1);
    for store in &stores {
        assert_eq!(store.schema_version().await.unwrap(), version);
        store.probe_write().await.unwrap();
    }
    // Each migration ran once.
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let rows: i64 = client
        .query_one("SELECT COUNT(*) FROM switchboard_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows as usize, version);
    // A node started again finds nothing to do.
    let again = PgStore::connect(&db.url, 2).await.unwrap();
    assert_eq!(again.schema_version().await.unwrap(), version);
}

#[tokio::test]
async fn a_url_that_is_not_one_is_refused_naming_the_setting() {
    for url in [
        "mysql://root@127.0.0.1/db",
        "host=127.0.0.1 dbname=x",
        "postgres://[::1",
    ] {
        let err = PgStore::connect(url, 2).await.expect_err(url);
        assert!(matches!(err, StoreError::Config(_)), "{url}: {err:?}");
        let text = err.to_string();
        assert!(text.starts_with("store: not a PostgreSQL URL"), "{text}");
    }
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_and_the_message_says_where_without_the_password() {
    // Nothing listens on port 1.
    let err = PgStore::connect("postgres://someone:s3cret@127.0.0.1:1/calls", 2)
        .await
        .expect_err("nothing listens there");
    assert!(err.is_storage(), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("127.0.0.1:1/calls"), "{text}");
    assert!(text.contains("cannot be reached"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

#[tokio::test]
async fn a_database_that_does_not_exist_is_named() {
    let server = server_url();
    let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(&server);
    let err = PgStore::connect(&format!("{base}/switchboard_no_such_database"), 2)
        .await
        .expect_err("no such database");
    let text = err.to_string();
    assert!(text.contains("switchboard_no_such_database"), "{text}");
}

/// An event of account 1 as a decoder and the engine make it.
fn event(key: &str) -> switchboard_model::Event {
    use switchboard_model::{AccountId, Details, Dialect, EventKind, Fact, Source};
    let fact = Fact {
        time_estimated: false,
        source_key: key.into(),
        kind: EventKind::LegRinging,
        occurred_at: jiff::Timestamp::from_second(1_700_000_000).unwrap(),
        call_id: Some("call-1".into()),
        leg_id: None,
        agent_id: None,
        details: Details::None,
        vendor: Default::default(),
        raw: serde_json::value::to_raw_value(&serde_json::json!({ "key": key })).unwrap(),
    };
    let source = Source {
        dialect: Dialect::Canonical,
        name: None,
    };
    let now = jiff::Timestamp::now();
    switchboard_engine::stamp(AccountId(1), &source, now, vec![fact], uuid::Uuid::now_v7).remove(0)
}

#[tokio::test]
async fn events_are_deduplicated_by_source_key_whichever_node_stores_them() {
    let db = FreshDatabase::new("dedupe").await;
    let a = PgStore::connect(&db.url, 2).await.unwrap();
    let b = PgStore::connect(&db.url, 2).await.unwrap();
    let account = switchboard_model::AccountId(1);
    let first = a
        .append_events(account, &[event("k1"), event("k2")])
        .await
        .unwrap();
    assert!(first.iter().all(Option::is_some));
    let again = b
        .append_events(account, &[event("k2"), event("k3")])
        .await
        .unwrap();
    assert_eq!(again[0], None, "k2 is a duplicate through the other node");
    assert!(again[1].is_some());
    let read = read_until(&b, 0, |read| read.len() >= 3).await;
    let keys: Vec<&str> = read
        .iter()
        .map(|e| e.event.fact.source_key.as_str())
        .collect();
    assert_eq!(keys, ["k1", "k2", "k3"]);
}

/// A transaction that took an earlier position and commits after a later one was read must
/// not be skipped by a reader following the log with a cursor.
#[tokio::test]
async fn a_cursor_never_skips_an_event_whose_transaction_commits_late() {
    let db = FreshDatabase::new("cursor").await;
    let store = PgStore::connect(&db.url, 4).await.unwrap();
    let account = switchboard_model::AccountId(1);
    let before_seq = store
        .append_events(account, &[event("before")])
        .await
        .unwrap()[0]
        .unwrap();
    let body: Vec<u8> = {
        let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .query_one("SELECT body FROM events ORDER BY seq LIMIT 1", &[])
            .await
            .unwrap()
            .get(0)
    };

    // A slow writer: its transaction takes the next position, then stays open.
    let (mut slow, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let tx = slow.transaction().await.unwrap();
    let slow_seq: i64 = tx
        .query_one(
            "INSERT INTO events (id, account_id, source_key, kind, occurred_at, received_at, body)
             VALUES ($1, 1, 'slow', 'call.leg.ringing', 0, 0, $2) RETURNING seq",
            &[&uuid::Uuid::now_v7(), &body],
        )
        .await
        .unwrap()
        .get(0);
    // A fast writer commits a later position meanwhile.
    let fast_seq = store
        .append_events(account, &[event("fast")])
        .await
        .unwrap()[0]
        .unwrap();
    assert!(before_seq < slow_seq && slow_seq < fast_seq);

    // A reader following the log gets what is safe to pass (at most the event stored
    // before: other tests' transactions on the same server may hold it back too), never the
    // fast event while the slow one's transaction is open.
    let first = store.events_after(account, 0, 100).await.unwrap();
    let mut seen: Vec<i64> = first.iter().map(|e| e.seq).collect();
    assert!(
        seen.is_empty() || seen == [before_seq],
        "read {seen:?} past an open transaction's event"
    );
    let cursor = seen.last().copied().unwrap_or(0);

    tx.commit().await.unwrap();
    let next = read_until(&store, cursor, |read| {
        read.iter().any(|e| e.seq == fast_seq)
    })
    .await;
    seen.extend(next.iter().map(|e| e.seq));
    assert_eq!(
        seen,
        vec![before_seq, slow_seq, fast_seq],
        "every event once, the late commit before the one committed first"
    );
    // And from the late one, the one after it.
    let rest = read_until(&store, slow_seq, |read| !read.is_empty()).await;
    assert_eq!(
        rest.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![fast_seq]
    );
    assert!(store
        .events_after(account, fast_seq, 100)
        .await
        .unwrap()
        .is_empty());
}

/// Reads the log after `cursor` until `enough` says so (transactions still running anywhere
/// on the server hold readers back for their while), for at most 10 s.
async fn read_until(
    store: &PgStore,
    cursor: i64,
    enough: impl Fn(&[switchboard_store::StoredEvent]) -> bool,
) -> Vec<switchboard_store::StoredEvent> {
    let account = switchboard_model::AccountId(1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let read = store.events_after(account, cursor, 100).await.unwrap();
        if enough(&read) || std::time::Instant::now() > deadline {
            return read;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
