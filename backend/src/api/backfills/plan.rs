//! What a backfill request means: the checks Airflow makes, the logical dates the DAG's
//! timetable gives over the range, and which existing runs are run again; and backfills as
//! the API shows them.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use updraft_shared::api::{BackfillPostBody, BackfillResponse, ReprocessBehavior};
use updraft_shared::state::DagRunState;

use crate::api::ApiError;
use crate::scheduler::loaded::LoadedDag;
use crate::scheduler::timetable::{DagRunInfo, Restriction, Timetable};
use crate::scheduler::trigger::{self, TriggerError};
use crate::server::AppState;
use crate::store::entities::{backfill, dag_run};

/// More runs than this in one backfill is a mistake in the range, not a plan.
const MAX_RUNS: usize = 10_000;

/// The runs a backfill makes: each date with the run it reprocesses, if any.
pub struct Plan {
    pub dag: Arc<LoadedDag>,
    pub conf: serde_json::Map<String, serde_json::Value>,
    pub behavior: ReprocessBehavior,
    pub items: Vec<(DagRunInfo, Option<dag_run::Model>)>,
}

/// Whether a backfill runs an existing run again (Airflow's `_get_dag_run_no_create_reason`):
/// never one still queued or running.
fn reprocesses(run: &dag_run::Model, behavior: ReprocessBehavior) -> bool {
    match DagRunState::parse(&run.state) {
        Some(DagRunState::Failed) => behavior != ReprocessBehavior::None,
        Some(DagRunState::Success) => behavior == ReprocessBehavior::Completed,
        _ => false,
    }
}

/// Checks the request as Airflow does and works out the runs.
pub async fn plan(state: &AppState, body: &BackfillPostBody) -> Result<Plan, ApiError> {
    if body.from_date > body.to_date {
        return Err(ApiError::Unprocessable(format!(
            "from_date ({}) is after to_date ({}): swap them",
            crate::timefmt::iso(body.from_date),
            crate::timefmt::iso(body.to_date)
        )));
    }
    if body.max_active_runs < 1 {
        return Err(ApiError::Unprocessable(
            "max_active_runs must be at least 1".into(),
        ));
    }
    let conf = match &body.dag_run_conf {
        None | Some(serde_json::Value::Null) => serde_json::Map::new(),
        Some(serde_json::Value::Object(map)) => map.clone(),
        Some(_) => {
            return Err(ApiError::Unprocessable(
                "dag_run_conf must be a JSON object like {\"key\": \"value\"}".into(),
            ))
        }
    };
    let dag = trigger::runnable_dag(&state.db, &state.engine.cache, &body.dag_id)
        .await
        .map_err(|e| match e {
            TriggerError::NotFound(_) => {
                ApiError::NotFound(format!("Could not find dag {}", body.dag_id))
            }
            TriggerError::Store(e) => ApiError::Internal(e.into()),
            other => ApiError::BadRequest(other.to_string()),
        })?;
    let timetable = match &dag.timetable {
        Ok(t @ Timetable::Cron(_)) => t,
        Ok(_) => {
            return Err(ApiError::Conflict(format!(
                "{} has no schedule to backfill: it needs a cron or preset schedule such as @daily",
                body.dag_id
            )))
        }
        Err(e) => {
            return Err(ApiError::BadRequest(format!(
                "the schedule of {} is invalid: {e}",
                body.dag_id
            )))
        }
    };
    let behavior = body.reprocess_behavior.unwrap_or_default();
    let depends_on_past = (0..dag.dag.tasks.len()).any(|i| dag.depends_on_past(i));
    if depends_on_past && body.run_backwards {
        return Err(ApiError::Unprocessable(
            "Backfill cannot be run in reverse when the DAG has tasks where depends_on_past=True."
                .into(),
        ));
    }
    if depends_on_past && behavior == ReprocessBehavior::None {
        return Err(ApiError::Unprocessable(
            "DAG has tasks for which depends_on_past=True. You must set reprocess behavior to reprocess completed or reprocess failed.".into(),
        ));
    }
    let now = Utc::now();
    if body.from_date >= now && body.to_date >= now {
        return Err(ApiError::Unprocessable(
            "Backfill cannot be executed for future dates.".into(),
        ));
    }
    trigger::check_params(&dag.dag.params, &conf)
        .map_err(|e| ApiError::BadRequest(format!("dag_run_conf: {e}")))?;

    // Airflow's `iter_dagrun_infos_between` with catchup, keeping intervals already over.
    let restriction = Restriction {
        earliest: Some(body.from_date),
        latest: Some(body.to_date),
        catchup: true,
    };
    let mut infos = Vec::new();
    let mut last = None;
    while let Some(info) = timetable.next_dagrun_info(last, restriction, now) {
        if info.data_interval.end >= now {
            break;
        }
        if infos.len() == MAX_RUNS {
            return Err(ApiError::Unprocessable(format!(
                "the range holds more than {MAX_RUNS} runs of {}: backfill a shorter range",
                body.dag_id
            )));
        }
        last = Some(info.data_interval);
        infos.push(info);
    }
    let mut existing: HashMap<DateTime<Utc>, dag_run::Model> = dag_run::Entity::find()
        .filter(dag_run::Column::DagId.eq(&body.dag_id))
        .filter(dag_run::Column::LogicalDate.gte(body.from_date))
        .filter(dag_run::Column::LogicalDate.lte(body.to_date))
        .all(state.db.conn())
        .await?
        .into_iter()
        .filter_map(|r| Some((r.logical_date?, r)))
        .collect();
    let mut items: Vec<(DagRunInfo, Option<dag_run::Model>)> = infos
        .into_iter()
        .filter_map(|info| match existing.remove(&info.logical_date()) {
            None => Some((info, None)),
            Some(run) => reprocesses(&run, behavior).then_some((info, Some(run))),
        })
        .collect();
    if body.run_backwards {
        items.reverse();
    }
    Ok(Plan {
        dag,
        conf,
        behavior,
        items,
    })
}

