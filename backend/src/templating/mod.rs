//! Rendering task templates with Airflow's context names, so tutorials port line by line.
//!
//! minijinja with strict undefined (Airflow's DAG default, `StrictUndefined`): a misspelt name
//! is an error, not an empty string. Dates follow Airflow: `ds` and `ts` come from the logical
//! date in UTC.
//!
//! What Airflow 3 hands its templates as Python objects is modelled with minijinja objects:
//! - datetimes (`logical_date`, `data_interval_*`, `prev_*`, `dag_run.logical_date`) print like
//!   `str()` of a pendulum 3 `DateTime` (`2024-01-01 00:00:00+00:00`) and carry Python's and
//!   pendulum's methods. minijinja cannot overload `+`/`-` for objects, so
//!   `logical_date - macros.timedelta(days=1)` is written the pendulum way:
//!   `logical_date.subtract(days=1)` or `logical_date.subtract(macros.timedelta(days=1))`;
//! - `var.value.KEY`, `var.json.KEY`, `conn.ID.*` and `ti.xcom_pull(...)` read a [`Lookups`] the
//!   engine fills from the database, only when [`needs_lookups`] says the template asks for them;
//! - lists and dicts print like Python's `str()` (`{'a': [1, None]}`), and dicts and strings have
//!   the Python methods templates use most (`dag_run.conf.get('key', 'default')`).

mod datetime;
mod lookups;
mod macros;
mod python;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use minijinja::value::Value;
use minijinja::{Environment, Error, UndefinedBehavior};

use datetime::PyDateTime;
use lookups::{ConnectionAccessor, TaskInstance, VariableAccessor};
use python::{python_formatter, python_methods};

/// Called with a secret value a template read (the task log masks it).
pub type SecretHook = Arc<dyn Fn(&str) + Send + Sync>;

/// What the engine reads from the database for a template that needs it (see [`needs_lookups`]).
#[derive(Clone, Default)]
pub struct Lookups {
    /// Variables by key (plain text values).
    pub variables: HashMap<String, String>,
    /// Connections by conn_id.
    pub connections: HashMap<String, Connection>,
    /// XComs of this DAG run: (task_id, key) -> value.
    pub xcoms: HashMap<(String, String), serde_json::Value>,
    /// Told every variable value a template reads, so the task log can mask it.
    pub on_variable_read: Option<SecretHook>,
}

impl fmt::Debug for Lookups {
    /// Keys only: variable and XCom values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lookups")
            .field("variables", &self.variables.keys().collect::<Vec<_>>())
            .field(
                "connections",
                &self.connections.values().collect::<Vec<_>>(),
            )
            .field("xcoms", &self.xcoms.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// An Airflow connection as templates see it (`conn.ID.host`, ...).
#[derive(Clone, Default, PartialEq)]
pub struct Connection {
    pub conn_id: String,
    pub conn_type: String,
    pub host: Option<String>,
    pub schema: Option<String>,
    pub login: Option<String>,
    pub password: Option<String>,
    pub port: Option<i32>,
    pub extra: Option<String>,
}

impl fmt::Debug for Connection {
    /// Redacts the password and `extra` (which often holds keys), as Airflow masks them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "***");
        f.debug_struct("Connection")
            .field("conn_id", &self.conn_id)
            .field("conn_type", &self.conn_type)
            .field("host", &self.host)
            .field("schema", &self.schema)
            .field("login", &self.login)
            .field("password", &redacted(&self.password))
            .field("port", &self.port)
            .field("extra", &redacted(&self.extra))
            .finish()
    }
}

/// What a template can see about the run and the task being rendered.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub dag_id: String,
    pub task_id: String,
    pub run_id: String,
    /// "scheduled", "manual" or "backfill".
    pub run_type: String,
    pub logical_date: DateTime<Utc>,
    pub data_interval_start: DateTime<Utc>,
    pub data_interval_end: DateTime<Utc>,
    pub prev_data_interval_start_success: Option<DateTime<Utc>>,
    pub prev_data_interval_end_success: Option<DateTime<Utc>>,
    pub prev_start_date_success: Option<DateTime<Utc>>,
    /// The DAG's params with the run's conf applied over their defaults.
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The run's `conf` as triggered.
    pub conf: serde_json::Map<String, serde_json::Value>,
    pub try_number: u32,
    /// -1 for a task that is not mapped, as in Airflow.
    pub map_index: i32,
    pub max_tries: u32,
    pub owner: String,
}

