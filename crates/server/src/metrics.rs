//! `GET /metrics`: the hub's figures in the Prometheus text format.
//!
//! Counters and histograms are recorded where things happen (ingest here, deliveries in the
//! delivery crate, the writer's transactions in the store) through the `metrics` facade;
//! what is a state rather than an event (the delivery backlog, calls in progress, the
//! database's size) is read from the store when the page is scraped. Labels are bounded:
//! dialect, outcome and status class — never an account, listener or URL.

use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Seconds: from a millisecond to a minute, and the retries' hours.
const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0, 1800.0, 7200.0,
];
/// Jobs in one writer transaction.
const JOBS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// Installs the process's recorder, once; later calls (a second hub in one process) share it.
pub(crate) fn install() {
    HANDLE.get_or_init(|| {
        let built = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_jobs".into()), JOBS))
            .map(|b| b.install_recorder());
        match built {
            Ok(Ok(handle)) => {
                describe();
                Some(handle)
            }
            Ok(Err(e)) | Err(e) => {
                tracing::warn!(error = %e, "metrics are off: no recorder could be installed");
                None
            }
        }
    });
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "switchboard_events_ingested_total",
        "Events sent to /ingest by dialect and outcome: accepted, duplicate; refused counts refused requests (a batch is refused whole)"
    );
    describe_histogram!(
        "switchboard_ingest_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an ingest request (to its commit)"
    );
    describe_counter!(
        "switchboard_deliveries_total",
        "Delivery attempts by outcome (succeeded, failed_attempt, dead) and the receiver's status class; suppressed: rows a rate limit kept from being sent"
    );
    describe_histogram!(
        "switchboard_delivery_latency_seconds",
        Unit::Seconds,
        "From the hub's acceptance of an event to its delivery, retries included"
    );
    describe_gauge!(
        "switchboard_delivery_backlog_rows",
        "Deliveries due now and not yet made"
    );
    describe_gauge!(
        "switchboard_delivery_backlog_oldest_seconds",
        Unit::Seconds,
        "How long the oldest due delivery has been due"
    );
    describe_counter!(
        "switchboard_callbacks_disabled_total",
        "Callbacks switched off by the hub (failing too long, or 410 Gone)"
    );
    describe_gauge!("switchboard_calls_in_progress", "Calls not yet ended");
    describe_counter!(
        "switchboard_call_logs_emitted_total",
        "call.log and call.missed events the hub emitted"
    );
    describe_histogram!(
        "switchboard_writer_transaction_seconds",
        Unit::Seconds,
        "Time of one writer transaction, its jobs and commit"
    );
    describe_histogram!(
        "switchboard_writer_transaction_jobs",
        "Jobs (ingest batches, outcomes, changes) in one writer transaction"
    );
    describe_gauge!(
        "switchboard_database_bytes",
        Unit::Bytes,
        "The database file and its WAL"
    );
}

/// The bounded label a dialect's path segment gets.
pub(crate) fn dialect_label(name: &str) -> &'static str {
    switchboard_model::Dialect::parse(name).map_or("unknown", |d| d.as_str())
}

pub(crate) async fn render(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let Some(Some(handle)) = HANDLE.get() else {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "metrics are off: no recorder could be installed (see the log)",
        ));
    };
    let g = state.store.gauges().await?;
    metrics::gauge!("switchboard_delivery_backlog_rows").set(g.deliveries_due as f64);
    metrics::gauge!("switchboard_delivery_backlog_oldest_seconds")
        .set(g.oldest_due_ms as f64 / 1000.0);
    metrics::gauge!("switchboard_calls_in_progress").set(g.calls_in_progress as f64);
    metrics::gauge!("switchboard_database_bytes").set(g.database_bytes as f64);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    ))
}