/// The backfill as the API shows it. A backfill whose runs have all finished is complete
/// (at its last run's end) even before anything recorded it.
pub async fn responses(
    conn: &impl ConnectionTrait,
    rows: Vec<backfill::Model>,
) -> Result<Vec<BackfillResponse>, ApiError> {
    let open: Vec<i64> = rows
        .iter()
        .filter(|b| b.completed_at.is_none())
        .map(|b| b.id)
        .collect();
    // backfill id → (any run unfinished, latest end)
    let mut progress: HashMap<i64, (bool, Option<DateTime<Utc>>)> = HashMap::new();
    if !open.is_empty() {
        let runs: Vec<(Option<i64>, String, Option<DateTime<Utc>>)> = dag_run::Entity::find()
            .select_only()
            .columns([
                dag_run::Column::BackfillId,
                dag_run::Column::State,
                dag_run::Column::EndDate,
            ])
            .filter(dag_run::Column::BackfillId.is_in(open))
            .into_tuple()
            .all(conn)
            .await?;
        for (id, run_state, end) in runs {
            let Some(id) = id else { continue };
            let entry = progress.entry(id).or_default();
            entry.0 |= !DagRunState::parse(&run_state).is_some_and(DagRunState::is_finished);
            entry.1 = entry.1.max(end);
        }
    }
    Ok(rows
        .into_iter()
        .map(|b| {
            let completed_at = b.completed_at.or_else(|| match progress.get(&b.id) {
                Some((true, _)) => None,
                Some((false, end)) => Some(end.unwrap_or(b.created_at)),
                None => Some(b.created_at),
            });
            BackfillResponse {
                id: b.id,
                dag_display_name: b.dag_id.clone(),
                dag_id: b.dag_id,
                from_date: b.from_date,
                to_date: b.to_date,
                dag_run_conf: serde_json::from_str(&b.dag_run_conf).ok(),
                is_paused: b.is_paused,
                reprocess_behavior: ReprocessBehavior::parse(&b.reprocess_behavior)
                    .unwrap_or_default(),
                max_active_runs: b.max_active_runs,
                created_at: b.created_at,
                completed_at,
                updated_at: b.updated_at,
            }
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
