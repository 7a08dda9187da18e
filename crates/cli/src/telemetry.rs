//! Logs, and (when `otlp_endpoint` is set) OpenTelemetry traces over OTLP/HTTP.
//!
//! The libraries make plain `tracing` spans under the target [`TRACE_TARGET`]: one per ingest
//! request (`ingest`) and one per delivery attempt (`delivery.attempt`), each carrying the
//! event ids. Only the OTLP layer listens to that target: with no endpoint, nothing does, and
//! such a span costs the check that finds no one interested.

use anyhow::{Context, Result};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The target of the spans that are exported.
const TRACE_TARGET: &str = "switchboard::trace";

/// Keeps the trace exporter until the process ends; [`Telemetry::shutdown`] sends what is
/// still buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(e) = provider.shutdown() {
                tracing::warn!(error = %e, "the last traces could not be sent");
            }
        }
    }
}

/// Logs to stderr (`text` or `json`, the level from `RUST_LOG`, `info` by default), and
/// traces to `otlp_endpoint` if it is set.
pub fn init(log_format: &str, otlp_endpoint: &str, otlp_protocol: &str) -> Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info"))
        // The exported spans are not log lines.
        .add_directive(format!("{TRACE_TARGET}=off").parse().expect("a directive"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if log_format == "json" {
        fmt.json().with_filter(filter).boxed()
    } else {
        fmt.with_filter(filter).boxed()
    };
    let provider = if otlp_endpoint.is_empty() {
        None
    } else {
        Some(provider(otlp_endpoint, otlp_protocol)?)
    };
    let otlp = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("switchboard"))
            .with_filter(Targets::new().with_target(TRACE_TARGET, LevelFilter::INFO))
    });
    tracing_subscriber::registry().with(fmt).with(otlp).init();
    if provider.is_some() {
        tracing::info!(
            endpoint = otlp_endpoint,
            protocol = otlp_protocol,
            "exporting traces over OTLP"
        );
    }
    Ok(Telemetry { provider })
}

fn provider(endpoint: &str, protocol: &str) -> Result<SdkTracerProvider> {
    let protocol = match protocol {
        "http/json" => Protocol::HttpJson,
        _ => Protocol::HttpBinary,
    };
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(Client::new()?)
        .with_protocol(protocol)
        .with_endpoint(url)
        .build()
        .context("cannot make the OTLP trace exporter")?;
    let resource = Resource::builder()
        .with_service_name("switchboard")
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The exporter's HTTP client: the hub's own reqwest, its requests run on the hub's runtime
/// (the batch exporter sends from a thread of its own, where no runtime is).
#[derive(Debug, Clone)]
struct Client {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl Client {
    fn new() -> Result<Client> {
        Ok(Client {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .context("cannot make the OTLP HTTP client")?,
            runtime: tokio::runtime::Handle::try_current()
                .context("the OTLP exporter starts inside the runtime")?,
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let http = self.http.clone();
        let sent = self.runtime.spawn(async move {
            let (parts, body) = request.into_parts();
            let response = http
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            let mut out = Response::new(body);
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok::<_, reqwest::Error>(out)
        });
        Ok(sent.await??)
    }
}
