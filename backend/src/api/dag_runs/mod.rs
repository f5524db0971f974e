//! DAG runs: trigger, get, list (one DAG or `~`, and the batch list), patch (mark success,
//! failed or queued; note), clear, delete.

mod change;
mod list;

use std::collections::{HashMap, HashSet};

use actix_web::{web, HttpResponse};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use updraft_shared::api::{
    DagRunResponse, DagRunTriggeredByType, DagVersionResponse, TriggerDagRunPostBody,
};
use updraft_shared::state::{DagRunState, DagRunType};

use super::ApiError;
use crate::auth::{Identity, Role};
use crate::scheduler::timetable::DataInterval;
use crate::scheduler::trigger::{self, TriggerError, TriggerRequest};
use crate::server::AppState;
use crate::store::audit::AuditEntry;
use crate::store::dags::dag_version;
use crate::store::entities::{audit_log, backfill, dag_run};

/// The audit event of a run triggered through the API; its owner is the run's triggering user.
pub const TRIGGER_EVENT: &str = "trigger_dag_run";

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    trigger_dag_run,
    get_dag_run,
    list::get_dag_runs,
    list::get_list_dag_runs_batch,
    change::patch_dag_run,
    change::clear_dag_run,
    change::delete_dag_run,
))]
pub struct Doc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // `list` before `{dag_run_id}`: a resource that matches the path answers 405 for other
    // methods instead of letting the next one try.
    cfg.service(
        web::resource("/dags/{dag_id}/dagRuns")
            .post(trigger_dag_run)
            .get(list::get_dag_runs),
    )
    .service(web::resource("/dags/{dag_id}/dagRuns/list").post(list::get_list_dag_runs_batch))
    .service(web::resource("/dags/{dag_id}/dagRuns/{dag_run_id}/clear").post(change::clear_dag_run))
    .service(
        web::resource("/dags/{dag_id}/dagRuns/{dag_run_id}")
            .get(get_dag_run)
            .patch(change::patch_dag_run)
            .delete(change::delete_dag_run),
    );
}

/// What a run's response needs beyond its row: its DAG version and who triggered it.
#[derive(Default)]
pub struct RunContext {
    versions: HashMap<i64, DagVersionResponse>,
    /// (dag_id, run_id) → user, from the audit entries of API triggers.
    triggered: HashMap<(String, String), String>,
    /// backfill id → the user who created it.
    backfills: HashMap<i64, String>,
}

impl RunContext {
    /// Loads what `runs` need in three queries.
    pub async fn load(
        conn: &impl ConnectionTrait,
        runs: &[dag_run::Model],
    ) -> Result<Self, ApiError> {
        if runs.is_empty() {
            return Ok(Self::default());
        }
        let version_ids: HashSet<i64> = runs.iter().map(|r| r.dag_version_id).collect();
        let versions = dag_version::Entity::find()
            .filter(dag_version::Column::Id.is_in(version_ids))
            .all(conn)
            .await?
            .iter()
            .map(|v| (v.id, super::ids::dag_version_response(v)))
            .collect();
        let dag_ids: HashSet<&str> = runs.iter().map(|r| r.dag_id.as_str()).collect();
        let run_ids: HashSet<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
        let wanted: HashSet<(&str, &str)> = runs
            .iter()
            .map(|r| (r.dag_id.as_str(), r.run_id.as_str()))
            .collect();
        let triggered = audit_log::Entity::find()
            .filter(audit_log::Column::Event.eq(TRIGGER_EVENT))
            .filter(audit_log::Column::DagId.is_in(dag_ids))
            .filter(audit_log::Column::RunId.is_in(run_ids))
            .all(conn)
            .await?
            .into_iter()
            .filter_map(|e| {
                let key = (e.dag_id?, e.run_id?);
                wanted
                    .contains(&(key.0.as_str(), key.1.as_str()))
                    .then_some((key, e.owner?))
            })
            .collect();
        let backfill_ids: HashSet<i64> = runs.iter().filter_map(|r| r.backfill_id).collect();
        let backfills = if backfill_ids.is_empty() {
            HashMap::new()
        } else {
            backfill::Entity::find()
                .filter(backfill::Column::Id.is_in(backfill_ids))
                .all(conn)
                .await?
                .into_iter()
                .filter_map(|b| Some((b.id, b.triggering_user?)))
                .collect()
        };
        Ok(Self {
            versions,
            triggered,
            backfills,
        })
    }

