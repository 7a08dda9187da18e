//! The test harness: the real `switchboard` binary on port 0 with a temp data dir, real HTTP
//! receivers, and small helpers to drive the API.
//!
//! The store under test is a parameter: with `SWITCHBOARD_TEST_STORE=postgres` every hub runs
//! on a PostgreSQL database of its own (made on the server `SWITCHBOARD_TEST_POSTGRES` names,
//! dropped after), else on SQLite in its data dir. `scripts/test` runs the suite both ways.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const ADMIN: &str = "test-admin-token";

/// A running hub.
pub struct Hub {
    child: Option<Child>,
    pub base: String,
    pub dir: PathBuf,
    env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
    pub http: reqwest::Client,
    /// The hub's PostgreSQL database, when the suite runs on PostgreSQL (dropped after the
    /// hub is stopped).
    _database: Option<crate::pg::FreshDatabase>,
}

fn owned(env: &[(&str, &str)]) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Whether this run of the suite is on PostgreSQL (`SWITCHBOARD_TEST_STORE=postgres`).
pub fn on_postgres() -> bool {
    match std::env::var("SWITCHBOARD_TEST_STORE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Ok("") | Err(_) => false,
        Ok(other) => panic!("SWITCHBOARD_TEST_STORE={other}: expected postgres or sqlite"),
    }
}

pub struct Account {
    pub id: i64,
    pub token: String,
}

fn spawn(dir: &Path, env: &[(String, String)]) -> (Child, String) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("hub.log"))
        .expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .env("SWITCHBOARD_ADMIN_TOKEN", ADMIN)
        .env("SWITCHBOARD_ALLOW_PRIVATE_TARGETS", "1")
        .env("SWITCHBOARD_RETRY_SCHEDULE", "0s,200ms,200ms")
        .env("SWITCHBOARD_DELIVERY_TIMEOUT", "3s")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the switchboard binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {}
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            let log = std::fs::read_to_string(dir.join("hub.log")).unwrap_or_default();
            panic!("the hub did not say where it listens; log:\n{log}")
        });
    let base = line
        .strip_prefix("switchboard listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_string();
    (child, base)
}

/// The tests' own client: it talks to the hub under test, not to callback targets.
#[allow(clippy::disallowed_methods)]
fn test_client() -> reqwest::Client {
    reqwest::Client::new()
}

impl Hub {
    pub async fn start() -> Hub {
        Hub::start_with(&[]).await
    }

    pub async fn start_with(env: &[(&str, &str)]) -> Hub {
        Hub::start_on(tempfile::tempdir().expect("temp dir"), env).await
    }

    /// Starts a hub on the SQLite store whatever the suite runs on (for what only SQLite
    /// has: its file, its backups, its page quota).
    pub async fn start_sqlite(env: &[(&str, &str)]) -> Hub {
        Hub::start_in(tempfile::tempdir().expect("temp dir"), env, false).await
    }

    /// Starts a hub on a PostgreSQL database of its own whatever the suite runs on.
    pub async fn start_postgres(env: &[(&str, &str)]) -> Hub {
        Hub::start_in(tempfile::tempdir().expect("temp dir"), env, true).await
    }

    /// Starts a hub on `database`, as it was left (a copy made into it, say).
    pub async fn start_on_database(
        database: crate::pg::FreshDatabase,
        env: &[(&str, &str)],
    ) -> Hub {
        let mut env = owned(env);
        env.push(("SWITCHBOARD_STORE".into(), database.url.clone()));
        Hub::launch(tempfile::tempdir().expect("temp dir"), env, Some(database)).await
    }

    /// Another node on this hub's PostgreSQL database: the same binary and settings, its own
    /// process, data dir and port.
    pub async fn another_node(&self) -> Hub {
        assert!(
            self._database.is_some(),
            "nodes share a PostgreSQL database"
        );
        Hub::launch(
            tempfile::tempdir().expect("temp dir"),
            self.env.clone(),
            None,
        )
        .await
    }

    /// The hub's PostgreSQL database: its name and URL (`None` on SQLite).
    pub fn database(&self) -> Option<(&str, &str)> {
        self._database.as_ref().map(|d| (d.name(), d.url.as_str()))
    }

    /// Starts a hub whose data directory is `tmp/data`, as it was left there (a restored
    /// backup, say: a data directory is SQLite's, so such a hub runs on SQLite).
    pub async fn start_on(tmp: tempfile::TempDir, env: &[(&str, &str)]) -> Hub {
        let fresh = !tmp.path().join("data").exists();
        Hub::start_in(tmp, env, fresh && on_postgres()).await
    }

