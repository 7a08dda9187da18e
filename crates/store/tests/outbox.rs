//! The outbox through the store's API: a stored event that can no longer be read kills its own
//! delivery, not the deliveries queued behind it; a claim leaves out the rows in flight and
//! fills each callback's free senders.

use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_dialects::{decode, DecodeContext};
use switchboard_model::{AccountId, Dialect, Event, Source};
use switchboard_store::{CallbackSlots, InFlight, Kind, NewResource, Owner, Ref, Store};

mod support;

/// Two events of one call, in Phone.com's dialect.
fn two_events_of_one_call() -> Vec<Event> {
    let now = jiff::Timestamp::now();
    let ctx = DecodeContext::at(now);
    let source = Source {
        dialect: Dialect::Phonecom,
        name: None,
    };
    ["new", "connecting"]
        .iter()
        .enumerate()
        .flat_map(|(i, state)| {
            let payload = json!({"uuid": format!("e{i}"), "timestamp": now.as_second() + i as i64,
                "data_type": "call", "data": {"uuid": "c1", "direction": "inbound",
                "event_leg": {"uuid": "c1", "state": state, "from": {"type": "did", "id": "+15550000001"}}}});
            let raw = payload.to_string();
            let facts = decode(Dialect::Phonecom, &raw, &ctx).unwrap();
            switchboard_engine::stamp(AccountId(1), &source, now, facts, uuid::Uuid::now_v7)
        })
        .collect()
}

/// The first event of each of `calls` calls.
fn first_events_of_calls(calls: usize) -> Vec<Event> {
    let now = jiff::Timestamp::now();
    let ctx = DecodeContext::at(now);
    let source = Source {
        dialect: Dialect::Phonecom,
        name: None,
    };
    (0..calls)
        .flat_map(|i| {
            let payload = json!({"uuid": format!("f{i}"), "timestamp": now.as_second(),
                "data_type": "call", "data": {"uuid": format!("call{i}"), "direction": "inbound",
                "event_leg": {"uuid": format!("call{i}"), "state": "new", "from": {"type": "did", "id": "+15550000001"}}}});
            let raw = payload.to_string();
            let facts = decode(Dialect::Phonecom, &raw, &ctx).unwrap();
            switchboard_engine::stamp(AccountId(1), &source, now, facts, uuid::Uuid::now_v7)
        })
        .collect()
}

/// Adds a callback with one listener subscribed to `call`; returns the callback's id (the
/// first resource made).
async fn add_listener(store: &Store, owner: Owner) -> i64 {
    store
        .create_resources(move |add| {
            let cb = add(NewResource {
                kind: Kind::Callback,
                owner,
                parent_id: None,
                body: json!({"name": "r", "config": {"url": "http://127.0.0.1:9/hook", "method": "POST"}}),
                refs: Vec::new(),
            })?;
            let listener = add(NewResource {
                kind: Kind::Listener,
                owner,
                parent_id: None,
                body: json!({"callback_id": cb.id, "version": "phonecom", "expires_at": null}),
                refs: vec![Ref {
                    field: "callback_id".into(),
                    kind: Kind::Callback,
                    id: cb.id,
                }],
            })?;
            add(NewResource {
                kind: Kind::Subscription,
                owner,
                parent_id: Some(listener.id),
                body: json!({":tags": ["call"]}),
                refs: Vec::new(),
            })?;
            Ok(())
        })
        .await
        .unwrap()[0]
        .id
}

/// A SQLite store in a fresh directory (for the tests that damage its file by hand) with
/// account 1, and the owner of that account's resources.
async fn new_sqlite_store() -> (tempfile::TempDir, Store, Owner) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.create_account(Some(1), "t".into()).await.unwrap();
    let owner = Owner {
        account: AccountId(1),
        extension_id: None,
    };
    (dir, store, owner)
}

async fn claim(store: &Store) -> Vec<i64> {
    let slots = CallbackSlots {
        free: HashMap::new(),
        default: 16,
    };
    let now_ms = jiff::Timestamp::now().as_millisecond() + 1;
    store
        .claim_due(now_ms, 16, slots, Arc::new(InFlight::default()))
        .await
        .unwrap()
        .deliveries
        .into_iter()
        .map(|d| d.outbox_id)
        .collect()
}

