//! `/registers/{key}`: small key-value cells for controllers and tests.
//! The state holds bytes; the API carries UTF-8 strings (a value that is
//! not UTF-8 is returned with replacement characters).

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::{Deserialize, Serialize};
use state::{Command, Outcome, Revision};

use super::body::read_json;
use super::error::ApiError;
use super::reply::{Reply, commit, json, with_revision};
use super::validate;
use crate::ControlPlane;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CasBody {
    expected: Option<String>,
    new: Option<String>,
}

#[derive(Serialize)]
struct Read {
    key: String,
    value: Option<String>,
    revision: Revision,
}

#[derive(Serialize)]
struct Written {
    revision: Revision,
}

#[derive(Serialize)]
struct Swapped {
    swapped: bool,
    previous: Option<String>,
    revision: Revision,
}

fn text(bytes: Option<&[u8]>) -> Option<String> {
    bytes.map(|b| String::from_utf8_lossy(b).into_owned())
}

/// `GET /registers/{key}` (linearizable).
pub(crate) async fn get<P: ControlPlane>(plane: &P, key: &str) -> Result<Reply, ApiError> {
    validate::register_key(key)?;
    let owned = key.to_string();
    let (value, revision) = plane
        .read(move |state| (text(state.register(&owned)), state.revision()))
        .await?;
    json(
        StatusCode::OK,
        &Read {
            key: key.to_string(),
            value,
            revision,
        },
    )
}

/// `PUT /registers/{key}`.
pub(crate) async fn put<P: ControlPlane>(
    plane: &P,
    key: &str,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    validate::register_key(key)?;
    let (parts, body) = req.into_parts();
    let put: PutBody = read_json(&parts.headers, body).await?;
    validate::register_value("value", &put.value)?;
    let command = Command::Put {
        key: key.to_string(),
        value: put.value.into_bytes(),
    };
    let (revision, _) = commit(plane, command).await?;
    Ok(with_revision(
        json(StatusCode::OK, &Written { revision })?,
        revision,
    ))
}

/// `POST /registers/{key}/cas`: sets `new` (deletes when null) only if the
/// register holds `expected` (null: absent).
pub(crate) async fn cas<P: ControlPlane>(
    plane: &P,
    key: &str,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    validate::register_key(key)?;
    let (parts, body) = req.into_parts();
    let cas: CasBody = read_json(&parts.headers, body).await?;
    if let Some(new) = &cas.new {
        validate::register_value("new", new)?;
    }
    let command = Command::CompareAndSwap {
        key: key.to_string(),
        expected: cas.expected.map(String::into_bytes),
        new: cas.new.map(String::into_bytes),
    };
    let (revision, outcome) = commit(plane, command).await?;
    let Outcome::Swapped { swapped, previous } = outcome else {
        return Err(ApiError::internal(format!(
            "a compare-and-swap answered {outcome:?}"
        )));
    };
    let answer = Swapped {
        swapped,
        previous: text(previous.as_deref()),
        revision,
    };
    Ok(with_revision(json(StatusCode::OK, &answer)?, revision))
}
