//! The SLO and alerting engine of the ops center, as pure functions: no
//! I/O, no clock, no randomness. Time is always an argument (Unix
//! milliseconds), so a test drives it with an injected clock and the
//! running node with the wall clock, through the same code.
//!
//! - [`objective`]: what an app promises (availability, latency) and its
//!   checks.
//! - [`series`]: a bounded history of one SLI's cumulative counters, and the
//!   share of bad events in a window.
//! - [`burn`]: burn rates, the SRE workbook's multiwindow, multi-burn-rate
//!   alert rules, and the error budget left.
//! - [`notify`]: the alert and its payloads for Alertmanager-style
//!   webhooks, PagerDuty Events API v2 and Slack-compatible webhooks.
//! - [`webhook`]: where notifications go (checked URLs) and the retry
//!   schedule.
//! - [`rfc3339`]: Unix milliseconds as RFC 3339 UTC timestamps.
//! - [`eval`]: the evaluator's rounds: SLOs and node reports in; statuses,
//!   incident commands and notifications out.
//! - [`clock`]: the evaluator's injectable clock (the wall clock, or a
//!   manual one for tests).

pub mod burn;
pub mod clock;
pub mod eval;
pub mod notify;
pub mod objective;
pub mod rfc3339;
pub mod series;
pub mod webhook;

pub use burn::{Firing, RULES, Rule, Severity, budget_remaining, burn_rate, evaluate};
pub use clock::{Clock, ManualClock, SystemClock};
pub use eval::{Evaluator, Notification, Round};
pub use notify::Alert;
pub use objective::{LatencyObjective, Slo, SloError, SloKind};
pub use series::Series;
pub use webhook::{Webhook, WebhookError, WebhookKind, backoff};
