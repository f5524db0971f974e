//! DTOs of the REST API. Field names follow Airflow 3's public API so that its generated
//! clients work unchanged.

pub mod auth;
pub mod backfills;
pub mod bulk;
pub mod connections;
pub mod dag_runs;
pub mod dag_sources;
pub mod dags;
pub mod event_logs;
pub mod import_errors;
pub mod logs;
pub mod pools;
pub mod task_instances;
pub mod users;
pub mod variables;
pub mod xcom;

pub use auth::*;
pub use backfills::*;
pub use bulk::*;
pub use connections::*;
pub use dag_runs::*;
pub use dag_sources::*;
pub use dags::*;
pub use event_logs::*;
pub use import_errors::*;
pub use logs::*;
pub use pools::*;
pub use task_instances::*;
pub use users::*;
pub use variables::*;
pub use xcom::*;

use serde::{Deserialize, Serialize};

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
