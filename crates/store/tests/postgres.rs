//! The PostgreSQL store against a real PostgreSQL: each test makes a database of its own on
//! the server `SWITCHBOARD_TEST_POSTGRES` names (default
//! `postgres://postgres:postgres@127.0.0.1:5432/postgres`; `scripts/test` starts one when none
//! runs) and drops it afterwards.

use switchboard_store::postgres::PgStore;
use switchboard_store::{CallOptions, StoreError};

mod support;

use support::pg::{server_url, FreshDatabase};

/// A node on the test's database, with the default options.
async fn node_on(db: &FreshDatabase) -> PgStore {
    PgStore::connect(&db.url, CallOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn nodes_starting_together_migrate_the_database_once() {
    let db = FreshDatabase::new("migrate").await;
    let nodes = (0..3).map(|_| {
        let url = db.url.clone();
        tokio::spawn(async move { PgStore::connect(&url, CallOptions::default()).await })
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
    let again = node_on(&db).await;
    assert_eq!(again.schema_version().await.unwrap(), version);
}

#[tokio::test]
async fn a_url_that_is_not_one_is_refused_naming_the_setting() {
    for url in [
        "mysql://root@127.0.0.1/db",
        "host=127.0.0.1 dbname=x",
        "postgres://[::1",
    ] {
        let err = PgStore::connect(url, CallOptions::default())
            .await
            .expect_err(url);
        assert!(matches!(err, StoreError::Config(_)), "{url}: {err:?}");
        let text = err.to_string();
        assert!(text.starts_with("store: not a PostgreSQL URL"), "{text}");
    }
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_and_the_message_says_where_without_the_password() {
    // Nothing listens on port 1.
    let err = PgStore::connect(
        "postgres://someone:s3cret@127.0.0.1:1/calls",
        CallOptions::default(),
    )
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
    let err = PgStore::connect(
        &format!("{base}/switchboard_no_such_database"),
        CallOptions::default(),
    )
    .await
    .expect_err("no such database");
    let text = err.to_string();
    assert!(text.contains("switchboard_no_such_database"), "{text}");
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
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
    let a = node_on(&db).await;
    let b = node_on(&db).await;
    let account = switchboard_model::AccountId(1);
    let first = a
        .ingest(account, vec![event("k1"), event("k2")], now())
        .await
        .unwrap();
    assert_eq!((first.accepted, first.duplicates), (2, 0));
    let again = b
        .ingest(account, vec![event("k2"), event("k3")], now())
        .await
        .unwrap();
    assert_eq!(
        (again.accepted, again.duplicates),
        (1, 1),
        "k2 is a duplicate through the other node"
    );
    assert_eq!(
        again.ids[0], first.ids[1],
        "a duplicate is known by the first copy's id"
    );
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
    let store = node_on(&db).await;
    let account = switchboard_model::AccountId(1);
    let before_seq = store
        .ingest(account, vec![event("before")], now())
        .await
        .unwrap()
        .last_seq;
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
        .ingest(account, vec![event("fast")], now())
        .await
        .unwrap()
        .last_seq;
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

/// A listener made through one node matches the next event another node takes, although
/// that node had built the account's listener index before: the account's `config_version`,
/// read in the ingest transaction, tells it. (The resources are written with SQL here, as the
/// management API on PostgreSQL is still to come; it bumps the version the same way.)
#[tokio::test]
async fn a_listener_made_elsewhere_matches_the_next_event_at_once() {
    let db = FreshDatabase::new("config").await;
    let node = node_on(&db).await;
    let account = switchboard_model::AccountId(1);
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .execute(
            "INSERT INTO accounts (id, name, created_at) VALUES (1, 'acme', 0)",
            &[],
        )
        .await
        .unwrap();
    let first = node
        .ingest(account, vec![event("e1")], now())
        .await
        .unwrap();
    assert_eq!(first.deliveries, 0, "no listener yet");

    let e2 = event("e2");
    let tags = serde_json::json!({ ":tags": e2.tags }).to_string();
    client
        .batch_execute(&format!(
            "BEGIN;
             INSERT INTO resources (id, kind, account_id, body, created_at)
                  VALUES (10, 'callback', 1, '{{\"url\": \"https://example.com/hook\"}}', 0),
                         (11, 'listener', 1, '{{\"callback_id\": 10, \"version\": \"2.0.0\"}}', 0);
             INSERT INTO resources (id, kind, account_id, parent_id, body, created_at)
                  VALUES (12, 'subscription', 1, 11, '{tags}', 0);
             UPDATE accounts SET config_version = config_version + 1 WHERE id = 1;
             COMMIT;"
        ))
        .await
        .unwrap();
    let second = node.ingest(account, vec![e2], now()).await.unwrap();
    assert_eq!(second.deliveries, 1, "the new listener hears it");
    let row = client
        .query_one(
            "SELECT listener_id, callback_id, status, call_id FROM outbox",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 11);
    assert_eq!(row.get::<_, i64>(1), 10);
    assert_eq!(row.get::<_, String>(2), "pending");
    assert!(
        row.get::<_, Option<String>>(3).is_some(),
        "ordered by its call"
    );

    // The next event of the same call waits behind the first delivery, in order.
    let third = node
        .ingest(account, vec![event("e3")], now())
        .await
        .unwrap();
    assert_eq!(third.deliveries, 1);
    let statuses: Vec<String> = client
        .query("SELECT status FROM outbox ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(statuses, ["pending", "queued"]);
}

/// One call's events taken by three nodes at the same moment make one call, whatever the
/// order: correlation takes turns on the call's ids.
#[tokio::test]
async fn one_calls_events_through_three_nodes_at_once_make_one_call() {
    let db = FreshDatabase::new("onecall").await;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(node_on(&db).await);
    }
    let account = switchboard_model::AccountId(1);
    for round in 0..5 {
        let sends = (0..3).map(|n| {
            let node = nodes[n].clone();
            tokio::spawn(async move {
                for k in 0..10 {
                    let mut e = event(&format!("r{round}-n{n}-k{k}"));
                    e.fact.call_id = Some(format!("call-{round}"));
                    node.ingest(account, vec![e], now()).await.unwrap();
                }
            })
        });
        for send in sends.collect::<Vec<_>>() {
            send.await.unwrap();
        }
    }
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let calls: Vec<(i64, i64)> = client
        .query(
            "SELECT cardinality(event_seqs)::bigint, version FROM calls ORDER BY created_at",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        calls,
        vec![(30, 30); 5],
        "five calls of 30 events, each written 30 times"
    );
    let aliases: i64 = client
        .query_one("SELECT COUNT(*) FROM call_aliases", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(aliases, 5);
}

/// An account with one callback (10), one listener (11) on it, subscribed to what `event`
/// makes; returns a SQL client on the database.
async fn with_listener(db: &FreshDatabase) -> tokio_postgres::Client {
    // (The schema first.)
    node_on(db).await;
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let tags = serde_json::json!({ ":tags": event("x").tags }).to_string();
    client
        .batch_execute(&format!(
            "INSERT INTO accounts (id, name, created_at) VALUES (1, 'acme', 0);
             INSERT INTO resources (id, kind, account_id, body, created_at)
                  VALUES (10, 'callback', 1, '{{\"url\": \"https://example.com/hook\"}}', 0),
                         (11, 'listener', 1, '{{\"callback_id\": 10, \"version\": \"2.0.0\"}}', 0);
             INSERT INTO resources (id, kind, account_id, parent_id, body, created_at)
                  VALUES (12, 'subscription', 1, 11, '{tags}', 0);"
        ))
        .await
        .unwrap();
    client
}

fn slots() -> switchboard_store::CallbackSlots {
    switchboard_store::CallbackSlots {
        free: Default::default(),
        default: 100,
    }
}

fn in_flight() -> std::sync::Arc<switchboard_store::InFlight> {
    Default::default()
}

fn outcome(outbox_id: i64, next: switchboard_store::Next) -> switchboard_store::AttemptOutcome {
    switchboard_store::AttemptOutcome {
        outbox_id,
        callback_id: 10,
        gone: false,
        at_ms: now().as_millisecond(),
        status_code: Some(200),
        latency_ms: 3,
        error: None,
        response_prefix: None,
        next,
    }
}

const DAY_MS: i64 = 86_400_000;

#[tokio::test]
async fn two_nodes_claiming_at_once_never_take_the_same_delivery() {
    let db = FreshDatabase::new("claims").await;
    let _client = with_listener(&db).await;
    let a = node_on(&db).await;
    let b = node_on(&db).await;
    let account = switchboard_model::AccountId(1);
    // Forty calls, one delivery each: every one a head of its chain.
    let events: Vec<_> = (0..40)
        .map(|i| {
            let mut e = event(&format!("c{i}"));
            e.fact.call_id = Some(format!("call-{i}"));
            e
        })
        .collect();
    assert_eq!(
        a.ingest(account, events, now()).await.unwrap().deliveries,
        40
    );
    let at = now().as_millisecond();
    let mut taken = Vec::new();
    for _ in 0..4 {
        let (x, y) = tokio::join!(
            a.claim_due(at, 7, slots(), in_flight()),
            b.claim_due(at, 7, slots(), in_flight())
        );
        taken.extend(x.unwrap().deliveries.iter().map(|d| d.outbox_id));
        taken.extend(y.unwrap().deliveries.iter().map(|d| d.outbox_id));
    }
    let mut unique = taken.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        taken.len(),
        "a delivery was claimed twice: {taken:?}"
    );
    assert_eq!(taken.len(), 40, "all claimed, 7 a claim");
    // Everything is leased now: nothing more to claim.
    assert!(a
        .claim_due(at, 100, slots(), in_flight())
        .await
        .unwrap()
        .deliveries
        .is_empty());
}

#[tokio::test]
async fn a_dead_nodes_leases_run_out_and_another_node_delivers_while_the_first_records_nothing() {
    let db = FreshDatabase::new("leases").await;
    let client = with_listener(&db).await;
    let lease = std::time::Duration::from_millis(300);
    let a = node_on(&db).await.with_lease(lease);
    let b = node_on(&db).await.with_lease(lease);
    let account = switchboard_model::AccountId(1);
    a.ingest(account, vec![event("only")], now()).await.unwrap();
    let at = now().as_millisecond();
    let claimed = a
        .claim_due(at, 10, slots(), in_flight())
        .await
        .unwrap()
        .deliveries;
    assert_eq!(claimed.len(), 1);
    let id = claimed[0].outbox_id;
    assert_eq!(claimed[0].listener_id, 11);
    assert_eq!(claimed[0].event.fact.source_key, "only");
    assert!(claimed[0].callback.is_some());
    assert!(
        b.claim_due(at, 10, slots(), in_flight())
            .await
            .unwrap()
            .deliveries
            .is_empty(),
        "held by a"
    );

    // a goes quiet past its lease: b takes the delivery over.
    let later = at + 400;
    let taken = b
        .claim_due(later, 10, slots(), in_flight())
        .await
        .unwrap()
        .deliveries;
    assert_eq!(
        taken.iter().map(|d| d.outbox_id).collect::<Vec<_>>(),
        vec![id]
    );
    // a comes back with its outcome: it no longer holds the row, so nothing changes.
    a.record_attempts(
        vec![outcome(id, switchboard_store::Next::Succeeded)],
        DAY_MS,
    )
    .await
    .unwrap();
    let row = client
        .query_one("SELECT status, attempts FROM outbox WHERE id = $1", &[&id])
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, i32>(1)),
        ("pending".into(), 0)
    );
    // b's outcome counts.
    b.record_attempts(
        vec![outcome(id, switchboard_store::Next::Succeeded)],
        DAY_MS,
    )
    .await
    .unwrap();
    let row = client
        .query_one(
            "SELECT status, attempts, leased_by FROM outbox WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, i32>(1)),
        ("succeeded".into(), 1)
    );
    assert_eq!(row.get::<_, Option<String>>(2), None);
    let attempts: i64 = client
        .query_one("SELECT COUNT(*) FROM attempts WHERE outbox_id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(attempts, 1);
}

#[tokio::test]
async fn a_calls_deliveries_go_one_at_a_time_in_order_whichever_node_sends_them() {
    let db = FreshDatabase::new("chain").await;
    let _client = with_listener(&db).await;
    let a = node_on(&db).await;
    let b = node_on(&db).await;
    let account = switchboard_model::AccountId(1);
    let keys = ["first", "second", "third"];
    for (k, node) in keys.iter().zip([&a, &b, &a]) {
        node.ingest(account, vec![event(k)], now()).await.unwrap();
    }
    let mut sent = Vec::new();
    for (turn, node) in [&b, &a, &b].into_iter().enumerate() {
        let at = now().as_millisecond();
        let claimed = node
            .claim_due(at, 10, slots(), in_flight())
            .await
            .unwrap()
            .deliveries;
        assert_eq!(
            claimed.len(),
            1,
            "turn {turn}: only the head of the call's chain is due"
        );
        let other = if std::ptr::eq(node, &a) { &b } else { &a };
        assert!(other
            .claim_due(at, 10, slots(), in_flight())
            .await
            .unwrap()
            .deliveries
            .is_empty());
        sent.push(claimed[0].event.fact.source_key.clone());
        node.record_attempts(
            vec![outcome(
                claimed[0].outbox_id,
                switchboard_store::Next::Succeeded,
            )],
            DAY_MS,
        )
        .await
        .unwrap();
    }
    assert_eq!(sent, keys);
    let at = now().as_millisecond();
    assert!(a
        .claim_due(at, 10, slots(), in_flight())
        .await
        .unwrap()
        .deliveries
        .is_empty());
}

/// The database drops every connection of a node (a restart, a failover): what the node was
/// doing fails as "unavailable" (the server answers 503, nothing stored), and the node
/// carries on by itself with new connections; nothing acknowledged is lost.
#[tokio::test]
async fn a_node_recovers_by_itself_when_the_database_drops_its_connections() {
    let db = FreshDatabase::new("recover").await;
    let node = node_on(&db).await;
    let account = switchboard_model::AccountId(1);
    // Several connections in the pool, all in use once.
    let warm: Vec<_> = (0..4)
        .map(|i| {
            let node = node.clone();
            tokio::spawn(async move {
                node.ingest(account, vec![event(&format!("w{i}"))], now())
                    .await
            })
        })
        .collect();
    for w in warm {
        w.await.unwrap().unwrap();
    }
    let (admin, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let dropped: i64 = admin
        .query_one(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(dropped >= 1, "the node's connections were dropped");
    let mut acknowledged = 4;
    let mut refused = 0;
    for i in 0..20 {
        match node
            .ingest(account, vec![event(&format!("a{i}"))], now())
            .await
        {
            Ok(out) => acknowledged += out.accepted,
            Err(e) => {
                assert!(
                    e.is_storage(),
                    "a dropped connection is the storage's failure: {e:?}"
                );
                assert!(e.to_string().contains("cannot be reached"), "{e}");
                refused += 1;
            }
        }
    }
    assert!(
        refused <= 4,
        "{refused} refused: the pool did not let go of dead connections"
    );
    assert!(acknowledged >= 20, "it carried on");
    let stored: i64 = admin
        .query_one("SELECT COUNT(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        stored as usize, acknowledged,
        "every acknowledged event is stored, no other"
    );
}

/// Requests that arrive together are written in one transaction; one that must be refused
/// (its call would pass the most events a call may have) is refused alone, naming its own
/// event, and the others are stored.
#[tokio::test]
async fn a_refused_request_among_many_taken_together_fails_alone() {
    let db = FreshDatabase::new("together").await;
    let options = CallOptions {
        max_events_per_call: 3,
        ..CallOptions::default()
    };
    let node = PgStore::connect(&db.url, options).await.unwrap();
    let account = switchboard_model::AccountId(1);
    let mut sends = Vec::new();
    for i in 0..40 {
        let node = node.clone();
        sends.push(tokio::spawn(async move {
            let events = if i == 17 {
                // Four events of one call: one more than a call may have.
                (0..4)
                    .map(|k| {
                        let mut e = event(&format!("full-{k}"));
                        e.fact.call_id = Some("full".into());
                        e
                    })
                    .collect()
            } else {
                let mut e = event(&format!("ok-{i}"));
                e.fact.call_id = Some(format!("call-{i}"));
                vec![e]
            };
            node.ingest(account, events, now()).await
        }));
    }
    let mut stored = 0;
    for (i, send) in sends.into_iter().enumerate() {
        match send.await.unwrap() {
            Ok(out) => {
                assert_ne!(i, 17);
                assert_eq!(out.accepted, 1);
                stored += 1;
            }
            Err(StoreError::CallFull { index, max, .. }) => {
                assert_eq!(i, 17);
                assert_eq!((index, max), (Some(3), 3), "its own fourth event");
            }
            Err(e) => panic!("request {i}: {e}"),
        }
    }
    assert_eq!(stored, 39);
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let keys: Vec<String> = client
        .query(
            "SELECT source_key FROM events WHERE source_key LIKE 'full-%'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        keys.is_empty(),
        "nothing of the refused request is stored: {keys:?}"
    );
    let count: i64 = client
        .query_one("SELECT COUNT(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 39);
}

/// Accounts and tokens made through one node are known to the others; ids made at the same
/// moment by several nodes are all different.
#[tokio::test]
async fn accounts_and_tokens_made_through_one_node_work_through_the_others() {
    let db = FreshDatabase::new("accounts").await;
    let a = node_on(&db).await;
    let b = node_on(&db).await;
    let acme = a
        .create_account(Some(1000002), "Acme".into())
        .await
        .unwrap();
    assert_eq!(acme.id, switchboard_model::AccountId(1000002));
    let again = b.create_account(Some(1000002), "Other".into()).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let found = b
        .account(acme.id)
        .await
        .unwrap()
        .expect("through the other node");
    assert_eq!(found.name, "Acme");
    assert!(b
        .account(switchboard_model::AccountId(7))
        .await
        .unwrap()
        .is_none());

    // Next free ids, made by both nodes at once.
    let made: Vec<_> = (0..10)
        .map(|i| {
            let node = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { node.create_account(None, format!("n{i}")).await })
        })
        .collect();
    let mut ids = Vec::new();
    for m in made {
        ids.push(m.await.unwrap().unwrap().id.0);
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 10, "all different: {ids:?}");
    assert!(ids.iter().all(|id| *id > 1000002));

    let token = a
        .create_token(
            acme.id,
            switchboard_store::Scope::Api,
            Some(12),
            Some("Europe/Paris".into()),
        )
        .await
        .unwrap();
    assert!(token.starts_with("sb_api_"), "{token}");
    let info = b
        .authenticate(&token)
        .await
        .unwrap()
        .expect("known through the other node");
    assert_eq!(info.account, acme.id);
    assert_eq!(info.scope, switchboard_store::Scope::Api);
    assert_eq!(info.extension_id, Some(12));
    assert_eq!(info.default_tz.as_deref(), Some("Europe/Paris"));
    // A wrong secret for a real token id, and tokens never issued.
    let (stem, _) = token.rsplit_once('_').unwrap();
    assert_eq!(b.authenticate(&format!("{stem}_00")).await.unwrap(), None);
    assert_eq!(b.authenticate("sb_api_999_abc").await.unwrap(), None);
    assert_eq!(b.authenticate("not a token").await.unwrap(), None);
    // No token for an account that does not exist.
    let none = a
        .create_token(
            switchboard_model::AccountId(5),
            switchboard_store::Scope::Ingest,
            None,
            None,
        )
        .await;
    assert!(matches!(none, Err(StoreError::NotFound)), "{none:?}");
}

/// The management resources through the store's API: references checked, a listener made
/// through one node heard by the next event another node takes, lists filtered by document
/// fields, a callback in use kept, a listener deleted with its subscriptions and heard no more.
#[tokio::test]
async fn resources_made_through_one_node_decide_what_the_others_deliver() {
    use serde_json::json;
    use switchboard_store::{Blocker, Kind, ListQuery, NewResource, Owner, Ref};
    let db = FreshDatabase::new("resources").await;
    let a = node_on(&db).await;
    let b = node_on(&db).await;
    let acme = a.create_account(Some(1), "Acme".into()).await.unwrap();
    let owner = Owner {
        account: acme.id,
        extension_id: None,
    };
    // b builds its listener index (empty) first.
    assert_eq!(
        b.ingest(acme.id, vec![event("before")], now())
            .await
            .unwrap()
            .deliveries,
        0
    );

    let missing = a
        .create_resource(NewResource {
            kind: Kind::Listener,
            owner,
            parent_id: None,
            body: json!({"callback_id": 99, "version": "2.0.0"}),
            refs: vec![Ref {
                field: "callback_id".into(),
                kind: Kind::Callback,
                id: 99,
            }],
        })
        .await;
    assert!(
        matches!(missing, Err(StoreError::MissingRef { id: 99, .. })),
        "{missing:?}"
    );
    let callback = a
        .create_resource(NewResource {
            kind: Kind::Callback,
            owner,
            parent_id: None,
            body: json!({"url": "https://example.com/hook", "role": "primary"}),
            refs: vec![],
        })
        .await
        .unwrap();
    let listener = a
        .create_resource(NewResource {
            kind: Kind::Listener,
            owner,
            parent_id: None,
            body: json!({"callback_id": callback.id, "version": "2.0.0"}),
            refs: vec![Ref {
                field: "callback_id".into(),
                kind: Kind::Callback,
                id: callback.id,
            }],
        })
        .await
        .unwrap();
    a.create_resource(NewResource {
        kind: Kind::Subscription,
        owner,
        parent_id: Some(listener.id),
        body: json!({":tags": event("x").tags}),
        refs: vec![],
    })
    .await
    .unwrap();
    assert_eq!(
        b.ingest(acme.id, vec![event("after")], now())
            .await
            .unwrap()
            .deliveries,
        1,
        "the other node hears of the listener at once"
    );

    let got = b
        .get_resource(Kind::Callback, owner, None, callback.id)
        .await
        .unwrap()
        .expect("through the other node");
    assert_eq!(got.body["url"], "https://example.com/hook");
    let list = |equals: Vec<(String, serde_json::Value)>| ListQuery {
        kind: Kind::Callback,
        owner,
        parent_id: None,
        equals,
        limit: 10,
        offset: 0,
    };
    assert_eq!(b.list_resources(list(vec![])).await.unwrap().0, 1);
    assert_eq!(
        b.list_resources(list(vec![("role".into(), json!("primary"))]))
            .await
            .unwrap()
            .0,
        1
    );
    assert_eq!(
        b.list_resources(list(vec![("role".into(), json!("backup"))]))
            .await
            .unwrap()
            .0,
        0
    );
    assert_eq!(
        b.list_resources(list(vec![("fallback".into(), json!(null))]))
            .await
            .unwrap()
            .0,
        1
    );
    assert_eq!(
        b.list_resources(list(vec![("role".into(), json!(null))]))
            .await
            .unwrap()
            .0,
        0
    );

    let in_use = b
        .delete_resource(
            Kind::Callback,
            owner,
            None,
            callback.id,
            vec![Blocker {
                kind: Kind::Listener,
                field: "callback_id",
                message: "the callback is in use".into(),
            }],
        )
        .await;
    assert!(matches!(in_use, Err(StoreError::Conflict(_))), "{in_use:?}");
    let updated = b
        .update_resource(Kind::Callback, owner, None, callback.id, |r| {
            let mut body = r.body.clone();
            body["role"] = json!("backup");
            Ok((body, vec![]))
        })
        .await
        .unwrap();
    assert_eq!(updated.body["role"], "backup");
    b.delete_resource(Kind::Listener, owner, None, listener.id, vec![])
        .await
        .unwrap();
    assert!(b
        .children_of(Kind::Subscription, acme.id, vec![listener.id])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        a.ingest(acme.id, vec![event("gone")], now())
            .await
            .unwrap()
            .deliveries,
        0,
        "a deleted listener is heard no more, on any node"
    );
    let none = b
        .get_resource(Kind::Listener, owner, None, listener.id)
        .await
        .unwrap();
    assert!(none.is_none());
}

/// A call is found by the hub's id or by the id its source gave it, with its events.
#[tokio::test]
async fn a_call_is_found_by_its_own_id_or_its_sources() {
    let db = FreshDatabase::new("call").await;
    let node = node_on(&db).await;
    let account = switchboard_model::AccountId(1);
    let mut e = event("only");
    e.fact.call_id = Some("vendor-call-7".into());
    node.ingest(account, vec![e], now()).await.unwrap();
    let (call, events) = node
        .call(account, "vendor-call-7".into())
        .await
        .unwrap()
        .expect("by the source's id");
    assert_eq!(events.len(), 1);
    assert_eq!(call.aliases, vec!["canonical:vendor-call-7".to_string()]);
    assert!(!call.finalized);
    let (again, _) = node
        .call(account, call.id.clone())
        .await
        .unwrap()
        .expect("by the hub's id");
    assert_eq!(again.id, call.id);
    assert!(node
        .call(account, "nothing".into())
        .await
        .unwrap()
        .is_none());
    assert!(node
        .call(switchboard_model::AccountId(2), call.id.clone())
        .await
        .unwrap()
        .is_none());
    assert_eq!(node.count_events(account).await.unwrap(), 1);
    assert!(node.agents(account).await.unwrap().is_empty());
}

/// A callback switched off holds its deliveries (they wait, their retries unspent); switched
/// on again, they are due at once — whichever node changes it.
#[tokio::test]
async fn a_callback_switched_off_holds_its_deliveries_and_on_again_releases_them() {
    use serde_json::json;
    use switchboard_store::{Kind, Owner};
    let db = FreshDatabase::new("waiting").await;
    let client = with_listener(&db).await;
    let a = node_on(&db).await;
    let b = node_on(&db).await;
    let account = switchboard_model::AccountId(1);
    assert_eq!(
        a.ingest(account, vec![event("e1")], now())
            .await
            .unwrap()
            .deliveries,
        1
    );
    let owner = Owner {
        account,
        extension_id: None,
    };
    let switch = |on: bool| {
        move |r: &switchboard_store::Resource| {
            let mut body = r.body.clone();
            body["enabled"] = json!(on);
            Ok((body, vec![]))
        }
    };
    let due = || async {
        client
            .query_one("SELECT next_attempt_at FROM outbox", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    b.update_resource(Kind::Callback, owner, None, 10, switch(false))
        .await
        .unwrap();
    assert_eq!(
        due().await,
        switchboard_store::WAITING,
        "held while the callback is off"
    );
    let at = now().as_millisecond();
    assert!(a
        .claim_due(at, 10, slots(), in_flight())
        .await
        .unwrap()
        .deliveries
        .is_empty());
    b.update_resource(Kind::Callback, owner, None, 10, switch(true))
        .await
        .unwrap();
    assert!(due().await <= now().as_millisecond(), "due again at once");
    let at = now().as_millisecond();
    assert_eq!(
        a.claim_due(at, 10, slots(), in_flight())
            .await
            .unwrap()
            .deliveries
            .len(),
        1
    );
}
