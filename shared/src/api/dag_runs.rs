//! DAG runs (Airflow's `DAGRun*` models).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::dags::DagVersionResponse;
use crate::state::{DagRunState, DagRunType};

/// `POST /api/v2/dags/{dag_id}/dagRuns` (Airflow's `TriggerDAGRunPostBody`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TriggerDagRunPostBody {
    /// Run id; default `manual__<logical date or now>`.
    #[serde(default)]
    pub dag_run_id: Option<String>,
    /// The run's logical date; null (the default) for "now".
    #[serde(default)]
    pub logical_date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub data_interval_start: Option<DateTime<Utc>>,
    #[serde(default)]
    pub data_interval_end: Option<DateTime<Utc>>,
    #[serde(default)]
    pub run_after: Option<DateTime<Utc>>,
    /// A JSON object: overrides of the DAG's params, `dag_run.conf` in templates.
    #[serde(default)]
    pub conf: Option<serde_json::Value>,
    #[serde(default)]
    pub note: Option<String>,
    /// Accepted for Airflow 3.3's clients; Updraft has no partitioned timetables.
    #[serde(default)]
    pub partition_key: Option<String>,
}

/// Who or what created a run (Airflow's `DagRunTriggeredByType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DagRunTriggeredByType {
    Cli,
    Operator,
    RestApi,
    Ui,
    Test,
    Timetable,
    Asset,
    Backfill,
}

impl DagRunTriggeredByType {
    /// The value for a stored name; None for one Airflow does not know.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "cli" => Self::Cli,
            "operator" => Self::Operator,
            "rest_api" => Self::RestApi,
            "ui" => Self::Ui,
            "test" => Self::Test,
            "timetable" => Self::Timetable,
            "asset" => Self::Asset,
            "backfill" => Self::Backfill,
            _ => return None,
        })
    }
}

/// A DAG run (Airflow's `DAGRunResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DagRunResponse {
    pub dag_run_id: String,
    pub dag_id: String,
    pub dag_display_name: String,
    pub logical_date: Option<DateTime<Utc>>,
    pub queued_at: Option<DateTime<Utc>>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    /// Seconds from start to end, when both are known.
    pub duration: Option<f64>,
    pub data_interval_start: Option<DateTime<Utc>>,
    pub data_interval_end: Option<DateTime<Utc>>,
    pub run_after: DateTime<Utc>,
    pub last_scheduling_decision: Option<DateTime<Utc>>,
    pub run_type: DagRunType,
    pub state: DagRunState,
    pub triggered_by: Option<DagRunTriggeredByType>,
    /// The user who triggered the run or created its backfill, when known.
    pub triggering_user_name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub conf: serde_json::Value,
    pub note: Option<String>,
    /// The DAG versions the run's task instances execute.
    pub dag_versions: Vec<DagVersionResponse>,
    pub bundle_version: Option<String>,
    pub partition_key: Option<String>,
    pub partition_date: Option<DateTime<Utc>>,
    /// Updraft's row id of the DAG version the run executes.
    pub dag_version_id: i64,
}

/// A page of DAG runs (Airflow's `DAGRunCollectionResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DagRunCollectionResponse {
    pub dag_runs: Vec<DagRunResponse>,
    pub total_entries: i64,
}

/// The states a run may be set to by hand (Airflow's `DagRunMutableStates`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DagRunMutableStates {
    Queued,
    Success,
    Failed,
}

/// `PATCH /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}` (Airflow's `DAGRunPatchBody`). A key that
/// is absent is left alone; `"note": null` removes the note.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DagRunPatchBody {
    #[serde(default)]
    pub state: Option<DagRunMutableStates>,
    /// At most 1000 characters.
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub note: Option<Option<String>>,
}

/// Keeps "given as null" apart from "absent" (`Some(None)` vs `None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `POST /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/clear` (Airflow's `DAGRunClearBody`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DagRunClearBody {
    /// Only list what would be cleared (the default, as in Airflow).
    #[serde(default = "yes")]
    pub dry_run: bool,
    /// Clear only failed and upstream-failed task instances.
    #[serde(default)]
    pub only_failed: bool,
    /// Accepted for Airflow's clients; runs always keep their DAG version.
    #[serde(default)]
    pub run_on_latest_version: bool,
    /// Airflow 3.1+: clear only task instances that never ran (no try yet). The official
    /// client always sends it.
    #[serde(default)]
    pub only_new: bool,
    /// A note to set on the run.
    #[serde(default)]
    pub note: Option<String>,
}

fn yes() -> bool {
    true
}

/// What clearing a run answers (Airflow's `ResponseClearDagRun`): the task instances a dry run
/// would clear, or the cleared run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum ResponseClearDagRun {
    TaskInstances(super::task_instances::TaskInstanceCollectionResponse),
    DagRun(Box<DagRunResponse>),
}

/// `POST /api/v2/dags/~/dagRuns/list` (Airflow's `DAGRunsBatchBody`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DagRunsBatchBody {
    /// Comma-separated field names, `-` for descending.
    #[serde(default)]
    pub order_by: Option<String>,
    #[serde(default)]
    pub page_offset: Option<u64>,
    /// Default 100, capped by `api.maximum_page_limit`.
    #[serde(default)]
    pub page_limit: Option<u64>,
    #[serde(default)]
    pub dag_ids: Option<Vec<String>>,
    #[serde(default)]
    pub states: Option<Vec<Option<DagRunState>>>,
    #[serde(default)]
    pub conf_contains: Option<String>,
    #[serde(default)]
    pub run_after_gte: Option<DateTime<Utc>>,
    #[serde(default)]
    pub run_after_gt: Option<DateTime<Utc>>,
    #[serde(default)]
    pub run_after_lte: Option<DateTime<Utc>>,
    #[serde(default)]
    pub run_after_lt: Option<DateTime<Utc>>,
    #[serde(default)]
    pub logical_date_gte: Option<DateTime<Utc>>,
    #[serde(default)]
    pub logical_date_gt: Option<DateTime<Utc>>,
    #[serde(default)]
    pub logical_date_lte: Option<DateTime<Utc>>,
    #[serde(default)]
    pub logical_date_lt: Option<DateTime<Utc>>,
    #[serde(default)]
    pub start_date_gte: Option<DateTime<Utc>>,
    #[serde(default)]
    pub start_date_gt: Option<DateTime<Utc>>,
    #[serde(default)]
    pub start_date_lte: Option<DateTime<Utc>>,
    #[serde(default)]
    pub start_date_lt: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end_date_gte: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end_date_gt: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end_date_lte: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end_date_lt: Option<DateTime<Utc>>,
    /// Accepted for Airflow's clients; not filtered on yet.
    #[serde(default)]
    pub duration_gte: Option<f64>,
    #[serde(default)]
    pub duration_gt: Option<f64>,
    #[serde(default)]
    pub duration_lte: Option<f64>,
    #[serde(default)]
    pub duration_lt: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_body_tells_null_from_absent() {
        let b: DagRunPatchBody = serde_json::from_str(r#"{"note": null}"#).unwrap();
        assert_eq!(b.note, Some(None));
        let b: DagRunPatchBody = serde_json::from_str(r#"{"state": "failed"}"#).unwrap();
        assert_eq!((b.state, b.note), (Some(DagRunMutableStates::Failed), None));
        assert!(serde_json::from_str::<DagRunPatchBody>(r#"{"state": "running"}"#).is_err());
    }

    #[test]
    fn clear_is_a_dry_run_unless_told() {
        let b: DagRunClearBody = serde_json::from_str("{}").unwrap();
        assert!(b.dry_run && !b.only_failed);
    }
}
