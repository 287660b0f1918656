//! `/tokens[/{name}]`: API tokens with a role — `admin`, `operator`
//! (reads and changes to apps) or `viewer` (reads only). A new token is
//! shown once, in the answer that makes it; the state keeps its sha256.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::{Deserialize, Serialize};
use state::{Command, Credential, Name, Role};

use super::body::read_json;
use super::error::ApiError;
use super::reply::{Reply, commit, json, no_content, with_revision};
use super::validate;
use crate::ControlPlane;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    role: String,
}

#[derive(Serialize)]
struct Made {
    name: Name,
    role: Role,
    /// The token itself: shown once, never stored.
    token: String,
}

#[derive(Serialize)]
struct Entry {
    name: Name,
    role: Role,
    created: state::Revision,
}

#[derive(Serialize)]
struct List {
    tokens: Vec<Entry>,
}

const ROLES: &str = "admin, operator or viewer";

/// `GET /tokens`: names and roles (never the tokens).
pub(crate) async fn list<P: ControlPlane>(plane: &P) -> Result<Reply, ApiError> {
    let list = plane
        .read(|state| List {
            tokens: state
                .credentials()
                .filter(|c| c.role != Role::Join)
                .map(|c: &Credential| Entry {
                    name: c.name.clone(),
                    role: c.role,
                    created: c.created,
                })
                .collect(),
        })
        .await?;
    json(StatusCode::OK, &list)
}

/// `POST /tokens`: a new token named `name` with `role`.
pub(crate) async fn create<P: ControlPlane>(
    plane: &P,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let (parts, body) = req.into_parts();
    let wanted: NewToken = read_json(&parts.headers, body).await?;
    let name = validate::name("name", &wanted.name)?;
    let role = match wanted.role.as_str() {
        "admin" => Role::Admin,
        "operator" => Role::Operator,
        "viewer" => Role::Viewer,
        other => {
            return Err(ApiError::invalid(
                "role",
                format!(
                    "`{}` is not a role; use {ROLES}",
                    other.chars().take(40).collect::<String>()
                ),
            ));
        }
    };
    let n = name.clone();
    if plane
        .read(move |state| state.credentials().any(|c| c.name == n))
        .await?
    {
        // Well-formed, refused by the state: 409, as for other names taken.
        return Err(ApiError::conflict(
            "name",
            format!(
                "a token named `{name}` exists; delete it first (DELETE /api/v1/tokens/{name})"
            ),
        ));
    }
    let token = cluster::token::new_api_token(&wanted.role)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let command = Command::PutCredential {
        name: name.clone(),
        role,
        sha256: cluster::token::token_hash(&token),
    };
    let (revision, _) = commit(plane, command).await?;
    Ok(with_revision(
        json(StatusCode::CREATED, &Made { name, role, token })?,
        revision,
    ))
}

/// `DELETE /tokens/{name}`: the token stops working. The last admin token
/// is kept: without it nobody could make another.
pub(crate) async fn delete<P: ControlPlane>(plane: &P, name: &str) -> Result<Reply, ApiError> {
    let name = validate::name("name", name)?;
    let n = name.clone();
    let (found, admins) = plane
        .read(move |state| {
            let found = state.credentials().find(|c| c.name == n).map(|c| c.role);
            let admins = state
                .credentials()
                .filter(|c| c.role == Role::Admin)
                .count();
            (found, admins)
        })
        .await?;
    match found {
        None | Some(Role::Join) => {
            return Err(ApiError::not_found(format!("no API token named `{name}`")));
        }
        Some(Role::Admin) if admins <= 1 => {
            return Err(ApiError::invalid(
                "name",
                format!(
                    "`{name}` is the last admin token; make another admin token before deleting it"
                ),
            ));
        }
        Some(_) => {}
    }
    let (revision, _) = commit(plane, Command::DeleteCredential { name }).await?;
    Ok(with_revision(no_content(), revision))
}
