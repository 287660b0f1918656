//! Checks of request values that need no state, made before any write so
//! that bad input never reaches the log. They mirror the state machine's
//! own checks (which stay the authority) and name the same limits.

use control::{Name, VersionConfig};

use super::error::ApiError;

/// A name (DNS label) given for `field`.
pub(crate) fn name(field: &'static str, value: &str) -> Result<Name, ApiError> {
    Name::new(field, value).map_err(ApiError::from)
}

/// An app's route: a path prefix like `/hello` or `/api/v2`.
pub(crate) fn route(route: &str) -> Result<(), ApiError> {
    let ok = route.starts_with('/')
        && route.len() <= 256
        && (route == "/" || (!route.ends_with('/') && !route.contains("//")))
        && route
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
        && !route.split('/').any(|seg| seg == "." || seg == "..");
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "route",
            format!(
                "route `{}` is not allowed: a path starting with '/', at most 256 characters of A-Z a-z 0-9 - . _ ~ /, no empty segment, no trailing '/' (except \"/\" itself)",
                clip(route)
            ),
        ))
    }
}

/// An artifact digest: lowercase hex sha256.
pub(crate) fn digest(digest: &str) -> Result<(), ApiError> {
    if control::blobs::is_sha256_hex(digest) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "digest",
            format!(
                "digest `{}` is not allowed: 64 lowercase hex digits (a sha256, as POST /api/v1/blobs returns)",
                clip(digest)
            ),
        ))
    }
}

/// A version's configuration.
pub(crate) fn config(config: &VersionConfig) -> Result<(), ApiError> {
    let memory = config.memory_bytes;
    if !(64 << 10..=4 << 30).contains(&memory) || !memory.is_multiple_of(64 << 10) {
        return Err(ApiError::invalid(
            "config.memory_bytes",
            format!(
                "memory_bytes `{memory}` is not allowed: a multiple of 64 KiB (65536) from 64 KiB to 4 GiB"
            ),
        ));
    }
    if config.timeout_ms == 0 || config.timeout_ms > 600_000 {
        return Err(ApiError::invalid(
            "config.timeout_ms",
            format!(
                "timeout_ms `{}` is not allowed: 1 to 600000 (10 minutes)",
                config.timeout_ms
            ),
        ));
    }
    Ok(())
}

/// Replicas wanted in one region.
pub(crate) fn replicas(region: &str, replicas: u32) -> Result<(), ApiError> {
    if replicas > 100_000 {
        return Err(ApiError::invalid(
            "regions",
            format!(
                "{replicas} replicas in region `{region}` is not allowed: at most 100000 per region"
            ),
        ));
    }
    Ok(())
}

/// A register key (from the path).
pub(crate) fn register_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > 256 {
        return Err(ApiError::invalid(
            "key",
            format!("key `{}` is not allowed: 1 to 256 bytes", clip(key)),
        ));
    }
    Ok(())
}

/// A register value given in `field`.
pub(crate) fn register_value(field: &'static str, value: &str) -> Result<(), ApiError> {
    if value.len() > 64 << 10 {
        return Err(ApiError::invalid(
            field,
            format!(
                "{field} of {} bytes is not allowed: at most 64 KiB",
                value.len()
            ),
        ));
    }
    Ok(())
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
