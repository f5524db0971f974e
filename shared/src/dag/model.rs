//! The DAG model: what a DAG file means once parsed and validated. Names and meanings follow
//! Airflow. The JSON Schema published for DAG files (`docs/dag.schema.json`) is generated from
//! these types; the parser (`super::parse`) checks the same keys with positions.

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::duration::Duration;

/// One DAG: a file in the DAG folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Dag {
    /// Unique name of the DAG: letters, digits, `_`, `.`, `-` (at most 250).
    pub dag_id: String,
    /// One line shown in the DAG list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Markdown documentation shown on the DAG's page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_md: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Owner shown in the UI (Airflow's `default_args.owner`); default `updraft`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// A cron expression (5 fields), a preset (`@once`, `@hourly`, `@daily`, `@weekly`,
    /// `@monthly`, `@quarterly`, `@yearly`), or null for manual runs only (the default).
    #[serde(default)]
    pub schedule: Option<String>,
    /// IANA time zone the schedule and naive dates are read in; default `UTC`.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// First data interval start; a date (`2024-02-01`) or date-time, in `timezone` unless it
    /// carries an offset. Required by a schedule other than null and `@once`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<DagDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<DagDate>,
    /// Create a run for every missed interval (true) or only the latest (false, the default).
    #[serde(default)]
    pub catchup: bool,
    #[serde(default = "default_max_active")]
    pub max_active_runs: u32,
    #[serde(default = "default_max_active")]
    pub max_active_tasks: u32,
    /// A run still going after this long is failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dagrun_timeout: Option<Duration>,
    /// Settings every task inherits unless it sets its own.
    #[serde(default)]
    pub default_args: TaskArgs,
    /// Run parameters: each a plain default value, or a spec with `default`, `type`,
    /// `description`, `enum`, … (they become the trigger form).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, Param>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_failure: Vec<Notification>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_success: Vec<Notification>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_retry: Vec<Notification>,
    /// Whether a newly seen DAG starts paused; default from `core.dags_are_paused_at_creation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_paused_upon_creation: Option<bool>,
    /// The tasks, in the order written.
    pub tasks: Vec<Task>,
}

fn default_timezone() -> String {
    "UTC".into()
}

fn default_max_active() -> u32 {
    16
}

/// An instant, written in a DAG file as a date or date-time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DagDate(pub DateTime<Utc>);

#[cfg(feature = "schema")]
impl schemars::JsonSchema for DagDate {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DagDate".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A date (2024-02-01) or date-time (2024-02-01T06:00:00, optionally with Z or an offset)",
            "type": "string",
            "pattern": "^\\d{4}-\\d{2}-\\d{2}([T ]\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}:?\\d{2})?)?$"
        })
    }
}

/// Task settings that `default_args` sets for every task and a task may override.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct TaskArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Tries after the first one; default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Wait before a retry; default 5m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<Duration>,
    /// Double the wait after each failed try (up to `max_retry_delay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_exponential_backoff: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retry_delay: Option<Duration>,
    /// A try still running after this long is killed and fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_timeout: Option<Duration>,
    /// Pool whose slots the task takes; default `default_pool`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_slots: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_weight: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_rule: Option<WeightRule>,
    /// Run only when this task succeeded (or was skipped) in the previous run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on_past: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_rule: Option<TriggerRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

/// Airflow's weight rules for `priority_weight`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum WeightRule {
    Downstream,
    Upstream,
    Absolute,
}

/// When a task may run, judged by its upstream tasks' states (Airflow's trigger rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum TriggerRule {
    AllSuccess,
    AllFailed,
    AllDone,
    AllDoneMinOneSuccess,
    AllSkipped,
    OneSuccess,
    OneFailed,
    OneDone,
    NoneFailed,
    NoneFailedMinOneSuccess,
    NoneSkipped,
    Always,
}

