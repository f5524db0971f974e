//! What templates read from the database: `var.value` / `var.json`, `conn.ID` and
//! `ti.xcom_pull(...)`, all served from a [`Lookups`].

use std::fmt::{self, Write as _};
use std::sync::Arc;

use minijinja::value::{Object, ObjectRepr, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};

use super::python::{as_string, bind, invalid, required};
use super::{Connection, Lookups};

/// `var.value` (text) and `var.json` (parsed): Airflow's `VariableAccessor`.
#[derive(Debug)]
pub(super) struct VariableAccessor {
    lookups: Arc<Lookups>,
    json: bool,
}

impl VariableAccessor {
    pub(super) fn value(lookups: Arc<Lookups>, json: bool) -> Value {
        Value::from_object(VariableAccessor { lookups, json })
    }

    fn get(&self, key: &str) -> Option<Result<Value, Error>> {
        let raw = self.lookups.variables.get(key)?;
        if let Some(hook) = &self.lookups.on_variable_read {
            hook(raw);
            // Parts of a JSON value can be rendered on their own.
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(raw) {
                let mut leaves = Vec::new();
                json_leaves(&json, &mut leaves);
                leaves.iter().for_each(|s| hook(s));
            }
        }
        Some(if self.json {
            serde_json::from_str::<serde_json::Value>(raw)
                .map(Value::from_serialize)
                .map_err(|e| invalid(format!("variable {key} is not valid JSON ({e})")))
        } else {
            Ok(Value::from(raw.as_str()))
        })
    }
}

