//! Standard Webhooks signatures: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`, keyed with
//! the callback's secret (`whsec_` + base64 key).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A new random signing secret in the Standard Webhooks form.
pub fn new_secret() -> String {
    let key: [u8; 24] = rand::random();
    format!("whsec_{}", STANDARD.encode(key))
}

/// The `webhook-signature` value for one secret, or `None` for a malformed secret.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// How long a rotated-out secret keeps signing beside the new one.
pub const ROTATION_OVERLAP_MS: i64 = 24 * 3_600_000;

/// The secrets a callback document signs with now: `secret`, and `previous_secret` while
/// `previous_secret_until` (ms) has not passed.
pub fn active_secrets(callback: &serde_json::Value, now_ms: i64) -> Vec<&str> {
    let mut out: Vec<&str> = callback
        .get("secret")
        .and_then(|s| s.as_str())
        .into_iter()
        .collect();
    let until = callback
        .get("previous_secret_until")
        .and_then(|u| u.as_i64())
        .unwrap_or(0);
    if until > now_ms {
        out.extend(callback.get("previous_secret").and_then(|s| s.as_str()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // The example of the Standard Webhooks specification.
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }
}
