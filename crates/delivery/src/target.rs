//! Where the hub may send requests: the guard against server-side request forgery.
//!
//! A callback URL must not reach the hub's own machine or network, or a cloud metadata
//! service. The guard is applied when a URL is accepted and again inside the HTTP client's
//! resolver at send time, so a name that later resolves elsewhere (DNS rebinding) is refused
//! too. `allow_private` or an allow-list of CIDRs opens it for private deployments and tests.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("{0}")]
    BadUrl(String),
    #[error("{host} resolves to {addr}, a {rule} address; callbacks may not target it (allow it with --allow-private-targets or allowed_cidrs)")]
    Refused {
        host: String,
        addr: IpAddr,
        rule: &'static str,
    },
    #[error("cannot resolve {host}: {reason}")]
    Unresolvable { host: String, reason: String },
}

/// An IPv4 or IPv6 network, e.g. `10.1.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = text.split_once('/').unwrap_or((text, ""));
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not a CIDR such as 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            max
        } else {
            prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: bad prefix length"))?
        };
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn v4_rule(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    Some(match o {
        [0, ..] => "unspecified (0.0.0.0/8)",
        [127, ..] => "loopback",
        [10, ..] => "private (10.0.0.0/8)",
        [172, b, ..] if (16..32).contains(&b) => "private (172.16.0.0/12)",
        [192, 168, ..] => "private (192.168.0.0/16)",
        [169, 254, 169, 254] => "cloud metadata",
        [169, 254, ..] => "link-local",
        [100, b, ..] if (64..128).contains(&b) => "carrier-grade NAT (100.64.0.0/10)",
        [192, 0, 0, _] => "reserved (192.0.0.0/24)",
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => "documentation",
        [198, 18 | 19, ..] => "benchmarking (198.18.0.0/15)",
        [a, ..] if (224..240).contains(&a) => "multicast",
        [a, ..] if a >= 240 => "reserved (240.0.0.0/4)",
        _ => return None,
    })
}

/// The IPv4 address in two 16-bit segments.
fn v4_of(high: u16, low: u16) -> Ipv4Addr {
    Ipv4Addr::new((high >> 8) as u8, high as u8, (low >> 8) as u8, low as u8)
}

fn v6_rule(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_rule(v4);
    }
    let s = ip.segments();
    // Forms that carry an IPv4 address inside: what it names is what they reach.
    Some(match s {
        [0, 0, 0, 0, 0, 0, 0, 0] => "unspecified",
        [0, 0, 0, 0, 0, 0, 0, 1] => "loopback",
        // IPv4-compatible (::a.b.c.d, deprecated) and IPv4-translated (::ffff:0:a.b.c.d).
        [0, 0, 0, 0, 0, 0, ..] | [0, 0, 0, 0, 0xffff, 0, ..] => {
            return v4_rule(v4_of(s[6], s[7])).or(Some("IPv4-compatible (deprecated ::/96)"));
        }
        // NAT64, the well-known prefix and the local-use one.
        [0x64, 0xff9b, ..] => {
            return v4_rule(v4_of(s[6], s[7])).or(Some("NAT64"));
        }
        // 6to4: 2002:AABB:CCDD::/48 reaches AA.BB.CC.DD.
        [0x2002, ..] => return v4_rule(v4_of(s[1], s[2])),
        // Teredo tunnels (2001:0::/32) reach a client behind a NAT: never a callback.
        [0x2001, 0, ..] => "Teredo tunnel (2001::/32)",
        [0x0100, 0, 0, 0, ..] => "discard-only (100::/64)",
        [a, ..] if a & 0xffc0 == 0xfec0 => "site-local (fec0::/10, deprecated)",
        [a, ..] if a & 0xfe00 == 0xfc00 => "unique local (fc00::/7)",
        [a, ..] if a & 0xffc0 == 0xfe80 => "link-local",
        [a, ..] if a & 0xff00 == 0xff00 => "multicast",
        [0x2001, 0xdb8, ..] => "documentation",
        [0xfd00, 0xec2, ..] => "cloud metadata",
        _ => return None,
    })
}

