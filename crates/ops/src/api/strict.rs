//! JSON decoded strictly: serde's derived structs also accept a JSON
//! array of their fields in order, so `[null, null]` passed for an object
//! (a register CAS, a tenant's quotas). [`Strict`] is a deserializer over
//! a parsed [`Value`] that refuses an array where a struct is expected,
//! at every depth, and otherwise decodes as `serde_json` does, except
//! that:
//! - a number with no fraction written as a float (`403.0`) is taken where
//!   a whole number belongs, as JSON Schema's `integer` takes it;
//! - an error in a member's value says where (`at `quotas.max_apps`:`),
//!   so the API's error names the field;
//! - [`present`] lets a member refuse `null` while staying optional.

use serde::Deserialize;
use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde_json::{Map, Value};

/// A parsed JSON value to decode strictly.
pub(crate) struct Strict(pub Value);

type Error = serde_json::Error;

/// For `#[serde(default, deserialize_with = "strict::present")]`: a
/// member that is absent is `None`, one given must hold a value (`null`
/// is refused as the wrong type, naming the member).
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// The path of a member's error: `at `key`: message`, nested as
/// `at `outer.key`: message` (array items as `outer[2]`).
fn within(step: &str, e: Error) -> Error {
    let text = e.to_string();
    match text
        .strip_prefix("at `")
        .and_then(|rest| rest.split_once("`: "))
    {
        Some((inner, message)) if inner.starts_with('[') => {
            de::Error::custom(format!("at `{step}{inner}`: {message}"))
        }
        Some((inner, message)) => de::Error::custom(format!("at `{step}.{inner}`: {message}")),
        None => de::Error::custom(format!("at `{step}`: {text}")),
    }
}

/// A float with no fraction, within what a float holds exactly, as the
/// whole number it is; anything else as it is.
fn whole(value: Value) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if let Value::Number(n) = &value
        && n.is_f64()
        && let Some(f) = n.as_f64()
        && f.fract() == 0.0
        && f.abs() <= EXACT
    {
        // Checked above: whole and within ±2^53, so the casts are exact.
        return if f >= 0.0 {
            Value::from(f as u64)
        } else {
            Value::from(f as i64)
        };
    }
    value
}

/// `value` with every float that has no fraction made the whole number it
/// is (as [`whole`]), at every depth: for a body member handed as JSON text
/// to a parser of its own (a rollout plan), which JSON Schema's `integer`
/// says may carry `50.0`.
pub(crate) fn wholes(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(wholes).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, wholes(v))).collect()),
        other => whole(other),
    }
}

macro_rules! delegate_whole {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                whole(self.0).$method(visitor)
            }
        )*
    };
}

macro_rules! delegate {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                self.0.$method(visitor)
            }
        )*
    };
}

impl<'de> Deserializer<'de> for Strict {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Seq::new(items)),
            Value::Object(map) => visitor.visit_map(Fields::new(map)),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(Fields::new(map)),
            other => Err(de::Error::invalid_type(
                unexpected(&other),
                &format!("a JSON object ({name})").as_str(),
            )),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(Fields::new(map)),
            other => other.deserialize_map(visitor),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Seq::new(items)),
            other => other.deserialize_seq(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Strict(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_unit_struct(name, visitor)
    }

    delegate_whole! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    delegate! {
        deserialize_bool deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_unit
        deserialize_identifier deserialize_ignored_any
    }
}

fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(_) => de::Unexpected::Other("a number"),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

struct Seq {
    items: std::vec::IntoIter<Value>,
    index: usize,
}

impl Seq {
    fn new(items: Vec<Value>) -> Seq {
        Seq {
            items: items.into_iter(),
            index: 0,
        }
    }
}

impl<'de> SeqAccess<'de> for Seq {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        seed.deserialize(Strict(item))
            .map(Some)
            .map_err(|e| within(&format!("[{index}]"), e))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Fields {
    entries: serde_json::map::IntoIter,
    /// The member whose value comes next.
    value: Option<(String, Value)>,
}

impl Fields {
    fn new(map: Map<String, Value>) -> Fields {
        Fields {
            entries: map.into_iter(),
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for Fields {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some((key.clone(), value));
                seed.deserialize(key.into_deserializer()).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (key, value) = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a value asked for before its key"))?;
        seed.deserialize(Strict(value)).map_err(|e| within(&key, e))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        a: Option<u32>,
        b: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        #[serde(default)]
        inner: Option<Inner>,
        #[serde(default)]
        list: Vec<Inner>,
    }

    fn strict<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, Error> {
        T::deserialize(Strict(serde_json::from_str(text).unwrap()))
    }

    #[test]
    fn whole_floats_are_whole_numbers_at_every_depth() {
        let plan = serde_json::json!({"steps": [
            {"set_weight": {"weight": 50.0}},
            {"analysis": {"checks": [{"metric": "error_rate", "comparator": "<", "threshold": 0.5}],
                          "count": 3.0, "interval_ms": 1000.0}},
            {"set_weight": {"weight": 100}}
        ]});
        // As the plan's own parser reads it: a float is no u32.
        assert!(state::rollout::Plan::from_json(&plan.to_string()).is_err());
        let mended = wholes(plan);
        assert_eq!(
            mended["steps"][0]["set_weight"]["weight"],
            serde_json::json!(50)
        );
        assert_eq!(
            mended["steps"][1]["analysis"]["checks"][0]["threshold"],
            serde_json::json!(0.5)
        );
        assert!(state::rollout::Plan::from_json(&mended.to_string()).is_ok());
    }

    #[test]
    fn arrays_are_refused_where_objects_belong_at_every_depth() {
        // What plain serde_json takes for objects:
        assert!(serde_json::from_str::<Inner>("[null, null]").is_ok());
        assert!(strict::<Inner>("[null, null]").is_err());
        assert!(strict::<Outer>(r#"{"name": "x", "inner": [1, "y"]}"#).is_err());
        assert!(strict::<Outer>(r#"{"name": "x", "list": [[1, "y"]]}"#).is_err());
        assert_eq!(
            strict::<Outer>(r#"{"name": "x", "inner": {"a": 1}, "list": [{"b": "z"}]}"#).unwrap(),
            Outer {
                name: "x".into(),
                inner: Some(Inner {
                    a: Some(1),
                    b: None
                }),
                list: vec![Inner {
                    a: None,
                    b: Some("z".into())
                }],
            }
        );
        let e = strict::<Outer>(r#"{"name": "x", "colour": 1}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `colour`"), "{e}");
        let e = strict::<Inner>(r#"{"a": 4294967296}"#).unwrap_err();
        assert!(e.to_string().contains("u32"), "{e}");
    }
}
