//! DAGs (Airflow's `DAG*` models).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::state::DagRunType;

/// A version of a DAG (Airflow's `DagVersionResponse`): a new one each time its file changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DagVersionResponse {
    /// A UUID (Airflow's type); Updraft derives it from the version's row id.
    pub id: String,
    pub version_number: i32,
    pub dag_id: String,
    pub bundle_name: Option<String>,
    pub bundle_version: Option<String>,
    pub created_at: DateTime<Utc>,
    pub dag_display_name: String,
    pub bundle_url: Option<String>,
}

/// A tag of a DAG (Airflow's `DagTagResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DagTagResponse {
    pub name: String,
    pub dag_id: String,
    pub dag_display_name: String,
}

/// A DAG as lists show it (Airflow's `DAGResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DagResponse {
    pub dag_id: String,
    pub dag_display_name: String,
    pub is_paused: bool,
    /// True when the DAG's file is gone (runs and logs are kept).
    pub is_stale: bool,
    pub last_parsed_time: Option<DateTime<Utc>>,
    pub last_parse_duration: Option<f64>,
    pub last_expired: Option<DateTime<Utc>>,
    /// Always `dags-folder`: Updraft has one bundle, the DAG folder.
    pub bundle_name: Option<String>,
    pub bundle_version: Option<String>,
    /// The file's path relative to the DAG folder.
    pub relative_fileloc: Option<String>,
    /// The file's absolute path.
    pub fileloc: String,
    pub description: Option<String>,
    /// The schedule as written (cron expression or preset); null for manual runs only.
    pub timetable_summary: Option<String>,
    /// The schedule in words.
    pub timetable_description: Option<String>,
    pub timetable_partitioned: bool,
    /// True for schedules that repeat (cron expressions and presets other than `@once`).
    pub timetable_periodic: bool,
    pub tags: Vec<DagTagResponse>,
    pub max_active_tasks: i32,
    pub max_active_runs: Option<i32>,
    /// Always 0: Updraft does not pause DAGs after failed runs.
    pub max_consecutive_failed_dag_runs: i32,
    pub has_task_concurrency_limits: bool,
    /// True while the DAG's file does not parse (the DAG runs its last good version).
    pub has_import_errors: bool,
    pub next_dagrun_logical_date: Option<DateTime<Utc>>,
    pub next_dagrun_data_interval_start: Option<DateTime<Utc>>,
    pub next_dagrun_data_interval_end: Option<DateTime<Utc>>,
    pub next_dagrun_run_after: Option<DateTime<Utc>>,
    pub allowed_run_types: Option<Vec<DagRunType>>,
    pub owners: Vec<String>,
    /// An opaque token naming the file (URL-safe base64 of its relative path).
    pub file_token: String,
    /// True when the DAG has a schedule a backfill can walk.
    pub is_backfillable: bool,
}

/// A DAG with everything its file says (Airflow's `DAGDetailsResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DagDetailsResponse {
    #[serde(flatten)]
    pub dag: DagResponse,
    pub catchup: bool,
    /// Airflow's old name of `max_active_tasks`.
    pub concurrency: i32,
    pub render_template_as_native_obj: bool,
    /// Longest a run may take, as an ISO 8601 duration (`PT3600S`).
    pub dag_run_timeout: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub asset_expression: Option<serde_json::Value>,
    pub doc_md: Option<String>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub is_paused_upon_creation: Option<bool>,
    pub template_search_path: Option<Vec<String>>,
    /// IANA time zone the schedule is read in.
    pub timezone: Option<String>,
    pub last_parsed: Option<DateTime<Utc>>,
    /// Each param as Airflow dumps it: `{"value", "description", "schema"}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub params: Option<serde_json::Value>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub default_args: Option<serde_json::Value>,
    pub owner_links: Option<std::collections::BTreeMap<String, String>>,
    pub is_favorite: bool,
    pub rerun_with_latest_version: Option<bool>,
    pub latest_dag_version: Option<DagVersionResponse>,
    /// Runs in the `running` state now (as Airflow counts them).
    pub active_runs_count: i64,
}

/// `GET /api/v2/dags` (Airflow's `DAGCollectionResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DagCollectionResponse {
    pub dags: Vec<DagResponse>,
    /// Matching DAGs before pagination.
    pub total_entries: i64,
}

/// `PATCH /api/v2/dags[/{dag_id}]` (Airflow's `DAGPatchBody`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DagPatchBody {
    pub is_paused: bool,
}

/// `GET /api/v2/dagTags` (Airflow's `DAGTagCollectionResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DagTagCollectionResponse {
    pub tags: Vec<String>,
    pub total_entries: i64,
}

/// `DELETE /api/v2/dags/{dag_id}`: what was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DagDeletedResponse {
    pub dag_id: String,
    /// Runs deleted with it (their task instances, tries and XComs went too).
    pub deleted_runs: u64,
    pub deleted_versions: u64,
    /// What happens next: the file, if still in the DAG folder, brings the DAG back.
    pub detail: String,
}
