//! A variable's value in and out: stored as text, shown with secrets masked, and `***` sent
//! back keeping what it hides.

use serde_json::Value;

use crate::secrets::mask::MASK;
use crate::secrets::SensitiveNames;

/// The text stored for a body's value: strings as they are, other JSON as its text.
pub(super) fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A plain value as shown: `***` for a sensitive key; a JSON object or list with its
/// sensitive keys masked (the text kept as written when nothing is masked).
pub fn shown_value(names: &SensitiveNames, key: &str, plain: &str) -> String {
    if names.is_sensitive(key) {
        return MASK.into();
    }
    match serde_json::from_str::<Value>(plain) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => {
            let redacted = names.redact_json(&v);
            if redacted == v {
                plain.to_string()
            } else {
                redacted.to_string()
            }
        }
        _ => plain.to_string(),
    }
}

/// The plain text to store for an incoming value, given the stored one: `None` keeps the
/// stored value (`***` sent back for a sensitive key); JSON with `***` under sensitive keys
/// keeps those entries.
pub(super) fn incoming_value(
    names: &SensitiveNames,
    key: &str,
    incoming: &Value,
    stored: Option<&str>,
) -> Option<String> {
    let text = value_text(incoming);
    let Some(stored) = stored else {
        return Some(text);
    };
    if text == MASK && names.is_sensitive(key) {
        return None;
    }
    let parsed = serde_json::from_str::<Value>(&text).ok();
    let old = serde_json::from_str::<Value>(stored).ok();
    match (parsed, old) {
        (Some(new @ (Value::Object(_) | Value::Array(_))), Some(old)) => {
            let merged = names.merge_masked(&new, Some(&old));
            Some(if merged == new {
                text
            } else {
                merged.to_string()
            })
        }
        _ => Some(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_masked_by_key_and_inside_json() {
        let n = SensitiveNames::default();
        assert_eq!(shown_value(&n, "db_password", "hunter2"), "***");
        assert_eq!(shown_value(&n, "region", "eu-west-1"), "eu-west-1");
        assert_eq!(shown_value(&n, "cfg", r#"{"a": 1}"#), r#"{"a": 1}"#);
        let shown = shown_value(&n, "cfg", r#"{"api_key": "k", "region": "eu"}"#);
        let v: Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(v, json!({"api_key": "***", "region": "eu"}));
    }

    #[test]
    fn masked_values_sent_back_keep_the_stored_ones() {
        let n = SensitiveNames::default();
        assert_eq!(
            incoming_value(&n, "db_password", &json!("***"), Some("old")),
            None
        );
        assert_eq!(
            incoming_value(&n, "region", &json!("***"), Some("old")).as_deref(),
            Some("***")
        );
        let merged = incoming_value(
            &n,
            "cfg",
            &json!(r#"{"api_key": "***", "region": "us"}"#),
            Some(r#"{"api_key": "k", "region": "eu"}"#),
        )
        .unwrap();
        let v: Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(v, json!({"api_key": "k", "region": "us"}));
        assert_eq!(
            incoming_value(&n, "x", &json!(5), None).as_deref(),
            Some("5")
        );
    }
}
