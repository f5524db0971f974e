//! Backfills (Airflow's `Backfill*` models).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which logical dates that already have a run a backfill runs again (Airflow's
/// `ReprocessBehavior`). Runs still queued or running are never touched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReprocessBehavior {
    /// Failed runs only.
    Failed,
    /// Failed and successful runs.
    Completed,
    /// None: dates with a run are skipped.
    #[default]
    None,
}

impl ReprocessBehavior {
    pub fn as_str(self) -> &'static str {
        match self {
            ReprocessBehavior::Failed => "failed",
            ReprocessBehavior::Completed => "completed",
            ReprocessBehavior::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "failed" => Some(ReprocessBehavior::Failed),
            "completed" => Some(ReprocessBehavior::Completed),
            "none" => Some(ReprocessBehavior::None),
            _ => None,
        }
    }
}

fn ten() -> i32 {
    10
}

/// `POST /api/v2/backfills` and `/backfills/dry_run` (Airflow's `BackfillPostBody`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackfillPostBody {
    pub dag_id: String,
    /// Runs whose logical date is at or after this instant…
    pub from_date: DateTime<Utc>,
    /// …and at or before this one.
    pub to_date: DateTime<Utc>,
    #[serde(default)]
    pub run_backwards: bool,
    /// The `conf` of every run the backfill creates.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub dag_run_conf: Option<serde_json::Value>,
    #[serde(default)]
    pub reprocess_behavior: Option<ReprocessBehavior>,
    /// Default 10.
    #[serde(default = "ten")]
    pub max_active_runs: i32,
    /// Accepted for Airflow's clients; reprocessed runs keep their DAG version.
    #[serde(default)]
    pub run_on_latest_version: Option<bool>,
}

/// A backfill (Airflow's `BackfillResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackfillResponse {
    pub id: i64,
    pub dag_id: String,
    pub from_date: DateTime<Utc>,
    pub to_date: DateTime<Utc>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub dag_run_conf: Option<serde_json::Value>,
    pub is_paused: bool,
    pub reprocess_behavior: ReprocessBehavior,
    pub max_active_runs: i32,
    pub created_at: DateTime<Utc>,
    /// When the backfill ended: every run finished, or it was cancelled.
    pub completed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub dag_display_name: String,
}

/// A page of backfills (Airflow's `BackfillCollectionResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackfillCollectionResponse {
    pub backfills: Vec<BackfillResponse>,
    pub total_entries: i64,
}

/// A run a backfill would create or run again (Airflow's `DryRunBackfillResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DryRunBackfillResponse {
    pub logical_date: Option<DateTime<Utc>>,
    pub partition_key: Option<String>,
    pub partition_date: Option<DateTime<Utc>>,
}

/// `POST /api/v2/backfills/dry_run` (Airflow's `DryRunBackfillCollectionResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DryRunBackfillCollectionResponse {
    pub backfills: Vec<DryRunBackfillResponse>,
    pub total_entries: i64,
}
