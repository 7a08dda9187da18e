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
    pub token: String,
    pub account: i64,
    child: Option<Child>,
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
        Hub {
            base: base.trim_end_matches('/').to_string(),
            token,
            account,
            child: None,
            _dir: None,
        }
    }

    /// Starts `switchboard serve` on a fresh data dir and creates an account.
    pub async fn start(bin: Option<PathBuf>, env: &[String]) -> Result<Hub> {
        let bin = match bin {
            Some(b) => b,
            None => std::env::current_exe()?.with_file_name("switchboard"),
        };
        let dir = tempfile::tempdir()?;
        let mut cmd = Command::new(&bin);
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--allow-private-targets",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
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
        let base = base.to_string();
        let (account, token) = new_account(&base, "bench").await?;
        Ok(Hub {
            base,
            token,
            account,
            child: Some(child),
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
        Sampler::start(self.child.as_ref().map(|c| c.id()))
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
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
        if let Some(mut child) = self.child.take() {
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
    pub cpu_percent: f64,
}

/// Samples the started hub's memory while the run goes on.
pub struct Sampler {
    pid: Option<u32>,
    cpu_start: f64,
    max: std::sync::Arc<std::sync::Mutex<f64>>,
    stop: tokio_util::sync::CancellationToken,
}

impl Sampler {
    fn start(pid: Option<u32>) -> Sampler {
        let max = std::sync::Arc::new(std::sync::Mutex::new(0.0f64));
        let stop = tokio_util::sync::CancellationToken::new();
        if let Some(pid) = pid {
            let (max, stop) = (max.clone(), stop.clone());
            tokio::spawn(async move {
                loop {
                    if let Some(r) = rss_mib(pid) {
                        let mut m = max.lock().expect("lock");
                        *m = m.max(r);
                    }
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            });
        }
        Sampler {
            pid,
            cpu_start: pid.and_then(cpu_seconds).unwrap_or(0.0),
            max,
            stop,
        }
    }

    pub async fn stop(self, wall: Duration) -> Stats {
        self.stop.cancel();
        let Some(pid) = self.pid else {
            return Stats {
                rss_max_mib: 0.0,
                rss_end_mib: 0.0,
                cpu_percent: 0.0,
            };
        };
        let cpu = cpu_seconds(pid).unwrap_or(0.0) - self.cpu_start;
        let end = rss_mib(pid).unwrap_or(0.0);
        let max = *self.max.lock().expect("lock");
        Stats {
            rss_max_mib: max.max(end),
            rss_end_mib: end,
            cpu_percent: 100.0 * cpu / wall.as_secs_f64().max(1e-9),
        }
    }
}
