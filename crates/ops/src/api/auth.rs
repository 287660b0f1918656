//! Bearer tokens: a request's token is hashed and looked up among the
//! credentials in the replicated state; its role says what it may do
//! ([`permit`]): `admin` everything, `operator` reads and changes to apps,
//! `viewer` reads only; `join` tokens only join nodes.

use control::Role;
use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;

use super::error::ApiError;
use super::router::{RouteId, Verb};
use crate::ControlPlane;

/// The bearer token of a request, if it carries one in the right form.
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers.get(AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("this route needs a token: send `Authorization: Bearer <token>`")
    })?;
    let text = value.to_str().map_err(|_| {
        ApiError::unauthorized("the Authorization header must be `Bearer <token>` in ASCII")
    })?;
    let (scheme, token) = text.trim().split_once(' ').unwrap_or((text, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::unauthorized(
            "the Authorization header must be `Bearer <token>`",
        ));
    }
    Ok(token)
}

/// Who is calling: the credential's name (for audit trails) and role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Caller {
    pub name: String,
    pub role: Role,
}

/// Lets the request through if its token belongs to an API credential
/// (admin, operator or viewer); who it is.
pub(crate) async fn authorize<P: ControlPlane>(
    plane: &P,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    let hash = control::blobs::digest_of(bearer(headers)?.as_bytes());
    let find = move |state: &control::State| {
        state
            .credential_by_hash(&hash)
            .map(|c| (c.role, c.name.to_string()))
    };
    // This node's applied state answers at once, even when no leader can
    // be reached; only a token it does not know yet (made moments ago
    // elsewhere) costs a linearizable read. A deleted credential stops
    // working on a node once it has applied the deletion.
    let found = match plane.read_local(find.clone()) {
        Some(found) => Some(found),
        None => plane.read(find).await?,
    };
    match found {
        Some((Role::Join, _)) => Err(ApiError::forbidden(
            "this token may only join nodes to the cluster; use an API token",
        )),
        Some((role, name)) => Ok(Caller { name, role }),
        None => Err(ApiError::unauthorized(
            "the token is not known (it may have been deleted); ask an admin for a token",
        )),
    }
}

/// Whether `role` may call `route` with `verb`: viewers read; operators
/// read and change apps (versions, deployments, rollouts, artifacts,
/// runbooks, registers); admins also manage tenants, tokens, prices and
/// members.
pub(crate) fn permit(role: Role, route: RouteId, verb: Verb) -> Result<(), ApiError> {
    use RouteId as R;
    let allowed = match role {
        Role::Admin => true,
        Role::Join => false,
        _ if verb == Verb::Get => true,
        Role::Viewer => false,
        Role::Operator => !matches!(
            route,
            R::Tenants
                | R::Tenant
                | R::ClusterNode
                | R::JoinTokens
                | R::Tokens
                | R::Token
                | R::Prices
                | R::TestClock
        ),
    };
    if allowed {
        return Ok(());
    }
    Err(ApiError::forbidden(match role {
        Role::Viewer => "this token is a viewer's: it may only read (GET); ask an admin for an operator token".to_string(),
        _ => "this token is an operator's: tenants, tokens, prices and the cluster's members are changed with an admin token".to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn reads_bearer_tokens() {
        let mut headers = HeaderMap::new();
        assert!(bearer(&headers).is_err());
        for bad in ["Basic abc", "Bearer", "Bearer ", "token"] {
            headers.insert(AUTHORIZATION, HeaderValue::from_static(bad));
            assert_eq!(bearer(&headers).unwrap_err().code, "unauthorized", "{bad}");
        }
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer s3cret"));
        assert_eq!(bearer(&headers).unwrap(), "s3cret");
    }
}
