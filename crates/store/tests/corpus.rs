//! The corpus of call scenarios (`corpus/<dialect>/<name>/` at the repository's root), run
//! through the real store: each scenario's events, as its vendor sends them, are decoded at
//! the time each arrived, ingested in arrival order, reversed and in several shuffles (one
//! event a request, random batches, one batch; with the writer's fold cache on, off, and
//! shedding), the calls are finalized, and every run must conclude the same records, each
//! matching the scenario's `expected.json`, with one call log per call. The orders permute
//! each burst of events (those that arrived within a minute of the one before): a source
//! reorders what it sends close together, not a call that ended minutes ago behind the next.
//!
//! A scenario folder holds:
//! - `events.json` (or `events.js` for Workonflow's JavaScript literals): the vendor's payloads
//!   in arrival order, one JSON array (or NDJSON);
//! - `source.json` (optional): `{"tz": "Asia/Shanghai", "arrivals": [0, 1.5, …]}` — the source's
//!   time zone, and when each payload reached the hub, in seconds after the scenario's start
//!   (default: one a second), for sources whose events carry no time of their own; `"quiet":
//!   true` finalizes as if the hub heard nothing more for a day (a call that never ended);
//! - `expected.json`: `{"about": "…", "records": [<record>, …]}` (or `"record"` for one call) —
//!   what each record must say, in order of the calls' start; only the fields given are
//!   compared (objects by key, arrays element by element, `null` meaning absent) — and
//!   optionally `"call_logs"` and `"missed_alerts"`, the hub's `call.log` and `call.missed`
//!   events (by default one log per call and one alert per missed call).
//!
//! Adding a vendor quirk needs only a new folder.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;
use switchboard_dialects::{decode, parse_body, DecodeContext};
use switchboard_model::{AccountId, Dialect, Event, EventKind, Source};
use switchboard_store::{CallOptions, CallQuery, Store};

/// When every scenario starts, as the hub's clock has it: 2026-11-02T09:00:00Z.
const START_S: i64 = 1_793_610_000;

struct Scenario {
    name: String,
    dialect: Dialect,
    /// Each payload with when it arrived.
    items: Vec<(String, jiff::Timestamp)>,
    tz: jiff::tz::TimeZone,
    quiet: bool,
    expected: Value,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus")
}

fn load(dialect: Dialect, dir: &Path) -> Scenario {
    let name = format!("{}/{}", dialect, dir.file_name().unwrap().to_string_lossy());
    let body = ["events.json", "events.js"]
        .iter()
        .find_map(|f| std::fs::read(dir.join(f)).ok())
        .unwrap_or_else(|| panic!("{name}: no events.json"));
    let items: Vec<String> = parse_body(dialect, &body)
        .unwrap_or_else(|e| panic!("{name}: events: {e}"))
        .items
        .iter()
        .map(|i| i.to_string())
        .collect();
    let source: Value = std::fs::read(dir.join("source.json"))
        .map(|b| serde_json::from_slice(&b).unwrap_or_else(|e| panic!("{name}: source.json: {e}")))
        .unwrap_or(json!({}));
    let arrivals: Vec<f64> = match source.get("arrivals") {
        Some(a) => serde_json::from_value(a.clone()).unwrap(),
        None => (0..items.len()).map(|i| i as f64).collect(),
    };
    assert_eq!(arrivals.len(), items.len(), "{name}: one arrival per event");
    let start = jiff::Timestamp::from_second(START_S).unwrap();
    let items = items
        .into_iter()
        .zip(arrivals)
        .map(|(item, s)| {
            let at = start
                .checked_add(jiff::SignedDuration::from_millis((s * 1000.0) as i64))
                .unwrap();
            (item, at)
        })
        .collect();
    let tz =
        jiff::tz::TimeZone::get(source.get("tz").and_then(Value::as_str).unwrap_or("UTC")).unwrap();
    let expected: Value = serde_json::from_slice(
        &std::fs::read(dir.join("expected.json"))
            .unwrap_or_else(|_| panic!("{name}: no expected.json")),
    )
    .unwrap_or_else(|e| panic!("{name}: expected.json: {e}"));
    Scenario {
        name,
        dialect,
        items,
        tz,
        quiet: source.get("quiet") == Some(&Value::Bool(true)),
        expected,
    }
}