    async fn start_in(tmp: tempfile::TempDir, env: &[(&str, &str)], postgres: bool) -> Hub {
        let mut env = owned(env);
        let database = if postgres {
            let db = crate::pg::FreshDatabase::new("hub").await;
            env.push(("SWITCHBOARD_STORE".into(), db.url.clone()));
            Some(db)
        } else {
            None
        };
        Hub::launch(tmp, env, database).await
    }

    /// Starts the binary in `tmp` with `env` and waits until it is ready; the hub holds
    /// `database` (if it owns one) until it is dropped.
    async fn launch(
        tmp: tempfile::TempDir,
        env: Vec<(String, String)>,
        database: Option<crate::pg::FreshDatabase>,
    ) -> Hub {
        let dir = tmp.path().to_path_buf();
        let (child, base) = spawn(&dir, &env);
        // reqwest is built without a TLS provider of its own; the process picks ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let hub = Hub {
            child: Some(child),
            base,
            dir,
            env,
            _tmp: Some(tmp),
            http: test_client(),
            _database: database,
        };
        hub.wait_ready().await;
        hub
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.base)).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "the hub never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "the hub did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the hub again on the same data dir (and a new port).
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the hub first");
        let (child, base) = spawn(&self.dir, &self.env);
        self.child = Some(child);
        self.base = base;
        self.wait_ready().await;
    }

    /// Changes an environment variable for the next restart.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("hub.log")).unwrap_or_default()
    }

    pub async fn account(&self) -> Account {
        let (status, body) = self
            .call(
                "POST",
                "/admin/accounts",
                Some(ADMIN),
                Some(json!({"name": "test"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        Account {
            id: body["id"].as_i64().unwrap(),
            token: body["token"].as_str().unwrap().to_string(),
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", self.base),
        );
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.expect("the hub answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Posts raw bytes to an ingest endpoint.
    pub async fn ingest_raw(
        &self,
        dialect: &str,
        token: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/ingest/{dialect}", self.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("the hub answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn ingest(&self, token: &str, events: &[Value]) -> Value {
        let body = if events.len() == 1 {
            events[0].to_string()
        } else {
            Value::Array(events.to_vec()).to_string()
        };
        let (status, out) = self
            .ingest_raw("phonecom", token, "application/json", body)
            .await;
        assert_eq!(status, 202, "{out}");
        out
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The events API path of an account.
pub fn events_api(account: &Account, rest: &str) -> String {
    format!("/v4/accounts/{}/integrations/events{rest}", account.id)
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub query: Option<String>,
    pub headers: HashMap<String, String>,
    pub body: Value,
    pub raw: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn is_test(&self) -> bool {
        self.body == json!({"test": 1})
    }
}

/// The distinct `data.uuid`s of what was received (a call's id in Phone.com webhooks), sorted.
pub fn distinct_uuids(got: &[Received]) -> Vec<String> {
    let mut uuids: Vec<String> = got
        .iter()
        .map(|r| {
            r.body["data"]["uuid"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    uuids.sort();
    uuids.dedup();
    uuids
}

/// How a receiver answers.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub status: u16,
    pub delay: Duration,
    /// Headers sent with the answer (e.g. `Retry-After`, `Location`).
    pub headers: Vec<(String, String)>,
    /// Answer 500 the first time each `webhook-id` is seen.
    pub fail_first: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            status: 200,
            delay: Duration::ZERO,
            headers: Vec::new(),
            fail_first: false,
        }
    }
}

#[derive(Default)]
struct ReceiverState {
    got: Mutex<Vec<Received>>,
    behaviour: Mutex<Option<Behaviour>>,
    /// Requests being answered now, and the most there ever were at once.
    open: std::sync::atomic::AtomicUsize,
    most_open: std::sync::atomic::AtomicUsize,
}

/// Counts a request open while it is answered.
struct Open<'a>(&'a ReceiverState);

impl<'a> Open<'a> {
    fn new(state: &'a ReceiverState) -> Self {
        use std::sync::atomic::Ordering::SeqCst;
        let now = state.open.fetch_add(1, SeqCst) + 1;
        state.most_open.fetch_max(now, SeqCst);
        Open(state)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A real HTTP receiver on loopback that records what it gets.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<ReceiverState>,
}

async fn record(State(state): State<Arc<ReceiverState>>, req: Request) -> axum::response::Response {
    let _open = Open::new(&state);
    let (parts, body) = req.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, 10 << 20)
        .await
        .unwrap_or_default();
    let behaviour = state.behaviour.lock().unwrap().clone().unwrap_or_default();
    let received = Received {
        method: parts.method.to_string(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        raw: bytes.to_vec(),
        at: Instant::now(),
    };
    let id = received.headers.get("webhook-id").cloned();
    let first_time = {
        let mut got = state.got.lock().unwrap();
        let seen = id.is_some()
            && got
                .iter()
                .any(|r| r.headers.get("webhook-id") == id.as_ref());
        got.push(received);
        !seen
    };
    if !behaviour.delay.is_zero() {
        tokio::time::sleep(behaviour.delay).await;
    }
    let status = if behaviour.fail_first && first_time && id.is_some() {
        500
    } else {
        behaviour.status
    };
    let mut response = axum::response::Response::new(axum::body::Body::from("received"));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    for (k, v) in behaviour.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            axum::http::HeaderValue::from_str(&v).unwrap(),
        );
    }
    response
}

impl Receiver {
    pub async fn start() -> Receiver {
        let state = Arc::new(ReceiverState::default());
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { url, state }
    }

    pub fn answer(&self, status: u16) {
        self.behave(Behaviour {
            status,
            ..Behaviour::default()
        });
    }

    pub fn behave(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().unwrap() = Some(behaviour);
    }

    /// Everything received except the `{"test": 1}` verification requests.
    pub fn events(&self) -> Vec<Received> {
        self.state
            .got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| !r.is_test())
            .cloned()
            .collect()
    }

    pub fn all(&self) -> Vec<Received> {
        self.state.got.lock().unwrap().clone()
    }

    /// The most requests it was answering at once.
    pub fn most_open(&self) -> usize {
        self.state
            .most_open
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until at least `n` events arrived (or panics after `secs`).
    pub async fn wait_events(&self, n: usize, secs: u64) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.events();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} events, got {}: {:#?}",
                got.len(),
                got.iter().map(|r| &r.body).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits a little and asserts that exactly `n` events arrived in all.
    pub async fn settle(&self, n: usize) -> Vec<Received> {
        let got = self.wait_events(n, 10).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let after = self.events();
        assert_eq!(
            after.len(),
            n,
            "more events than expected: {:#?}",
            after.iter().map(|r| &r.body).collect::<Vec<_>>()
        );
        let _ = got;
        after
    }
}

/// Creates a callback to `url` and a listener subscribed to each of `subscriptions`; returns
/// the listener id.
pub async fn listen(hub: &Hub, account: &Account, url: &str, subscriptions: &[&[&str]]) -> i64 {
    listen_with(hub, account, json!({"config": {"url": url}}), subscriptions).await
}

/// As [`listen`], with the callback's whole body given.
pub async fn listen_with(
    hub: &Hub,
    account: &Account,
    callback: Value,
    subscriptions: &[&[&str]],
) -> i64 {
    let subs: Vec<Value> = subscriptions
        .iter()
        .map(|tags| json!({":tags": tags}))
        .collect();
    let (status, body) = hub
        .call(
            "POST",
            &events_api(account, "/overview"),
            Some(&account.token),
            Some(json!({":callback": callback, ":subscriptions": subs})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_i64().unwrap()
}

/// Creates a callback (the hub verifies it with a test request first).
pub async fn callback(hub: &Hub, acct: &Account, body: Value) -> (u16, Value) {
    hub.call(
        "POST",
        &events_api(acct, "/callbacks"),
        Some(&acct.token),
        Some(body),
    )
    .await
}

/// A Phone.com call leg event.
#[allow(clippy::too_many_arguments)]
pub fn leg_event(
    uuid: &str,
    call: &str,
    leg: &str,
    state: &str,
    completion: Option<&str>,
    from: Value,
    to: Value,
    ts: i64,
) -> Value {
    let is_first = call == leg;
    // Tests write times as 1_700_000_000 + n seconds; the hub refuses times far from now, so
    // that epoch is moved to now.
    let ts = jiff::Timestamp::now().as_second() + (ts - 1_700_000_000);
    json!({
        "uuid": uuid,
        "version": "2.0.0",
        "timestamp": ts,
        "timestamp_ns": ts as i128 * 1_000_000_000,
        "tags": ["whatever", "the", "sender", "wrote"],
        "data_type": "call",
        "data_object_uuid": call,
        "data": {
            "uuid": call,
            "direction": "inbound",
            "event_leg": {
                "uuid": leg,
                "from": from,
                "to": to,
                "is_first": is_first,
                "state": state,
                "completion_status": completion,
            },
            "first_leg": if is_first { Value::Null } else { json!({"uuid": call, "is_first": true, "state": null, "completion_status": null}) },
        }
    })
}

pub fn did(number: &str) -> Value {
    json!({"type": "did", "id": number})
}

pub fn device(id: i64, ext: i64) -> Value {
    json!({"type": "device", "id": id, "line": 1, "domain": "sip.phone.com", "extension_id": ext * 1000, "extension": ext})
}

/// The example inbound call of the reference: first leg, a device that does not answer, a
/// second device that does. Eleven events, in the order the reference lists them.
pub fn inbound_call(call: &str, caller: &str, dialled: &str) -> Vec<Value> {
    let l2 = format!("{call}-leg2");
    let l3 = format!("{call}-leg3");
    let t = 1_700_000_000;
    let first = |n: &str, state: &str, c: Option<&str>, ts| {
        leg_event(
            &format!("{call}-e{n}"),
            call,
            call,
            state,
            c,
            did(caller),
            did(dialled),
            ts,
        )
    };
    let other = |n: &str, leg: &str, dev: Value, state: &str, c: Option<&str>, ts| {
        leg_event(
            &format!("{call}-e{n}"),
            call,
            leg,
            state,
            c,
            did(caller),
            dev,
            ts,
        )
    };
    vec![
        first("01", "new", None, t),
        first("02", "connecting", None, t + 1),
        other("03", &l2, device(777, 500), "new", None, t + 1),
        other("04", &l2, device(777, 500), "connecting", None, t + 2),
        other(
            "05",
            &l2,
            device(777, 500),
            "completed",
            Some("cancelled"),
            t + 22,
        ),
        other("06", &l3, device(888, 501), "new", None, t + 22),
        other("07", &l3, device(888, 501), "connecting", None, t + 23),
        other("08", &l3, device(888, 501), "connected", None, t + 25),
        first("09", "connected", None, t + 25),
        other(
            "10",
            &l3,
            device(888, 501),
            "completed",
            Some("success"),
            t + 85,
        ),
        first("11", "completed", Some("success"), t + 86),
    ]
}

/// A real SMTP server (aiosmtpd) that keeps every message it gets.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hub/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the SMTP sink (aiosmtpd from PyPI)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("port ")
            .unwrap_or_else(|| panic!("SMTP sink said {line:?}"))
            .parse()
            .unwrap();
        SmtpSink { child, port, dir }
    }

    /// The messages received so far, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }

    pub async fn wait_messages(&self, n: usize, secs: u64) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} e-mails, got {}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Verifies a received webhook with the `standardwebhooks` package from PyPI.
pub fn verified_by_standard_webhooks(secret: &str, r: &Received) -> bool {
    let headers = json!({
        "webhook-id": r.headers.get("webhook-id"),
        "webhook-timestamp": r.headers.get("webhook-timestamp"),
        "webhook-signature": r.headers.get("webhook-signature"),
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hub/verify_signature.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(secret)
        .arg(headers.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("python3 runs the verifier (standardwebhooks from PyPI)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&r.raw).unwrap();
    child.wait().unwrap().success()
}

/// GETs an account path (after `/v4/accounts/{id}`), asserting 200.
pub async fn get(hub: &Hub, acct: &Account, path: &str) -> Value {
    let (status, body) = hub
        .call(
            "GET",
            &format!("/v4/accounts/{}{path}", acct.id),
            Some(&acct.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Waits until the call (by any id) satisfies `done` (or panics after 10 s); returns it.
pub async fn wait_call<F: Fn(&Value) -> bool>(
    hub: &Hub,
    acct: &Account,
    id: &str,
    done: F,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, call) = hub
            .call(
                "GET",
                &format!("/v4/accounts/{}/calls/{id}", acct.id),
                Some(&acct.token),
                None,
            )
            .await;
        if status == 200 && done(&call) {
            return call;
        }
        assert!(
            Instant::now() < deadline,
            "call {id} never got there: {call}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads from a raw connection until it closes or `within` passes: whether it closed.
pub async fn closed_within(
    stream: &mut tokio::net::TcpStream,
    within: std::time::Duration,
) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}
