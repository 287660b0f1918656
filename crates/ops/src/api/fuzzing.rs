//! Entry points for the fuzz targets (`crates/fuzzing`): the API's
//! parsers of credentials, reachable from outside the crate. Not an API.

use hyper::HeaderMap;
use hyper::header::{AUTHORIZATION, COOKIE, HeaderValue};

/// Reads `value` as an `Authorization` header and as a `Cookie` header,
/// as the API does for every request: the bearer token and the session
/// cookie, and the session token's form check.
pub fn credentials(value: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(value) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value.clone());
    headers.append(COOKIE, value);
    let _ = super::auth::bearer(&headers);
    if let Some(token) = super::auth::session_cookie(&headers) {
        let _ = state::is_sha256_hex(token);
        let _ = super::auth::csrf_of(token);
    }
}