fn scenarios() -> Vec<Scenario> {
    let mut out = Vec::new();
    for dialect in Dialect::ALL {
        let Ok(dirs) = std::fs::read_dir(corpus_dir().join(dialect.as_str())) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = dirs
            .map(|d| d.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        out.extend(dirs.iter().map(|d| load(dialect, d)));
    }
    out
}

/// The scenario's events, per payload, decoded as the hub does at the time each arrived.
fn decoded(s: &Scenario) -> Vec<Vec<Event>> {
    let source = Source {
        dialect: s.dialect,
        name: None,
    };
    s.items
        .iter()
        .enumerate()
        .map(|(i, (item, at))| {
            let ctx = DecodeContext {
                received_at: *at,
                tz: s.tz.clone(),
                max_ahead: Some(Duration::from_secs(86_400)),
            };
            let facts =
                decode(s.dialect, item, &ctx).unwrap_or_else(|e| panic!("{}: [{i}]: {e}", s.name));
            switchboard_engine::stamp(AccountId(1), &source, *at, facts, uuid::Uuid::now_v7)
        })
        .collect()
}

/// One way of sending a scenario: the payloads' order, how many go in each request, and the
/// writer's fold cache.
struct Run {
    label: &'static str,
    order: Vec<usize>,
    batch: fn(&mut u64) -> usize,
    fold_capacity: usize,
}

/// A small deterministic generator (xorshift), so a failing shuffle can be run again.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = seed;
    for i in (1..n).rev() {
        let j = (next(&mut state) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// The scenario's bursts: runs of payloads each of which arrived within a minute of the one
/// before. A source may deliver a burst's payloads in any order; it does not deliver a call
/// that ended minutes ago after the next call's events (two calls in one Workonflow stream).
fn bursts(s: &Scenario) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    for (i, (_, at)) in s.items.iter().enumerate() {
        let gap = i
            .checked_sub(1)
            .map(|p| at.as_millisecond() - s.items[p].1.as_millisecond());
        match out.last_mut() {
            Some(burst) if gap.is_some_and(|g| g <= 60_000) => burst.push(i),
            _ => out.push(vec![i]),
        }
    }
    out
}

/// Each burst's payloads in an order of its own.
fn within_bursts(bursts: &[Vec<usize>], order: impl Fn(usize, usize) -> Vec<usize>) -> Vec<usize> {
    bursts
        .iter()
        .enumerate()
        .flat_map(|(b, burst)| order(b, burst.len()).into_iter().map(|i| burst[i]))
        .collect()
}

fn runs(s: &Scenario) -> Vec<Run> {
    let bursts = bursts(s);
    let shuffle = |seed: u64| within_bursts(&bursts, |b, n| shuffled(n, seed ^ b as u64));
    vec![
        Run {
            label: "arrival order, one a request",
            order: within_bursts(&bursts, |_, n| (0..n).collect()),
            batch: |_| 1,
            fold_capacity: CallOptions::default().fold_capacity,
        },
        Run {
            label: "reversed, no fold cache",
            order: within_bursts(&bursts, |_, n| (0..n).rev().collect()),
            batch: |_| 1,
            fold_capacity: 0,
        },
        Run {
            label: "shuffle 1, batches of one to three",
            order: shuffle(0x9e37_79b9_7f4a_7c15),
            batch: |s| 1 + (next(s) % 3) as usize,
            fold_capacity: CallOptions::default().fold_capacity,
        },
        Run {
            label: "shuffle 2, a fold cache of one call",
            order: shuffle(0xd1b5_4a32_d192_ed03),
            batch: |_| 1,
            fold_capacity: 1,
        },
        Run {
            label: "shuffle 3, one batch",
            order: shuffle(0x2545_f491_4f6c_dd1d),
            batch: |_| usize::MAX,
            fold_capacity: CallOptions::default().fold_capacity,
        },
    ]
}

/// What a run concluded: the records in order of the calls' start, and the hub's call logs
/// and missed-call alerts.
#[derive(Debug, PartialEq)]
struct Concluded {
    records: Vec<Value>,
    call_logs: usize,
    missed_alerts: usize,
}

fn conclude(s: &Scenario, events: &[Vec<Event>], run: &Run) -> Concluded {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let options = CallOptions {
            finalize_grace: Duration::from_millis(0),
            fold_capacity: run.fold_capacity,
            ..CallOptions::default()
        };
        let store = Store::open_with(dir.path(), options).unwrap();
        store
            .create_account(Some(1), "corpus".into())
            .await
            .unwrap();
        let mut state = 0x1234_5678_9abc_def1;
        let mut order = run.order.iter().peekable();
        while order.peek().is_some() {
            let size = (run.batch)(&mut state);
            let mut batch = Vec::new();
            let mut at = None;
            for &i in order.by_ref().take(size) {
                batch.extend(events[i].iter().cloned());
                at = Some(s.items[i].1);
            }
            store
                .ingest(AccountId(1), batch, at.unwrap())
                .await
                .unwrap_or_else(|e| panic!("{}: {}: {e}", s.name, run.label));
        }
        // Past every call's grace window; a quiet scenario also past the idle timeout.
        let later = if s.quiet {
            Duration::from_secs(86_400)
        } else {
            Duration::from_secs(1)
        };
        let now = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::try_from(later).unwrap())
            .unwrap();
        while store.finalize_due(now).await.unwrap().more {}
        let (_, calls) = store
            .calls(
                AccountId(1),
                CallQuery {
                    limit: 100,
                    ..CallQuery::default()
                },
            )
            .await
            .unwrap();
        let records = records_of(&calls);
        let logged = store.events_after(AccountId(1), 0, 100_000).await.unwrap();
        let hubs = |kind: EventKind| {
            logged
                .iter()
                .filter(|e| {
                    e.event.fact.kind == kind && e.event.source.dialect == Dialect::Canonical
                })
                .count()
        };
        let concluded = Concluded {
            records,
            call_logs: hubs(EventKind::CallLog),
            missed_alerts: hubs(EventKind::CallMissed),
        };
        store.close();
        concluded
    })
}

