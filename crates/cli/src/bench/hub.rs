//! The hub under test: one the harness starts (and measures through /proc), or one already
//! running.

use anyhow::{bail, Context, Result};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ADMIN: &str = "bench-admin";

pub struct Hub {
    pub base: String,
    /// Every node's base URL (the first is `base`): several when the harness started several
    /// nodes on one PostgreSQL database.
    pub nodes: Vec<String>,
    pub token: String,
    pub account: i64,
    child: Option<Child>,
    /// The other nodes the harness started.
    others: Vec<Child>,
    _dir: Option<tempfile::TempDir>,
}

/// The HTTP client of the harness: keep-alive connections to the hub under test only.
#[allow(clippy::disallowed_methods)]
pub fn client(connections: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections.max(1))
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

impl Hub {
    pub fn attach(base: String, token: String, account: i64) -> Hub {
        let base = base.trim_end_matches('/').to_string();
        Hub {
            nodes: vec![base.clone()],
            base,
            token,
            account,
            child: None,
            others: Vec::new(),
            _dir: None,
        }
    }

    /// Starts `switchboard serve` on a fresh data dir (`nodes` of them, sharing the
    /// PostgreSQL database `SWITCHBOARD_STORE` in `env` names, when more than one) and creates
    /// an account.
    pub async fn start(bin: Option<PathBuf>, env: &[String], nodes: usize) -> Result<Hub> {
        let bin = match bin {
            Some(b) => b,
            None => std::env::current_exe()?.with_file_name("switchboard"),
        };
        if nodes > 1 && !env.iter().any(|kv| kv.starts_with("SWITCHBOARD_STORE=")) {
            bail!("--nodes needs a shared store: --store postgres://…");
        }
        let dir = tempfile::tempdir()?;
        let mut children = Vec::new();
        let mut bases = Vec::new();
        // The first node alone, so it has made the schema before the others start.
        for n in 0..nodes.max(1) {
            let (child, base) = start_node(&bin, &dir.path().join(format!("data-{n}")), env)?;
            children.push(child);
            bases.push(base);
        }
        let base = bases[0].clone();
        let (account, token) = new_account(&base, "bench").await?;
        let mut children = children.into_iter();
        Ok(Hub {
            base,
            nodes: bases,
            token,
            account,
            child: children.next(),
            others: children.collect(),
            _dir: Some(dir),
        })
    }

    /// Another account on a hub the harness started: its id and api token.
    pub async fn other_account(&self, name: &str) -> Result<(i64, String)> {
        if self.child.is_none() {
            bail!("another account needs a hub the harness started (it holds the admin token)");
        }
        new_account(&self.base, name).await
    }

    /// A callback and a listener with one subscription.
    pub async fn subscribe(
        &self,
        http: &reqwest::Client,
        url: &str,
        tags: &str,
        version: &str,
    ) -> Result<()> {
        let tags: Vec<&str> = tags.split(',').map(str::trim).collect();
        let resp = http
            .post(format!("{}/v4/accounts/{}/integrations/events/overview", self.base, self.account))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(json!({":callback": {"config": {"url": url}}, ":subscriptions": [{":tags": tags}], "version": version}).to_string())
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("subscribing failed: {}", resp.text().await?);
        }
        Ok(())
    }

    pub fn sampler(&self) -> Sampler {
        let pids: Vec<u32> = self
            .child
            .iter()
            .chain(&self.others)
            .map(Child::id)
            .collect();
        Sampler::start(pids)
    }

    pub fn stop(&mut self) {
        for mut child in self.child.take().into_iter().chain(self.others.drain(..)) {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

/// Starts one `switchboard serve`; returns it and where it listens.
fn start_node(
    bin: &std::path::Path,
    data: &std::path::Path,
    env: &[String],
) -> Result<(Child, String)> {
    let mut cmd = Command::new(bin);
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--allow-private-targets",
        "--data-dir",
    ])
    .arg(data)
    .env("SWITCHBOARD_ADMIN_TOKEN", ADMIN)
    .env("RUST_LOG", "warn")
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    for kv in env {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--server-env {kv}: expected KEY=VALUE"))?;
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let Some(base) = line.trim().strip_prefix("switchboard listening on ") else {
        bail!("the hub did not start: {line:?}");
    };
    Ok((child, base.to_string()))
}

/// Creates an account through the admin API.
async fn new_account(base: &str, name: &str) -> Result<(i64, String)> {
    let resp = client(1)
        .post(format!("{base}/admin/accounts"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(json!({ "name": name }).to_string())
        .send()
        .await?;
    let v: serde_json::Value = serde_json::from_str(&resp.text().await?)?;
    Ok((
        v["id"].as_i64().context("no account")?,
        v["token"].as_str().context("no token")?.to_string(),
    ))
}

impl Drop for Hub {
    fn drop(&mut self) {
        for mut child in self.child.take().into_iter().chain(self.others.drain(..)) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

pub struct Stats {
    pub rss_max_mib: f64,
    pub rss_end_mib: f64,
    /// The started nodes' CPU, summed (100 = one core).
    pub cpu_percent: f64,
    /// The CPU of every `postgres` process on this machine meanwhile (0 with none).
    pub database_cpu_percent: f64,
}

/// The CPU seconds of every process named `postgres` (the server and its backends).
fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .filter_map(cpu_seconds)
        .sum()
}

/// Samples the started nodes' memory while the run goes on.
pub struct Sampler {
    pids: Vec<u32>,
    cpu_start: f64,
    database_cpu_start: f64,
    max: std::sync::Arc<std::sync::Mutex<f64>>,
    stop: tokio_util::sync::CancellationToken,
}

impl Sampler {
    fn start(pids: Vec<u32>) -> Sampler {
        let max = std::sync::Arc::new(std::sync::Mutex::new(0.0f64));
        let stop = tokio_util::sync::CancellationToken::new();
        if !pids.is_empty() {
            let (max, stop, pids) = (max.clone(), stop.clone(), pids.clone());
            tokio::spawn(async move {
                loop {
                    let rss: f64 = pids.iter().filter_map(|p| rss_mib(*p)).sum();
                    {
                        let mut m = max.lock().expect("lock");
                        *m = m.max(rss);
                    }
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            });
        }
        Sampler {
            cpu_start: pids.iter().filter_map(|p| cpu_seconds(*p)).sum(),
            database_cpu_start: postgres_cpu_seconds(),
            pids,
            max,
            stop,
        }
    }

    pub async fn stop(self, wall: Duration) -> Stats {
        self.stop.cancel();
        let wall = wall.as_secs_f64().max(1e-9);
        let database_cpu_percent =
            100.0 * (postgres_cpu_seconds() - self.database_cpu_start) / wall;
        if self.pids.is_empty() {
            return Stats {
                rss_max_mib: 0.0,
                rss_end_mib: 0.0,
                cpu_percent: 0.0,
                database_cpu_percent,
            };
        }
        let cpu: f64 = self
            .pids
            .iter()
            .filter_map(|p| cpu_seconds(*p))
            .sum::<f64>()
            - self.cpu_start;
        let end: f64 = self.pids.iter().filter_map(|p| rss_mib(*p)).sum();
        let max = *self.max.lock().expect("lock");
        Stats {
            rss_max_mib: max.max(end),
            rss_end_mib: end,
            cpu_percent: 100.0 * cpu / wall,
            database_cpu_percent,
        }
    }
}
