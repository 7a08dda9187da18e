//! The hub's configuration: one documented file of defaults embedded in the binary, layered
//! with an optional file and `SWITCHBOARD_*` environment variables, validated once at start.

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use switchboard_delivery::target::Cidr;
use switchboard_delivery::{
    parse_duration, DeliverySettings, RetrySchedule, SmtpSettings, TargetGuard,
};

/// The commented default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("../config.default.toml");

/// Everything the hub reads from its configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// A PostgreSQL URL; `None`: SQLite in `data_dir`.
    #[serde(deserialize_with = "optional_text")]
    pub store: Option<String>,
    #[serde(deserialize_with = "duration")]
    pub delivery_lease: Duration,
    /// On PostgreSQL, this node's name; `None`: the one kept in `data_dir/node-id`.
    #[serde(deserialize_with = "optional_text")]
    pub node_id: Option<String>,
    #[serde(deserialize_with = "optional_text")]
    pub admin_token: Option<String>,
    #[serde(deserialize_with = "whole_number")]
    pub max_body: usize,
    #[serde(deserialize_with = "lenient_bool")]
    pub allow_private_targets: bool,
    #[serde(deserialize_with = "cidr_list")]
    pub allowed_cidrs: Vec<String>,
    pub retry_schedule: String,
    pub retry_jitter: f64,
    #[serde(deserialize_with = "duration")]
    pub delivery_timeout: Duration,
    #[serde(deserialize_with = "whole_number")]
    pub delivery_per_callback: usize,
    #[serde(deserialize_with = "whole_number")]
    pub delivery_max_in_flight: usize,
    #[serde(deserialize_with = "duration")]
    pub shutdown_grace: Duration,
    #[serde(deserialize_with = "duration")]
    pub disable_after: Duration,
    #[serde(deserialize_with = "duration")]
    pub attempt_retention: Duration,
    #[serde(deserialize_with = "duration")]
    pub event_retention: Duration,
    #[serde(deserialize_with = "duration")]
    pub call_retention: Duration,
    #[serde(deserialize_with = "duration")]
    pub delivery_retention: Duration,
    #[serde(deserialize_with = "duration")]
    pub prune_every: Duration,
    /// Empty: as long as `attempt_retention`.
    #[serde(deserialize_with = "optional_duration")]
    pub delivery_wait_limit: Option<Duration>,
    pub smtp_host: String,
    #[serde(deserialize_with = "whole_number")]
    pub smtp_port: usize,
    pub smtp_from: String,
    pub public_url: String,
    pub google_analytics_url: String,
    #[serde(deserialize_with = "duration")]
    pub request_timeout: Duration,
    #[serde(deserialize_with = "duration")]
    pub finalize_grace: Duration,
    #[serde(deserialize_with = "duration")]
    pub call_idle_timeout: Duration,
    pub active_call_cache: usize,
    pub max_events_per_call: usize,
    pub max_connections: usize,
    #[serde(deserialize_with = "duration")]
    pub header_timeout: Duration,
    /// 0: no limit.
    #[serde(deserialize_with = "optional_pages")]
    pub max_db_pages: Option<u64>,
    pub default_tz: String,
    #[serde(deserialize_with = "duration")]
    pub max_clock_skew: Duration,
    pub log_format: String,
    /// Where to send traces over OTLP/HTTP (empty: nowhere).
    pub otlp_endpoint: String,
    /// `http/protobuf` or `http/json`.
    pub otlp_protocol: String,
}

/// A configuration that cannot be used, with the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

fn optional_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    Ok((!s.trim().is_empty()).then_some(s))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Loose {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<String>),
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    use serde::de::Error;
    match Loose::deserialize(d)? {
        Loose::Bool(b) => Ok(b),
        Loose::Int(i) => Ok(i != 0),
        Loose::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" | "" => Ok(false),
            other => Err(D::Error::custom(format!("{other:?} is not true or false"))),
        },
        _ => Err(D::Error::custom("expected true or false")),
    }
}

fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    use serde::de::Error;
    match Loose::deserialize(d)? {
        Loose::Int(i) if i >= 0 => Ok(i as usize),
        Loose::Text(s) => s
            .trim()
            .parse()
            .map_err(|_| D::Error::custom(format!("{s:?} is not a whole number"))),
        _ => Err(D::Error::custom("expected a whole number")),
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    use serde::de::Error;
    match Loose::deserialize(d)? {
        Loose::Int(i) if i >= 0 => Ok(Duration::from_secs(i as u64)),
        Loose::Float(f) if f >= 0.0 => Ok(Duration::from_secs_f64(f)),
        Loose::Text(s) => parse_duration(&s).map_err(D::Error::custom),
        _ => Err(D::Error::custom("expected a duration such as 5s")),
    }
}

fn optional_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    use serde::de::Error;
    match Loose::deserialize(d)? {
        Loose::Text(s) if s.trim().is_empty() => Ok(None),
        Loose::Int(i) if i >= 0 => Ok(Some(Duration::from_secs(i as u64))),
        Loose::Float(f) if f >= 0.0 => Ok(Some(Duration::from_secs_f64(f))),
        Loose::Text(s) => parse_duration(&s).map(Some).map_err(D::Error::custom),
        _ => Err(D::Error::custom(
            "expected a duration such as 5s, or nothing",
        )),
    }
}

fn optional_pages<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let pages = whole_number(d)? as u64;
    Ok((pages > 0).then_some(pages))
}

fn cidr_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    use serde::de::Error;
    match Loose::deserialize(d)? {
        Loose::List(items) => Ok(items),
        Loose::Text(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()),
        _ => Err(D::Error::custom("expected a list of CIDRs")),
    }
}

impl Config {
    /// Defaults, then `file`, then the environment.
    pub fn figment(file: Option<&Path>) -> Figment {
        let mut figment = Figment::from(Toml::string(DEFAULT_CONFIG));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment.merge(Env::prefixed("SWITCHBOARD_").ignore(&["CONFIG", "URL"]))
    }

    /// Reads and validates a figment.
    pub fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = figment.extract().map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Defaults only, with the data dir given: handy in tests and tools.
    pub fn defaults(data_dir: &Path) -> Config {
        Config::from_figment(
            Figment::from(Toml::string(DEFAULT_CONFIG)).merge(("data_dir", data_dir)),
        )
        .expect("the embedded defaults are valid")
    }

