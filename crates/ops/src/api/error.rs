//! The one error shape of the API: `{"error": {"code", "message", "field"}}`
//! with the status code that goes with `code`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};
use serde::Serialize;
use state::{NameError, Rejection};

use crate::PlaneError;

/// A request the API refuses, or a fault while serving it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The request field (body member, path segment or query parameter)
    /// that is wrong, when there is one.
    pub field: Option<String>,
    /// The `Allow` header of a 405. (A 401 always gets
    /// `WWW-Authenticate: Bearer`.)
    allow: Option<String>,
    /// `Retry-After`, in seconds.
    retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    field: Option<&'a str>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            allow: None,
            retry_after: None,
        }
    }

    fn with_field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 401 naming the request field that failed (a login's `password` or
    /// `totp`).
    pub fn unauthorized_field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::unauthorized(message).with_field(field)
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 404 naming the request field (a query parameter or body member)
    /// that names a record that does not exist: well-formed, so not a 400.
    pub fn not_found_field(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::not_found(message).with_field(field)
    }

    /// 409 naming the field: a request the document allows that the
    /// cluster's current state refuses (a `since` ahead of the revision,
    /// the leader removing itself, a tier this node does not have).
    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message).with_field(field)
    }

    /// `allow` lists the methods the path answers, e.g. `GET, POST`.
    pub fn method_not_allowed(method: &str, path: &str, allow: String) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {path}; allowed: {allow}"),
        );
        e.allow = Some(allow);
        e
    }

    /// A bad value in `field`; `message` says what is allowed.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid", message).with_field(field)
    }

    pub fn malformed_json(message: impl Into<String>, field: Option<String>) -> ApiError {
        let mut e = ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", message);
        e.field = field;
        e
    }

    pub fn payload_too_large(what: &str, limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("{what} is larger than the {} allowed", size(limit)),
        )
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    /// The watcher asked for changes older than the node keeps.
    pub fn compacted(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::GONE, "compacted", message).with_field("since")
    }

    /// Too many failed attempts from one address; `retry_after_s` says
    /// when to try again.
    pub fn too_many_requests(message: impl Into<String>, retry_after_s: u64) -> ApiError {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message);
        e.retry_after = Some(retry_after_s);
        e
    }

    /// 409: the go-live gate refuses a change while the cluster, marked
    /// production, holds no current signed certification; an admin may
    /// override it with a reason (`override_certification`).
    pub fn not_certified(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "not_certified", message)
            .with_field("override_certification")
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The error as an HTTP response.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let envelope = Envelope {
            error: Body {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        };
        // Serializing a struct of strings cannot fail; fall back to a fixed
        // body rather than trusting that.
        let body = serde_json::to_vec(&envelope).unwrap_or_else(|_| {
            br#"{"error":{"code":"internal","message":"could not encode an error","field":null}}"#
                .to_vec()
        });
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"dwcp\""),
            );
        }
        if let Some(allow) = self.allow
            && let Ok(value) = HeaderValue::from_str(&allow)
        {
            headers.insert(ALLOW, value);
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> ApiError {
        let message = rejection.to_string();
        match rejection {
            Rejection::Invalid { field, .. } => ApiError::invalid(field, message),
            Rejection::NotFound { .. } => ApiError::not_found(message),
            Rejection::AlreadyExists { .. } => {
                ApiError::new(StatusCode::CONFLICT, "already_exists", message)
            }
            Rejection::InUse { .. } => ApiError::new(StatusCode::CONFLICT, "in_use", message),
            Rejection::Conflict { field, .. } => ApiError::conflict(field, message),
            Rejection::Quota { what, .. } => {
                let mut e = ApiError::new(StatusCode::CONFLICT, "quota_exceeded", message);
                // A version's limit over the tenant's quota names its field.
                if what.starts_with("config.") {
                    e.field = Some(what);
                }
                e
            }
        }
    }
}

impl From<PlaneError> for ApiError {
    fn from(error: PlaneError) -> ApiError {
        let message = error.to_string();
        match error {
            PlaneError::Rejected(rejection) => rejection.into(),
            PlaneError::Unavailable(_) => ApiError::unavailable(message),
            PlaneError::Invalid { field, .. } | PlaneError::Unusable { field, .. } => {
                ApiError::invalid(field, message)
            }
            PlaneError::NotFound(_) => ApiError::not_found(message),
            PlaneError::Conflict { field, .. } => ApiError::conflict(field, message),
            PlaneError::Internal(_) => ApiError::internal(message),
        }
    }
}

impl From<NameError> for ApiError {
    fn from(error: NameError) -> ApiError {
        ApiError::invalid(error.field, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_map_to_codes_and_statuses() {
        let cases = [
            (
                Rejection::Invalid {
                    field: "route".into(),
                    value: "x".into(),
                    allowed: "a path".into(),
                },
                400,
                "invalid",
                Some("route"),
            ),
            (
                Rejection::NotFound {
                    kind: "tenant".into(),
                    name: "a".into(),
                },
                404,
                "not_found",
                None,
            ),
            (
                Rejection::AlreadyExists {
                    kind: "app".into(),
                    name: "a/b".into(),
                },
                409,
                "already_exists",
                None,
            ),
            (
                Rejection::InUse {
                    kind: "tenant".into(),
                    name: "a".into(),
                    by: "app".into(),
                },
                409,
                "in_use",
                None,
            ),
            (
                Rejection::Quota {
                    tenant: "a".into(),
                    what: "apps".into(),
                    limit: 1,
                    wanted: 2,
                },
                409,
                "quota_exceeded",
                None,
            ),
            (
                Rejection::Conflict {
                    field: "host".into(),
                    value: "shop.example.com".into(),
                    reason: "a host no other tenant serves".into(),
                },
                409,
                "conflict",
                Some("host"),
            ),
        ];
        for (rejection, status, code, field) in cases {
            let e = ApiError::from(rejection);
            assert_eq!(e.status.as_u16(), status);
            assert_eq!(e.code, code);
            assert_eq!(e.field.as_deref(), field);
        }
        let e = ApiError::from(PlaneError::Unavailable("no leader".into()));
        assert_eq!((e.status.as_u16(), e.code), (503, "unavailable"));
        let e = ApiError::from(PlaneError::Internal("disk".into()));
        assert_eq!((e.status.as_u16(), e.code), (500, "internal"));
    }

    #[test]
    fn the_shape_is_the_documented_one() {
        let response = ApiError::invalid("name", "bad").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let unauthorized = ApiError::unauthorized("no token").into_response();
        assert!(unauthorized.headers().contains_key(WWW_AUTHENTICATE));
        let e = ApiError::method_not_allowed("PATCH", "/api/v1/tenants", "GET, POST".into())
            .into_response();
        assert_eq!(e.headers()[ALLOW], "GET, POST");
    }
}
