//! Calls assembled by the real store: for calls of every dialect, every arrival order gives
//! the same call record; and the derived facts are what a person would expect.

use proptest::prelude::*;
use serde_json::{json, Value};
use switchboard_dialects::{decode, DecodeContext};
use switchboard_engine::calls::{CallRecord, Disposition};
use switchboard_model::{AccountId, Dialect, Event, LegResult, Source};
use switchboard_store::{CallOptions, Store};

mod support;

const T0: i64 = 1_700_000_000;

fn events(dialect: Dialect, payloads: &[Value]) -> Vec<Event> {
    let ctx = DecodeContext {
        received_at: jiff::Timestamp::from_second(T0).unwrap(),
        tz: jiff::tz::TimeZone::UTC,
        max_ahead: None,
    };
    let source = Source {
        dialect,
        name: None,
    };
    payloads
        .iter()
        .flat_map(|p| {
            let raw = p.to_string();
            let facts = decode(dialect, &raw, &ctx).unwrap_or_else(|e| panic!("{e}: {p}"));
            switchboard_engine::stamp(
                AccountId(1),
                &source,
                ctx.received_at,
                facts,
                uuid::Uuid::now_v7,
            )
        })
        .collect()
}

fn pc(
    uuid: &str,
    call: &str,
    leg: &str,
    state: &str,
    completion: Option<&str>,
    to: Value,
    dt: i64,
) -> Value {
    json!({"uuid": uuid, "timestamp": T0 + dt, "data_type": "call", "data": {
        "uuid": call, "direction": "inbound",
        "event_leg": {"uuid": leg, "is_first": call == leg, "state": state, "completion_status": completion,
                      "from": {"type": "did", "id": "+15550000001"}, "to": to}}})
}

fn dev(id: i64, ext: i64) -> Value {
    json!({"type": "device", "id": id, "extension": ext, "extension_id": ext * 10})
}

fn did(n: &str) -> Value {
    json!({"type": "did", "id": n})
}

/// The reference's inbound call: a device that does not answer, then one that does.
fn phonecom_rollover() -> Vec<Event> {
    events(
        Dialect::Phonecom,
        &[
            pc("e1", "c", "c", "new", None, did("+15550000002"), 0),
            pc("e2", "c", "c", "connecting", None, did("+15550000002"), 1),
            pc("e3", "c", "l2", "new", None, dev(7, 500), 1),
            pc("e4", "c", "l2", "connecting", None, dev(7, 500), 2),
            pc(
                "e5",
                "c",
                "l2",
                "completed",
                Some("cancelled"),
                dev(7, 500),
                22,
            ),
            pc("e6", "c", "l3", "new", None, dev(8, 501), 22),
            pc("e7", "c", "l3", "connecting", None, dev(8, 501), 23),
            pc("e8", "c", "l3", "connected", None, dev(8, 501), 25),
            pc("e9", "c", "c", "connected", None, did("+15550000002"), 25),
            pc(
                "e10",
                "c",
                "l3",
                "completed",
                Some("success"),
                dev(8, 501),
                85,
            ),
            pc(
                "e11",
                "c",
                "c",
                "completed",
                Some("success"),
                did("+15550000002"),
                86,
            ),
            // A duplicate, as real sources send.
            pc(
                "e10",
                "c",
                "l3",
                "completed",
                Some("success"),
                dev(8, 501),
                85,
            ),
        ],
    )
}

/// An inbound call to a busy device, then nobody: missed.
fn phonecom_busy_missed() -> Vec<Event> {
    events(
        Dialect::Phonecom,
        &[
            pc("b1", "m", "m", "new", None, did("+15550000002"), 0),
            pc("b2", "m", "m2", "new", None, dev(7, 500), 1),
            pc("b3", "m", "m2", "completed", Some("busy"), dev(7, 500), 2),
            pc(
                "b4",
                "m",
                "m",
                "completed",
                Some("cancelled"),
                did("+15550000002"),
                9,
            ),
        ],
    )
}