impl Object for VariableAccessor {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    /// A missing key is an error with its name (Airflow raises), not an anonymous undefined.
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        Some(match self.get(key) {
            Some(Ok(value)) => value,
            Some(Err(e)) => Value::from(e),
            None => Value::from(invalid(format!("variable {key} does not exist"))),
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if method != "get" {
            return Err(Error::from(ErrorKind::UnknownMethod));
        }
        let what = if self.json {
            "var.json.get"
        } else {
            "var.value.get"
        };
        let [key, default] = bind(what, args, ["key", "default"], 2)?;
        let key = as_string(required(&key, what, "key")?, what, "key")?;
        match self.get(&key) {
            Some(value) => value,
            None => Ok(default.unwrap_or_else(|| Value::from(()))),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<VariableAccessor (dynamic access)>")
    }
}

/// `conn`: Airflow's `ConnectionAccessor`.
#[derive(Debug)]
pub(super) struct ConnectionAccessor {
    pub(super) lookups: Arc<Lookups>,
}

impl Object for ConnectionAccessor {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let id = key.as_str()?;
        Some(match self.lookups.connections.get(id) {
            Some(conn) => Value::from_object(ConnectionValue(conn.clone())),
            None => Value::from(invalid(format!("connection {id} is not defined"))),
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if method != "get" {
            return Err(Error::from(ErrorKind::UnknownMethod));
        }
        let [id, default] = bind("conn.get", args, ["conn_id", "default_conn"], 2)?;
        let id = as_string(required(&id, "conn.get", "conn_id")?, "conn.get", "conn_id")?;
        Ok(match self.lookups.connections.get(&id) {
            Some(conn) => Value::from_object(ConnectionValue(conn.clone())),
            None => default.unwrap_or_else(|| Value::from(())),
        })
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<ConnectionAccessor (dynamic access)>")
    }
}

/// One connection in a template. Prints as its id so that secrets do not leak by accident.
#[derive(Debug)]
pub(super) struct ConnectionValue(pub(super) Connection);

/// Python's `quote(s, safe="")` (`plus`: `quote_plus`, a space becomes `+`).
fn quote(s: &str, plus: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(b))
            }
            b' ' if plus => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

impl ConnectionValue {
    /// Airflow's `extra_dejson`: the parsed `extra`, `{}` when empty or not JSON.
    fn extra_dejson(&self) -> Value {
        self.0
            .extra
            .as_deref()
            .and_then(|e| serde_json::from_str::<serde_json::Value>(e).ok())
            .map_or_else(
                || Value::from_serialize(serde_json::Map::new()),
                Value::from_serialize,
            )
    }

    /// Airflow's `Connection.get_uri()` (task SDK): `type://login:password@host:port/schema`,
    /// `extra` as the query (`?k=v` when it is a JSON object of strings, else `__extra__=`).
    pub(super) fn uri(&self) -> String {
        let c = &self.0;
        let mut uri = if c.conn_type.is_empty() {
            "//".to_string()
        } else {
            format!("{}://", c.conn_type.to_lowercase().replace('_', "-"))
        };
        let host = match c.host.as_deref().and_then(|h| h.split_once("://")) {
            Some((protocol, _)) if protocol == c.conn_type => c.host.as_deref(),
            Some((protocol, rest)) => {
                uri.push_str(protocol);
                uri.push_str("://");
                Some(rest)
            }
            None => c.host.as_deref(),
        };
        let mut authority = String::new();
        if let Some(login) = &c.login {
            authority.push_str(&quote(login, false));
        }
        if let Some(password) = &c.password {
            authority.push(':');
            authority.push_str(&quote(password, false));
        }
        if !authority.is_empty() {
            uri.push_str(&authority);
            uri.push('@');
        }
        let host = host.filter(|h| !h.is_empty()).map(|h| quote(h, false));
        if let Some(host) = &host {
            uri.push_str(host);
        }
        if let Some(port) = c.port {
            let at = if host.is_none() && authority.is_empty() {
                "@"
            } else {
                ""
            };
            let _ = write!(uri, "{at}:{port}");
        }
        let schema = c.schema.as_deref().filter(|s| !s.is_empty());
        if let Some(schema) = schema {
            uri.push('/');
            uri.push_str(&quote(schema, false));
        }
        if let Some(extra) = c.extra.as_deref().filter(|e| !e.is_empty()) {
            uri.push_str(if schema.is_some() { "?" } else { "/?" });
            // Airflow keeps `k=v` only when it parses back to the same dict: string values.
            match serde_json::from_str::<indexmap::IndexMap<String, serde_json::Value>>(extra) {
                Ok(map) if !map.is_empty() && map.values().all(|v| v.is_string()) => {
                    let pairs: Vec<String> = map
                        .iter()
                        .map(|(k, v)| {
                            let v = v.as_str().unwrap_or_default();
                            format!("{}={}", quote(k, true), quote(v, true))
                        })
                        .collect();
                    uri.push_str(&pairs.join("&"));
                }
                _ => {
                    uri.push_str("__extra__=");
                    uri.push_str(&quote(extra, true));
                }
            }
        }
        uri
    }
}

impl Object for ConnectionValue {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let c = &self.0;
        let text = |v: &Option<String>| v.as_deref().map_or(Value::from(()), Value::from);
        Some(match key.as_str()? {
            "conn_id" => Value::from(c.conn_id.as_str()),
            "conn_type" => Value::from(c.conn_type.as_str()),
            "host" => text(&c.host),
            "schema" => text(&c.schema),
            "login" => text(&c.login),
            "password" => text(&c.password),
            "port" => c.port.map_or(Value::from(()), Value::from),
            "extra" => text(&c.extra),
            "extra_dejson" => self.extra_dejson(),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "get_uri" => {
                bind(method, args, [], 0)?;
                Ok(Value::from(self.uri()))
            }
            "get_extra_dejson" => {
                bind(method, args, [], 0)?;
                Ok(self.extra_dejson())
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.conn_id)
    }
}

/// `ti` / `task_instance`.
#[derive(Debug)]
pub(super) struct TaskInstance {
    pub(super) dag_id: String,
    pub(super) task_id: String,
    pub(super) run_id: String,
    pub(super) try_number: u32,
    pub(super) map_index: i32,
    pub(super) max_tries: u32,
    pub(super) lookups: Arc<Lookups>,
}

impl TaskInstance {
    /// Airflow 3's `RuntimeTaskInstance.xcom_pull(task_ids=None, dag_id=None,
    /// key='return_value', include_prior_dates=False, *, default=None, run_id=None)`: no task
    /// ids means this task; a string gives one value, a list a list (missing ones `default`).
    /// Only this run's XComs are at hand, so another DAG, run or prior dates are errors.
    fn xcom_pull(&self, args: &[Value]) -> Result<Value, Error> {
        const WHAT: &str = "ti.xcom_pull";
        let [task_ids, dag_id, key, include_prior_dates, default, run_id] = bind(
            WHAT,
            args,
            [
                "task_ids",
                "dag_id",
                "key",
                "include_prior_dates",
                "default",
                "run_id",
            ],
            4,
        )?;
        for (given, current, name) in [
            (&dag_id, &self.dag_id, "dag_id"),
            (&run_id, &self.run_id, "run_id"),
        ] {
            if let Some(given) = given {
                let given = as_string(given, WHAT, name)?;
                if &given != current {
                    return Err(invalid(format!(
                        "{WHAT}(): only XComs of this DAG run can be pulled, not {name}={given}"
                    )));
                }
            }
        }
        if include_prior_dates.is_some_and(|v| v.is_true()) {
            return Err(invalid(format!(
                "{WHAT}(): include_prior_dates=True is not supported"
            )));
        }
        let key = match &key {
            Some(key) => as_string(key, WHAT, "key")?,
            None => "return_value".to_string(),
        };
        let default = default.unwrap_or_else(|| Value::from(()));
        let pull = |task_id: String| {
            self.lookups
                .xcoms
                .get(&(task_id, key.clone()))
                .map_or_else(|| default.clone(), Value::from_serialize)
        };
        match task_ids {
            None => Ok(pull(self.task_id.clone())),
            Some(id) if id.kind() == ValueKind::String => {
                Ok(pull(as_string(&id, WHAT, "task_ids")?))
            }
            Some(ids) if matches!(ids.kind(), ValueKind::Seq | ValueKind::Iterable) => ids
                .try_iter()?
                .map(|id| as_string(&id, WHAT, "task_ids").map(&pull))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::from),
            Some(other) => Err(invalid(format!(
                "{WHAT}(): task_ids must be a task id or a list of them, not {other:?}"
            ))),
        }
    }
}

impl Object for TaskInstance {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "dag_id" => Value::from(self.dag_id.as_str()),
            "task_id" => Value::from(self.task_id.as_str()),
            "run_id" => Value::from(self.run_id.as_str()),
            "try_number" => Value::from(self.try_number),
            "map_index" => Value::from(self.map_index),
            "max_tries" => Value::from(self.max_tries),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "xcom_pull" => self.xcom_pull(args),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<TaskInstance: {}.{} {} map_index={}>",
            self.dag_id, self.task_id, self.run_id, self.map_index
        )
    }
}

/// The strings and numbers inside a JSON value.
fn json_leaves(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Number(n) => out.push(n.to_string()),
        serde_json::Value::Array(a) => a.iter().for_each(|v| json_leaves(v, out)),
        serde_json::Value::Object(o) => o.values().for_each(|v| json_leaves(v, out)),
        _ => {}
    }
}
