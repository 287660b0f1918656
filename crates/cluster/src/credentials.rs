//! What DWCP's own credentials look like on the wire, so that the API sets
//! them and the gateway keeps them from guests with one definition.
//!
//! - The dashboard's session cookie is [`SESSION_COOKIE`], a `__Host-`
//!   cookie: `Secure`, `Path=/` and no `Domain`, so a browser keeps it to
//!   the one host that set it and no other site (nor a page over plain
//!   HTTP on another host) can set one of that name.
//! - Tokens are `dwcp-<kind>.<64 hex digits>[.<64 hex digits>]`
//!   ([`crate::token`]); [`carries_token`] finds one in a header value.
//!
//! Pure functions over text; no I/O.

/// The name of the dashboard's session cookie.
pub const SESSION_COOKIE: &str = "__Host-dwcp_session";

/// The name a cookie has without a `__Host-` or `__Secure-` prefix
/// (browsers match the prefixes without regard to case).
fn unprefixed(name: &str) -> &str {
    for prefix in ["__host-", "__secure-"] {
        if starts_with_ignore_case(name, prefix) {
            // The prefix is ASCII, so its end is a character boundary.
            return &name[prefix.len()..];
        }
    }
    name
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// Whether a cookie of this name is one of DWCP's credentials
/// (`dwcp_session`, with or without a prefix, or any `dwcp_…`): the
/// gateway removes such cookies from requests before a guest sees them.
pub fn is_credential_cookie(name: &str) -> bool {
    starts_with_ignore_case(unprefixed(name.trim()), "dwcp_")
}

/// Whether a cookie of this name is DWCP's own (a credential, or the
/// gateway's `dwcp-version`): a guest may not set it.
pub fn is_dwcp_cookie(name: &str) -> bool {
    starts_with_ignore_case(unprefixed(name.trim()), "dwcp")
}

/// The name of the cookie a `Set-Cookie` value sets.
pub fn set_cookie_name(value: &str) -> &str {
    let pair = value.split(';').next().unwrap_or("");
    pair.split_once('=').map_or(pair, |(name, _)| name).trim()
}

/// Whether `text` (a header value) carries a DWCP token:
/// `dwcp-<letters>.` followed by 64 hex digits, anywhere in it.
pub fn carries_token(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = find_ignore_case(&bytes[from..], b"dwcp-") {
        let rest = &bytes[from + at + 5..];
        let kind = rest.iter().take_while(|b| b.is_ascii_alphabetic()).count();
        if kind > 0 && rest.get(kind) == Some(&b'.') {
            let hex = rest[kind + 1..]
                .iter()
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            if hex >= 64 {
                return true;
            }
        }
        from += at + 5;
    }
    false
}

fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// `Cookie` header value without DWCP's credential cookies; `None` when
/// nothing is left of it.
pub fn without_credential_cookies(cookie: &str) -> Option<String> {
    let kept: Vec<&str> = cookie
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(n, _)| n);
            !is_credential_cookie(name)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_dwcp_s_cookies() {
        for name in [
            SESSION_COOKIE,
            "dwcp_session",
            "__HOST-dwcp_session",
            "__Secure-DWCP_x",
        ] {
            assert!(is_credential_cookie(name), "{name}");
            assert!(is_dwcp_cookie(name), "{name}");
        }
        assert!(is_dwcp_cookie("dwcp-version") && !is_credential_cookie("dwcp-version"));
        for name in ["session", "dwcpx", "my_dwcp_session", "__Host-id", "dwcé_"] {
            assert!(!is_credential_cookie(name), "{name}");
        }
        assert_eq!(
            set_cookie_name(" __Host-dwcp_session=abc; Path=/; Secure"),
            "__Host-dwcp_session"
        );
        assert_eq!(set_cookie_name("flag; Secure"), "flag");
    }

    #[test]
    fn strips_only_credential_cookies() {
        assert_eq!(
            without_credential_cookies("a=1; __Host-dwcp_session=abc; dwcp-version=2;b=2"),
            Some("a=1; dwcp-version=2; b=2".into())
        );
        assert_eq!(
            without_credential_cookies("dwcp_session=x; __Host-dwcp_session=y"),
            None
        );
    }

    #[test]
    fn finds_tokens_in_header_values() {
        let hex = "0123456789abcdef".repeat(4);
        for text in [
            format!("Bearer dwcp-admin.{hex}"),
            format!("bearer DWCP-Operator.{hex}"),
            format!("Token x, dwcp-join.{hex}.{hex}"),
        ] {
            assert!(carries_token(&text), "{text}");
        }
        for text in [
            "Bearer abc".to_string(),
            format!("Bearer dwcp-admin.{}", &hex[..63]),
            format!("Bearer dwcp-.{hex}"),
            format!("Bearer dwcp-admin{hex}"),
        ] {
            assert!(!carries_token(&text), "{text}");
        }
    }
}
