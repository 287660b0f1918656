//! Where notifications go and how often a failed one is tried again: a
//! webhook is a format and an http(s) URL, checked before it is stored, and
//! delivery follows one fixed schedule.
//!
//! Retry schedule ([`backoff`]): the first attempt goes at once; after each
//! failure the next waits twice as long as the one before, from 1 s up to a
//! cap of 5 minutes — 1, 2, 4, … 256 s, then 300 s — and after
//! [`MAX_ATTEMPTS`] attempts (some 18.5 minutes in) the notification is
//! given up. No jitter: the schedule is the same on every node and in every
//! test; notifications of one node are few, so they do not stampede a
//! receiver.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Attempts before a notification is given up.
pub const MAX_ATTEMPTS: u32 = 12;
const FIRST_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(300);

/// The body a webhook receives (see [`super::notify`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookKind {
    Alertmanager,
    PagerDuty,
    Slack,
}

/// A notification target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub kind: WebhookKind,
    pub url: String,
}

/// Why a [`Webhook`] is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error(
        "url: {url:?} is not allowed: {reason}; an http or https URL with a host, e.g. https://hooks.example.com/alerts"
    )]
    Url { url: String, reason: &'static str },
}

impl WebhookError {
    /// The field the error is about, for the API's `{"error": {"field"}}`.
    pub fn field(&self) -> &'static str {
        "url"
    }
}

impl Webhook {
    /// Refuses a URL that does not parse as an absolute http or https URL
    /// with a host (and, if given, a port from 1 to 65535).
    pub fn check(&self) -> Result<(), WebhookError> {
        check_url(&self.url).map_err(|reason| WebhookError::Url {
            url: self.url.clone(),
            reason,
        })
    }
}

/// The URL grammar of RFC 3986 narrowed to what a webhook needs; the
/// state machine checks stored SLOs' targets with the same function.
fn check_url(url: &str) -> Result<(), &'static str> {
    state::check_url(url)
}

/// How long to wait before attempt number `attempt` (0 is the first, sent
/// at once), or `None` once [`MAX_ATTEMPTS`] have been made.
pub fn backoff(attempt: u32) -> Option<Duration> {
    match attempt {
        0 => Some(Duration::ZERO),
        n if n < MAX_ATTEMPTS => {
            // 2^(n-1) s, computed saturating so no attempt count overflows.
            let doubled = FIRST_DELAY.saturating_mul(1u32.checked_shl(n - 1).unwrap_or(u32::MAX));
            Some(doubled.min(MAX_DELAY))
        }
        _ => None,
    }
}

/// Whether an HTTP answer is worth retrying: the receiver was unavailable
/// or asked to slow down (429, 5xx). Another 4xx means it refused this
/// body, and the same body would be refused again.
pub fn retryable(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(url: &str) -> Webhook {
        Webhook {
            kind: WebhookKind::Slack,
            url: url.into(),
        }
    }

    #[test]
    fn http_and_https_urls_with_a_host_are_accepted() {
        for url in [
            "https://hooks.slack.com/services/T000/B000/XXXX",
            "http://127.0.0.1:9093/api/v2/alerts",
            "https://events.pagerduty.com/v2/enqueue",
            "HTTPS://Example.COM",
            "http://[::1]:8080/hook?x=1#y",
            "https://user:secret@alerts.example.com:443/in",
            "http://localhost",
        ] {
            assert_eq!(hook(url).check(), Ok(()), "{url}");
        }
    }

    #[test]
    fn urls_that_do_not_parse_are_refused_naming_the_field() {
        for url in [
            "",
            "not a url",
            "hooks.example.com/alerts",
            "ftp://example.com/x",
            "javascript://x",
            "http://",
            "http:///path",
            "https://exa mple.com",
            "https://example.com:99999",
            "https://example.com:0",
            "https://example.com:+80",
            "https://example.com:http",
            "http://[::1",
            "http://[zz]/",
            "http://exa<mple>.com/",
            "https://bücher.example",
        ] {
            let err = hook(url).check().unwrap_err();
            assert_eq!(err.field(), "url");
            let message = err.to_string();
            assert!(message.starts_with("url: "), "{message}");
            assert!(
                message.contains("an http or https URL with a host"),
                "{message}"
            );
        }
        let err = hook("ftp://example.com").check().unwrap_err();
        assert_eq!(
            err,
            WebhookError::Url {
                url: "ftp://example.com".into(),
                reason: "only http and https are allowed"
            }
        );
    }

    #[test]
    fn backoff_doubles_from_one_second_to_five_minutes_then_gives_up() {
        let schedule: Vec<Option<u64>> = (0..=MAX_ATTEMPTS + 1)
            .map(|a| backoff(a).map(|d| d.as_secs()))
            .collect();
        assert_eq!(
            schedule,
            [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
                .into_iter()
                .map(Some)
                .chain([None, None])
                .collect::<Vec<_>>()
        );
        let total: u64 = (0..MAX_ATTEMPTS)
            .filter_map(backoff)
            .map(|d| d.as_secs())
            .sum();
        assert_eq!(total, 1111); // some 18.5 minutes from the first attempt to the last
        assert_eq!(backoff(u32::MAX), None);
    }

    #[test]
    fn only_unavailability_is_retried() {
        assert!(retryable(429) && retryable(500) && retryable(503));
        assert!(!retryable(200) && !retryable(400) && !retryable(404) && !retryable(413));
    }

    #[test]
    fn kinds_have_lowercase_names() {
        let w: Webhook =
            serde_json::from_str(r#"{"kind":"pagerduty","url":"https://e.example"}"#).unwrap();
        assert_eq!(w.kind, WebhookKind::PagerDuty);
        assert_eq!(
            serde_json::to_value(WebhookKind::Alertmanager).unwrap(),
            "alertmanager"
        );
    }
}
