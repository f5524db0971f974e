//! DAG runs and their task instances: trigger, get, and the run's task instances (the rest
//! of Airflow's run endpoints arrive with the API issue).

use actix_web::{web, HttpResponse};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use updraft_shared::api::{
    DagRunResponse, TaskInstanceCollectionResponse, TaskInstanceResponse, TriggerDagRunPostBody,
};
use updraft_shared::state::{DagRunState, DagRunType, TaskInstanceState};

use super::ApiError;
use crate::scheduler::timetable::DataInterval;
use crate::scheduler::trigger::{self, TriggerError, TriggerRequest};
use crate::server::AppState;
use crate::store::entities::{dag_run, task_instance};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/dags/{dag_id}/dagRuns").post(trigger_dag_run))
        .service(web::resource("/dags/{dag_id}/dagRuns/{dag_run_id}").get(get_dag_run))
        .service(
            web::resource("/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances")
                .get(get_task_instances),
        );
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
    path: web::Path<String>,
    body: web::Json<TriggerDagRunPostBody>,
) -> Result<HttpResponse, ApiError> {
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
    let req = TriggerRequest {
        run_id: body.dag_run_id,
        logical_date: body.logical_date.or(body.run_after),
        data_interval,
        conf: body.conf,
        note: body.note,
        triggered_by: "rest_api".into(),
        test_queue: None,
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

async fn find_run(
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
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (dag_id, run_id) = path.into_inner();
    let run = find_run(&state, &dag_id, &run_id).await?;
    Ok(HttpResponse::Ok().json(run_response(run)))
}

/// List the task instances of a DAG run.
#[utoipa::path(
    get,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances",
    operation_id = "get_task_instances",
    tag = "Task Instance",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("dag_run_id" = String, Path, description = "The run id"),
    ),
    responses(
        (status = 200, description = "Successful Response", body = TaskInstanceCollectionResponse),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
    )
)]
pub async fn get_task_instances(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (dag_id, run_id) = path.into_inner();
    let run = find_run(&state, &dag_id, &run_id).await?;
    let tis = task_instance::Entity::find()
        .filter(task_instance::Column::DagRunId.eq(run.id))
        .order_by_asc(task_instance::Column::Id)
        .all(state.db.conn())
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let task_instances: Vec<TaskInstanceResponse> = tis
        .into_iter()
        .map(|ti| TaskInstanceResponse {
            id: ti.id.to_string(),
            task_display_name: ti.task_id.clone(),
            task_id: ti.task_id,
            dag_id: ti.dag_id,
            dag_run_id: ti.run_id,
            map_index: ti.map_index,
            logical_date: run.logical_date,
            run_after: run.run_after,
            start_date: ti.start_date,
            end_date: ti.end_date,
            duration: ti.duration,
            state: ti.state.as_deref().and_then(TaskInstanceState::parse),
            try_number: ti.try_number,
            max_tries: ti.max_tries,
            hostname: Some(ti.hostname),
            pool: ti.pool,
            pool_slots: ti.pool_slots,
            queue: Some(ti.queue),
            priority_weight: Some(ti.priority_weight),
            operator: Some(ti.operator),
            queued_when: ti.queued_dttm,
            scheduled_when: ti.scheduled_dttm,
            rendered_fields: ti
                .rendered_fields
                .and_then(|r| serde_json::from_str(&r).ok())
                .unwrap_or_else(|| serde_json::json!({})),
        })
        .collect();
    Ok(HttpResponse::Ok().json(TaskInstanceCollectionResponse {
        total_entries: task_instances.len() as i64,
        task_instances,
    }))
}