/// The rule that refuses `ip`, if any.
pub fn refusing_rule(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_rule(v4),
        IpAddr::V6(v6) => v6_rule(v6),
    }
}

/// Decides which addresses the hub may send to.
#[derive(Debug, Clone, Default)]
pub struct TargetGuard {
    pub allow_private: bool,
    pub allowed: Vec<Cidr>,
}

impl TargetGuard {
    /// Checks one address.
    pub fn check_addr(&self, host: &str, addr: IpAddr) -> Result<(), TargetError> {
        if self.allow_private || self.allowed.iter().any(|c| c.contains(addr)) {
            return Ok(());
        }
        match refusing_rule(addr) {
            Some(rule) => Err(TargetError::Refused {
                host: host.to_string(),
                addr,
                rule,
            }),
            None => Ok(()),
        }
    }

    /// Checks a URL: its scheme, and every address its host resolves to now.
    pub async fn check_url(&self, url: &reqwest::Url) -> Result<(), TargetError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(TargetError::BadUrl(format!(
                "scheme {:?} is not supported: use http or https",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .ok_or_else(|| TargetError::BadUrl("the URL has no host".into()))?;
        let port = url.port_or_known_default().unwrap_or(80);
        for addr in self.resolve(host, port).await? {
            self.check_addr(host, addr.ip())?;
        }
        Ok(())
    }

    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, TargetError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| TargetError::Unresolvable {
                host: host.to_string(),
                reason: e.to_string(),
            })?
            .collect();
        if addrs.is_empty() {
            return Err(TargetError::Unresolvable {
                host: host.to_string(),
                reason: "no addresses".into(),
            });
        }
        Ok(addrs)
    }

    /// The resolver the HTTP client uses: it refuses names that resolve to guarded addresses.
    pub fn resolver(self: &Arc<Self>) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver {
            guard: self.clone(),
        })
    }
}

/// A DNS resolver for reqwest that applies the guard to every address it returns.
pub struct GuardedResolver {
    guard: Arc<TargetGuard>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_string();
        let fut: Pin<Box<dyn Future<Output = _> + Send>> = Box::pin(async move {
            let addrs = guard.resolve(&host, 0).await?;
            for a in &addrs {
                guard.check_addr(&host, a.ip())?;
            }
            let iter: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(iter)
        });
        fut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        for (ip, refused) in [
            ("127.0.0.1", true),
            ("10.2.3.4", true),
            ("172.20.0.1", true),
            ("172.32.0.1", false),
            ("192.168.1.1", true),
            ("169.254.169.254", true),
            ("100.100.0.1", true),
            ("224.0.0.1", true),
            ("8.8.8.8", false),
            ("::1", true),
            ("fd00::1", true),
            ("fe80::1", true),
            ("::ffff:127.0.0.1", true),
            ("2606:4700::1", false),
            // Forms that embed an IPv4 address: judged by it.
            ("::127.0.0.1", true),
            ("::ffff:0:7f00:1", true),
            ("2002:7f00:1::1", true),
            ("2002:a9fe:a9fe::1", true),
            ("2002:0808:0808::1", false),
            ("2001:0::1", true),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", true),
            ("fec0::1", true),
            ("100::1", true),
            ("64:ff9b::7f00:1", true),
            ("64:ff9b::a00:1", true),
            ("64:ff9b:1::808:808", true),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(refusing_rule(ip).is_some(), refused, "{ip}");
        }
    }

    #[test]
    fn allow_list() {
        let guard = TargetGuard {
            allow_private: false,
            allowed: vec![Cidr::parse("10.1.0.0/16").unwrap()],
        };
        assert!(guard.check_addr("h", "10.1.2.3".parse().unwrap()).is_ok());
        assert!(guard.check_addr("h", "10.2.2.3".parse().unwrap()).is_err());
    }
}
