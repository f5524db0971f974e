//! Backfills as the API shows them.

use sea_orm::ConnectionTrait;
use updraft_shared::api::{BackfillResponse, ReprocessBehavior};

use crate::api::ApiError;
use crate::store::backfills::completed_at;
use crate::store::entities::backfill;

/// The backfill as the API shows it. A backfill whose runs have all finished is complete
/// (at its last run's end) even before anything recorded it.
pub async fn responses(
    conn: &impl ConnectionTrait,
    rows: Vec<backfill::Model>,
) -> Result<Vec<BackfillResponse>, ApiError> {
    let ends = completed_at(conn, &rows).await?;
    Ok(rows
        .into_iter()
        .zip(ends)
        .map(|(b, completed_at)| BackfillResponse {
            id: b.id,
            dag_display_name: b.dag_id.clone(),
            dag_id: b.dag_id,
            from_date: b.from_date,
            to_date: b.to_date,
            dag_run_conf: serde_json::from_str(&b.dag_run_conf).ok(),
            is_paused: b.is_paused,
            reprocess_behavior: ReprocessBehavior::parse(&b.reprocess_behavior).unwrap_or_default(),
            max_active_runs: b.max_active_runs,
            created_at: b.created_at,
            completed_at,
            updated_at: b.updated_at,
        })
        .collect())
}

pub async fn response(
    conn: &impl ConnectionTrait,
    row: backfill::Model,
) -> Result<BackfillResponse, ApiError> {
    responses(conn, vec![row])
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a backfill response went missing")))
}
