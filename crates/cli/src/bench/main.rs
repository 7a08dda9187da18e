//! `switchboard-bench`: a load harness for Switchboard.
//!
//! It starts a hub of its own (the `switchboard` binary beside it, embedded default, fresh data
//! dir) or drives a running one, runs its own webhook receivers, subscribes listeners, sends
//! realistic calls (or replays an NDJSON file) over keep-alive connections, and measures
//! ingest throughput, delivery throughput, ingest-to-delivery latency, errors, and the
//! server's memory and CPU. It prints one table and can write JSON.

mod hub;
mod receiver;
mod traffic;

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_model::Dialect;

#[derive(Parser, Debug)]
#[command(
    name = "switchboard-bench",
    about = "Load harness for Switchboard: ingest and delivery throughput, latency, memory"
)]
struct Args {
    /// A running hub to drive (with --token and --account); without it the harness starts its own.
    #[arg(long)]
    url: Option<String>,
    /// An api token of the account to use on a running hub.
    #[arg(long, requires = "url")]
    token: Option<String>,
    /// The account id on a running hub.
    #[arg(long, requires = "url")]
    account: Option<i64>,
    /// The switchboard binary to start (default: the one beside this harness).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Extra environment for the started hub, KEY=VALUE (repeatable).
    #[arg(long = "server-env")]
    server_env: Vec<String>,
    /// Run the started hub on this PostgreSQL database (an empty one for comparable figures)
    /// instead of SQLite.
    #[arg(long)]
    store: Option<String>,
    /// Start this many nodes on the --store database; the connections are dealt among them.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Calls to generate.
    #[arg(long, default_value_t = 1000)]
    calls: u64,
    /// The dialect the calls are sent in.
    #[arg(long, default_value = "phonecom")]
    dialect: String,
    /// Send only the first events of each call, leaving it in progress (memory runs).
    #[arg(long)]
    in_progress: bool,
    /// Send one call of this many events instead of --calls calls (a tenant flooding one
    /// call); `tail ms/event` then shows what an event costs once the call is that large.
    #[arg(long)]
    one_call: Option<usize>,
    /// Meanwhile, another account sends this many single events a second (each the start of
    /// a call of its own) and the table gives their latency: what one account's load costs
    /// another's ingest.
    #[arg(long, default_value_t = 0.0)]
    bystander_rate: f64,
    /// Replay this NDJSON file of vendor events (in --dialect) instead of generating calls.
    #[arg(long)]
    replay: Option<PathBuf>,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Events per request: 1 sends one JSON object per request, more sends NDJSON batches.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Target events per second (0: as fast as the hub takes them).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Listeners to subscribe (each with its own callback on the harness's receiver).
    #[arg(long, default_value_t = 1)]
    listeners: usize,
    /// The tags each listener subscribes to, comma-separated.
    #[arg(long, default_value = "call")]
    tags: String,
    /// The dialect listeners receive (a listener `version`: 2.0.0, tel4vn, callable, …).
    #[arg(long, default_value = "2.0.0")]
    listener_version: String,
    /// How long to wait for deliveries after the last event was sent, in seconds.
    #[arg(long, default_value_t = 60)]
    drain: u64,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Serialize, Default)]
