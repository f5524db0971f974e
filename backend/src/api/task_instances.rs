//! Task instances: the run's list (more arrive with the rest of issue 5).

use actix_web::{web, HttpResponse};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use updraft_shared::api::{TaskInstanceCollectionResponse, TaskInstanceResponse};
use updraft_shared::state::TaskInstanceState;
use utoipa::OpenApi;

use super::dag_runs::find_run;
use super::ApiError;
use crate::auth::{Identity, Role};
use crate::server::AppState;
use crate::store::entities::task_instance;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances").get(get_task_instances),
    );
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(get_task_instances))]
pub struct Doc;

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
    user: Identity,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
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
