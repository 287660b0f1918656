//! What an SLO's notification may reach, and the secrets it carries.
//!
//! - **Sealed secrets.** A webhook URL (a Slack URL is its own credential)
//!   and a PagerDuty routing key are sealed with AES-256-GCM under the
//!   cluster's at-rest key (as TOTP secrets are, `api::seal`), with
//!   `notify:<tenant>/<app>/<slo>` as associated data, before the SLO is
//!   written; the state keeps only the sealed form and the redacted ones
//!   (`state::redact_url`, `state::redact_key`). The leader's delivery
//!   opens them ([`open_target`]).
//! - **Internal addresses refused.** A target whose host is, or resolves
//!   to, a loopback, private, link-local (cloud metadata included),
//!   shared (CGNAT), unspecified, multicast or otherwise non-public
//!   address is refused ([`internal_address`]) — at `PUT` for an address
//!   or `localhost` written in the URL, and at every delivery for each
//!   address a name resolves to (the connection goes to a checked address,
//!   so a name cannot resolve one way for the check and another for the
//!   connection) — unless the operator allowed the host with `dwcp up
//!   --allow-webhook-host HOST` ([`allow_hosts`]; give every node the same
//!   list). Redirects are never followed.
//!
//! The allowed hosts are the process's: `dwcp up` sets them once at start.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use state::{Name, NotifyTarget, Slo};

use crate::api::seal;

static ALLOWED: OnceLock<Vec<String>> = OnceLock::new();

/// Allows webhooks to `hosts` (names or addresses, compared without case
/// and IPv6 brackets) whatever they resolve to. Only the first call of a
/// process counts; `dwcp up` makes it once at start.
pub fn allow_hosts(hosts: Vec<String>) {
    let hosts = hosts.iter().map(|h| normalize(h)).collect();
    let _ = ALLOWED.set(hosts);
}

/// Whether the operator allowed `host`.
pub fn host_allowed(host: &str) -> bool {
    let host = normalize(host);
    ALLOWED.get().is_some_and(|a| a.contains(&host))
}

fn normalize(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Why `ip` is not a public address a webhook may reach, or `None` when
/// it is one.
pub fn internal_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return internal_v4(v4);
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("the unspecified address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else if first & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if first & 0xfe00 == 0xfc00 {
                // fd00:ec2::254, AWS's IPv6 metadata address, is one.
                Some("a private (unique local) address")
            } else if first & 0xffc0 == 0xfec0 {
                Some("a site-local address")
            } else if v6.segments()[..6] == [0, 0, 0, 0, 0, 0] {
                Some("an IPv4-compatible address")
            } else if first == 0x64 && v6.segments()[1] == 0xff9b {
                Some("a NAT64 address (it reaches IPv4 addresses)")
            } else if first == 0x2002 {
                Some("a 6to4 address (it reaches IPv4 addresses)")
            } else if first == 0x2001 && v6.segments()[1] == 0x0db8 {
                Some("a documentation address")
            } else {
                None
            }
        }
    }
}

fn internal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, _, _] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        // 169.254.169.254 is the cloud metadata service.
        Some("a link-local address (cloud metadata lives there)")
    } else if a == 0 {
        Some("an address of \"this network\" (0.0.0.0/8)")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (carrier-grade NAT) address")
    } else if ip.is_broadcast() || a >= 240 {
        Some("a reserved address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip.is_documentation() || (a == 198 && (b == 18 || b == 19)) || (a == 192 && b == 0) {
        Some("a documentation, benchmarking or protocol address")
    } else {
        None
    }
}

/// The host of a checked http(s) URL (IPv6 without brackets).
pub fn host_of(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split_once(']').map(|(h, _)| h);
    }
    Some(host_port.split_once(':').map_or(host_port, |(h, _)| h))
}

