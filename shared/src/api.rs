//! DTOs of the REST API. Field names follow Airflow 3's public API so that its generated
//! clients work unchanged.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::state::{DagRunState, DagRunType, TaskInstanceState};

/// `GET /api/v2/version` (Airflow's `VersionInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionInfo {
    /// The Updraft version.
    pub version: String,
    /// The git commit the binary was built from, when known.
    pub git_version: Option<String>,
}

/// Status strings used by the health endpoint, as in Airflow.
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

/// `GET /api/v2/monitor/health` (Airflow's `HealthInfoResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthInfoResponse {
    pub metadatabase: BaseInfoResponse,
    pub scheduler: SchedulerInfoResponse,
    pub triggerer: TriggererInfoResponse,
    /// Always an object here (Airflow allows null), with a null status while none runs.
    pub dag_processor: DagProcessorInfoResponse,
}

impl HealthInfoResponse {
    /// True when the metadata database answers; the condition `updraft healthcheck` checks.
    pub fn metadatabase_healthy(&self) -> bool {
        self.metadatabase.status.as_deref() == Some(HEALTHY)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BaseInfoResponse {
    /// `healthy`, `unhealthy`, or null when the component is not deployed.
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchedulerInfoResponse {
    pub status: Option<String>,
    /// RFC 3339 time of the newest scheduler heartbeat, if any scheduler ever ran.
    pub latest_scheduler_heartbeat: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TriggererInfoResponse {
    pub status: Option<String>,
    pub latest_triggerer_heartbeat: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DagProcessorInfoResponse {
    pub status: Option<String>,
    pub latest_dag_processor_heartbeat: Option<String>,
}

/// Body of every API error, as FastAPI (and so Airflow) sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HttpError {
    /// What went wrong and, where the caller can fix it, how.
    pub detail: String,
}

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

/// A task instance (Airflow's `TaskInstanceResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskInstanceResponse {
    pub id: String,
    pub task_id: String,
    pub task_display_name: String,
    pub dag_id: String,
    pub dag_run_id: String,
    pub map_index: i32,
    pub logical_date: Option<DateTime<Utc>>,
    pub run_after: DateTime<Utc>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub duration: Option<f64>,
    pub state: Option<TaskInstanceState>,
    pub try_number: i32,
    pub max_tries: i32,
    pub hostname: Option<String>,
    pub pool: String,
    pub pool_slots: i32,
    pub queue: Option<String>,
    pub priority_weight: Option<i32>,
    pub operator: Option<String>,
    pub queued_when: Option<DateTime<Utc>>,
    pub scheduled_when: Option<DateTime<Utc>>,
    /// The templated fields as rendered for the latest try.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub rendered_fields: serde_json::Value,
}

/// A page of task instances (Airflow's `TaskInstanceCollectionResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskInstanceCollectionResponse {
    pub task_instances: Vec<TaskInstanceResponse>,
    pub total_entries: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_serializes_nulls_like_airflow() {
        let health = HealthInfoResponse {
            metadatabase: BaseInfoResponse {
                status: Some(HEALTHY.into()),
            },
            scheduler: SchedulerInfoResponse {
                status: Some(UNHEALTHY.into()),
                latest_scheduler_heartbeat: None,
            },
            triggerer: TriggererInfoResponse {
                status: None,
                latest_triggerer_heartbeat: None,
            },
            dag_processor: DagProcessorInfoResponse {
                status: None,
                latest_dag_processor_heartbeat: None,
            },
        };
        let json = serde_json::to_value(&health).unwrap();
        assert_eq!(json["metadatabase"]["status"], "healthy");
        assert!(json["scheduler"]["latest_scheduler_heartbeat"].is_null());
        assert!(json["triggerer"]["status"].is_null());
        assert!(json["dag_processor"].is_object());
        assert!(health.metadatabase_healthy());
    }
}
