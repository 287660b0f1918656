//! W3C Trace Context (`traceparent`, version `00`) on every request.
//!
//! A request that arrives with a valid `traceparent` keeps its trace id and
//! flags, and the span that sent it becomes the parent of this gateway's
//! span; a request without one (or with one that does not parse) starts a
//! trace. Either way the gateway's span gets an id of its own, and the
//! request goes on with `traceparent: 00-{trace id}-{this span}-{flags}`:
//! to the guest (a WAGI guest sees it as `HTTP_TRACEPARENT`) and to a
//! forwarded hop, whose gateway makes this span the parent of its own.
//! Spans are not exported (no OTLP exporter yet): what this gives is the
//! context, passed on, that a guest or a tracing proxy in front can use.

/// The header's name.
pub const TRACEPARENT: &str = "traceparent";

/// The trace context of one request at this gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// 128 bits, never 0.
    pub trace_id: u128,
    /// The caller's span, when the request came with a context.
    pub parent_id: Option<u64>,
    /// This gateway's span for the request, never 0.
    pub span_id: u64,
    /// The trace flags (bit 0: sampled); `01` for a trace started here.
    pub flags: u8,
}

impl TraceContext {
    /// The context of a request whose `traceparent` header was `incoming`
    /// (`None` when absent); `ids` gives fresh random-looking 64-bit
    /// numbers for the new span id and, when a trace starts here, the
    /// trace id.
    pub fn continue_or_start(incoming: Option<&str>, mut ids: impl FnMut() -> u64) -> TraceContext {
        let mut fresh = || ids().max(1);
        match incoming.and_then(parse) {
            Some((trace_id, parent, flags)) => TraceContext {
                trace_id,
                parent_id: Some(parent),
                span_id: fresh(),
                flags,
            },
            None => TraceContext {
                trace_id: (u128::from(fresh()) << 64) | u128::from(fresh()),
                parent_id: None,
                span_id: fresh(),
                flags: 1,
            },
        }
    }

    /// The `traceparent` value this gateway passes on: its own span as the
    /// parent of the next.
    pub fn header(&self) -> String {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }
}

/// A `traceparent` value's trace id, parent id and flags; `None` when it
/// does not follow the W3C format (lowercase hex, ids not all zero,
/// version `ff` invalid, version `00` exactly 55 characters, a later
/// version at least that with a `-` after the flags).
pub fn parse(value: &str) -> Option<(u128, u64, u8)> {
    let value = value.trim();
    let bytes = value.as_bytes();
    if bytes.len() < 55 || (bytes.len() > 55 && bytes[55] != b'-') {
        return None;
    }
    let field = |from: usize, len: usize| -> Option<&str> {
        let s = value.get(from..from + len)?;
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            .then_some(s)
    };
    let version = field(0, 2)?;
    if version == "ff" || (version == "00" && bytes.len() != 55) {
        return None;
    }
    if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
        return None;
    }
    let trace_id = u128::from_str_radix(field(3, 32)?, 16).ok()?;
    let parent_id = u64::from_str_radix(field(36, 16)?, 16).ok()?;
    let flags = u8::from_str_radix(field(53, 2)?, 16).ok()?;
    (trace_id != 0 && parent_id != 0).then_some((trace_id, parent_id, flags))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn counter() -> impl FnMut() -> u64 {
        let mut n = 0x10;
        move || {
            n += 1;
            n
        }
    }

    #[test]
    fn a_sent_context_keeps_its_trace_and_flags_under_a_new_span() {
        let c = TraceContext::continue_or_start(Some(SENT), counter());
        assert_eq!(c.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(c.parent_id, Some(0x00f067aa0ba902b7));
        assert_eq!(c.flags, 1);
        assert_eq!(
            c.header(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000011-01"
        );
    }

    #[test]
    fn without_a_valid_context_a_trace_starts_here() {
        let not_sampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        assert_eq!(parse(not_sampled).map(|p| p.2), Some(0));
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
            let c = TraceContext::continue_or_start(Some(bad), counter());
            assert_eq!(c.parent_id, None, "{bad:?}");
            assert_eq!(c.trace_id, (0x11 << 64) | 0x12);
            assert_eq!(c.span_id, 0x13);
            assert_eq!(parse(&c.header()), Some((c.trace_id, c.span_id, 1)));
        }
        // A later version may carry more fields after the flags.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more";
        assert!(parse(later).is_some());
    }

    #[test]
    fn ids_are_never_zero() {
        let c = TraceContext::continue_or_start(None, || 0);
        assert_eq!((c.trace_id, c.span_id), ((1 << 64) | 1, 1));
    }
}