/// Calls' records as JSON, in order of the calls' start.
fn records_of(calls: &[switchboard_store::StoredCall]) -> Vec<Value> {
    let mut records: Vec<Value> = calls
        .iter()
        .map(|c| serde_json::to_value(&c.record).unwrap())
        .collect();
    records.sort_by_key(|r| r["started_at"].as_str().unwrap_or_default().to_string());
    records
}

/// Where `actual` differs from what `expected` asks of it.
fn differences(actual: &Value, expected: &Value, path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Null, Value::Null) => {}
        (Value::Null, other) => out.push(format!("{path}: expected nothing, got {other}")),
        (Value::Object(want), Value::Object(got)) => {
            for (key, value) in want {
                let here = format!("{path}.{key}");
                differences(got.get(key).unwrap_or(&Value::Null), value, &here, out);
            }
        }
        (Value::Array(want), Value::Array(got)) => {
            if want.len() != got.len() {
                out.push(format!(
                    "{path}: expected {} items, got {}: {actual}",
                    want.len(),
                    got.len()
                ));
                return;
            }
            for (i, (w, g)) in want.iter().zip(got).enumerate() {
                differences(g, w, &format!("{path}[{i}]"), out);
            }
        }
        (Value::Number(w), Value::Number(g)) if w.as_f64() == g.as_f64() => {}
        (want, got) if want == got => {}
        (want, got) => out.push(format!("{path}: expected {want}, got {got}")),
    }
}