/// Refuses, at `PUT`, a URL whose host is written as an internal address
/// (as a browser would read it: `127.1`, `0x7f.1`, `2130706433` too) or
/// is `localhost`, unless the host is allowed. Names that resolve to one
/// are refused at delivery.
pub fn check_written_host(url: &str) -> Result<(), String> {
    let Some(host) = host_of(url) else {
        return Ok(());
    };
    if host_allowed(host) {
        return Ok(());
    }
    let lower = normalize(host);
    if lower == "localhost" || lower.ends_with(".localhost") {
        return Err(format!(
            "{host} is a loopback name; webhooks go to public addresses unless the operator allows the host (dwcp up --allow-webhook-host)"
        ));
    }
    let ip = lower
        .parse::<IpAddr>()
        .ok()
        .or_else(|| browser_ipv4(&lower).map(IpAddr::V4));
    match ip.and_then(|ip| internal_address(ip).map(|why| (ip, why))) {
        Some((ip, why)) => Err(format!(
            "{ip} is {why}; webhooks go to public addresses unless the operator allows the host (dwcp up --allow-webhook-host)"
        )),
        None => Ok(()),
    }
}

/// An IPv4 address as the WHATWG URL standard reads a host: one to four
/// dot-separated numbers, each decimal, `0x` hex or `0`-led octal, the
/// last filling the remaining bytes (`127.1`, `0x7f.1`, `2130706433`).
fn browser_ipv4(host: &str) -> Option<Ipv4Addr> {
    let host = host.strip_suffix('.').unwrap_or(host);
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let number = |p: &str| -> Option<u64> {
        if let Some(hex) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            return if hex.is_empty() {
                Some(0)
            } else {
                u64::from_str_radix(hex, 16).ok()
            };
        }
        if p.len() > 1 && p.starts_with('0') {
            return u64::from_str_radix(&p[1..], 8).ok();
        }
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    let numbers: Vec<u64> = parts.iter().map(|p| number(p)).collect::<Option<_>>()?;
    let (last, first) = numbers.split_last()?;
    if first.iter().any(|&n| n > 255) || *last >= 1u64 << (8 * (5 - numbers.len())) {
        return None;
    }
    let mut value = *last;
    for (i, n) in first.iter().enumerate() {
        value += n << (8 * (3 - i));
    }
    u32::try_from(value).ok().map(Ipv4Addr::from)
}

/// The secrets of one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSecret {
    pub url: String,
    #[serde(default)]
    pub routing_key: Option<String>,
}

/// Why a target's secrets could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
#[error("notification target: {0}")]
pub struct SecretError(String);

/// The associated data of an SLO's targets.
pub fn context(tenant: &Name, app: &Name, slo: &Name) -> String {
    format!("notify:{tenant}/{app}/{slo}")
}

/// Seals a target's URL and routing key under `key` for `context`.
pub fn seal_target(
    key: &[u8; 32],
    context: &str,
    secret: &TargetSecret,
) -> Result<String, SecretError> {
    let plain = serde_json::to_vec(secret).map_err(|e| SecretError(e.to_string()))?;
    seal::seal(key, context, &plain).map_err(|e| SecretError(e.to_string()))
}

/// Opens what [`seal_target`] sealed.
pub fn open_target(
    key: &[u8; 32],
    context: &str,
    sealed: &str,
) -> Result<TargetSecret, SecretError> {
    let plain = seal::open(key, context, sealed).map_err(|e| SecretError(e.to_string()))?;
    serde_json::from_slice(&plain).map_err(|e| SecretError(e.to_string()))
}

/// `target` (holding its plain URL and routing key) with them sealed
/// under `key` for `context`, and only their redacted forms left in view.
pub fn sealed(
    key: &[u8; 32],
    context: &str,
    target: &NotifyTarget,
) -> Result<NotifyTarget, SecretError> {
    let secret = TargetSecret {
        url: target.url.clone(),
        routing_key: target.routing_key.clone(),
    };
    Ok(NotifyTarget {
        kind: target.kind,
        url: state::redact_url(&secret.url),
        routing_key: secret.routing_key.as_deref().map(state::redact_key),
        sealed: Some(seal_target(key, context, &secret)?),
    })
}