/// Airflow's `ts`: ISO 8601 with the offset, no fraction when there is none.
fn iso(t: DateTime<Utc>) -> String {
    crate::timefmt::iso(t)
}

impl RunContext {
    /// `ds`, `ds_nodash`, `ts`, `ts_nodash`: the logical date's text forms, as Airflow names
    /// them (for templates and for the `python` operator's context).
    fn date_names(&self) -> [(&'static str, String); 4] {
        let ld = self.logical_date;
        [
            ("ds", ld.format("%Y-%m-%d").to_string()),
            ("ds_nodash", ld.format("%Y%m%d").to_string()),
            ("ts", iso(ld)),
            ("ts_nodash", ld.format("%Y%m%dT%H%M%S").to_string()),
        ]
    }

    /// The context a `python` task gets as JSON: Airflow's names, dates as ISO strings.
    pub fn to_json(&self) -> serde_json::Value {
        let ld = self.logical_date;
        let opt = |t: Option<DateTime<Utc>>| t.map(iso);
        let mut ctx = serde_json::json!({
            "logical_date": iso(ld),
            "data_interval_start": iso(self.data_interval_start),
            "data_interval_end": iso(self.data_interval_end),
            "prev_data_interval_start_success": opt(self.prev_data_interval_start_success),
            "prev_data_interval_end_success": opt(self.prev_data_interval_end_success),
            "prev_start_date_success": opt(self.prev_start_date_success),
            "run_id": self.run_id,
            "params": self.params,
            "dag": {"dag_id": self.dag_id, "owner": self.owner},
            "task": {"task_id": self.task_id},
            "dag_run": {"run_id": self.run_id, "run_type": self.run_type, "conf": self.conf, "logical_date": iso(ld)},
            "ti": {"dag_id": self.dag_id, "task_id": self.task_id, "run_id": self.run_id, "try_number": self.try_number, "max_tries": self.max_tries, "map_index": self.map_index},
        });
        for (name, value) in self.date_names() {
            ctx[name] = serde_json::Value::String(value);
        }
        ctx
    }

    /// The template context as Airflow names it.
    pub fn to_value(&self, lookups: Arc<Lookups>) -> Value {
        let ld = self.logical_date;
        let opt = |t: Option<DateTime<Utc>>| t.map_or(Value::from(()), PyDateTime::value);
        let ti = Value::from_object(TaskInstance {
            dag_id: self.dag_id.clone(),
            task_id: self.task_id.clone(),
            run_id: self.run_id.clone(),
            try_number: self.try_number,
            map_index: self.map_index,
            max_tries: self.max_tries,
            lookups: lookups.clone(),
        });
        let dag_run = Value::from_iter([
            ("dag_id", Value::from(self.dag_id.as_str())),
            ("run_id", Value::from(self.run_id.as_str())),
            ("run_type", Value::from(self.run_type.as_str())),
            ("conf", Value::from_serialize(&self.conf)),
            ("logical_date", PyDateTime::value(ld)),
            (
                "data_interval_start",
                PyDateTime::value(self.data_interval_start),
            ),
            (
                "data_interval_end",
                PyDateTime::value(self.data_interval_end),
            ),
        ]);
        let var = Value::from_iter([
            ("value", VariableAccessor::value(lookups.clone(), false)),
            ("json", VariableAccessor::value(lookups.clone(), true)),
        ]);
        let dates = self
            .date_names()
            .into_iter()
            .map(|(name, text)| (name, Value::from(text)));
        Value::from_iter(dates.chain([
            (
                "ts_nodash_with_tz",
                Value::from(ld.format("%Y%m%dT%H%M%S%z").to_string()),
            ),
            ("logical_date", PyDateTime::value(ld)),
            (
                "data_interval_start",
                PyDateTime::value(self.data_interval_start),
            ),
            (
                "data_interval_end",
                PyDateTime::value(self.data_interval_end),
            ),
            (
                "prev_data_interval_start_success",
                opt(self.prev_data_interval_start_success),
            ),
            (
                "prev_data_interval_end_success",
                opt(self.prev_data_interval_end_success),
            ),
            ("prev_start_date_success", opt(self.prev_start_date_success)),
            ("run_id", Value::from(self.run_id.as_str())),
            (
                "dag",
                Value::from_iter([
                    ("dag_id", self.dag_id.as_str()),
                    ("owner", self.owner.as_str()),
                ]),
            ),
            (
                "task",
                Value::from_iter([("task_id", self.task_id.as_str())]),
            ),
            (
                "task_instance_key_str",
                Value::from(format!(
                    "{}__{}__{}",
                    self.dag_id,
                    self.task_id,
                    ld.format("%Y%m%d")
                )),
            ),
            ("params", Value::from_serialize(&self.params)),
            ("dag_run", dag_run),
            ("ti", ti.clone()),
            ("task_instance", ti),
            ("var", var),
            (
                "conn",
                Value::from_object(ConnectionAccessor {
                    lookups: lookups.clone(),
                }),
            ),
        ]))
    }
}

/// Which database lookups a template may need: (variables, connections, XComs).
///
/// A cheap text check that may say yes too often (a shell `var=1` counts), never too rarely
/// for the names it knows: `var`/`conn` as whole words, and `xcom_pull`.
pub fn needs_lookups(template: &str) -> (bool, bool, bool) {
    (
        mentions(template, "var"),
        mentions(template, "conn"),
        template.contains("xcom_pull"),
    )
}

/// Whether `name` occurs as a whole identifier (`var.x`, `var['x']`, `{% set v = var %}`).
fn mentions(template: &str, name: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    template.match_indices(name).any(|(i, _)| {
        !template[..i].chars().next_back().is_some_and(ident)
            && !template[i + name.len()..].chars().next().is_some_and(ident)
    })
}

// ---------------------------------------------------------------------------------------------
// The environment and rendering

/// The environment every task template renders in.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Shell commands and SQL are not HTML.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_formatter(python_formatter);
    env.set_unknown_method_callback(python_methods);
    env.add_global("macros", macros::namespace());
    env
}

