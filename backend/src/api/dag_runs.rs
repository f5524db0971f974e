//! DAG runs: trigger and get (more arrive with the rest of issue 5).

use actix_web::{web, HttpResponse};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use updraft_shared::api::{DagRunResponse, TriggerDagRunPostBody};
use updraft_shared::state::{DagRunState, DagRunType};

use super::ApiError;
use crate::auth::{Identity, Role};
use crate::scheduler::timetable::DataInterval;
use crate::scheduler::trigger::{self, TriggerError, TriggerRequest};
use crate::server::AppState;
use crate::store::audit::AuditEntry;
use crate::store::entities::dag_run;

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(trigger_dag_run, get_dag_run))]
pub struct Doc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/dags/{dag_id}/dagRuns").post(trigger_dag_run))
        .service(web::resource("/dags/{dag_id}/dagRuns/{dag_run_id}").get(get_dag_run));
}

pub fn run_response(run: dag_run::Model) -> DagRunResponse {
    let duration = match (run.start_date, run.end_date) {
        (Some(s), Some(e)) => Some(crate::timefmt::seconds_between(s, e)),
        _ => None,
    };
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
        triggered_by: run.triggered_by,
        conf: serde_json::from_str(&run.conf).unwrap_or_else(|_| serde_json::json!({})),
        note: run.note,
        dag_version_id: run.dag_version_id,
    }
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
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 409, description = "Conflict", body = updraft_shared::api::HttpError),
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
            AuditEntry::new("trigger_dag_run", &user.username)
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
    Ok(HttpResponse::Ok().json(run_response(run)))
}

pub async fn find_run(
    state: &AppState,
    dag_id: &str,
    run_id: &str,
) -> Result<dag_run::Model, ApiError> {
    dag_run::Entity::find()
        .filter(dag_run::Column::DagId.eq(dag_id))
        .filter(dag_run::Column::RunId.eq(run_id))
        .one(state.db.conn())
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "The DagRun with dag_id: `{dag_id}` and run_id: `{run_id}` was not found"
            ))
        })
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
    Ok(HttpResponse::Ok().json(run_response(run)))
}
