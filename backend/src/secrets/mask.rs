//! Which key names hold secrets, and masking them as `***`.
//!
//! Airflow's rule (`should_hide_value_for_key`): a name is sensitive when, lower-cased and with
//! every run of non-word characters turned into `_`, it contains one of the fragments below (or
//! one added by `core.sensitive_var_conn_names`). `api-key`, `API Key` and `my.apikey` all match.

use serde_json::Value;

use crate::config::CoreSettings;

/// What a masked value reads as.
pub const MASK: &str = "***";

/// Airflow's `DEFAULT_SENSITIVE_FIELDS`.
pub const DEFAULT_SENSITIVE_FIELDS: &[&str] = &[
    "access_key",
    "access_token",
    "api_key",
    "apikey",
    "auth_header",
    "authorization",
    "bearer",
    "connection_string",
    "dsn",
    "keyfile_dict",
    "passphrase",
    "passwd",
    "password",
    "private_key",
    "proxies",
    "proxy",
    "proxy_password",
    "secret",
    "service_account",
    "service_key",
    "token",
    "webhook_url",
];

#[derive(Debug, Clone)]
pub struct SensitiveNames {
    fragments: Vec<String>,
    enabled: bool,
}

impl Default for SensitiveNames {
    fn default() -> Self {
        Self {
            fragments: DEFAULT_SENSITIVE_FIELDS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            enabled: true,
        }
    }
}

/// Lower-case, every run of non-word characters as one `_`.
fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_gap = false;
    for c in name.trim().chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() || c == '_' {
            out.push(c);
            in_gap = false;
        } else if !in_gap {
            out.push('_');
            in_gap = true;
        }
    }
    out
}

impl SensitiveNames {
    pub fn from_settings(core: &CoreSettings) -> Self {
        let mut names = Self {
            enabled: core.hide_sensitive_var_conn_fields,
            ..Self::default()
        };
        for extra in &core.sensitive_var_conn_names {
            let extra = normalize(extra);
            if !extra.is_empty() && !names.fragments.contains(&extra) {
                names.fragments.push(extra);
            }
        }
        names
    }

    /// Whether a variable key or a field name looks like it holds a secret.
    pub fn is_sensitive(&self, name: &str) -> bool {
        if !self.enabled {
            return false;
        }
        let name = normalize(name);
        self.fragments.iter().any(|f| name.contains(f.as_str()))
    }

    /// A JSON value with the values of sensitive keys (at any depth) replaced by `***`.
    pub fn redact_json(&self, value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = if self.is_sensitive(k) && !v.is_null() {
                            Value::String(MASK.into())
                        } else {
                            self.redact_json(v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.redact_json(v)).collect())
            }
            other => other.clone(),
        }
    }

    /// A connection's `extra` as shown: sensitive keys masked when it is a JSON object; text
    /// that is not JSON is shown whole only when hiding is off.
    pub fn redact_extra(&self, extra: &str) -> String {
        match serde_json::from_str::<Value>(extra) {
            Ok(v) => self.redact_json(&v).to_string(),
            Err(_) if self.enabled => MASK.into(),
            Err(_) => extra.to_string(),
        }
    }

    /// Where an incoming JSON value has `***` under a sensitive key, the stored value's entry
    /// is kept: what a client read back can be sent back without erasing the secret.
    pub fn merge_masked(&self, incoming: &Value, stored: Option<&Value>) -> Value {
        match (incoming, stored) {
            (Value::Object(new), Some(Value::Object(old))) => Value::Object(
                new.iter()
                    .map(|(k, v)| {
                        let kept = match (v, old.get(k)) {
                            (Value::String(s), Some(prev)) if s == MASK && self.is_sensitive(k) => {
                                prev.clone()
                            }
                            (v, prev) => self.merge_masked(v, prev),
                        };
                        (k.clone(), kept)
                    })
                    .collect(),
            ),
            (Value::Array(new), Some(Value::Array(old))) => Value::Array(
                new.iter()
                    .enumerate()
                    .map(|(i, v)| self.merge_masked(v, old.get(i)))
                    .collect(),
            ),
            (v, _) => v.clone(),
        }
    }

    /// Every string under a sensitive key (at any depth), for the task-log masker.
    pub fn sensitive_strings(&self, value: &Value, out: &mut Vec<String>) {
        fn all_strings(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::String(s) => out.push(s.clone()),
                Value::Number(n) => out.push(n.to_string()),
                Value::Array(a) => a.iter().for_each(|v| all_strings(v, out)),
                Value::Object(o) => o.values().for_each(|v| all_strings(v, out)),
                _ => {}
            }
        }
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    if self.is_sensitive(k) {
                        all_strings(v, out);
                    } else {
                        self.sensitive_strings(v, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| self.sensitive_strings(v, out)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_match_as_airflow_does() {
        let n = SensitiveNames::default();
        for name in [
            "password",
            "DB_PASSWORD",
            "api-key",
            "API Key",
            "my.apikey",
            "slack_webhook_url",
            "aws_secret_access_key",
            "Authorization",
            "github_token",
        ] {
            assert!(n.is_sensitive(name), "{name}");
        }
        for name in ["host", "region", "bucket", "username", "schema"] {
            assert!(!n.is_sensitive(name), "{name}");
        }
    }

    #[test]
    fn extra_fragments_and_switch_from_config() {
        let core = CoreSettings {
            sensitive_var_conn_names: vec!["Account Number".into()],
            ..Default::default()
        };
        let n = SensitiveNames::from_settings(&core);
        assert!(n.is_sensitive("bank_account_number"));
        let off = SensitiveNames::from_settings(&CoreSettings {
            hide_sensitive_var_conn_fields: false,
            ..Default::default()
        });
        assert!(!off.is_sensitive("password"));
    }

    #[test]
    fn redacts_nested_json_and_merges_masks_back() {
        let n = SensitiveNames::default();
        let stored = json!({"region": "eu", "auth": {"api_key": "k-123", "user": "bob"}, "token": ["a", "b"]});
        let shown = n.redact_json(&stored);
        assert_eq!(
            shown,
            json!({"region": "eu", "auth": {"api_key": "***", "user": "bob"}, "token": "***"})
        );
        let mut edited = shown.clone();
        edited["region"] = json!("us");
        let merged = n.merge_masked(&edited, Some(&stored));
        assert_eq!(
            merged,
            json!({"region": "us", "auth": {"api_key": "k-123", "user": "bob"}, "token": ["a", "b"]})
        );
        let mut found = Vec::new();
        n.sensitive_strings(&stored, &mut found);
        assert_eq!(found, vec!["k-123", "a", "b"]);
        assert_eq!(n.redact_extra("not json"), "***");
    }
}