/// Renders one template field.
pub fn render(env: &Environment<'_>, template: &str, ctx: &Value) -> Result<String, Error> {
    env.render_str(template, ctx)
}

/// Renders every string inside a JSON value (e.g. `op_kwargs`), keeping everything else and
/// the keys as they are. An error names where it happened (`files[1].path`).
pub fn render_json(
    env: &Environment<'_>,
    value: &serde_json::Value,
    ctx: &Value,
) -> Result<serde_json::Value, Error> {
    render_json_at(env, value, ctx, &mut String::new())
}

fn render_json_at(
    env: &Environment<'_>,
    value: &serde_json::Value,
    ctx: &Value,
    path: &mut String,
) -> Result<serde_json::Value, Error> {
    use serde_json::Value as Json;
    let nested = |path: &mut String, step: fmt::Arguments<'_>, value: &Json| {
        let len = path.len();
        let _ = path.write_fmt(step);
        let rendered = render_json_at(env, value, ctx, path);
        path.truncate(len);
        rendered
    };
    Ok(match value {
        Json::String(template) => Json::String(render(env, template, ctx).map_err(|err| {
            if path.is_empty() {
                return err;
            }
            let detail = match err.detail() {
                Some(detail) => format!("at {path}: {detail}"),
                None => format!("at {path}"),
            };
            Error::new(err.kind(), detail).with_source(err)
        })?),
        Json::Array(items) => Json::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| nested(path, format_args!("[{i}]"), item))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(map) => Json::Object(
            map.iter()
                .map(|(key, item)| {
                    let dot = if path.is_empty() { "" } else { "." };
                    Ok((key.clone(), nested(path, format_args!("{dot}{key}"), item)?))
                })
                .collect::<Result<_, Error>>()?,
        ),
        other => other.clone(),
    })
}
