//! Names of tenants, apps, regions and nodes: DNS labels, so that they fit
//! in host names, URLs and metric labels unchanged.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A validated name: 1 to 63 characters of `a-z`, `0-9` and `-`, starting
/// with a letter and not ending with `-`.
///
/// ```
/// use state::Name;
/// assert!(Name::new("field", "billing-api").is_ok());
/// let err = Name::new("app", "Billing API").unwrap_err();
/// assert_eq!(err.field, "app");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

/// Why a string is not a [`Name`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{field} `{value}` is not a valid name: {reason}; use 1-63 of a-z, 0-9 and '-', starting with a letter"
)]
pub struct NameError {
    /// The field the name was given for.
    pub field: &'static str,
    /// The value as given.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Name {
    /// Validates `value` as the name given for `field`.
    pub fn new(field: &'static str, value: &str) -> Result<Name, NameError> {
        let err = |reason| NameError {
            field,
            value: value.chars().take(80).collect(),
            reason,
        };
        if value.is_empty() {
            return Err(err("it is empty"));
        }
        if value.len() > 63 {
            return Err(err("it is longer than 63 characters"));
        }
        if !value.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(err("it does not start with a lowercase letter"));
        }
        if value.ends_with('-') {
            return Err(err("it ends with '-'"));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(err("it has a character other than a-z, 0-9 and '-'"));
        }
        Ok(Name(value.to_string()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Name {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, NameError> {
        Name::new("name", &value)
    }
}

impl From<Name> for String {
    fn from(name: Name) -> String {
        name.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels_and_names_what_is_wrong() {
        for ok in ["a", "hello", "eu-west-1", "x9", &"a".repeat(63)] {
            assert!(Name::new("app", ok).is_ok(), "{ok}");
        }
        let reason = |v: &str| Name::new("app", v).unwrap_err().reason;
        assert_eq!(reason(""), "it is empty");
        assert_eq!(reason(&"a".repeat(64)), "it is longer than 63 characters");
        assert_eq!(
            reason("9lives"),
            "it does not start with a lowercase letter"
        );
        assert_eq!(reason("trailing-"), "it ends with '-'");
        assert_eq!(
            reason("no_underscores"),
            "it has a character other than a-z, 0-9 and '-'"
        );
    }

    #[test]
    fn deserializing_validates() {
        let bad: Result<Name, _> = serde_json::from_str("\"Bad\"");
        assert!(bad.unwrap_err().to_string().contains("not a valid name"));
        let good: Name = serde_json::from_str("\"good\"").unwrap();
        assert_eq!(good.as_str(), "good");
    }
}