/// tel4vn ring group: two extension legs, one answers; the flow's cdr has another call_id.
fn tel4vn_ring_group() -> Vec<Event> {
    let leg = |id: &str, ext: &str, state: &str, extra: Value| {
        let mut v = json!({"call_id": id, "sip_call_id": "sip-1", "direction": "inbound", "from_number": "0912345678", "to_number": ext, "hotline": "19001919", "state": state, "time_started": T0});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        v
    };
    events(
        Dialect::Tel4vn,
        &[
            leg("x1", "101", "ringing", json!({"time_started": T0 + 1})),
            leg("x2", "102", "ringing", json!({"time_started": T0 + 1})),
            leg("x2", "102", "answered", json!({"time_answered": T0 + 5})),
            leg(
                "x1",
                "101",
                "hangup",
                json!({"time_ended": T0 + 5, "duration": 4, "billsec": 0}),
            ),
            leg(
                "x2",
                "102",
                "hangup",
                json!({"time_ended": T0 + 65, "duration": 64, "billsec": 60, "status": "ANSWERED"}),
            ),
            json!({"call_id": "flow-9", "sip_call_id": "sip-1", "direction": "inbound", "from_number": "0912345678", "to_number": "102", "state": "cdr", "time_ended": T0 + 66, "duration": 66, "billsec": 60, "recording_url": "https://r/1.wav"}),
        ],
    )
}

/// Callable: an A leg and two B legs, one failing.
fn callable_b_legs() -> Vec<Event> {
    let ev = |sid: &str, status: &str, dt: i64| json!({"parentCallSid": "P", "callSid": sid, "event": "call", "status": status, "from": "441234567890", "to": "441234567891", "timestamp": (T0 + dt) * 1000});
    events(
        Dialect::Callable,
        &[
            ev("P", "trying", 0),
            ev("P", "in-progress", 1),
            ev("B1", "ringing", 2),
            ev("B1", "failed", 3),
            ev("B2", "ringing", 3),
            ev("B2", "in-progress", 6),
            json!({"parentCallSid": "P", "callSid": "B2", "event": "record", "status": "start", "timestamp": (T0 + 6) * 1000}),
            ev("B2", "completed", 40),
            ev("P", "completed", 41),
        ],
    )
}

/// Welljoint consult transfer: a second call id merged into the first.
fn welljoint_transfer() -> Vec<Event> {
    let at = |dt: i64| {
        jiff::Timestamp::from_second(T0 + dt)
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .strftime("%Y.%m.%d %H:%M:%S")
            .to_string()
    };
    let ev = |serial: i64, v: Value| {
        let mut v = v;
        v["namespace"] = json!("wj.cc");
        v["serial"] = json!(serial);
        v
    };
    events(
        Dialect::Welljoint,
        &[
            ev(
                1,
                json!({"eventName": "delivered", "eventTime": at(0), "callId": "A", "alertingDevice": "8001@wj.cc", "callingDevice": "5551234@wj.cc", "calledDevice": "8001@wj.cc"}),
            ),
            ev(
                2,
                json!({"eventName": "established", "eventTime": at(3), "callId": "A", "answeringDevice": "8001@wj.cc", "callingDevice": "5551234@wj.cc", "calledDevice": "8001@wj.cc"}),
            ),
            ev(
                3,
                json!({"eventName": "held", "eventTime": at(10), "callId": "A", "holdingDevice": "8001@wj.cc"}),
            ),
            ev(
                4,
                json!({"eventName": "delivered", "eventTime": at(11), "callId": "B", "alertingDevice": "8002@wj.cc", "callingDevice": "8001@wj.cc", "calledDevice": "8002@wj.cc"}),
            ),
            ev(
                5,
                json!({"eventName": "established", "eventTime": at(14), "callId": "B", "answeringDevice": "8002@wj.cc", "callingDevice": "8001@wj.cc", "calledDevice": "8002@wj.cc"}),
            ),
            ev(
                6,
                json!({"eventName": "transferred", "eventTime": at(20), "callId": "B", "primaryOldCall": "A", "secondaryOldCall": "B", "newCall": "B", "transferringDevice": "8001@wj.cc", "transferredToDevice": "8002@wj.cc"}),
            ),
            ev(
                7,
                json!({"eventName": "connectionCleared", "eventTime": at(20), "callId": "A", "releasingDevice": "8001@wj.cc", "cause": "normalClearing"}),
            ),
            // Another device's copy of the same fact.
            ev(
                8,
                json!({"eventName": "connectionCleared", "eventTime": at(20), "callId": "A", "srcDeviceId": "8002@wj.cc", "releasingDevice": "8001@wj.cc", "cause": "NORMAL_CLEARING"}),
            ),
            ev(
                9,
                json!({"eventName": "connectionCleared", "eventTime": at(90), "callId": "B", "releasingDevice": "8002@wj.cc", "cause": "NORMAL_CLEARING"}),
            ),
        ],
    )
}

