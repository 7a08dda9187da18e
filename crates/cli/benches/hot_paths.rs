//! Micro-benchmarks of the hot paths: decode + normalize per dialect, building a call record,
//! listener matching with 10, 1 000 and 10 000 listeners, and encoding + signing a delivery.
//!
//! `cargo bench -p switchboard --bench hot_paths`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use switchboard_dialects::{decode, encode, parse_body, DecodeContext, Recipient};
use switchboard_engine::{
    FilterRule, FilterSpec, ListenerIndex, ListenerSpec, NumberPattern, NumberRule,
};
use switchboard_model::{tags, AccountId, Dialect, Event, Source};

/// The allocator the `switchboard` binary runs with, so these figures are the hub's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../dialects/src/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

fn ctx() -> DecodeContext {
    DecodeContext {
        received_at: jiff::Timestamp::from_second(1_600_000_000).unwrap(),
        tz: jiff::tz::TimeZone::UTC,
        max_ahead: None,
    }
}

fn stamped(dialect: Dialect, body: &[u8]) -> Vec<Event> {
    let items = parse_body(dialect, body).unwrap();
    let facts = items
        .iter()
        .flat_map(|i| decode(dialect, i, &ctx()).unwrap())
        .collect();
    switchboard_engine::stamp(
        AccountId(1),
        &Source {
            dialect,
            name: None,
        },
        ctx().received_at,
        facts,
        uuid::Uuid::now_v7,
    )
}

fn decoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode+normalize");
    group.throughput(Throughput::Elements(1));
    for (dialect, path) in [
        (
            Dialect::Phonecom,
            "phonecom/fixtures/reference-call-completed.json",
        ),
        (Dialect::Tel4vn, "tel4vn/fixtures/seed-hangup.json"),
        (
            Dialect::Callable,
            "callable/fixtures/seed-level2-b-leg.json",
        ),
        (
            Dialect::Welljoint,
            "welljoint/fixtures/seed-05-delivered.json",
        ),
        (
            Dialect::Workonflow,
            "workonflow/fixtures/seed-03-Call.Member.invited.js",
        ),
    ] {
        let pretty = fixture(path);
        // The same event as senders post it (one line, no indentation) beside the fixture as
        // the vendor's document prints it.
        let mut bodies = vec![(dialect.as_str().to_string(), pretty.clone())];
        if dialect == Dialect::Phonecom {
            bodies.push((format!("{} compact", dialect.as_str()), compact(&pretty)));
        }
        for (name, body) in bodies {
            // What the ingest path does per event: split the body, decode, derive tags.
            group.bench_function(name, |b| {
                b.iter(|| {
                    let items = parse_body(dialect, black_box(&body)).unwrap();
                    for item in &items {
                        for fact in decode(dialect, item, &ctx()).unwrap() {
                            black_box(tags::derive(&fact));
                        }
                    }
                })
            });
        }
        if dialect == Dialect::Phonecom {
            let body = compact(&pretty);
            let items = parse_body(dialect, &body).unwrap();
            group.bench_function("phonecom compact, split already", |b| {
                b.iter(|| {
                    for fact in decode(dialect, black_box(&items[0]), &ctx()).unwrap() {
                        black_box(tags::derive(&fact));
                    }
                })
            });
        }
    }
    group.finish();
}