impl TriggerRule {
    pub const ALL: [(&'static str, TriggerRule); 12] = [
        ("all_success", TriggerRule::AllSuccess),
        ("all_failed", TriggerRule::AllFailed),
        ("all_done", TriggerRule::AllDone),
        (
            "all_done_min_one_success",
            TriggerRule::AllDoneMinOneSuccess,
        ),
        ("all_skipped", TriggerRule::AllSkipped),
        ("one_success", TriggerRule::OneSuccess),
        ("one_failed", TriggerRule::OneFailed),
        ("one_done", TriggerRule::OneDone),
        ("none_failed", TriggerRule::NoneFailed),
        (
            "none_failed_min_one_success",
            TriggerRule::NoneFailedMinOneSuccess,
        ),
        ("none_skipped", TriggerRule::NoneSkipped),
        ("always", TriggerRule::Always),
    ];

    /// The name as written in DAG files (`all_success`, …).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, rule)| *rule == self)
            .map_or("all_success", |(name, _)| name)
    }
}

/// A run parameter (Airflow's `Param`): a default and JSON-Schema constraints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Param {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// JSON-Schema type: string, number, integer, boolean, array, object, null.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "enum", default, skip_serializing_if = "Option::is_none")]
    pub enum_: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
    #[serde(rename = "minLength", default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    #[serde(rename = "maxLength", default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// Where a DAG-level notification goes (sending arrives with the notify operator).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Notification {
    pub via: NotifyVia,
    /// Connection with the webhook URL or SMTP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn_id: Option<String>,
    /// Recipients (email addresses).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// Message template (Jinja).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum NotifyVia {
    Email,
    Slack,
    Discord,
    Webhook,
}

/// One task of a DAG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Task {
    /// Unique within the DAG: letters, digits, `_`, `.`, `-` (at most 250).
    pub id: String,
    /// What the task runs, and its settings under `with:`.
    #[serde(flatten)]
    pub operator: Operator,
    /// Tasks that must finish first (judged by `trigger_rule`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Overrides of `default_args` for this task.
    #[serde(flatten)]
    pub args: TaskArgs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_md: Option<String>,
    /// Dynamic mapping: one task instance per element. Keys are settings of the operator; each
    /// value is a list, or a template that renders to one (`{{ params.files }}`,
    /// `{{ var.json.tables }}`, `{{ ti.xcom_pull('list_files') }}`).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub expand: IndexMap<String, serde_json::Value>,
}

/// The operators and their settings. `operator: bash` with `with: {bash_command: …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "operator", content = "with", rename_all = "snake_case")]
pub enum Operator {
    /// Does nothing (no process): joins and branches' ends.
    Empty,
    /// Runs a bash command.
    Bash(BashOperator),
    /// Runs Python 3 code with the context as JSON; its JSON result becomes the XCom.
    Python(PythonOperator),
}

impl Operator {
    /// Operator names, as written in `operator:`.
    pub const NAMES: [&'static str; 3] = ["empty", "bash", "python"];

    pub fn name(&self) -> &'static str {
        match self {
            Operator::Empty => "empty",
            Operator::Bash(_) => "bash",
            Operator::Python(_) => "python",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct BashOperator {
    /// The command (Jinja template), run by `bash -c`.
    pub bash_command: String,
    /// Extra environment variables (values are templates).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, String>,
    /// Keep the worker's environment and add `env` to it (true), or use only `env` (false).
    #[serde(default = "yes")]
    pub append_env: bool,
    /// Working directory; default a fresh temporary one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Exit codes that mark the task skipped instead of failed; default [99].
    #[serde(default = "default_skip_codes")]
    pub skip_on_exit_code: Vec<i32>,
    /// Push the last line of stdout as the `return_value` XCom.
    #[serde(default = "yes")]
    pub do_xcom_push: bool,
}

fn yes() -> bool {
    true
}

fn default_skip_codes() -> Vec<i32> {
    vec![99]
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct PythonOperator {
    /// A script to run, relative to the DAG file's folder. Exactly one of this and `code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python_callable: Option<String>,
    /// Inline Python code. Exactly one of this and `python_callable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Keyword arguments passed to the code (string values are templates).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub op_kwargs: IndexMap<String, serde_json::Value>,
    /// Push the JSON result as the `return_value` XCom.
    #[serde(default = "yes")]
    pub do_xcom_push: bool,
}