/// Welljoint conference: a third party added to an answered call.
fn welljoint_conference() -> Vec<Event> {
    let at = |dt: i64| {
        jiff::Timestamp::from_second(T0 + dt)
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .strftime("%Y.%m.%d %H:%M:%S")
            .to_string()
    };
    let ev = |serial: i64, mut v: Value| {
        v["namespace"] = json!("cf.cc");
        v["serial"] = json!(serial);
        v
    };
    events(
        Dialect::Welljoint,
        &[
            ev(
                1,
                json!({"eventName": "established", "eventTime": at(0), "callId": "K", "answeringDevice": "8001@cf.cc", "callingDevice": "5550001@cf.cc", "calledDevice": "8001@cf.cc"}),
            ),
            ev(
                2,
                json!({"eventName": "conferenced", "eventTime": at(30), "callId": "K", "primaryOldCall": "0", "secondaryOldCall": "K", "newCall": "K", "conferencingDevice": "8001@cf.cc", "addedParty": "8003@cf.cc"}),
            ),
            ev(
                3,
                json!({"eventName": "established", "eventTime": at(31), "callId": "K", "answeringDevice": "8003@cf.cc", "callingDevice": "8001@cf.cc", "calledDevice": "8003@cf.cc"}),
            ),
            ev(
                4,
                json!({"eventName": "connectionCleared", "eventTime": at(90), "callId": "K", "releasingDevice": "8001@cf.cc", "cause": "NORMAL_CLEARING"}),
            ),
            ev(
                5,
                json!({"eventName": "connectionCleared", "eventTime": at(91), "callId": "K", "releasingDevice": "8003@cf.cc", "cause": "NORMAL_CLEARING"}),
            ),
        ],
    )
}

/// Workonflow: two members invited, one answers, one declines.
fn workonflow_members() -> Vec<Event> {
    let ev = |v: Value| {
        let mut v = v;
        v["streamId"] = json!("S");
        v["threadId"] = json!("S");
        v
    };
    let mut created = ev(
        json!({"eventType": "Call.created", "originateUserId": "u0", "destinationId": "u1", "type": "stream", "createdAt": T0 * 1000}),
    );
    created["teamId"] = json!("t");
    events(
        Dialect::Workonflow,
        &[
            created,
            ev(json!({"eventType": "Call.Member.invited", "userId": "u1", "phone": "8953"})),
            ev(json!({"eventType": "Call.Member.invited", "userId": "u2", "phone": "8954"})),
            ev(json!({"eventType": "Call.Member.Invite.ended", "userId": "u1", "answered": true})),
            ev(json!({"eventType": "Call.Member.Invite.ended", "userId": "u2", "answered": false})),
            ev(json!({"eventType": "Call.Member.dtmf", "userId": "u1", "dtmfNumber": 5})),
            ev(json!({"eventType": "Call.Member.leaved", "userId": "u1"})),
            ev(json!({"eventType": "Call.ended"})),
        ],
    )
}

/// Ingests events one request each, in the given order, into a fresh store; returns the
/// record of the call known by `alias`.
/// Runs a future to its end on a runtime of its own (the tests below are plain functions:
/// proptest's and those that call [`record_after`], which starts its own).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn record_after(events: &[Event], order: &[usize], alias: &str) -> CallRecord {
    record_with_cache(events, order, alias, CallOptions::default().fold_capacity)
}

