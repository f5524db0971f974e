//! Task instances (Airflow's `TaskInstance*` models and the bodies that list, mark and clear
//! them).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::dags::DagVersionResponse;
use crate::state::TaskInstanceState;

/// A task instance (Airflow's `TaskInstanceResponse`). Every key is always sent; the
/// optional ones are null when Updraft has no such thing (executor, pid, triggers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskInstanceResponse {
    /// A UUID (Airflow's type); Updraft derives it from the row id.
    pub id: String,
    pub task_id: String,
    pub dag_id: String,
    pub dag_run_id: String,
    pub map_index: i32,
    pub logical_date: Option<DateTime<Utc>>,
    pub run_after: DateTime<Utc>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    /// Seconds.
    pub duration: Option<f64>,
    /// Null while the task instance has none (Airflow's "no status").
    pub state: Option<TaskInstanceState>,
    pub try_number: i32,
    pub max_tries: i32,
    pub task_display_name: String,
    pub dag_display_name: String,
    pub hostname: Option<String>,
    pub unixname: Option<String>,
    pub pool: String,
    pub pool_slots: i32,
    pub queue: Option<String>,
    pub priority_weight: Option<i32>,
    pub operator: Option<String>,
    pub operator_name: Option<String>,
    pub queued_when: Option<DateTime<Utc>>,
    pub scheduled_when: Option<DateTime<Utc>>,
    pub pid: Option<i32>,
    pub executor: Option<String>,
    /// JSON text, `{}` (Airflow's type is a string).
    pub executor_config: String,
    pub note: Option<String>,
    pub rendered_map_index: Option<String>,
    /// The templated fields as rendered for the latest try.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub rendered_fields: Option<serde_json::Value>,
    /// Always null: Updraft has no deferrable operators.
    pub trigger: Option<TriggerResponse>,
    pub triggerer_job: Option<JobResponse>,
    pub dag_version: Option<DagVersionResponse>,
}

/// A page of task instances (Airflow's `TaskInstanceCollectionResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskInstanceCollectionResponse {
    pub task_instances: Vec<TaskInstanceResponse>,
    pub total_entries: i64,
}

/// One try of a task instance (Airflow's `TaskInstanceHistoryResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskInstanceHistoryResponse {
    pub task_id: String,
    pub dag_id: String,
    pub dag_run_id: String,
    pub map_index: i32,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub duration: Option<f64>,
    pub state: Option<TaskInstanceState>,
    pub try_number: i32,
    pub max_tries: i32,
    pub task_display_name: String,
    pub dag_display_name: String,
    pub hostname: Option<String>,
    pub unixname: Option<String>,
    pub pool: String,
    pub pool_slots: i32,
    pub queue: Option<String>,
    pub priority_weight: Option<i32>,
    pub operator: Option<String>,
    pub operator_name: Option<String>,
    pub queued_when: Option<DateTime<Utc>>,
    pub scheduled_when: Option<DateTime<Utc>>,
    pub pid: Option<i32>,
    pub executor: Option<String>,
    pub executor_config: String,
    pub dag_version: Option<DagVersionResponse>,
}

/// The tries of a task instance (Airflow's `TaskInstanceHistoryCollectionResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskInstanceHistoryCollectionResponse {
    pub task_instances: Vec<TaskInstanceHistoryResponse>,
    pub total_entries: i64,
}

/// A trigger of a deferred task (Airflow's `TriggerResponse`); Updraft never has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TriggerResponse {
    pub id: i64,
    pub classpath: String,
    pub kwargs: String,
    pub created_date: DateTime<Utc>,
    pub triggerer_id: Option<i64>,
    pub queue: Option<String>,
}

/// A scheduler, worker or triggerer process (Airflow's `JobResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobResponse {
    pub id: i64,
    pub dag_id: Option<String>,
    pub state: Option<String>,
    pub job_type: Option<String>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub latest_heartbeat: Option<DateTime<Utc>>,
    pub executor_class: Option<String>,
    pub hostname: Option<String>,
    pub unixname: Option<String>,
    pub dag_display_name: Option<String>,
}

/// `POST /api/v2/dags/~/dagRuns/~/taskInstances/list` (Airflow's `TaskInstancesBatchBody`).
/// Lists are "any of"; a null in `state` means "no state yet".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TaskInstancesBatchBody {
    #[serde(default)]
    pub dag_ids: Option<Vec<String>>,
    #[serde(default)]
    pub dag_run_ids: Option<Vec<String>>,
    #[serde(default)]
    pub task_ids: Option<Vec<String>>,
    #[serde(default)]
    pub state: Option<Vec<Option<TaskInstanceState>>>,
    #[serde(default)]
    pub pool: Option<Vec<String>>,
    #[serde(default)]
    pub queue: Option<Vec<String>>,
    #[serde(default)]
    pub executor: Option<Vec<String>>,
    #[serde(default)]
    pub run_after_gt: Option<DateTime<Utc>>,
    #[serde(default)]
    pub run_after_gte: Option<DateTime<Utc>>,
    #[serde(default)]
    pub run_after_lt: Option<DateTime<Utc>>,
    #[serde(default)]
    pub run_after_lte: Option<DateTime<Utc>>,
    #[serde(default)]
    pub logical_date_gt: Option<DateTime<Utc>>,
    #[serde(default)]
    pub logical_date_gte: Option<DateTime<Utc>>,
    #[serde(default)]
    pub logical_date_lt: Option<DateTime<Utc>>,
    #[serde(default)]
    pub logical_date_lte: Option<DateTime<Utc>>,
    #[serde(default)]
    pub start_date_gt: Option<DateTime<Utc>>,
    #[serde(default)]
    pub start_date_gte: Option<DateTime<Utc>>,
    #[serde(default)]
    pub start_date_lt: Option<DateTime<Utc>>,
    #[serde(default)]
    pub start_date_lte: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end_date_gt: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end_date_gte: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end_date_lt: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end_date_lte: Option<DateTime<Utc>>,
    #[serde(default)]
    pub duration_gt: Option<f64>,
    #[serde(default)]
    pub duration_gte: Option<f64>,
    #[serde(default)]
    pub duration_lt: Option<f64>,
    #[serde(default)]
    pub duration_lte: Option<f64>,
    /// One field name, `-` for descending (default `map_index`).
    #[serde(default)]
    pub order_by: Option<String>,
    /// Default 100, capped by `api.maximum_page_limit`.
    #[serde(default)]
    pub page_limit: Option<u64>,
    #[serde(default)]
    pub page_offset: Option<u64>,
}

