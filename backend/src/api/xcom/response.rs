//! XCom rows as the API shows them, values as JSON or printed like Python's `str()`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use updraft_shared::api::{XComResponse, XComResponseNative, XComResponseString};

use crate::store::entities::{dag_run, xcom};

// Responses

/// What an XCom response needs from its run.
#[derive(Clone, Copy)]
pub(super) struct RunTimes {
    logical_date: Option<DateTime<Utc>>,
    run_after: DateTime<Utc>,
}

impl From<&dag_run::Model> for RunTimes {
    fn from(run: &dag_run::Model) -> Self {
        Self {
            logical_date: run.logical_date,
            run_after: run.run_after,
        }
    }
}

pub(super) fn entry(x: xcom::Model, run: RunTimes) -> XComResponse {
    XComResponse {
        dag_display_name: x.dag_id.clone(),
        task_display_name: x.task_id.clone(),
        key: x.key,
        timestamp: x.timestamp,
        logical_date: run.logical_date,
        map_index: x.map_index,
        task_id: x.task_id,
        dag_id: x.dag_id,
        run_id: x.run_id,
        run_after: run.run_after,
    }
}

pub(super) fn native(x: xcom::Model, run: RunTimes) -> XComResponseNative {
    // Stored values are JSON; a row written otherwise shows as the text it holds.
    let value = serde_json::from_str(&x.value).unwrap_or_else(|_| Value::String(x.value.clone()));
    let e = entry(x, run);
    XComResponseNative {
        key: e.key,
        timestamp: e.timestamp,
        logical_date: e.logical_date,
        map_index: e.map_index,
        task_id: e.task_id,
        dag_id: e.dag_id,
        run_id: e.run_id,
        dag_display_name: e.dag_display_name,
        task_display_name: e.task_display_name,
        run_after: e.run_after,
        value,
    }
}

pub(super) fn stringified(n: XComResponseNative) -> XComResponseString {
    XComResponseString {
        value: python_str(&n.value),
        key: n.key,
        timestamp: n.timestamp,
        logical_date: n.logical_date,
        map_index: n.map_index,
        task_id: n.task_id,
        dag_id: n.dag_id,
        run_id: n.run_id,
        dag_display_name: n.dag_display_name,
        task_display_name: n.task_display_name,
        run_after: n.run_after,
    }
}

/// Python's `str()` of a JSON value, as Airflow's `stringify` prints it (null stays null).
fn python_str(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => {
            let mut out = String::new();
            push_python_repr(other, &mut out);
            Some(out)
        }
    }
}

fn push_python_repr(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => push_python_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                push_python_repr(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                push_python_string(k, out);
                out.push_str(": ");
                push_python_repr(v, out);
            }
            out.push('}');
        }
    }
}

/// Python's `repr()` of a string: single quotes unless only double quotes avoid escaping.
fn push_python_string(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push(quote);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_print_like_python_str() {
        assert_eq!(
            python_str(&json!("plain text")).as_deref(),
            Some("plain text")
        );
        assert_eq!(python_str(&Value::Null), None);
        assert_eq!(python_str(&json!(true)).as_deref(), Some("True"));
        assert_eq!(python_str(&json!(3)).as_deref(), Some("3"));
        assert_eq!(
            python_str(&json!({"rows": [1, null, false], "who": "it's"})).as_deref(),
            Some(r#"{'rows': [1, None, False], 'who': "it's"}"#)
        );
    }
}