#[tokio::test]
async fn an_unreadable_stored_event_is_dead_and_the_next_of_its_call_goes_on() {
    let (dir, store, owner) = new_sqlite_store().await;
    add_listener(&store, owner).await;
    store
        .ingest(
            AccountId(1),
            two_events_of_one_call(),
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();

    // The call's first delivery's event is damaged on disk (by hand, as a bad disk or a
    // careless edit would).
    let db = rusqlite::Connection::open(dir.path().join("switchboard.db")).unwrap();
    let (first, second): (i64, i64) = db
        .query_row(
            "SELECT MIN(id), MAX(id) FROM outbox WHERE call_id IS NOT NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_ne!(first, second, "two deliveries of one call");
    db.execute(
        "UPDATE events SET body = '{\"not\": \"an event\"}' WHERE seq = (SELECT event_seq FROM outbox WHERE id = ?1)",
        [first],
    )
    .unwrap();

    // The first claim finds only the damaged one, which it cannot hand out...
    assert_eq!(claim(&store).await, Vec::<i64>::new());
    // ...and the delivery behind it is due now.
    assert_eq!(claim(&store).await, vec![second]);
    let (status, error): (String, String) = db
        .query_row(
            "SELECT status, last_error FROM outbox WHERE id = ?1",
            [first],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(status, "dead");
    assert!(error.contains("stored event is unreadable"), "{error}");
    store.close();
}

#[tokio::test]
async fn a_claim_skips_rows_in_flight_and_fills_each_callbacks_free_senders() {
    let (dir, store, owner) = new_sqlite_store().await;
    let a = add_listener(&store, owner).await;
    let b = add_listener(&store, owner).await;
    // Six calls' first events: six deliveries due for each callback.
    store
        .ingest(
            AccountId(1),
            first_events_of_calls(6),
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
    let db = rusqlite::Connection::open(dir.path().join("switchboard.db")).unwrap();
    let rows_of = |callback: i64| -> Vec<i64> {
        db.prepare("SELECT id FROM outbox WHERE callback_id = ?1 ORDER BY id")
            .unwrap()
            .query_map([callback], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let (of_a, of_b) = (rows_of(a), rows_of(b));
    assert_eq!((of_a.len(), of_b.len()), (6, 6));

    // A's three earliest rows are in flight, and A has three senders free; B has none in
    // flight and two free.
    let mut in_flight = InFlight::default();
    for id in &of_a[..3] {
        in_flight.insert(*id, a);
    }
    let slots = CallbackSlots {
        free: HashMap::from([(a, 3), (b, 2)]),
        default: 16,
    };
    let now_ms = jiff::Timestamp::now().as_millisecond() + 1;
    let mut claimed: Vec<i64> = store
        .claim_due(now_ms, 100, slots, Arc::new(in_flight))
        .await
        .unwrap()
        .deliveries
        .into_iter()
        .map(|d| {
            assert!(d.callback_id == a || d.callback_id == b);
            d.outbox_id
        })
        .collect();
    claimed.sort();
    let mut expected: Vec<i64> = of_a[3..].iter().chain(&of_b[..2]).copied().collect();
    expected.sort();
    assert_eq!(claimed, expected);
    store.close();
}

#[tokio::test]
async fn a_listener_whose_filter_cannot_be_read_receives_nothing() {
    // On either store (`SWITCHBOARD_TEST_STORE`).
    let dir = tempfile::tempdir().unwrap();
    let (store, _database) =
        support::store_under_test(dir.path(), switchboard_store::CallOptions::default()).await;
    store.create_account(Some(1), "t".into()).await.unwrap();
    let owner = Owner {
        account: AccountId(1),
        extension_id: None,
    };
    let callback = add_listener(&store, owner).await;
    let events = two_events_of_one_call();
    let out = store
        .ingest(AccountId(1), events.clone(), jiff::Timestamp::now())
        .await
        .unwrap();
    assert_eq!(out.deliveries, 2, "the listener takes the call's events");
    // A filter of a kind this version cannot read (a later version's, say) is put on it.
    let listener = callback + 1;
    store
        .create_resources(move |add| {
            add(NewResource {
                kind: Kind::Filter,
                owner,
                parent_id: Some(listener),
                body: json!({"filter_type": "fax", "filter_value": {"id": 1}, "not_logic": false}),
                refs: Vec::new(),
            })?;
            Ok(())
        })
        .await
        .unwrap();
    let mut later = events;
    for e in &mut later {
        e.id = uuid::Uuid::now_v7();
        e.fact.source_key.push_str("-again");
    }
    let out = store
        .ingest(AccountId(1), later, jiff::Timestamp::now())
        .await
        .unwrap();
    assert_eq!(out.accepted, 2);
    assert_eq!(
        out.deliveries, 0,
        "not everything the filter was there to keep out"
    );
}
