//! Checks of request values that need no state, made before any write so
//! that bad input never reaches the log. They are the state machine's own
//! checks (`state::check_*`), with fields named as in the request.

use state::{Name, VersionConfig};

use super::error::ApiError;

/// A name (DNS label) given for `field`.
pub(crate) fn name(field: &'static str, value: &str) -> Result<Name, ApiError> {
    Name::new(field, value).map_err(ApiError::from)
}

/// An app's route: a path prefix like `/hello` or `/api/v2`.
pub(crate) fn route(route: &str) -> Result<(), ApiError> {
    state::check_route(route).map_err(ApiError::from)
}

/// An app's host: a lowercase DNS name without a port.
pub(crate) fn host(host: &str) -> Result<(), ApiError> {
    state::check_host(host).map_err(ApiError::from)
}

/// An artifact digest: lowercase hex sha256.
pub(crate) fn digest(digest: &str) -> Result<(), ApiError> {
    state::check_digest(digest).map_err(ApiError::from)
}

/// A version's configuration; fields are named as in the request body.
pub(crate) fn config(config: &VersionConfig) -> Result<(), ApiError> {
    state::check_config(config).map_err(|r| within("config", r))
}

/// Replicas wanted in one region.
pub(crate) fn replicas(region: &str, replicas: u32) -> Result<(), ApiError> {
    state::check_replicas(replicas).map_err(|r| {
        let mut e = ApiError::from(r);
        e.field = Some("regions".into());
        e.message = format!("region `{}`: {}", clip(region), e.message);
        e
    })
}

/// A register key (from the path).
pub(crate) fn register_key(key: &str) -> Result<(), ApiError> {
    state::check_register(key, None).map_err(ApiError::from)
}

/// A register value given in `field`.
pub(crate) fn register_value(field: &'static str, value: &str) -> Result<(), ApiError> {
    state::check_register("k", Some(value.as_bytes())).map_err(|r| {
        let mut e = ApiError::from(r);
        e.field = Some(field.into());
        e
    })
}

/// The rejection of a member of the object `parent`, named `parent.member`.
fn within(parent: &str, rejection: state::Rejection) -> ApiError {
    let mut e = ApiError::from(rejection);
    e.field = e.field.map(|f| format!("{parent}.{f}"));
    e
}

/// At most 80 characters of a value, for messages.
fn clip(value: &str) -> String {
    value.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_the_state_machine() {
        for ok in ["/", "/hello", "/api/v2", "/a-b_c.d~e"] {
            assert!(route(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "hello", "/hello/", "//x", "/a//b", "/a b", "/../etc", "/x?y",
        ] {
            assert_eq!(route(bad).unwrap_err().field.as_deref(), Some("route"));
        }
        assert!(digest(&"ab".repeat(32)).is_ok());
        assert!(digest(&"AB".repeat(32)).is_err());
        assert!(config(&VersionConfig::default()).is_ok());
        let bad = VersionConfig {
            memory_bytes: 1000,
            ..VersionConfig::default()
        };
        assert_eq!(
            config(&bad).unwrap_err().field.as_deref(),
            Some("config.memory_bytes")
        );
        let bad = VersionConfig {
            timeout_ms: 0,
            ..VersionConfig::default()
        };
        assert_eq!(
            config(&bad).unwrap_err().field.as_deref(),
            Some("config.timeout_ms")
        );
        assert!(replicas("eu", 100_000).is_ok());
        assert!(replicas("eu", 100_001).is_err());
        assert!(register_key(&"k".repeat(257)).is_err());
        assert!(register_value("value", &"v".repeat(64 << 10)).is_ok());
        assert!(register_value("value", &"v".repeat((64 << 10) + 1)).is_err());
    }
}
