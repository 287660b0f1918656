//! Unix milliseconds as RFC 3339 timestamps in UTC: the one formatter is
//! `cluster::rfc3339` (app log lines carry it too).

pub use cluster::rfc3339::format_ms;
