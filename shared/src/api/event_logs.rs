//! The audit log (Airflow's `EventLog*` models).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One audit entry (Airflow's `EventLogResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventLogResponse {
    pub event_log_id: i64,
    pub when: DateTime<Utc>,
    pub dag_id: Option<String>,
    pub task_id: Option<String>,
    pub run_id: Option<String>,
    pub map_index: Option<i32>,
    pub try_number: Option<i32>,
    /// What happened, e.g. `trigger_dag_run`, `patch_variable`.
    pub event: String,
    pub logical_date: Option<DateTime<Utc>>,
    /// Who did it (a username, `system` or the OS user of a CLI command).
    pub owner: Option<String>,
    /// JSON text with the request's details, secrets masked.
    pub extra: Option<String>,
    pub dag_display_name: Option<String>,
    pub task_display_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventLogCollectionResponse {
    pub event_logs: Vec<EventLogResponse>,
    pub total_entries: i64,
}