#[test]
fn every_scenario_concludes_its_expected_record_in_every_arrival_order() {
    let scenarios = scenarios();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let halves: Vec<_> = scenarios
            .chunks(scenarios.len().div_ceil(2))
            .map(|chunk| scope.spawn(move || chunk.iter().flat_map(check).collect::<Vec<_>>()))
            .collect();
        halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
    assert!(
        scenarios.len() >= 40,
        "the corpus has {} scenarios",
        scenarios.len()
    );
}

/// Runs one scenario every way; what is wrong with it.
fn check(s: &Scenario) -> Vec<String> {
    let events = decoded(s);
    let mut failures = Vec::new();
    let runs = runs(s);
    let first = conclude(s, &events, &runs[0]);
    let expected_records: Vec<Value> = match (&s.expected.get("records"), &s.expected.get("record"))
    {
        (Some(Value::Array(list)), _) => list.clone(),
        (_, Some(one)) => vec![(*one).clone()],
        _ => panic!("{}: expected.json names no record", s.name),
    };
    let mut wrong = Vec::new();
    differences(
        &Value::Array(first.records.clone()),
        &Value::Array(expected_records.clone()),
        "records",
        &mut wrong,
    );
    let logs = s
        .expected
        .get("call_logs")
        .and_then(Value::as_u64)
        .unwrap_or(expected_records.len() as u64) as usize;
    if first.call_logs != logs {
        wrong.push(format!(
            "call logs: expected {logs}, got {}",
            first.call_logs
        ));
    }
    let missed = s
        .expected
        .get("missed_alerts")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| {
            first
                .records
                .iter()
                .filter(|r| r["missed"] == Value::Bool(true))
                .count() as u64
        }) as usize;
    if first.missed_alerts != missed {
        wrong.push(format!(
            "missed-call alerts: expected {missed}, got {}",
            first.missed_alerts
        ));
    }
    if !wrong.is_empty() {
        failures.push(format!(
            "{} ({}):\n  {}\n  records: {}",
            s.name,
            runs[0].label,
            wrong.join("\n  "),
            serde_json::to_string(&first.records).unwrap()
        ));
        return failures;
    }
    for run in &runs[1..] {
        let other = conclude(s, &events, run);
        if other != first {
            failures.push(format!(
                "{} ({}, order {:?}) concluded otherwise than in arrival order:\n  {}\n  vs {}",
                s.name,
                run.label,
                run.order,
                serde_json::to_string(&other).unwrap_or_default(),
                serde_json::to_string(&first).unwrap_or_default()
            ));
        }
    }
    failures
}

impl serde::Serialize for Concluded {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        json!({"records": self.records, "call_logs": self.call_logs, "missed_alerts": self.missed_alerts})
            .serialize(s)
    }
}

mod support;