/// As [`record_after`], with the writer keeping at most `fold_capacity` calls' folds.
fn record_with_cache(
    events: &[Event],
    order: &[usize],
    alias: &str,
    fold_capacity: usize,
) -> CallRecord {
    record_in_batches(events, order, alias, fold_capacity, 1).0
}

/// As [`record_with_cache`], the events sent `batch` to a request; also how many events the
/// call lists.
fn record_in_batches(
    events: &[Event],
    order: &[usize],
    alias: &str,
    fold_capacity: usize,
    batch: usize,
) -> (CallRecord, usize) {
    block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let options = CallOptions {
            fold_capacity,
            ..CallOptions::default()
        };
        // On either store (`SWITCHBOARD_TEST_STORE`).
        let (store, _database) = support::store_under_test(dir.path(), options).await;
        store.create_account(Some(1), "t".into()).await.unwrap();
        for chunk in order.chunks(batch) {
            let sent = chunk
                .iter()
                .map(|&i| {
                    let mut e = events[i].clone();
                    e.id = uuid::Uuid::now_v7();
                    e
                })
                .collect();
            store
                .ingest(AccountId(1), sent, jiff::Timestamp::now())
                .await
                .unwrap();
        }
        let (call, listed) = store
            .call(AccountId(1), alias.to_string())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no call {alias}"));
        store.close();
        (call.record, listed.len())
    })
}

fn in_order(events: &[Event]) -> Vec<usize> {
    (0..events.len()).collect()
}

/// Every scenario [`scenario`] builds.
const SCENARIOS: [&str; 7] = [
    "phonecom_rollover",
    "phonecom_busy_missed",
    "tel4vn_ring_group",
    "callable_b_legs",
    "welljoint_transfer",
    "welljoint_conference",
    "workonflow_members",
];

