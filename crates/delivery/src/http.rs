//! HTTP callbacks: their configuration, sending one request, and the `{"test": 1}` check.

use crate::target::{TargetError, TargetGuard};
use reqwest::{Method, Url};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A callback's `config` for modes HTTP and HTTPS, parsed and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    pub url: Url,
    pub method: Method,
    pub headers: Vec<(String, String)>,
    pub timeout: Option<Duration>,
    /// `rate-limit`: at most `number` events per `period` seconds.
    pub rate_limit: Option<(u64, u64)>,
}

/// A field of a callback config that is wrong; `path` is relative to `config`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct HttpConfigError {
    pub path: String,
    pub message: String,
}

fn err(path: &str, message: impl Into<String>) -> HttpConfigError {
    HttpConfigError {
        path: path.to_string(),
        message: message.into(),
    }
}

/// The methods Phone.com callbacks may use.
pub const METHODS: &[&str] = &["POST", "GET", "PUT", "PATCH", "DELETE"];

impl HttpConfig {
    pub fn from_json(config: &Value) -> Result<HttpConfig, HttpConfigError> {
        let obj = config
            .as_object()
            .ok_or_else(|| err("", "expected an object"))?;
        let url_text = match obj.get("url") {
            Some(Value::String(s)) => s,
            Some(_) => return Err(err("url", "expected a string")),
            None => return Err(err("url", "missing: this field is required")),
        };
        let url = Url::parse(url_text).map_err(|e| err("url", format!("not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(err(
                "url",
                format!(
                    "scheme {:?} is not supported: use http or https",
                    url.scheme()
                ),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(err("url", "the URL has no host"));
        }
        let method = match obj.get("method") {
            None | Some(Value::Null) => Method::POST,
            Some(Value::String(m)) if METHODS.contains(&m.to_ascii_uppercase().as_str()) => {
                Method::from_bytes(m.to_ascii_uppercase().as_bytes()).expect("a known method")
            }
            Some(_) => {
                return Err(err(
                    "method",
                    format!("expected one of {}", METHODS.join(", ")),
                ))
            }
        };
        let mut headers = Vec::new();
        match obj.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let name = item.get("name").and_then(Value::as_str);
                    let value = item.get("value").and_then(Value::as_str);
                    match (name, value) {
                        (Some(n), Some(v)) => {
                            reqwest::header::HeaderName::from_bytes(n.as_bytes()).map_err(
                                |_| err(&format!("headers[{i}].name"), "not a valid header name"),
                            )?;
                            reqwest::header::HeaderValue::from_str(v).map_err(|_| {
                                err(&format!("headers[{i}].value"), "not a valid header value")
                            })?;
                            headers.push((n.to_string(), v.to_string()));
                        }
                        (None, _) => {
                            return Err(err(&format!("headers[{i}].name"), "expected a string"))
                        }
                        (_, None) => {
                            return Err(err(&format!("headers[{i}].value"), "expected a string"))
                        }
                    }
                }
            }
            Some(_) => return Err(err("headers", "expected an array of {name, value} or null")),
        }
        let timeout = match obj.get("timeout") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(s) if (1..=300).contains(&s) => Some(Duration::from_secs(s)),
                _ => {
                    return Err(err(
                        "timeout",
                        "expected a whole number of seconds from 1 to 300, or null",
                    ))
                }
            },
        };
        let rate_limit = match obj.get("rate-limit") {
            None | Some(Value::Null) => None,
            Some(Value::Object(rl)) => {
                let number = rl
                    .get("number")
                    .and_then(Value::as_u64)
                    .filter(|n| *n > 0)
                    .ok_or_else(|| err("rate-limit.number", "expected a positive whole number"))?;
                let period = rl
                    .get("period")
                    .and_then(Value::as_u64)
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        err(
                            "rate-limit.period",
                            "expected a positive whole number of seconds",
                        )
                    })?;
                Some((number, period))
            }
            Some(_) => return Err(err("rate-limit", "expected {number, period} or null")),
        };
        Ok(HttpConfig {
            url,
            method,
            headers,
            timeout,
            rate_limit,
        })
    }
}