/// Three nodes on one PostgreSQL database, every scenario: each burst's payloads dealt
/// round-robin over the nodes in a shuffled order and sent at once (one a request, or every
/// other scenario each node's share as one batch), then the
/// three nodes' finalizers run at once. The records they conclude, read through the query
/// API, are the ones SQLite concludes, with as many call logs and missed-call alerts, and
/// every call event is in exactly one call.
#[test]
fn every_scenario_through_three_postgres_nodes_at_once_concludes_what_sqlite_concludes() {
    use switchboard_store::postgres::PgStore;
    let scenarios = scenarios();
    // SQLite's conclusions first (each run has a runtime of its own).
    let wants: Vec<Concluded> = scenarios
        .iter()
        .map(|s| conclude(s, &decoded(s), &runs(s)[0]))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let failures: Vec<String> = rt.block_on(async {
        let mut failures = Vec::new();
        for (n, (s, want)) in scenarios.iter().zip(&wants).enumerate() {
            let events = decoded(s);
            let db = support::pg::FreshDatabase::new("corpus").await;
            let options = CallOptions {
                finalize_grace: Duration::from_millis(0),
                ..CallOptions::default()
            };
            let mut nodes = Vec::new();
            for _ in 0..3 {
                nodes.push(PgStore::connect(&db.url, options).await.unwrap());
            }
            for (b, burst) in bursts(s).iter().enumerate() {
                let order = shuffled(burst.len(), 0x5eed ^ ((n as u64) << 8) ^ b as u64);
                let mut dealt: Vec<Vec<usize>> = vec![Vec::new(); 3];
                for (k, i) in order.into_iter().enumerate() {
                    dealt[k % 3].push(burst[i]);
                }
                // Every other scenario, each node sends its share of a burst as one batch.
                let batched = n % 2 == 1;
                let send = |items: Vec<usize>, node: &PgStore| {
                    let events = &events;
                    let node = node.clone();
                    async move {
                        let requests: Vec<Vec<usize>> = if batched {
                            vec![items]
                        } else {
                            items.into_iter().map(|i| vec![i]).collect()
                        };
                        for request in requests.into_iter().filter(|r| !r.is_empty()) {
                            let at = s.items[*request.last().unwrap()].1;
                            let batch = request.iter().flat_map(|i| events[*i].clone()).collect();
                            node.ingest(AccountId(1), batch, at)
                                .await
                                .unwrap_or_else(|e| panic!("{}: {e}", s.name));
                        }
                    }
                };
                let [a, b, c] = <[Vec<usize>; 3]>::try_from(dealt).unwrap();
                tokio::join!(send(a, &nodes[0]), send(b, &nodes[1]), send(c, &nodes[2]));
            }
            // The three finalizers at once, past every call's grace window (a quiet scenario
            // also past the idle timeout), until none has anything left.
            let later = if s.quiet { 86_400 } else { 1 };
            let now = jiff::Timestamp::now()
                .checked_add(jiff::SignedDuration::from_secs(later))
                .unwrap();
            loop {
                let (x, y, z) = tokio::join!(
                    nodes[0].finalize_due(now),
                    nodes[1].finalize_due(now),
                    nodes[2].finalize_due(now)
                );
                let rounds = [x.unwrap(), y.unwrap(), z.unwrap()];
                if rounds.iter().all(|r| r.events == 0 && !r.more) {
                    break;
                }
            }
            let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            // The calls as the query API reads them (records in order of the calls' start).
            let (_, calls) = nodes[1]
                .calls(
                    AccountId(1),
                    CallQuery {
                        limit: 100,
                        ..CallQuery::default()
                    },
                )
                .await
                .unwrap();
            let records = records_of(&calls);
            if records != want.records {
                let mut wrong = Vec::new();
                differences(
                    &Value::Array(records.clone()),
                    &Value::Array(want.records.clone()),
                    "records",
                    &mut wrong,
                );
                failures.push(format!(
                    "{}: the records differ from SQLite's: {}",
                    s.name,
                    if wrong.is_empty() {
                        format!("{records:?}")
                    } else {
                        wrong.join("; ")
                    }
                ));
            }
            let (want_logs, want_missed) = (&want.call_logs, &want.missed_alerts);
            let count = |kind: &'static str| {
                let client = &client;
                async move {
                    client
                        .query_one("SELECT COUNT(*) FROM events WHERE kind = $1", &[&kind])
                        .await
                        .unwrap()
                        .get::<_, i64>(0) as usize
                }
            };
            let (logs, missed) = (count("call.log").await, count("call.missed").await);
            if (logs, missed) != (*want_logs, *want_missed) {
                failures.push(format!(
                    "{}: call logs and missed alerts: sqlite {want_logs}, {want_missed}; postgres {logs}, {missed}",
                    s.name
                ));
            }
            let call_events = events
                .iter()
                .flatten()
                .filter(|e| switchboard_engine::calls::is_call_event(e))
                .map(|e| &e.fact.source_key)
                .collect::<std::collections::HashSet<_>>()
                .len() as i64;
            let listed: i64 = client
                .query_one(
                    "SELECT COALESCE(SUM(cardinality(event_seqs)), 0)::bigint FROM calls",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if listed != call_events {
                failures.push(format!(
                    "{}: {call_events} call events, {listed} listed by calls",
                    s.name
                ));
            }
        }
        failures
    });
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}
