//! OData query options on message listings: `$filter` in the two forms clients use to find a
//! sent message again (`GRAPH.md` §7) —
//! `singleValueExtendedProperties/Any(ep: ep/id eq '…' and ep/value eq '…')` and
//! `internetMessageId eq '…'` —, `$select` and `$top`. Anything else in `$filter` is refused as
//! Graph refuses a filter it cannot run.

use axum::http::StatusCode;
use serde_json::{Map, Value};

use crate::graph::error::GraphError;
use crate::mailbox::StoredMessage;

/// A supported `$filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Filter {
    /// A single-value extended property with this id has this value.
    ExtendedProperty { id: String, value: String },
    /// `internetMessageId eq '…'`.
    InternetMessageId(String),
}

/// The query options of a listing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ListQuery {
    pub(crate) filter: Option<Filter>,
    pub(crate) select: Option<Vec<String>>,
    pub(crate) top: Option<usize>,
}

fn bad_filter(detail: &str) -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        format!("Invalid filter clause: {detail}"),
    )
}

/// Reads an OData string literal at the start of `text`; returns it and the rest.
fn literal(text: &str) -> Option<(String, &str)> {
    let rest = text.trim_start().strip_prefix('\'')?;
    let mut out = String::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if matches!(chars.peek(), Some((_, '\''))) {
                chars.next();
                out.push('\'');
            } else {
                return Some((out, &rest[i + 1..]));
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// Strips a case-insensitive keyword (after optional whitespace).
fn keyword<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let text = text.trim_start();
    let head = text.get(..word.len())?;
    head.eq_ignore_ascii_case(word).then(|| &text[word.len()..])
}

/// `{var}/{name} eq '…'`.
fn comparison<'a>(text: &'a str, var: &str) -> Option<(String, String, &'a str)> {
    let rest = keyword(text, var)?;
    let rest = rest.strip_prefix('/')?;
    let end = rest.find(|c: char| c.is_whitespace())?;
    let name = rest[..end].to_ascii_lowercase();
    let rest = keyword(&rest[end..], "eq")?;
    let (value, rest) = literal(rest)?;
    Some((name, value, rest))
}

impl Filter {
    pub(crate) fn parse(text: &str) -> Result<Self, GraphError> {
        let text = text.trim();
        if let Some(rest) = keyword(text, "internetMessageId") {
            let rest = keyword(rest, "eq").ok_or_else(|| bad_filter("expected 'eq'"))?;
            let (value, rest) =
                literal(rest).ok_or_else(|| bad_filter("expected a quoted string"))?;
            if !rest.trim().is_empty() {
                return Err(bad_filter("only one comparison is supported"));
            }
            return Ok(Self::InternetMessageId(value));
        }
        let rest =
            keyword(text, "singleValueExtendedProperties/Any(").ok_or_else(|| bad_filter(text))?;
        let colon = rest
            .find(':')
            .ok_or_else(|| bad_filter("expected a lambda variable"))?;
        let var = rest[..colon].trim().to_string();
        if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad_filter("expected a lambda variable"));
        }
        let rest = &rest[colon + 1..];
        let (first, first_value, rest) =
            comparison(rest, &var).ok_or_else(|| bad_filter("expected ep/id eq '…'"))?;
        let rest = keyword(rest, "and").ok_or_else(|| bad_filter("expected 'and'"))?;
        let (second, second_value, rest) =
            comparison(rest, &var).ok_or_else(|| bad_filter("expected ep/value eq '…'"))?;
        if rest.trim() != ")" {
            return Err(bad_filter("expected ')'"));
        }
        match (first.as_str(), second.as_str()) {
            ("id", "value") => Ok(Self::ExtendedProperty {
                id: first_value,
                value: second_value,
            }),
            ("value", "id") => Ok(Self::ExtendedProperty {
                id: second_value,
                value: first_value,
            }),
            _ => Err(bad_filter("compare ep/id and ep/value")),
        }
    }

    fn matches(&self, message: &StoredMessage) -> bool {
        match self {
            Self::ExtendedProperty { id, value } => message
                .single_value_extended_properties
                .iter()
                .any(|p| p.id.eq_ignore_ascii_case(id) && p.value == *value),
            Self::InternetMessageId(id) => message.internet_message_id == *id,
        }
    }
}

impl ListQuery {
    /// Reads `$filter`, `$select` and `$top` from a raw query string.
    pub(crate) fn parse(query: Option<&str>) -> Result<Self, GraphError> {
        let mut out = Self::default();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match key.to_ascii_lowercase().as_str() {
                "$filter" => out.filter = Some(Filter::parse(&value)?),
                "$select" => {
                    out.select = Some(
                        value
                            .split(',')
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty())
                            .collect(),
                    );
                }
                "$top" => {
                    out.top = Some(value.trim().parse().map_err(|_| {
                        GraphError::new(
                            StatusCode::BAD_REQUEST,
                            "BadRequest",
                            format!("Invalid $top value '{value}'."),
                        )
                    })?);
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// The matching messages as JSON, with `$select` and `$top` applied.
    pub(crate) fn apply(&self, messages: &[StoredMessage]) -> Result<Vec<Value>, GraphError> {
        let mut out = Vec::new();
        for message in messages
            .iter()
            .filter(|m| self.filter.as_ref().is_none_or(|f| f.matches(m)))
        {
            if self.top.is_some_and(|top| out.len() >= top) {
                break;
            }
            let full = serde_json::to_value(message).unwrap_or(Value::Null);
            let Some(select) = &self.select else {
                out.push(full);
                continue;
            };
            let Value::Object(object) = full else {
                continue;
            };
            let mut picked = Map::new();
            if let Some(id) = object.get("id") {
                picked.insert("id".into(), id.clone());
            }
            for name in select {
                let Some((key, value)) = object.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))
                else {
                    if name.eq_ignore_ascii_case("singleValueExtendedProperties") {
                        continue;
                    }
                    return Err(GraphError::new(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        format!(
                            "Could not find a property named '{name}' on type 'microsoft.graph.message'."
                        ),
                    ));
                };
                picked.insert(key.clone(), value.clone());
            }
            out.push(Value::Object(picked));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        assert_eq!(
            Filter::parse(
                "singleValueExtendedProperties/Any(ep: ep/id eq 'String {8b0c5c1e-4f3a-4d7e-9a26-6d1f0e2b7c53} Name MailhostId' and ep/value eq 'it''s')"
            )
            .unwrap(),
            Filter::ExtendedProperty {
                id: "String {8b0c5c1e-4f3a-4d7e-9a26-6d1f0e2b7c53} Name MailhostId".into(),
                value: "it's".into()
            }
        );
        assert_eq!(
            Filter::parse("SINGLEVALUEEXTENDEDPROPERTIES/any(x:x/value eq 'v' and x/id eq 'i')")
                .unwrap(),
            Filter::ExtendedProperty {
                id: "i".into(),
                value: "v".into()
            }
        );
        assert_eq!(
            Filter::parse("internetMessageId eq '<a@b>'").unwrap(),
            Filter::InternetMessageId("<a@b>".into())
        );
        for bad in [
            "subject eq 'x'",
            "internetMessageId eq <a@b>",
            "singleValueExtendedProperties/Any(ep: ep/id eq 'i')",
            "internetMessageId eq 'a' or subject eq 'b'",
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
    }
}