    /// How long each kind of row is kept.
    pub fn retention(&self) -> switchboard_store::Retention {
        switchboard_store::Retention {
            events: self.event_retention,
            calls: self.call_retention,
            deliveries: self.delivery_retention,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.delivery_lease < Duration::from_secs(1) {
            return Err(ConfigError("delivery_lease: must be at least 1s".into()));
        }
        if let Some(url) = &self.store {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError(
                    "store: expected a PostgreSQL URL (postgres://user:password@host:5432/database), or nothing for SQLite in data_dir".into(),
                ));
            }
        }
        self.retry_schedule()?;
        self.guard()?;
        if !(0.0..1.0).contains(&self.retry_jitter) {
            return Err(ConfigError(
                "retry_jitter: must be at least 0 and below 1".into(),
            ));
        }
        if self.prune_every.is_zero() {
            return Err(ConfigError("prune_every: must be positive".into()));
        }
        if self.header_timeout.is_zero() {
            return Err(ConfigError("header_timeout: must be positive".into()));
        }
        if self.max_connections == 0 {
            return Err(ConfigError("max_connections: must be positive".into()));
        }
        if self.max_events_per_call == 0 {
            return Err(ConfigError("max_events_per_call: must be positive".into()));
        }
        if self.max_body == 0 {
            return Err(ConfigError("max_body: must be positive".into()));
        }
        if jiff::tz::TimeZone::get(&self.default_tz).is_err() {
            return Err(ConfigError(format!(
                "default_tz: unknown time zone {:?}",
                self.default_tz
            )));
        }
        if self.smtp_port == 0 || self.smtp_port > 65535 {
            return Err(ConfigError("smtp_port: must be a port number".into()));
        }
        if !self.smtp_host.trim().is_empty()
            && !switchboard_delivery::email::is_address(&self.smtp_from)
        {
            return Err(ConfigError(format!(
                "smtp_from: {:?} is not an e-mail address",
                self.smtp_from
            )));
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(ConfigError("log_format: use \"text\" or \"json\"".into()));
        }
        if !matches!(self.otlp_protocol.as_str(), "http/protobuf" | "http/json") {
            return Err(ConfigError(
                "otlp_protocol: use \"http/protobuf\" or \"http/json\"".into(),
            ));
        }
        let http = ["http://", "https://"]
            .iter()
            .any(|scheme| self.otlp_endpoint.starts_with(scheme));
        if !self.otlp_endpoint.is_empty() && !http {
            return Err(ConfigError(format!(
                "otlp_endpoint: expected an http:// or https:// URL (the collector's OTLP/HTTP \
                 port, e.g. http://127.0.0.1:4318), got {:?}",
                self.otlp_endpoint
            )));
        }
        Ok(())
    }

    fn retry_schedule(&self) -> Result<RetrySchedule, ConfigError> {
        let mut schedule = RetrySchedule::parse(&self.retry_schedule)
            .map_err(|e| ConfigError(format!("retry_schedule: {e}")))?;
        schedule.jitter = self.retry_jitter;
        Ok(schedule)
    }

    fn guard(&self) -> Result<TargetGuard, ConfigError> {
        let allowed = self
            .allowed_cidrs
            .iter()
            .map(|c| Cidr::parse(c).map_err(|e| ConfigError(format!("allowed_cidrs: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TargetGuard {
            allow_private: self.allow_private_targets,
            allowed,
        })
    }

    /// The delivery settings this configuration describes.
    pub fn delivery(&self) -> DeliverySettings {
        DeliverySettings {
            schedule: self.retry_schedule().expect("validated"),
            default_timeout: self.delivery_timeout,
            per_callback: self.delivery_per_callback.max(1),
            max_in_flight: self.delivery_max_in_flight.max(1),
            guard: self.guard().expect("validated"),
            disable_after: self.disable_after,
            attempt_retention: self.attempt_retention,
            wait_limit: self.delivery_wait_limit.unwrap_or(self.attempt_retention),
            google_analytics_url: self.google_analytics_url.clone(),
            smtp: (!self.smtp_host.trim().is_empty()).then(|| SmtpSettings {
                host: self.smtp_host.trim().to_string(),
                port: self.smtp_port as u16,
                from: self.smtp_from.clone(),
                public_url: self.public_base_url(),
            }),
        }
    }

    /// The base URL for links the hub hands out.
    pub fn public_base_url(&self) -> String {
        if self.public_url.trim().is_empty() {
            format!("http://{}", self.listen)
        } else {
            self.public_url.trim().trim_end_matches('/').to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented() {
        let c = Config::defaults(Path::new("/tmp/x"));
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.max_body, 1 << 20);
        assert!(c.admin_token.is_none());
        assert_eq!(c.delivery().schedule.attempts(), 8);
    }

    #[test]
    fn bad_values_name_their_key() {
        let f =
            Figment::from(Toml::string(DEFAULT_CONFIG)).merge(("retry_schedule", "5 fortnights"));
        let err = Config::from_figment(f).unwrap_err().to_string();
        assert!(err.contains("retry_schedule"), "{err}");
        let f = Figment::from(Toml::string(DEFAULT_CONFIG)).merge(("default_tz", "Mars/Olympus"));
        assert!(Config::from_figment(f)
            .unwrap_err()
            .to_string()
            .contains("default_tz"));
    }
}
