//! DAGs (Airflow's `DAG*` models).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