    /// The run as Airflow 3.3's `DAGRunResponse`.
    pub fn response(&self, run: dag_run::Model) -> DagRunResponse {
        let duration = match (run.start_date, run.end_date) {
            (Some(s), Some(e)) => Some(crate::timefmt::seconds_between(s, e)),
            _ => None,
        };
        let triggering_user_name = self
            .triggered
            .get(&(run.dag_id.clone(), run.run_id.clone()))
            .cloned()
            .or_else(|| {
                run.backfill_id
                    .and_then(|b| self.backfills.get(&b).cloned())
            });
        DagRunResponse {
            dag_display_name: run.dag_id.clone(),
            dag_run_id: run.run_id,
            dag_id: run.dag_id,
            logical_date: run.logical_date,
            queued_at: run.queued_at,
            start_date: run.start_date,
            end_date: run.end_date,
            duration,
            data_interval_start: run.data_interval_start,
            data_interval_end: run.data_interval_end,
            run_after: run.run_after,
            last_scheduling_decision: run.last_scheduling_decision,
            run_type: DagRunType::parse(&run.run_type).unwrap_or(DagRunType::Manual),
            state: DagRunState::parse(&run.state).unwrap_or(DagRunState::Queued),
            triggered_by: run
                .triggered_by
                .as_deref()
                .and_then(DagRunTriggeredByType::parse),
            triggering_user_name,
            conf: serde_json::from_str(&run.conf).unwrap_or_else(|_| serde_json::json!({})),
            note: run.note,
            dag_versions: self
                .versions
                .get(&run.dag_version_id)
                .cloned()
                .into_iter()
                .collect(),
            bundle_version: None,
            partition_key: None,
            partition_date: None,
            dag_version_id: run.dag_version_id,
        }
    }
}

/// One run as the API shows it.
pub async fn run_response(
    conn: &impl ConnectionTrait,
    run: dag_run::Model,
) -> Result<DagRunResponse, ApiError> {
    let ctx = RunContext::load(conn, std::slice::from_ref(&run)).await?;
    Ok(ctx.response(run))
}

/// Trigger a DAG run.
#[utoipa::path(
    post,
    path = "/api/v2/dags/{dag_id}/dagRuns",
    operation_id = "trigger_dag_run",
    tag = "DagRun",
    params(("dag_id" = String, Path, description = "The DAG")),
    request_body = TriggerDagRunPostBody,
    responses(
        (status = 200, description = "Successful Response", body = DagRunResponse),
        (status = 400, description = "Bad Request", body = updraft_shared::api::HttpError),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 409, description = "Conflict", body = updraft_shared::api::HttpError),
        (status = 422, description = "Validation Error", body = updraft_shared::api::HttpError),
    )
)]
pub async fn trigger_dag_run(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<String>,
    body: web::Json<TriggerDagRunPostBody>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::User)?;
    let dag_id = path.into_inner();
    let body = body.into_inner();
    let data_interval = match (body.data_interval_start, body.data_interval_end) {
        (Some(start), Some(end)) => Some(DataInterval { start, end }),
        (None, None) => None,
        _ => {
            return Err(ApiError::BadRequest(
                "give both data_interval_start and data_interval_end, or neither".into(),
            ))
        }
    };
    let conf_shown = body.conf.clone().unwrap_or_else(|| serde_json::json!({}));
    let req = TriggerRequest {
        run_id: body.dag_run_id,
        logical_date: body.logical_date.or(body.run_after),
        data_interval,
        conf: body.conf,
        note: body.note,
        triggered_by: "rest_api".into(),
        test_queue: None,
        audit: Some(
            AuditEntry::new(TRIGGER_EVENT, &user.username)
                .extra(serde_json::json!({"conf": state.secrets.names.redact_json(&conf_shown)})),
        ),
    };
    let run = trigger::trigger(&state.db, &state.engine.cache, &dag_id, req)
        .await
        .map_err(|e| match e {
            TriggerError::NotFound(_) => ApiError::NotFound(e.to_string()),
            TriggerError::Duplicate { .. } => ApiError::Conflict(e.to_string()),
            TriggerError::Invalid(_) | TriggerError::NoVersion(_) => {
                ApiError::BadRequest(e.to_string())
            }
            TriggerError::Store(e) => ApiError::Internal(e.into()),
        })?;
    state.engine.signals.wake_scheduler();
    Ok(HttpResponse::Ok().json(run_response(state.db.conn(), run).await?))
}

/// The run `run_id` of `dag_id`, or 404.
pub async fn find_run(
    state: &AppState,
    dag_id: &str,
    run_id: &str,
) -> Result<dag_run::Model, ApiError> {
    find_run_in(state.db.conn(), dag_id, run_id).await
}

/// `find_run` with the caller's connection or transaction.
pub async fn find_run_in(
    conn: &impl ConnectionTrait,
    dag_id: &str,
    run_id: &str,
) -> Result<dag_run::Model, ApiError> {
    Ok(crate::store::run_ops::find_run_in(conn, dag_id, run_id).await?)
}

/// Get a DAG run.
#[utoipa::path(
    get,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}",
    operation_id = "get_dag_run",
    tag = "DagRun",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("dag_run_id" = String, Path, description = "The run id"),
    ),
    responses(
        (status = 200, description = "Successful Response", body = DagRunResponse),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
    )
)]
pub async fn get_dag_run(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let (dag_id, run_id) = path.into_inner();
    let run = find_run(&state, &dag_id, &run_id).await?;
    Ok(HttpResponse::Ok().json(run_response(state.db.conn(), run).await?))
}
