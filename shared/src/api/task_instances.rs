//! Task instances (Airflow's `TaskInstance*` models).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::state::TaskInstanceState;

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
