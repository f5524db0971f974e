//! DAG sources (Airflow's `DAGSourceResponse`) and Updraft's DAG file upload and validation.

use serde::{Deserialize, Serialize};

/// `GET /api/v2/dagSources/{dag_id}` (Airflow's `DAGSourceResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DagSourceResponse {
    /// The DAG file's text as that version read it.
    pub content: Option<String>,
    pub dag_id: String,
    pub version_number: Option<i32>,
    pub dag_display_name: String,
}

/// One problem in a DAG file: where, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DagFileDiagnostic {
    /// 1-based.
    pub line: u32,
    /// 1-based, in characters.
    pub column: u32,
    pub message: String,
}

/// `POST /api/v2/dagFiles/validate`: what the DAG processor would make of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DagFileValidation {
    pub valid: bool,
    /// The DAG the file declares, when it parses.
    pub dag_id: Option<String>,
    /// Every problem, in file order; empty when valid.
    pub diagnostics: Vec<DagFileDiagnostic>,
}

/// A DAG file refused by `PUT /api/v2/dagFiles/{file_name}` (422).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DagFileRejected {
    pub detail: String,
    pub diagnostics: Vec<DagFileDiagnostic>,
}

/// `PUT /api/v2/dagFiles/{file_name}`: the DAG as now registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DagFileUploadResponse {
    pub dag_id: String,
    /// The file's absolute path.
    pub fileloc: String,
    /// The file's path relative to the DAG folder.
    pub relative_fileloc: String,
    /// The DAG's current version: a new number only when the content changed.
    pub version_number: i32,
}

/// `DELETE /api/v2/dagFiles/{file_name}`: what the removal did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DagFileDeletedResponse {
    pub relative_fileloc: String,
    /// DAGs that were declared by the file and are stale now (their runs are kept).
    pub stale_dag_ids: Vec<String>,
}
