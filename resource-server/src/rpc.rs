//! What the bearer check reads of a JSON-RPC body: each message's id, method and the few
//! `params` members that decide the scope of a call (`name`, `uri`, `ref`). Everything else,
//! tool arguments above all, is skipped without being built. The reading is as lenient as a
//! generic JSON parse: a message that is not an object, or has a method that is not a string,
//! is no call; a repeated member keeps its last value; only a body that is not JSON at all
//! yields nothing.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// One message as the bearer check sees it.
#[derive(Debug, Default, PartialEq)]
pub struct Call {
    pub id: Value,
    pub method: Option<String>,
    /// `params` reduced to `name`, `uri` and `ref` (an empty object when it has none of them,
    /// `Null` when it is absent or not an object).
    pub params: Value,
}

/// A request's calls as the bearer check read them, for what runs after it.
#[derive(Clone, Debug, Default)]
pub struct Calls(pub Vec<(Value, String, Value)>);

/// The calls of a body: a single message or a batch. Messages without a method are left out.
pub fn calls(body: &[u8]) -> Vec<(Value, String, Value)> {
    let batch = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'[');
    let messages = if batch {
        serde_json::from_slice::<Vec<Call>>(body).unwrap_or_default()
    } else {
        serde_json::from_slice::<Call>(body)
            .map(|c| vec![c])
            .unwrap_or_default()
    };
    messages
        .into_iter()
        .filter_map(|c| Some((c.id, c.method?, c.params)))
        .collect()
}

impl<'de> Deserialize<'de> for Call {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CallVisitor)
    }
}

struct CallVisitor;

impl<'de> Visitor<'de> for CallVisitor {
    type Value = Call;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC message")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Call, A::Error> {
        let mut call = Call::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "id" => call.id = map.next_value()?,
                "method" => {
                    call.method = match map.next_value::<Value>()? {
                        Value::String(s) => Some(s),
                        _ => None,
                    }
                }
                "params" => call.params = map.next_value::<Target>()?.0,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(call)
    }

    // Anything else in a batch is no call (and does not spoil the others).
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Call, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Call::default())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Call, E> {
        Ok(Call::default())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Call, E> {
        Ok(Call::default())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Call, E> {
        Ok(Call::default())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Call, E> {
        Ok(Call::default())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Call, E> {
        Ok(Call::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Call, E> {
        Ok(Call::default())
    }
}

/// `params`, keeping only the members a scope decision reads.
struct Target(Value);

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TargetVisitor)
    }
}

struct TargetVisitor;

impl<'de> Visitor<'de> for TargetVisitor {
    type Value = Target;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON-RPC params")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Target, A::Error> {
        let mut kept = serde_json::Map::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "name" | "uri" | "ref" => {
                    kept.insert(key.into_owned(), map.next_value()?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Target(Value::Object(kept)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Target, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Target(Value::Null))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Target, E> {
        Ok(Target(Value::Null))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Target, E> {
        Ok(Target(Value::Null))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Target, E> {
        Ok(Target(Value::Null))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Target, E> {
        Ok(Target(Value::Null))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Target, E> {
        Ok(Target(Value::Null))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Target, E> {
        Ok(Target(Value::Null))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What the generic parse this replaces made of a body: the reference for every case.
    fn by_value(body: &[u8]) -> Vec<(Value, String, Value)> {
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return Vec::new();
        };
        let messages = match value {
            Value::Array(items) => items,
            other => vec![other],
        };
        messages
            .into_iter()
            .filter_map(|m| {
                let method = m.get("method")?.as_str()?.to_owned();
                let id = m.get("id").cloned().unwrap_or_default();
                let params = match m.get("params") {
                    Some(Value::Object(p)) => Value::Object(
                        p.iter()
                            .filter(|(k, _)| matches!(k.as_str(), "name" | "uri" | "ref"))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    ),
                    _ => Value::Null,
                };
                Some((id, method, params))
            })
            .collect()
    }

    #[test]
    fn reads_what_a_generic_parse_reads() {
        let cases: Vec<&[u8]> = vec![
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":[1,{"b":2}]}}}"#,
            br#"  [{"method":"a"},{"id":1,"result":{}},{"method":"b","params":{"uri":"u","ref":{"type":"ref/prompt","name":"p"}}}]"#,
            br#"[{"method":"tools/call","params":{"name":"admin"}}, 5, "s", null, [1], {"method": 7}]"#,
            br#"{"method":"tools/call","method":"resources/read","params":{"name":"a","name":"b"}}"#,
            br#"{"id":null,"method":"x","params":[1,2]}"#,
            br#"{"id":"s","method":"x","params":"text"}"#,
            br#"{"method":"x"}"#,
            b"not json",
            b"",
            b"5",
            br#"{"method":"tools/call","params":{"name":"x"}} trailing"#,
        ];
        for body in cases {
            assert_eq!(
                calls(body),
                by_value(body),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            calls(br#"{"id":3,"method":"tools/call","params":{"name":"n","arguments":{}}}"#),
            vec![(json!(3), "tools/call".to_owned(), json!({"name": "n"}))]
        );
    }
}
