//! Reading request bodies with a size limit, and decoding JSON into
//! request structs (every one `#[serde(deny_unknown_fields)]`).

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::HeaderMap;
use hyper::body::Body;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Largest JSON request body.
pub(crate) const JSON_LIMIT: usize = 1 << 20;
/// Largest artifact upload.
pub(crate) const BLOB_LIMIT: usize = 64 << 20;

/// The media type of the request, lowercased and without parameters, when
/// it has a readable one.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or(value).trim();
    Some(essence.to_ascii_lowercase())
}

/// Reads the whole body, refusing with 413 once it passes `limit` bytes
/// (at once when `Content-Length` already says so).
pub(crate) async fn read_limited<B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
    what: &str,
) -> Result<Bytes, ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if let Some(length) = headers.get(CONTENT_LENGTH)
        && let Some(length) = length.to_str().ok().and_then(|l| l.parse::<u64>().ok())
        && length > limit as u64
    {
        return Err(ApiError::payload_too_large(what, limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::payload_too_large(what, limit))
        }
        Err(e) => Err(ApiError::invalid(
            "body",
            format!("the request body could not be read: {e}"),
        )),
    }
}

/// Reads a JSON body of at most [`JSON_LIMIT`] bytes and decodes it. A
/// body without `Content-Type` is taken as JSON; any type other than
/// `application/json` (or `...+json`) is refused with 415.
pub(crate) async fn read_json<T, B>(headers: &HeaderMap, body: B) -> Result<T, ApiError>
where
    T: DeserializeOwned,
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if let Some(media) = media_type(headers)
        && media != "application/json"
        && !media.ends_with("+json")
    {
        return Err(ApiError::unsupported_media_type(format!(
            "this route takes a JSON body: send Content-Type: application/json, not `{}`",
            media.chars().take(80).collect::<String>()
        )));
    }
    if headers.get(CONTENT_TYPE).is_some() && media_type(headers).is_none() {
        return Err(ApiError::unsupported_media_type(
            "the Content-Type header is not readable text; send application/json",
        ));
    }
    let bytes = read_limited(headers, body, JSON_LIMIT, "the JSON body").await?;
    decode(&bytes)
}

/// Decodes `bytes` as `T`. Syntax errors, unknown fields, missing fields
/// and values of the wrong type — an array where an object belongs
/// included ([`super::strict`]) — are all `malformed_json`; the field is
/// named when serde names it.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .and_then(|value| T::deserialize(super::strict::Strict(value)))
        .map_err(|e| {
            let text = e.to_string();
            // `at `quotas.max_apps`: ...` from `Strict`: the member whose
            // value is wrong; a nested unknown or missing member is named
            // under it.
            let (path, rest) = match text
                .strip_prefix("at `")
                .and_then(|rest| rest.split_once("`: "))
            {
                Some((path, rest)) => (Some(path), rest),
                None => (None, text.as_str()),
            };
            let member = quoted_after(rest, "unknown field `")
                .or_else(|| quoted_after(rest, "missing field `"));
            let field = match (path, member) {
                (Some(path), Some(member)) => Some(format!("{path}.{member}")),
                (Some(path), None) => Some(path.to_string()),
                (None, member) => member,
            };
            let message = if e.is_eof() && bytes.iter().all(u8::is_ascii_whitespace) {
                "the request body is empty; this route takes a JSON object".to_string()
            } else {
                format!("the request body is not the JSON this route takes: {text}")
            };
            ApiError::malformed_json(message, field)
        })
}

/// The text between `prefix` and the next backtick, e.g. the `x` of
/// "unknown field `x`, expected ...".
fn quoted_after(text: &str, prefix: &str) -> Option<String> {
    let start = text.find(prefix)? + prefix.len();
    let rest = &text[start..];
    let end = rest.find('`')?;
    Some(rest[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use hyper::header::HeaderValue;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Thing {
        name: String,
        count: Option<u32>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        things: Vec<Thing>,
        #[serde(default, deserialize_with = "crate::api::strict::present")]
        limit: Option<u64>,
    }

    /// Schemathesis (issue 16): a wrong type deep in a body named no
    /// field, `null` passed for an optional number, and `403.0` was
    /// refused where JSON Schema's `integer` allows it.
    #[test]
    fn names_the_member_of_a_wrong_value_at_any_depth() {
        let e = decode::<Outer>(br#"{"things":[{"name":"a"},{"name":5}]}"#).unwrap_err();
        assert_eq!(e.code, "malformed_json");
        assert_eq!(e.field.as_deref(), Some("things[1].name"), "{e:?}");
        let e = decode::<Outer>(br#"{"things":[{"name":"a","colour":1}]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("things[0].colour"), "{e:?}");
        let e = decode::<Outer>(br#"{"things":[],"limit":null}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("limit"), "{e:?}");
        let ok =
            decode::<Outer>(br#"{"things":[{"name":"a","count":403.0}],"limit":7.0}"#).unwrap();
        assert_eq!((ok.things[0].count, ok.limit), (Some(403), Some(7)));
        let ok = decode::<Outer>(br#"{"things":[]}"#).unwrap();
        assert_eq!(ok.limit, None);
        let e = decode::<Outer>(br#"{"things":[{"name":"a","count":403.5}]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("things[0].count"), "{e:?}");
    }

    #[test]
    fn names_unknown_and_missing_fields() {
        let e = decode::<Thing>(br#"{"name":"a","colour":"red"}"#).unwrap_err();
        assert_eq!(e.code, "malformed_json");
        assert_eq!(e.field.as_deref(), Some("colour"));
        let e = decode::<Thing>(br#"{"count":1}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("name"));
        let e = decode::<Thing>(br#"{"name":"#).unwrap_err();
        assert_eq!((e.code, e.field), ("malformed_json", None));
        let e = decode::<Thing>(b"").unwrap_err();
        assert!(e.message.contains("empty"), "{}", e.message);
        assert!(decode::<Thing>(br#"{"name":"a"}"#).is_ok());
    }

    #[tokio::test]
    async fn limits_bodies() {
        let headers = HeaderMap::new();
        let small = Full::new(Bytes::from_static(b"12345"));
        assert_eq!(
            read_limited(&headers, small, 5, "x").await.unwrap(),
            &b"12345"[..]
        );
        let big = Full::new(Bytes::from_static(b"123456"));
        let e = read_limited(&headers, big, 5, "x").await.unwrap_err();
        assert_eq!(e.status.as_u16(), 413);

        let mut declared = HeaderMap::new();
        declared.insert(CONTENT_LENGTH, HeaderValue::from_static("6"));
        let e = read_limited(&declared, Full::new(Bytes::new()), 5, "x")
            .await
            .unwrap_err();
        assert_eq!(e.code, "payload_too_large");
    }

    #[tokio::test]
    async fn json_routes_refuse_other_media_types() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let body = Full::new(Bytes::from_static(br#"{"name":"a"}"#));
        let e = read_json::<Thing, _>(&headers, body).await.unwrap_err();
        assert_eq!(e.status.as_u16(), 415);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        let body = Full::new(Bytes::from_static(br#"{"name":"a"}"#));
        assert!(read_json::<Thing, _>(&headers, body).await.is_ok());
    }
}