struct Results {
    dialect: String,
    calls: u64,
    events_sent: usize,
    requests: usize,
    connections: usize,
    batch: usize,
    listeners: usize,
    accepted: usize,
    errors: usize,
    send_seconds: f64,
    ingest_events_per_s: f64,
    deliveries: usize,
    deliveries_expected: usize,
    /// Webhooks that came a second time to the same listener (none in a clean run).
    duplicate_deliveries: usize,
    delivery_seconds: f64,
    deliveries_per_s: f64,
    latency_ms_p50: f64,
    latency_ms_p90: f64,
    latency_ms_p99: f64,
    latency_ms_max: f64,
    server_rss_mib_max: f64,
    server_rss_mib_end: f64,
    server_cpu_percent: f64,
    /// The `postgres` processes' CPU meanwhile (100 = one core).
    database_cpu_percent: f64,
    nodes: usize,
    /// Per event, the time of the last tenth of the requests (at least one), in order: what
    /// an event costs at the end of the run (with --one-call, in a call that large).
    tail_ms_per_event: f64,
    /// The other account's single events (--bystander-rate): how many, and their latency.
    bystander_requests: usize,
    bystander_ms_p50: f64,
    bystander_ms_p99: f64,
    bystander_ms_max: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() -> std::process::ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match rt.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Builds the request bodies: calls interleaved (each call's events in order), grouped in
/// batches.
fn requests(args: &Args, dialect: Dialect) -> Result<(Vec<Vec<u8>>, usize)> {
    let events: Vec<Vec<u8>> = match &args.replay {
        None if args.one_call.is_some() => {
            traffic::one_call(args.one_call.unwrap_or_default(), dialect)
        }
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.as_bytes().to_vec())
            .collect(),
        None => {
            let calls: Vec<Vec<Vec<u8>>> = (0..args.calls)
                .map(|n| traffic::call(n, dialect, args.in_progress))
                .collect();
            let longest = calls.iter().map(Vec::len).max().unwrap_or(0);
            let mut out = Vec::new();
            for step in 0..longest {
                for c in &calls {
                    if let Some(e) = c.get(step) {
                        out.push(e.clone());
                    }
                }
            }
            out
        }
    };
    let total = events.len();
    let batch = args.batch.max(1);
    let bodies = events
        .chunks(batch)
        .map(|chunk| {
            if chunk.len() == 1 {
                chunk[0].clone()
            } else {
                chunk.join(&b'\n')
            }
        })
        .collect();
    Ok((bodies, total))
}

async fn run(args: Args) -> Result<()> {
    let dialect = Dialect::parse(&args.dialect)
        .with_context(|| format!("unknown dialect {}", args.dialect))?;
    let mut hub = match &args.url {
        Some(url) => {
            let (Some(token), Some(account)) = (args.token.clone(), args.account) else {
                bail!("--url needs --token and --account");
            };
            hub::Hub::attach(url.clone(), token, account)
        }
        None => {
            let mut env = args.server_env.clone();
            if let Some(url) = &args.store {
                env.push(format!("SWITCHBOARD_STORE={url}"));
            }
            hub::Hub::start(args.server_bin.clone(), &env, args.nodes).await?
        }
    };
    let http = hub::client(args.connections);
    let rx = receiver::Receiver::start().await?;
    for i in 0..args.listeners {
        hub.subscribe(
            &http,
            &format!("{}/r/{i}", rx.url),
            &args.tags,
            &args.listener_version,
        )
        .await?;
    }
    let (bodies, events_sent) = requests(&args, dialect)?;
    eprintln!(
        "sending {events_sent} events in {} requests over {} connections",
        bodies.len(),
        args.connections
    );
    let sampler = hub.sampler();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let accepted = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    // Each request's (index, events, seconds).
    let timings: Arc<Mutex<Vec<(usize, usize, f64)>>> = Arc::new(Mutex::new(Vec::new()));
    let content_type = if args.batch > 1 {
        "application/x-ndjson"
    } else {
        "application/json"
    };
    let sending = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let bystander = if args.bystander_rate > 0.0 {
        let (_, token) = hub.other_account("bystander").await?;
        let (http, url, sending) = (
            hub::client(1),
            format!("{}/ingest/{}", hub.base, dialect.as_str()),
            sending.clone(),
        );
        let every = Duration::from_secs_f64(1.0 / args.bystander_rate);
        Some(tokio::spawn(async move {
            let mut took: Vec<f64> = Vec::new();
            let mut n = 0u64;
            while sending.load(Ordering::Relaxed) {
                let body = traffic::call(1_000_000 + n, dialect, true)
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                n += 1;
                let t = Instant::now();
                let ok = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 202);
                if ok {
                    took.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                tokio::time::sleep(every.saturating_sub(t.elapsed())).await;
            }
            took.sort_by(|a, b| a.total_cmp(b));
            took
        }))
    } else {
        None
    };
    let start = Instant::now();
    let per_request = args.batch.max(1) as f64;
    let mut tasks = Vec::new();
    for connection in 0..args.connections.max(1) {
        let timings = timings.clone();
        let (http, bodies, next, sent_at, accepted, errors) = (
            http.clone(),
            bodies.clone(),
            next.clone(),
            sent_at.clone(),
            accepted.clone(),
            errors.clone(),
        );
        let node = &hub.nodes[connection % hub.nodes.len()];
        let url = format!("{node}/ingest/{}", dialect.as_str());
        let token = hub.token.clone();
        let rate = args.rate;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                if rate > 0.0 {
                    let due = start + Duration::from_secs_f64(i as f64 * per_request / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let t = Instant::now();
                let resp = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", content_type)
                    .body(body.clone())
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status() == 202 => {
                        let Ok(text) = r.text().await else {
                            errors.fetch_add(1, Ordering::Relaxed);
                            continue;
                        };
                        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                        let ids = v["events"].as_array().cloned().unwrap_or_default();
                        timings.lock().expect("lock").push((
                            i,
                            ids.len(),
                            t.elapsed().as_secs_f64(),
                        ));
                        accepted.fetch_add(
                            v["accepted"].as_u64().unwrap_or(0) as usize,
                            Ordering::Relaxed,
                        );
                        let mut map = sent_at.lock().expect("lock");
                        for id in ids.iter().filter_map(|i| i.as_str()) {
                            map.insert(id.to_string(), t);
                        }
                    }
                    Ok(r) => {
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("ingest answered {status}: {}", &text[..text.len().min(300)]);
                        }
                    }
                    Err(e) => {
                        if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("ingest failed: {e}");
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let send_seconds = start.elapsed().as_secs_f64();
    sending.store(false, Ordering::Relaxed);
    let bystander = match bystander {
        Some(task) => task.await?,
        None => Vec::new(),
    };
    let accepted = accepted.load(Ordering::Relaxed);
    let tag_list: Vec<&str> = args.tags.split(',').collect();
    // Every generated event is a call event: with a plain `call` subscription each goes to
    // every listener. With other tags, wait until deliveries stop coming.
    let expected = if tag_list == ["call"] {
        accepted * args.listeners
    } else {
        0
    };
    let deadline = Instant::now() + Duration::from_secs(args.drain);
    let mut last_count = 0;
    let mut last_change = Instant::now();
    loop {
        let n = rx.count();
        if expected > 0 && n >= expected {
            break;
        }
        if n != last_count {
            last_count = n;
            last_change = Instant::now();
        }
        if Instant::now() > deadline
            || (expected == 0 && last_change.elapsed() > Duration::from_secs(3))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tail_ms_per_event = {
        let mut timings = timings.lock().expect("lock").clone();
        timings.sort_by_key(|t| t.0);
        let tail = &timings[timings.len() - (timings.len() / 10).max(1).min(timings.len())..];
        let (events, seconds) = tail.iter().fold((0, 0.0), |(e, s), t| (e + t.1, s + t.2));
        seconds * 1000.0 / events.max(1) as f64
    };
    let received = rx.received();
    let stats = sampler.stop(start.elapsed()).await;
    let sent_at = sent_at.lock().expect("lock");
    let mut latencies: Vec<f64> = received
        .iter()
        .filter_map(|(id, _, at)| {
            sent_at
                .get(id)
                .map(|s| at.saturating_duration_since(*s).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let last_delivery = received.iter().map(|(_, _, at)| *at).max().unwrap_or(start);
    let unique: std::collections::HashSet<(&str, &str)> = received
        .iter()
        .map(|(id, path, _)| (id.as_str(), path.as_str()))
        .collect();
    let duplicate_deliveries = received.len() - unique.len();
    let delivery_seconds = last_delivery.saturating_duration_since(start).as_secs_f64();
    let results = Results {
        dialect: dialect.as_str().into(),
        calls: if args.replay.is_some() { 0 } else { args.calls },
        events_sent,
        requests: bodies.len(),
        connections: args.connections,
        batch: args.batch,
        listeners: args.listeners,
        accepted,
        errors: errors.load(Ordering::Relaxed),
        send_seconds,
        ingest_events_per_s: accepted as f64 / send_seconds.max(1e-9),
        deliveries: received.len(),
        deliveries_expected: expected,
        duplicate_deliveries,
        delivery_seconds,
        deliveries_per_s: received.len() as f64 / delivery_seconds.max(1e-9),
        latency_ms_p50: percentile(&latencies, 0.50),
        latency_ms_p90: percentile(&latencies, 0.90),
        latency_ms_p99: percentile(&latencies, 0.99),
        latency_ms_max: latencies.last().copied().unwrap_or(0.0),
        server_rss_mib_max: stats.rss_max_mib,
        server_rss_mib_end: stats.rss_end_mib,
        server_cpu_percent: stats.cpu_percent,
        database_cpu_percent: stats.database_cpu_percent,
        nodes: hub.nodes.len(),
        tail_ms_per_event,
        bystander_requests: bystander.len(),
        bystander_ms_p50: percentile(&bystander, 0.50),
        bystander_ms_p99: percentile(&bystander, 0.99),
        bystander_ms_max: bystander.last().copied().unwrap_or(0.0),
    };
    print_table(&results);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&json!(results))?)?;
    }
    hub.stop();
    if results.errors > 0
        || (expected > 0 && results.deliveries < expected)
        || results.duplicate_deliveries > 0
    {
        bail!(
            "{} errors, {} of {} deliveries, {} duplicates",
            results.errors,
            results.deliveries,
            expected,
            results.duplicate_deliveries
        );
    }
    Ok(())
}

fn print_table(r: &Results) {
    println!("{:<34} {:>14}", "metric", "value");
    let rows: Vec<(&str, String)> = vec![
        ("dialect", r.dialect.clone()),
        (
            "events sent / accepted",
            format!("{} / {}", r.events_sent, r.accepted),
        ),
        (
            "requests (batch, connections)",
            format!("{} ({}, {})", r.requests, r.batch, r.connections),
        ),
        ("errors", r.errors.to_string()),
        ("ingest events/s", format!("{:.0}", r.ingest_events_per_s)),
        ("listeners", r.listeners.to_string()),
        (
            "deliveries (expected)",
            format!("{} ({})", r.deliveries, r.deliveries_expected),
        ),
        ("duplicate deliveries", r.duplicate_deliveries.to_string()),
        (
            "deliveries/s (end to end)",
            format!("{:.0}", r.deliveries_per_s),
        ),
        (
            "latency p50 / p90 ms",
            format!("{:.1} / {:.1}", r.latency_ms_p50, r.latency_ms_p90),
        ),
        (
            "latency p99 / max ms",
            format!("{:.1} / {:.1}", r.latency_ms_p99, r.latency_ms_max),
        ),
        (
            "server RSS max / end MiB",
            format!("{:.1} / {:.1}", r.server_rss_mib_max, r.server_rss_mib_end),
        ),
        ("server CPU %", format!("{:.0}", r.server_cpu_percent)),
        ("nodes", r.nodes.to_string()),
        ("postgres CPU %", format!("{:.0}", r.database_cpu_percent)),
        ("tail ms/event", format!("{:.3}", r.tail_ms_per_event)),
        (
            "bystander n, p50 / p99 / max ms",
            format!(
                "{}, {:.1} / {:.1} / {:.1}",
                r.bystander_requests, r.bystander_ms_p50, r.bystander_ms_p99, r.bystander_ms_max
            ),
        ),
    ];
    for (k, v) in rows {
        println!("{k:<34} {v:>14}");
    }
}
