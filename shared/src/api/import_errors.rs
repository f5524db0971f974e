//! Import errors (Airflow's `ImportError*` models).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A DAG file that does not load (Airflow's `ImportErrorResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportErrorResponse {
    pub import_error_id: i64,
    /// When the problem was last seen.
    pub timestamp: DateTime<Utc>,
    /// The file's path relative to the DAG folder.
    pub filename: String,
    /// Always `dags-folder`.
    pub bundle_name: Option<String>,
    /// Every problem of the file, one per line: `FILE:LINE:COLUMN: message`.
    pub stack_trace: String,
}

/// `GET /api/v2/importErrors` (Airflow's `ImportErrorCollectionResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportErrorCollectionResponse {
    pub import_errors: Vec<ImportErrorResponse>,
    pub total_entries: i64,
}