/// The SLOs stored before notification secrets were sealed (a target
/// without `sealed` holds its URL and key in plain), each with every such
/// target sealed, at most [`state::MAX_SEALED_SLOS`]: what the leader
/// writes back in one `Command::SealSloTargets` (and again for the rest,
/// if more). Targets are sealed as they are, internal hosts included:
/// delivery checks the address each time.
pub fn reseal(key: &[u8; 32], state: &state::State) -> Result<Vec<Slo>, SecretError> {
    let mut out = Vec::new();
    for slo in state
        .slos()
        .filter(|s| s.notify.iter().any(|t| t.sealed.is_none()))
        .take(state::MAX_SEALED_SLOS)
    {
        let context = context(&slo.tenant, &slo.app, &slo.name);
        let notify = slo
            .notify
            .iter()
            .map(|t| match t.sealed {
                Some(_) => Ok(t.clone()),
                None => sealed(key, &context, t),
            })
            .collect::<Result<_, _>>()?;
        out.push(Slo {
            notify,
            ..slo.clone()
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_named_and_public_ones_pass() {
        for ip in [
            "127.0.0.1",
            "127.9.9.9",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(internal_address(ip).is_some(), "{ip}");
        }
        for ip in ["1.1.1.1", "93.184.216.34", "2606:4700:4700::1111"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(internal_address(ip), None, "{ip}");
        }
    }

    #[test]
    fn written_internal_hosts_are_refused() {
        for url in [
            "http://127.0.0.1:9093/api",
            "http://127.1/",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1:9093/",
            "http://[::1]:9093/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://localhost:8080/x",
            "http://LOCALHOST./x",
            "https://user:pw@192.168.0.1/x",
        ] {
            let err = check_written_host(url).unwrap_err();
            assert!(err.contains("--allow-webhook-host"), "{url}: {err}");
        }
        for url in [
            "https://hooks.slack.com/services/T/B/X",
            "https://events.pagerduty.com/v2/enqueue",
            "http://1.1.1.1/",
        ] {
            assert_eq!(check_written_host(url), Ok(()), "{url}");
        }
    }

    #[test]
    fn hosts_are_read_as_browsers_read_ipv4() {
        for (host, ip) in [
            ("127.1", "127.0.0.1"),
            ("0x7f.1", "127.0.0.1"),
            ("2130706433", "127.0.0.1"),
            ("0251.0376.0251.0376", "169.254.169.254"),
            ("10.1.2.3", "10.1.2.3"),
        ] {
            assert_eq!(browser_ipv4(host), Some(ip.parse().unwrap()), "{host}");
        }
        for host in [
            "example.com",
            "1.2.3.4.5",
            "256.1.1.1",
            "4294967296",
            "1.2.x",
        ] {
            assert_eq!(browser_ipv4(host), None, "{host}");
        }
    }

    #[test]
    fn hosts_are_read_from_urls() {
        assert_eq!(host_of("http://[::1]:80/x"), Some("::1"));
        assert_eq!(
            host_of("https://u:p@Example.com:8443?q"),
            Some("Example.com")
        );
        assert_eq!(host_of("http://a.example"), Some("a.example"));
    }

    #[test]
    fn target_secrets_open_only_for_their_slo() {
        let key = [9u8; 32];
        let n = |s: &str| Name::new("x", s).unwrap();
        let here = context(&n("acme"), &n("shop"), &n("fast"));
        let secret = TargetSecret {
            url: "https://hooks.slack.com/services/T/B/SECRET".into(),
            routing_key: None,
        };
        let sealed = seal_target(&key, &here, &secret).unwrap();
        assert!(!sealed.contains("SECRET") && !sealed.contains("hooks"));
        assert_eq!(open_target(&key, &here, &sealed).unwrap(), secret);
        let there = context(&n("evil"), &n("shop"), &n("fast"));
        assert!(open_target(&key, &there, &sealed).is_err());
    }
}