/// What one request came to.
#[derive(Debug, Clone)]
pub struct SendResult {
    pub status: Option<u16>,
    pub error: Option<String>,
    pub latency: Duration,
    pub body_prefix: Option<String>,
    /// `Retry-After` in seconds, when the receiver sent one.
    pub retry_after: Option<Duration>,
}

impl SendResult {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// How many bytes of a response body are kept for the delivery log.
const BODY_PREFIX: usize = 256;

/// Builds the client every outbound request uses: guarded resolver, no redirects, no proxy.
/// Up to `max_open` connections to one host are kept open between requests (the most that
/// can be in use at once): with fewer, many listeners on one receiver host closed and opened
/// connections all the time.
pub fn client(guard: &std::sync::Arc<TargetGuard>, max_open: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .dns_resolver(guard.resolver())
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("Switchboard/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(max_open)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .expect("the HTTP client builds")
}

/// Sends `body` to a callback. For GET the body travels as the `event` query parameter.
pub async fn send(
    client: &reqwest::Client,
    guard: &TargetGuard,
    cfg: &HttpConfig,
    body: Vec<u8>,
    extra_headers: &[(String, String)],
    default_timeout: Duration,
) -> SendResult {
    let started = Instant::now();
    let failed = |e: String| SendResult {
        status: None,
        error: Some(e),
        latency: started.elapsed(),
        body_prefix: None,
        retry_after: None,
    };
    // Literal IPs never reach the resolver, so they are checked here.
    if let Some(host) = cfg.url.host_str() {
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse() {
            if let Err(e) = guard.check_addr(host, ip) {
                return failed(e.to_string());
            }
        }
    }
    let mut url = cfg.url.clone();
    let mut request = if cfg.method == Method::GET {
        url.query_pairs_mut()
            .append_pair("event", &String::from_utf8_lossy(&body));
        client.request(Method::GET, url)
    } else {
        // JSON, unless the sender says otherwise (an application's form-encoded hit).
        let typed = extra_headers
            .iter()
            .chain(cfg.headers.iter())
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        let request = client.request(cfg.method.clone(), url).body(body);
        if typed {
            request
        } else {
            request.header(reqwest::header::CONTENT_TYPE, "application/json")
        }
    };
    for (name, value) in extra_headers.iter().chain(cfg.headers.iter()) {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request
        .timeout(cfg.timeout.unwrap_or(default_timeout))
        .send()
        .await;
    match response {
        Err(e) => failed(describe(&e)),
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let mut prefix = Vec::new();
            while prefix.len() < BODY_PREFIX {
                match resp.chunk().await {
                    Ok(Some(chunk)) => prefix
                        .extend_from_slice(&chunk[..chunk.len().min(BODY_PREFIX - prefix.len())]),
                    _ => break,
                }
            }
            SendResult {
                status: Some(status),
                error: (!(200..300).contains(&status)).then(|| format!("answered HTTP {status}")),
                latency: started.elapsed(),
                body_prefix: (!prefix.is_empty())
                    .then(|| String::from_utf8_lossy(&prefix).into_owned()),
                retry_after,
            }
        }
    }
}

/// A reqwest error with its causes, which say what really happened (refused, timed out…).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Checks a callback before it is saved: the target must be allowed, and the URL must answer
/// 200 or 201 to a POST of `{"test": 1}` (sent with the callback's own headers).
pub async fn verify_callback(
    client: &reqwest::Client,
    guard: &TargetGuard,
    cfg: &HttpConfig,
    default_timeout: Duration,
) -> Result<(), String> {
    guard
        .check_url(&cfg.url)
        .await
        .map_err(|e: TargetError| e.to_string())?;
    let mut request = client
        .post(cfg.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(r#"{"test": 1}"#);
    for (name, value) in &cfg.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request
        .timeout(cfg.timeout.unwrap_or(default_timeout))
        .send()
        .await
        .map_err(|e| format!("the URL could not be verified: {}", describe(&e)))?;
    match response.status().as_u16() {
        200 | 201 => Ok(()),
        other => Err(format!(
            "the URL answered HTTP {other} to a POST of {{\"test\": 1}}; it must answer 200 or 201"
        )),
    }
}