fn scenario(name: &str) -> (Vec<Event>, &'static str) {
    match name {
        "phonecom_rollover" => (phonecom_rollover(), "c"),
        "phonecom_busy_missed" => (phonecom_busy_missed(), "m"),
        "tel4vn_ring_group" => (tel4vn_ring_group(), "x2"),
        "callable_b_legs" => (callable_b_legs(), "P"),
        "welljoint_transfer" => (welljoint_transfer(), "A"),
        "welljoint_conference" => (welljoint_conference(), "K"),
        _ => (workonflow_members(), "S"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn every_arrival_order_gives_the_same_call(
        name in proptest::sample::select(SCENARIOS.to_vec()),
        seed in any::<u64>(),
    ) {
        let (events, alias) = scenario(name);
        let reference = record_after(&events, &in_order(&events), alias);
        // A random permutation of the arrival order.
        let mut order = in_order(&events);
        let mut s = seed;
        for i in (1..order.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            order.swap(i, (s >> 33) as usize % (i + 1));
        }
        let shuffled = record_after(&events, &order, alias);
        prop_assert_eq!(shuffled, reference, "{} in order {:?}", name, order);
    }
}

#[test]
fn the_record_is_the_same_however_the_events_are_batched() {
    // A call's row is written once per batch: batches that hold a merge, a call's end and
    // what follows it, or more calls than the cache keeps must come out as one at a time.
    for name in SCENARIOS {
        let (events, alias) = scenario(name);
        let mut order = in_order(&events);
        order.reverse();
        let reference = record_in_batches(&events, &order, alias, 100, 1);
        for (batch, cache) in [(2, 100), (3, 1), (events.len(), 100), (events.len(), 0)] {
            assert_eq!(
                record_in_batches(&events, &order, alias, cache, batch),
                reference,
                "{name} in batches of {batch} with a cache of {cache}"
            );
        }
    }
}

#[test]
fn the_record_does_not_depend_on_the_fold_cache() {
    for name in SCENARIOS {
        let (events, alias) = scenario(name);
        let order = in_order(&events);
        let cached = record_after(&events, &order, alias);
        // No cache: every event folds the call from its stored events.
        assert_eq!(
            record_with_cache(&events, &order, alias, 0),
            cached,
            "{name}"
        );
        // A cache of one call, shedding all the time.
        assert_eq!(
            record_with_cache(&events, &order, alias, 1),
            cached,
            "{name}"
        );
    }
}

#[test]
fn the_rollover_call_is_answered_by_the_second_device() {
    let rec = record_after(&phonecom_rollover(), &in_order(&phonecom_rollover()), "c");
    assert_eq!(rec.disposition, Disposition::Answered);
    assert!(!rec.missed);
    assert_eq!(
        rec.answered_by
            .as_ref()
            .and_then(|p| p.extension.as_deref()),
        Some("501")
    );
    let result = |id: &str| rec.legs.iter().find(|l| l.id == id).unwrap().result;
    // A rollover rings one device after another: the first gave up before the second
    // answered, so it was not answered elsewhere.
    assert_eq!(result("l2"), Some(LegResult::NoAnswer));
    assert_eq!(result("l3"), Some(LegResult::Answered));
    assert_eq!(rec.duration_ms, Some(86_000));
    assert_eq!(rec.talk_ms, Some(61_000));
}

#[test]
fn busy_then_nobody_is_a_missed_busy_call() {
    let rec = record_after(
        &phonecom_busy_missed(),
        &in_order(&phonecom_busy_missed()),
        "m",
    );
    assert_eq!(rec.disposition, Disposition::Busy);
    assert!(rec.missed);
}

#[test]
fn the_tel4vn_cdr_joins_its_ring_group_through_sip_call_id() {
    let events = tel4vn_ring_group();
    let rec = record_after(&events, &in_order(&events), "flow-9");
    assert_eq!(rec.legs.len(), 2, "{rec:?}");
    assert_eq!(
        rec.answered_by
            .as_ref()
            .and_then(|p| p.extension.as_deref()),
        Some("102")
    );
    let x1 = rec.legs.iter().find(|l| l.id == "x1").unwrap();
    assert_eq!(x1.result, Some(LegResult::AnsweredElsewhere));
    assert_eq!(
        rec.source_figures["billsec"], 60.0,
        "the source's own figures are kept"
    );
    assert_eq!(
        (rec.duration_ms, rec.talk_ms),
        (Some(66_000), Some(60_000)),
        "the PBX's CDR figures beat the hub's times"
    );
    assert_eq!(rec.source_figures["call_id"], "flow-9");
    assert_eq!(rec.source_figures["sip_call_id"], "sip-1");
    assert_eq!(rec.recordings.len(), 1);
}

#[test]
fn a_consult_transfer_is_one_call() {
    let events = welljoint_transfer();
    let a = record_after(&events, &in_order(&events), "A");
    let b = record_after(&events, &in_order(&events), "B");
    assert_eq!(a, b);
    assert!(a.transferred);
    assert_eq!(
        a.legs
            .iter()
            .filter(|l| l.id.starts_with("8001@wj.cc|"))
            .count(),
        1
    );
    let cleared = a.legs.iter().find(|l| l.id == "8001@wj.cc|A").unwrap();
    assert_eq!(
        cleared.hangup.as_ref().and_then(|h| h.text.as_deref()),
        Some("NORMAL_CLEARING")
    );
}

#[test]
fn workonflow_members_are_legs() {
    let events = workonflow_members();
    let rec = record_after(&events, &in_order(&events), "S");
    assert_eq!(rec.disposition, Disposition::Answered);
    let u2 = rec.legs.iter().find(|l| l.id == "S:u2").unwrap();
    assert!(matches!(
        u2.result,
        Some(LegResult::NoAnswer | LegResult::AnsweredElsewhere)
    ));
    assert!(rec.ended_at.is_some());
}

#[test]
fn a_conference_is_flagged_and_ends_when_every_leg_ended() {
    let events = welljoint_conference();
    let rec = record_after(&events, &in_order(&events), "K");
    assert!(rec.conferenced);
    assert_eq!(rec.legs.len(), 2);
    assert_eq!(rec.duration_ms, Some(91_000));
}

#[test]
fn a_database_from_before_calls_listed_their_events_keeps_every_calls_events() {
    let all = phonecom_rollover();
    // Held back to come after the upgrade: the third device's answer (out of order by then)
    // and the caller's hang-up. The scenario's last event repeats an earlier one.
    let late = [7, 10];
    let earlier: Vec<Event> = (0..all.len())
        .filter(|i| !late.contains(i))
        .map(|i| all[i].clone())
        .collect();
    let distinct = all.len() - 1;
    let whole = record_after(&all, &in_order(&all), "c");
    block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_account(Some(1), "t".into()).await.unwrap();
        store
            .ingest(AccountId(1), earlier, jiff::Timestamp::now())
            .await
            .unwrap();
        let (call, events) = store.call(AccountId(1), "c".into()).await.unwrap().unwrap();
        assert_eq!(events.len(), distinct - late.len());
        store.close();

        // The database as the hub before migration 9 left it: the call's events in a table
        // of their own, no list in the call's row (and the outbox indexes 10 drops).
        let db = rusqlite::Connection::open(dir.path().join("switchboard.db")).unwrap();
        db.execute_batch(
            "CREATE TABLE call_events (call_id TEXT NOT NULL, event_seq INTEGER NOT NULL,
                 PRIMARY KEY (call_id, event_seq));
             ALTER TABLE calls DROP COLUMN event_seqs;
             ALTER TABLE calls DROP COLUMN heard_at;
             DROP INDEX agents_by_device;
             DROP TABLE write_probe;
             DROP INDEX outbox_by_event;
             DROP TABLE retention_marks;
             CREATE INDEX outbox_due ON outbox(next_attempt_at) WHERE status = 'pending';
             CREATE INDEX outbox_by_callback ON outbox(callback_id, id);
             PRAGMA user_version = 8;",
        )
        .unwrap();
        db.execute(
            "INSERT INTO call_events SELECT ?1, seq FROM events WHERE account_id = 1",
            [&call.id],
        )
        .unwrap();
        drop(db);

        // Reopened (migrated), the call still has its events, and the late ones fold them all
        // again (the new store has no fold in memory, and one of them is out of order) into
        // the whole call's record.
        let store = Store::open(dir.path()).unwrap();
        let (_, events) = store.call(AccountId(1), "c".into()).await.unwrap().unwrap();
        assert_eq!(events.len(), distinct - late.len());
        for i in late {
            store
                .ingest(AccountId(1), vec![all[i].clone()], jiff::Timestamp::now())
                .await
                .unwrap();
        }
        let (migrated, events) = store.call(AccountId(1), "c".into()).await.unwrap().unwrap();
        store.close();
        assert_eq!(events.len(), distinct);
        assert_eq!(migrated.id, call.id);
        assert_eq!(
            serde_json::to_value(&migrated.record).unwrap(),
            serde_json::to_value(&whole).unwrap()
        );
    });
}

