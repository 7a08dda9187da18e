//! Delivery: the outbox workers that send matched events to their callbacks.
//!
//! Rows are claimed from the store's outbox, encoded in the listener's dialect, sent with the
//! callback's method, headers and timeout, and recorded; failures are retried on a schedule
//! with jitter until it runs out and the delivery is dead. Every outbound HTTP request —
//! deliveries and the `{"test": 1}` verification alike — goes through [`target::TargetGuard`],
//! which refuses loopback, private and metadata addresses unless configured otherwise.

pub mod application;
pub mod email;
pub mod http;
pub mod schedule;
pub mod signing;
pub mod target;
mod worker;

/// The target of the spans exported as traces (one per delivery attempt here, one per ingest
/// request in the server): the binary's OTLP layer listens to it, its log lines do not.
pub const TRACE_TARGET: &str = "switchboard::trace";

pub use application::GoogleAnalytics;
pub use email::{EmailConfig, SmtpSettings};
pub use http::{verify_callback, HttpConfig, HttpConfigError};
pub use schedule::{parse_duration, RetrySchedule};
pub use target::{TargetError, TargetGuard};
pub use worker::{spawn, DeliveryHandle, DeliverySettings};
