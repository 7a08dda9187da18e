//! E-mail: callbacks in mode `EMAIL`, and notifications to a profile's `support_email`.
//!
//! A small SMTP client (EHLO, MAIL, RCPT, DATA; no TLS or AUTH yet) talks to the server set
//! in the configuration, normally a relay on the same host or network.

use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Where and as whom mail is sent.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub from: String,
    /// The hub's public base URL, for unsubscribe links.
    pub public_url: String,
}

/// A callback's `config` for mode `EMAIL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailConfig {
    pub email: String,
    /// `true` for the human-readable `text` form, `false` for `json`.
    pub text: bool,
}

/// Plausible enough to send to: something@domain.tld, no spaces or angle brackets.
pub fn is_address(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !s
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';'))
}

impl EmailConfig {
    /// Parses `config`; errors are `(path under config, message)`.
    pub fn from_json(config: &Value) -> Result<EmailConfig, (String, String)> {
        let email = match config.get("email") {
            Some(Value::String(e)) if is_address(e) => e.clone(),
            Some(_) => return Err(("email".into(), "expected an e-mail address".into())),
            None => return Err(("email".into(), "missing: this field is required".into())),
        };
        let text = match config.get("mode") {
            None | Some(Value::Null) => false,
            Some(Value::String(m)) if m == "json" => false,
            Some(Value::String(m)) if m == "text" => true,
            Some(_) => return Err(("mode".into(), "expected \"json\" or \"text\"".into())),
        };
        Ok(EmailConfig { email, text })
    }
}

fn humanize(key: &str) -> String {
    let words = key.replace(['_', '-'], " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    humanize(k)
                } else {
                    format!("{prefix} / {}", humanize(k))
                };
                flatten(&key, v, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix} / {}", i + 1), v, out);
            }
        }
        Value::Null => out.push(format!("{prefix}: -")),
        Value::String(s) => out.push(format!("{prefix}: {s}")),
        other => out.push(format!("{prefix}: {other}")),
    }
}

/// The human-readable form of an event: one `Key / Sub key: value` line per field.
pub fn text_form(event: &Value) -> String {
    let mut lines = Vec::new();
    flatten("", event, &mut lines);
    lines.join("\n")
}

async fn reply(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    expect: u8,
) -> Result<(), String> {
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .await
            .map_err(|e| format!("SMTP read failed: {e}"))?;
        if n == 0 {
            return Err("the SMTP server closed the connection".into());
        }
        let bytes = line.as_bytes();
        if bytes.len() < 4 {
            return Err(format!("unexpected SMTP reply {line:?}"));
        }
        if bytes[3] == b'-' {
            continue;
        }
        if bytes[0] != expect {
            return Err(format!("the SMTP server answered {}", line.trim_end()));
        }
        return Ok(());
    }
}

/// Sends one plain-text message.
pub async fn send_mail(
    smtp: &SmtpSettings,
    to: &str,
    subject: &str,
    body: &str,
    timeout: Duration,
) -> Result<(), String> {
    if !is_address(to) {
        return Err(format!("{to:?} is not an e-mail address"));
    }
    tokio::time::timeout(timeout, async {
        let stream = TcpStream::connect((smtp.host.as_str(), smtp.port))
            .await
            .map_err(|e| format!("cannot reach the SMTP server {}:{}: {e}", smtp.host, smtp.port))?;
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        reply(&mut reader, b'2').await?;
        for (command, expect) in [
            ("EHLO switchboard\r\n".to_string(), b'2'),
            (format!("MAIL FROM:<{}>\r\n", smtp.from), b'2'),
            (format!("RCPT TO:<{to}>\r\n"), b'2'),
            ("DATA\r\n".to_string(), b'3'),
        ] {
            write.write_all(command.as_bytes()).await.map_err(|e| e.to_string())?;
            reply(&mut reader, expect).await?;
        }
        let date = jiff::Zoned::now().strftime("%a, %d %b %Y %H:%M:%S %z").to_string();
        let mut message = format!(
            "From: {}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{}@switchboard>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
            smtp.from,
            uuid::Uuid::now_v7()
        );
        for line in body.lines() {
            // Dot-stuffing: a line starting with "." gets another.
            if line.starts_with('.') {
                message.push('.');
            }
            message.push_str(line);
            message.push_str("\r\n");
        }
        message.push_str(".\r\n");
        write.write_all(message.as_bytes()).await.map_err(|e| e.to_string())?;
        reply(&mut reader, b'2').await?;
        let _ = write.write_all(b"QUIT\r\n").await;
        Ok(())
    })
    .await
    .map_err(|_| "the SMTP server did not answer in time".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_lists_key_paths() {
        let v = serde_json::json!({"data_type": "call", "data": {"event_leg": {"from": {"id": "+1555"}}}, "tags": ["a", "b"]});
        let text = text_form(&v);
        assert!(text.contains("Data type: call"));
        assert!(text.contains("Data / Event leg / From / Id: +1555"));
        assert!(text.contains("Tags / 2: b"));
    }

    #[test]
    fn addresses() {
        assert!(is_address("ops@example.org"));
        assert!(!is_address("ops@localhost"));
        assert!(!is_address("a b@example.org"));
    }
}
