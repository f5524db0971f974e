//! A connection body's fields: Airflow's checks, and how a body lands on a stored connection
//! and a stored one is shown, secrets kept and masked.

use serde_json::Value;
use updraft_shared::api::ConnectionBody;

use super::MAX_ID_LEN;
use crate::api::variables::{in_mask, no_team_name, Mask};
use crate::api::ApiError;
use crate::secrets::mask::MASK;
use crate::secrets::SensitiveNames;
use crate::store::connections::PlainConnection;

/// Airflow's checks of a body: the id's characters and length, `extra` a JSON object.
/// Returns the body with `extra: ""` read as `{}` (Airflow's backward compatibility).
pub(super) fn checked(mut body: ConnectionBody) -> Result<ConnectionBody, ApiError> {
    let id = &body.connection_id;
    let len = id.chars().count();
    let chars_ok = id
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '-');
    if len == 0 || len > MAX_ID_LEN || !chars_ok {
        return Err(ApiError::Unprocessable(format!(
            "connection_id: `{id}` must be 1 to {MAX_ID_LEN} letters, digits, `_`, `.` or `-`"
        )));
    }
    no_team_name(&body.team_name)?;
    if let Some(Some(extra)) = &mut body.extra {
        if extra.trim().is_empty() {
            *extra = "{}".into();
        }
        match serde_json::from_str::<Value>(extra) {
            Ok(Value::Object(_)) => {}
            _ => {
                return Err(ApiError::Unprocessable(
                    "extra: The `extra` field must be a valid JSON object (e.g., {\"key\": \"value\"}) given as a string".into(),
                ))
            }
        }
    }
    Ok(body)
}

/// A new connection from a body.
pub(super) fn from_body(body: &ConnectionBody) -> PlainConnection {
    PlainConnection {
        conn_id: body.connection_id.clone(),
        conn_type: body.conn_type.clone(),
        description: body.description.clone().flatten(),
        host: body.host.clone().flatten(),
        schema: body.schema.clone().flatten(),
        login: body.login.clone().flatten(),
        password: body.password.clone().flatten(),
        port: body.port.flatten(),
        extra: body.extra.clone().flatten(),
    }
}

/// `stored` with the body's fields applied (as the mask allows): absent fields stay, null
/// clears, `***` keeps the stored password and stored entries of `extra`.
pub(super) fn patched(
    names: &SensitiveNames,
    mut c: PlainConnection,
    body: &ConnectionBody,
    mask: &Mask,
) -> PlainConnection {
    fn set<T: Clone>(target: &mut Option<T>, given: &Option<Option<T>>, mask: &Mask, field: &str) {
        if let Some(v) = given {
            if in_mask(mask, field) {
                *target = v.clone();
            }
        }
    }
    if in_mask(mask, "conn_type") {
        c.conn_type = body.conn_type.clone();
    }
    set(&mut c.description, &body.description, mask, "description");
    set(&mut c.host, &body.host, mask, "host");
    set(&mut c.login, &body.login, mask, "login");
    set(&mut c.schema, &body.schema, mask, "schema");
    set(&mut c.port, &body.port, mask, "port");
    if in_mask(mask, "password") {
        match &body.password {
            Some(Some(p)) if p == MASK && c.password.is_some() => {}
            Some(p) => c.password = p.clone(),
            None => {}
        }
    }
    if in_mask(mask, "extra") {
        match &body.extra {
            Some(Some(new)) => {
                let incoming = serde_json::from_str::<Value>(new).ok();
                let stored = c
                    .extra
                    .as_deref()
                    .and_then(|e| serde_json::from_str::<Value>(e).ok());
                c.extra = Some(match (incoming, stored) {
                    (Some(incoming), Some(stored)) => {
                        let merged = names.merge_masked(&incoming, Some(&stored));
                        if merged == incoming {
                            new.clone()
                        } else {
                            merged.to_string()
                        }
                    }
                    _ => new.clone(),
                });
            }
            Some(None) => c.extra = None,
            None => {}
        }
    }
    c
}

/// `extra` as shown: sensitive keys masked (the text kept as written when nothing is).
pub(super) fn shown_extra(names: &SensitiveNames, extra: &str) -> String {
    match serde_json::from_str::<Value>(extra) {
        Ok(v) => {
            let redacted = names.redact_json(&v);
            if redacted == v {
                extra.to_string()
            } else {
                redacted.to_string()
            }
        }
        Err(_) => names.redact_extra(extra),
    }
}

pub(super) fn shown_password(names: &SensitiveNames, password: Option<&str>) -> Option<String> {
    password.map(|p| {
        if names.is_sensitive("password") {
            MASK.to_string()
        } else {
            p.to_string()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::variables::update_mask;
    use serde_json::json;

    #[test]
    fn patch_keeps_masked_secrets_and_applies_the_rest() {
        let names = SensitiveNames::default();
        let stored = PlainConnection {
            conn_id: "c".into(),
            conn_type: "http".into(),
            host: Some("old".into()),
            password: Some("pw".into()),
            extra: Some(r#"{"api_key": "k", "region": "eu"}"#.into()),
            ..Default::default()
        };
        let body = ConnectionBody {
            connection_id: "c".into(),
            conn_type: "http".into(),
            host: Some(Some("new".into())),
            password: Some(Some("***".into())),
            extra: Some(Some(r#"{"api_key": "***", "region": "us"}"#.into())),
            ..Default::default()
        };
        let new = patched(&names, stored.clone(), &body, &None);
        assert_eq!(new.host.as_deref(), Some("new"));
        assert_eq!(new.password.as_deref(), Some("pw"));
        let extra: Value = serde_json::from_str(new.extra.as_deref().unwrap()).unwrap();
        assert_eq!(extra, json!({"api_key": "k", "region": "us"}));
        let mask = update_mask(&["host".into()], super::super::FIELDS).unwrap();
        let only_host = ConnectionBody {
            password: Some(None),
            ..body
        };
        let new = patched(&names, stored, &only_host, &mask);
        assert_eq!(new.password.as_deref(), Some("pw"));
    }

    #[test]
    fn extra_must_be_a_json_object() {
        let body = |extra: &str| ConnectionBody {
            connection_id: "c".into(),
            conn_type: "http".into(),
            extra: Some(Some(extra.into())),
            ..Default::default()
        };
        assert!(checked(body("[1]")).is_err());
        assert!(checked(body("nope")).is_err());
        assert_eq!(
            checked(body("")).unwrap().extra,
            Some(Some("{}".to_string()))
        );
        let bad_id = ConnectionBody {
            connection_id: "a b".into(),
            ..body("{}")
        };
        assert!(checked(bad_id).is_err());
    }
}