/// `PATCH .../taskInstances/{task_id}` (Airflow's `PatchTaskInstanceBody`): mark the task
/// instance (and relatives) `success`, `failed` or `skipped`, and/or set its note. A key
/// that is absent is left alone; `note: null` removes the note.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PatchTaskInstanceBody {
    #[serde(default, deserialize_with = "present_or_null")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<TaskInstanceState>))]
    pub new_state: Option<Option<String>>,
    /// At most 1000 characters.
    #[serde(default, deserialize_with = "present_or_null")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub note: Option<Option<String>>,
    #[serde(default)]
    pub include_upstream: bool,
    #[serde(default)]
    pub include_downstream: bool,
    /// The same task in later runs of the DAG.
    #[serde(default)]
    pub include_future: bool,
    /// The same task in earlier runs of the DAG.
    #[serde(default)]
    pub include_past: bool,
}

/// A task to clear: its id, or `[task_id, map_index]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum ClearTaskId {
    Task(String),
    Mapped(String, i32),
}

impl ClearTaskId {
    pub fn task_id(&self) -> &str {
        match self {
            ClearTaskId::Task(t) | ClearTaskId::Mapped(t, _) => t,
        }
    }
}

/// `POST /api/v2/dags/{dag_id}/clearTaskInstances` (Airflow's `ClearTaskInstancesBody`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ClearTaskInstancesBody {
    /// Only say what would be cleared (the default).
    #[serde(default = "yes")]
    pub dry_run: bool,
    /// The tasks to clear; all when absent.
    #[serde(default)]
    pub task_ids: Option<Vec<ClearTaskId>>,
    /// Clear in this run only (with include_past/include_future: from it on, or up to it).
    #[serde(default)]
    pub dag_run_id: Option<String>,
    /// Runs with a logical date from this instant on.
    #[serde(default)]
    pub start_date: Option<DateTime<Utc>>,
    /// Runs with a logical date up to this instant.
    #[serde(default)]
    pub end_date: Option<DateTime<Utc>>,
    /// Only task instances that failed or are upstream_failed (the default).
    #[serde(default = "yes")]
    pub only_failed: bool,
    /// Only running task instances.
    #[serde(default)]
    pub only_running: bool,
    /// Finished runs of cleared task instances are queued again (the default).
    #[serde(default = "yes")]
    pub reset_dag_runs: bool,
    #[serde(default)]
    pub include_upstream: bool,
    #[serde(default)]
    pub include_downstream: bool,
    #[serde(default)]
    pub include_future: bool,
    #[serde(default)]
    pub include_past: bool,
    /// Refuse (400) when a running task instance would be cleared.
    #[serde(default)]
    pub prevent_running_task: bool,
    /// Accepted for compatibility; runs keep the DAG version they started with.
    #[serde(default)]
    pub run_on_latest_version: Option<bool>,
    /// A note set on the cleared task instances. At most 1000 characters.
    #[serde(default)]
    pub note: Option<String>,
}

fn yes() -> bool {
    true
}

/// `Option<Option<T>>` for PATCH bodies: a key that is present (even null) is `Some`.
fn present_or_null<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_body_tells_absent_from_null() {
        let b: PatchTaskInstanceBody = serde_json::from_str(r#"{"note": null}"#).unwrap();
        assert_eq!(b.note, Some(None));
        assert_eq!(b.new_state, None);
        let b: PatchTaskInstanceBody =
            serde_json::from_str(r#"{"new_state": "success", "include_downstream": true}"#)
                .unwrap();
        assert_eq!(b.new_state, Some(Some("success".into())));
        assert!(b.include_downstream);
    }

    #[test]
    fn clear_body_defaults_follow_airflow() {
        let b: ClearTaskInstancesBody =
            serde_json::from_str(r#"{"task_ids": ["a", ["b", -1]]}"#).unwrap();
        assert!(b.dry_run && b.only_failed && b.reset_dag_runs && !b.only_running);
        assert_eq!(
            b.task_ids.unwrap(),
            [
                ClearTaskId::Task("a".into()),
                ClearTaskId::Mapped("b".into(), -1)
            ]
        );
    }
}
