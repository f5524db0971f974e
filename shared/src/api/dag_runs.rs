//! DAG runs (Airflow's `DAGRun*` models).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
    pub triggered_by: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub conf: serde_json::Value,
    pub note: Option<String>,
    /// Id of the DAG version the run executes.
    pub dag_version_id: i64,
}
