//! Durable ingest through the store alone, SQLite beside PostgreSQL, in the same minutes:
//! the first figures of the PostgreSQL store (issue 23) before a hub serves on it.
//!
//!   cargo run --release -p switchboard-store --example store_ingest -- \
//!       postgres://postgres:postgres@127.0.0.1:5432/postgres [calls]
//!
//! Each call is four events (created, ringing, answered, ended) of its own call id, the calls
//! side by side (every call's first step, then every call's second, …). Two
//! shapes, as the hub's harness has them: batches of 100 events over 4 concurrent requests,
//! and one event a request over 32. A fresh SQLite directory and a fresh PostgreSQL database
//! (made on the server the URL names, dropped after) for each run. Prints events/s, and the
//! CPU seconds of this process and of the PostgreSQL server's processes during the run.
//! `KEEP=1` keeps the last PostgreSQL database made, to look at its statistics.

use std::sync::Arc;
use std::time::Instant;
use switchboard_model::{AccountId, Details, Dialect, Event, EventKind, Fact, Source};
use switchboard_store::postgres::PgStore;
use switchboard_store::{CallOptions, Store};

fn events(calls: usize) -> Vec<Event> {
    let source = Source {
        dialect: Dialect::Canonical,
        name: None,
    };
    let kinds = [
        EventKind::LegCreated,
        EventKind::LegRinging,
        EventKind::LegAnswered,
        EventKind::LegEnded,
    ];
    let now = jiff::Timestamp::now();
    // Calls side by side, as a busy source sends them: each step of every call, in turn.
    kinds
        .iter()
        .enumerate()
        .flat_map(|(k, kind)| {
            (0..calls).map(move |c| Fact {
                time_estimated: false,
                source_key: format!("c{c}-{k}"),
                kind: *kind,
                occurred_at: now,
                call_id: Some(format!("call-{c}")),
                leg_id: None,
                agent_id: None,
                details: Details::None,
                vendor: Default::default(),
                raw: serde_json::value::to_raw_value(&serde_json::json!({"call": c, "step": k}))
                    .unwrap(),
            })
        })
        .flat_map(|fact| {
            switchboard_engine::stamp(AccountId(1), &source, now, vec![fact], uuid::Uuid::now_v7)
        })
        .collect()
}

/// CPU seconds (user + system) of the processes whose command name is `name`.
fn cpu_of(name: &str) -> f64 {
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let path = entry.path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if comm.trim() != name {
            continue;
        }
        if let Ok(stat) = std::fs::read_to_string(path.join("stat")) {
            let after = stat.rsplit(") ").next().unwrap_or_default();
            let fields: Vec<&str> = after.split_whitespace().collect();
            ticks += fields
                .get(11)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            ticks += fields
                .get(12)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    ticks as f64 / 100.0
}

fn own_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(") ").next().unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let t = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (t(11) + t(12)) as f64 / 100.0
}

#[derive(Clone)]
enum Target {
    Sqlite(Store),
    Postgres(PgStore),
}

impl Target {
    async fn ingest(&self, batch: Vec<Event>) {
        let now = jiff::Timestamp::now();
        match self {
            Target::Sqlite(s) => s.ingest(AccountId(1), batch, now).await.map(|_| ()),
            Target::Postgres(p) => p.ingest(AccountId(1), batch, now).await.map(|_| ()),
        }
        .expect("ingest");
    }
}

async fn run(
    target: Target,
    events: &[Event],
    batch: usize,
    connections: usize,
) -> (f64, f64, f64) {
    let batches: Vec<Vec<Event>> = events.chunks(batch).map(|c| c.to_vec()).collect();
    let queue = Arc::new(std::sync::Mutex::new(std::collections::VecDeque::from(
        batches,
    )));
    let (cpu0, pg0, t0) = (own_cpu(), cpu_of("postgres"), Instant::now());
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (target, queue) = (target.clone(), queue.clone());
            tokio::spawn(async move {
                loop {
                    let next = queue.lock().unwrap().pop_front();
                    let Some(batch) = next else { break };
                    target.ingest(batch).await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let secs = t0.elapsed().as_secs_f64();
    (
        events.len() as f64 / secs,
        own_cpu() - cpu0,
        cpu_of("postgres") - pg0,
    )
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let server = args
        .next()
        .unwrap_or_else(|| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into());
    let calls: usize = args.next().and_then(|c| c.parse().ok()).unwrap_or(5_000);
    let (admin, conn) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .expect("the PostgreSQL server");
    tokio::spawn(conn);
    let base = server
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(server.clone());
    println!(
        "{:<34} {:>10} {:>10} {:>10}",
        "run", "events/s", "own CPU s", "pg CPU s"
    );
    for (label, batch, connections) in [
        ("batches of 100 over 4", 100, 4),
        ("one a request over 32", 1, 32),
    ] {
        for store in ["sqlite", "postgres"] {
            let events = events(calls);
            let dir = tempfile::tempdir().unwrap();
            let name = format!("switchboard_bench_{}", std::process::id());
            let target = match store {
                "sqlite" => {
                    Target::Sqlite(Store::open_with(dir.path(), CallOptions::default()).unwrap())
                }
                _ => {
                    for sql in [
                        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                        format!("CREATE DATABASE {name}"),
                    ] {
                        admin.batch_execute(&sql).await.unwrap();
                    }
                    Target::Postgres(
                        PgStore::connect(&format!("{base}/{name}"), CallOptions::default())
                            .await
                            .unwrap(),
                    )
                }
            };
            let (rate, own, pg) = run(target.clone(), &events, batch, connections).await;
            println!(
                "{:<34} {rate:>10.0} {own:>10.2} {pg:>10.2}",
                format!("{label}, {store}")
            );
            if let Target::Sqlite(s) = target {
                s.close();
            } else {
                drop(target);
                if std::env::var("KEEP").is_err() {
                    admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await
                        .unwrap();
                }
            }
        }
    }
}