#[test]
fn a_call_that_hears_more_while_it_is_finalized_is_logged_with_it() {
    let all = phonecom_rollover();
    // The second device's leg as created, held back until the call is being finalized.
    let late = 2;
    let first: Vec<Event> = (0..all.len())
        .filter(|&i| i != late)
        .map(|i| all[i].clone())
        .collect();
    block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let options = CallOptions {
            finalize_grace: std::time::Duration::ZERO,
            ..CallOptions::default()
        };
        // The writer's round, which only the SQLite store has.
        let store = switchboard_store::SqliteStore::open_with(dir.path(), options).unwrap();
        store.create_account(Some(1), "t".into()).await.unwrap();
        store
            .ingest(AccountId(1), first, jiff::Timestamp::now())
            .await
            .unwrap();
        let later = || jiff::Timestamp::now() + jiff::SignedDuration::from_secs(1);
        let round = store.begin_finalizing(later()).await.unwrap();
        // The late event joins the call between the round's read and its write.
        store
            .ingest(
                AccountId(1),
                vec![all[late].clone()],
                jiff::Timestamp::now(),
            )
            .await
            .unwrap();
        let first_round = round.complete().await.unwrap();
        assert_eq!(
            first_round.events, 0,
            "the call changed: nothing is written"
        );
        let (call, _) = store.call(AccountId(1), "c".into()).await.unwrap().unwrap();
        assert!(!call.finalized);

        // The next round logs the call with the late event in it, once.
        assert_eq!(store.finalize_due(later()).await.unwrap().events, 1);
        assert_eq!(store.finalize_due(later()).await.unwrap().events, 0);
        let (call, _) = store.call(AccountId(1), "c".into()).await.unwrap().unwrap();
        assert!(call.finalized);
        assert_eq!(call.revision, 1);
        let created = |rec: &Value| {
            rec["legs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["id"] == "l2")
                .map(|l| l["created_at"].clone())
        };
        let stored = serde_json::to_value(&call.record).unwrap();
        assert!(
            created(&stored).is_some_and(|at| at.is_string()),
            "{stored}"
        );
        let logs: Vec<Value> = store
            .events_after(AccountId(1), 0, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.event.fact.kind.as_str() == "call.log")
            .map(|e| e.event.fact.vendor["call"]["record"].clone())
            .collect();
        assert_eq!(logs.len(), 1);
        assert_eq!(created(&logs[0]), created(&stored));
        store.close();
    });
}