/// A JSON document without the whitespace between its tokens.
fn compact(json: &[u8]) -> Vec<u8> {
    let (mut out, mut in_string, mut escaped) = (Vec::with_capacity(json.len()), false, false);
    for &b in json {
        if in_string {
            out.push(b);
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if !b.is_ascii_whitespace() {
            in_string = b == b'"';
            out.push(b);
        }
    }
    out
}

fn reference_call() -> Vec<Event> {
    let pc = |uuid: &str,
              leg: &str,
              state: &str,
              completion: &str,
              to: serde_json::Value,
              dt: i64| {
        serde_json::json!({"uuid": uuid, "timestamp": 1_600_000_000 + dt, "data_type": "call", "data": {"uuid": "c", "direction": "inbound",
            "event_leg": {"uuid": leg, "is_first": leg == "c", "state": state, "completion_status": if completion.is_empty() { serde_json::Value::Null } else { completion.into() },
                          "from": {"type": "did", "id": "+15550000001"}, "to": to}}})
    };
    let did = serde_json::json!({"type": "did", "id": "+15550000002"});
    let dev = |id: i64| serde_json::json!({"type": "device", "id": id, "extension": id});
    let events = [
        pc("e1", "c", "new", "", did.clone(), 0),
        pc("e2", "c", "connecting", "", did.clone(), 1),
        pc("e3", "l2", "new", "", dev(500), 1),
        pc("e4", "l2", "connecting", "", dev(500), 2),
        pc("e5", "l2", "completed", "cancelled", dev(500), 22),
        pc("e6", "l3", "new", "", dev(501), 22),
        pc("e7", "l3", "connecting", "", dev(501), 23),
        pc("e8", "l3", "connected", "", dev(501), 25),
        pc("e9", "c", "connected", "", did.clone(), 25),
        pc("e10", "l3", "completed", "success", dev(501), 85),
        pc("e11", "c", "completed", "success", did, 86),
    ];
    let body: String = events.iter().map(|e| e.to_string() + "\n").collect();
    stamped(Dialect::Phonecom, body.as_bytes())
}

fn engine(c: &mut Criterion) {
    let events = reference_call();
    c.bench_function("engine: call record from 11 events", |b| {
        b.iter(|| black_box(switchboard_engine::calls::build(black_box(&events))))
    });
}

/// `n` listeners of which five want the benchmarked event (a completed inbound leg); the rest
/// subscribe to other things, as most of a large account's listeners would.
fn listeners(n: usize) -> ListenerIndex {
    const OTHER: &[&[&str]] = &[
        &["message"],
        &["call-log"],
        &["recording"],
        &["missed-call"],
        &["new-call", "inbound"],
        &["connecting-call"],
        &["held-call"],
        &["sms-message"],
        &["agent-state"],
        &["dtmf"],
    ];
    const WANTED: &[&[&str]] = &[
        &["call"],
        &["completed-call"],
        &["call", "inbound"],
        &["to-extension"],
        &["completed-call", "not-first-leg"],
    ];
    ListenerIndex::build(
        (0..n)
            .map(|i| {
                let tags = if i < WANTED.len() {
                    WANTED[i]
                } else {
                    OTHER[i % OTHER.len()]
                };
                ListenerSpec {
                    waits: false,
                    id: i as i64,
                    callback_id: i as i64,
                    rate_limit: None,
                    extension_id: None,
                    dialect: Dialect::Phonecom,
                    expires_at: None,
                    subscriptions: vec![tags.iter().map(|t| t.to_string()).collect()],
                    filters: if i % 3 == 0 {
                        vec![FilterSpec {
                            rule: FilterRule::Number(NumberRule::Match(NumberPattern::parse(
                                "+1555%",
                            ))),
                            negate: false,
                        }]
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect(),
    )
}

fn matching(c: &mut Criterion) {
    let event = reference_call().remove(9);
    let now = jiff::Timestamp::from_second(1_600_000_000).unwrap();
    let mut group = c.benchmark_group("matching");
    for n in [10, 1_000, 10_000] {
        let index = listeners(n);
        group.bench_function(format!("{n} listeners"), |b| {
            b.iter(|| black_box(index.matching(black_box(&event), now).len()))
        });
    }
    group.finish();
}

fn delivery(c: &mut Criterion) {
    let event = reference_call().remove(7);
    let to = Recipient {
        listener_id: 1,
        account: AccountId(1),
        ..Recipient::default()
    };
    let secret = switchboard_delivery::signing::new_secret();
    c.bench_function("delivery: encode (phonecom) + sign", |b| {
        b.iter_batched(
            || event.clone(),
            |e| {
                let body = encode(Dialect::Phonecom, &e, &to).unwrap();
                black_box(switchboard_delivery::signing::sign(
                    &secret,
                    "msg",
                    1_600_000_000,
                    &body,
                ))
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, decoding, engine, matching, delivery);
criterion_main!(benches);
