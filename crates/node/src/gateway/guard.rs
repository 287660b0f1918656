//! Guests never see or set the operator's credentials.
//!
//! A browser sends every cookie of a host to every port of it, so a page
//! served by the gateway on the API's host would receive the dashboard's
//! session cookie, and a guest reads every request header (as `HTTP_*`
//! CGI variables, or forwarded to a peer). Before a request reaches a
//! guest or a peer, [`strip_credentials`] removes DWCP's credential
//! cookies and any `Authorization` (or `Proxy-Authorization`) header
//! carrying a DWCP token, and the dashboard's CSRF header. On the way
//! back, [`refused_header`] keeps a guest from setting DWCP's cookies or
//! clearing the site's data (which would end the operator's session on a
//! shared host). The shapes of the credentials are
//! `cluster::credentials`'.

use cluster::credentials::{
    carries_token, is_dwcp_cookie, set_cookie_name, without_credential_cookies,
};
use hyper::HeaderMap;
use hyper::header::{AUTHORIZATION, COOKIE, HeaderValue, PROXY_AUTHORIZATION};

/// The dashboard's CSRF header: never a guest's business.
const CSRF_HEADER: &str = "x-csrf-token";

/// Removes DWCP's credentials from a request's headers.
pub(crate) fn strip_credentials(headers: &mut HeaderMap) {
    for name in [AUTHORIZATION, PROXY_AUTHORIZATION] {
        let carries = headers
            .get_all(&name)
            .iter()
            .any(|v| carries_token(&String::from_utf8_lossy(v.as_bytes())));
        if carries {
            headers.remove(&name);
        }
    }
    headers.remove(CSRF_HEADER);
    if !headers.contains_key(COOKIE) {
        return;
    }
    let kept: Vec<HeaderValue> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| without_credential_cookies(&String::from_utf8_lossy(v.as_bytes())))
        .filter_map(|v| HeaderValue::from_str(&v).ok())
        .collect();
    headers.remove(COOKIE);
    for value in kept {
        headers.append(COOKIE, value);
    }
}

/// Why a guest's response header is refused, if it is: `Set-Cookie` for
/// one of DWCP's cookies, or `Clear-Site-Data`. `name` is lowercase.
pub(crate) fn refused_header(name: &str, value: &str) -> Option<String> {
    match name {
        "clear-site-data" => Some(
            "`clear-site-data` would clear the data of every site on this host, the dashboard's among them"
                .to_string(),
        ),
        "set-cookie" if is_dwcp_cookie(set_cookie_name(value)) => Some(format!(
            "`set-cookie` for `{}`: cookies named dwcp… are DWCP's own",
            set_cookie_name(value).chars().take(64).collect::<String>()
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_stripped_and_the_rest_kept() {
        let token = format!("Bearer dwcp-admin.{}", "ab".repeat(32));
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(&token).unwrap());
        headers.insert(
            PROXY_AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpwdw=="),
        );
        headers.insert(CSRF_HEADER, HeaderValue::from_static("abc"));
        headers.append(
            COOKIE,
            HeaderValue::from_static("theme=dark; __Host-dwcp_session=0123"),
        );
        headers.append(COOKIE, HeaderValue::from_static("dwcp_session=4567"));
        headers.insert("x-other", HeaderValue::from_static("kept"));
        strip_credentials(&mut headers);
        assert!(headers.get(AUTHORIZATION).is_none());
        assert_eq!(headers[PROXY_AUTHORIZATION], "Basic dXNlcjpwdw==");
        assert!(headers.get(CSRF_HEADER).is_none());
        let cookies: Vec<_> = headers.get_all(COOKIE).iter().collect();
        assert_eq!(cookies, ["theme=dark"]);
        assert_eq!(headers["x-other"], "kept");
        // A guest's own bearer token passes.
        let mut own = HeaderMap::new();
        own.insert(AUTHORIZATION, HeaderValue::from_static("Bearer mine"));
        strip_credentials(&mut own);
        assert_eq!(own[AUTHORIZATION], "Bearer mine");
    }

    #[test]
    fn guests_may_not_set_dwcp_cookies_or_clear_the_site() {
        for (name, value) in [
            ("set-cookie", "__Host-dwcp_session=x; Path=/; Secure"),
            ("set-cookie", "dwcp_session=x"),
            ("set-cookie", "DWCP-version=3"),
            ("clear-site-data", "\"cookies\""),
        ] {
            assert!(refused_header(name, value).is_some(), "{name}: {value}");
        }
        assert!(refused_header("set-cookie", "cart=1; Path=/").is_none());
        assert!(refused_header("content-type", "text/plain").is_none());
    }
}