#[test]
fn events_an_earlier_version_stored_as_text_are_still_read_and_folded() {
    let all = phonecom_rollover();
    let (earlier, late) = all.split_at(all.len() - 2);
    let whole = record_after(&all, &in_order(&all), "c");
    block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_account(Some(1), "t".into()).await.unwrap();
        store
            .ingest(AccountId(1), earlier.to_vec(), jiff::Timestamp::now())
            .await
            .unwrap();
        let stored = store.events_after(AccountId(1), 0, 100).await.unwrap();
        store.close();
        assert_eq!(stored.len(), earlier.len());

        // Written as compressed blobs now; an earlier version wrote each body as JSON text.
        let db = rusqlite::Connection::open(dir.path().join("switchboard.db")).unwrap();
        let blobs: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM events WHERE typeof(body) = 'blob'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(blobs as usize, earlier.len());
        for e in &stored {
            let json = serde_json::to_string(&e.event).unwrap();
            db.execute(
                "UPDATE events SET body = ?1 WHERE seq = ?2",
                rusqlite::params![json, e.seq],
            )
            .unwrap();
        }
        drop(db);

        // Reopened (no fold in memory), the text bodies are read, and folded with the late
        // events into the whole call's record.
        let store = Store::open(dir.path()).unwrap();
        let again = store.events_after(AccountId(1), 0, 100).await.unwrap();
        assert_eq!(
            again.iter().map(|e| e.event.id).collect::<Vec<_>>(),
            stored.iter().map(|e| e.event.id).collect::<Vec<_>>()
        );
        assert_eq!(
            serde_json::to_value(again.iter().map(|e| &e.event).collect::<Vec<_>>()).unwrap(),
            serde_json::to_value(stored.iter().map(|e| &e.event).collect::<Vec<_>>()).unwrap()
        );
        store
            .ingest(AccountId(1), late.to_vec(), jiff::Timestamp::now())
            .await
            .unwrap();
        let (call, events) = store.call(AccountId(1), "c".into()).await.unwrap().unwrap();
        store.close();
        assert_eq!(
            events.len(),
            all.len() - 1,
            "the scenario repeats one event"
        );
        assert_eq!(
            serde_json::to_value(&call.record).unwrap(),
            serde_json::to_value(&whole).unwrap()
        );
    });
}

#[test]
fn a_new_database_gives_pruned_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.close();
    let db = rusqlite::Connection::open(dir.path().join("switchboard.db")).unwrap();
    let mode: i64 = db
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, 2, "auto_vacuum = INCREMENTAL");
}
