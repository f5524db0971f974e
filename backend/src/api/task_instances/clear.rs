//! `POST /api/v2/dags/{dag_id}/clearTaskInstances`: clear task instances so they run again
//! (Airflow's `DAG.clear` + `clear_task_instances`), or with `dry_run` say which would be.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use updraft_shared::api::{ClearTaskInstancesBody, TaskInstanceCollectionResponse};

use super::common::{answer, check_note};
use crate::api::ApiError;
use crate::auth::{Identity, Role};
use crate::server::AppState;
use crate::store::audit::AuditEntry;
use crate::store::entities::task_instance;
use crate::store::ti_ops;

/// Clear task instances of a DAG.
#[utoipa::path(
    post,
    path = "/api/v2/dags/{dag_id}/clearTaskInstances",
    operation_id = "post_clear_task_instances",
    tag = "Task Instance",
    params(("dag_id" = String, Path, description = "The DAG")),
    request_body = ClearTaskInstancesBody,
    responses(
        (status = 200, description = "The task instances cleared (or, with dry_run, that would be)", body = TaskInstanceCollectionResponse),
        (status = 400, description = "Bad Request", body = updraft_shared::api::HttpError),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 422, description = "Validation Error", body = updraft_shared::api::HttpError),
    )
)]
pub async fn post_clear_task_instances(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<String>,
    body: web::Json<ClearTaskInstancesBody>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::User)?;
    let dag_id = path.into_inner();
    let body = body.into_inner();
    check_note(body.note.as_deref())?;
    let selection =
        ti_ops::select_for_clear(&state.db, &state.engine.cache, &dag_id, &body).await?;
    if body.dry_run {
        return answer(&state, &selection.tis).await;
    }
    let cleared = ti_ops::clear_selected(
        &state.db,
        &state.engine.cache,
        &dag_id,
        &body,
        selection,
        AuditEntry::new("post_clear_task_instances", &user.username),
    )
    .await?;
    // Read before the scheduler moves them on: as cleared (running ones `restarting`).
    let tis = task_instance::Entity::find()
        .filter(task_instance::Column::Id.is_in(cleared.ids))
        .order_by_asc(task_instance::Column::DagRunId)
        .order_by_asc(task_instance::Column::Id)
        .all(state.db.conn())
        .await?;
    restart(&state, &cleared.restarting).await?;
    state.engine.signals.wake_scheduler();
    answer(&state, &tis).await
}

/// Stops cleared tries that run in this process and, once they have stopped (or after a
/// while), lets the scheduler start their next try. Waiting keeps the old try from
/// finishing over the new one.
pub async fn restart(state: &AppState, ids: &[i64]) -> Result<(), ApiError> {
    if ids.is_empty() {
        return Ok(());
    }
    for id in ids {
        state.engine.signals.stop(*id);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline
        && state
            .engine
            .signals
            .running_ids()
            .iter()
            .any(|r| ids.contains(r))
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ti_ops::release_restarting(state.db.conn(), ids, Utc::now()).await?;
    Ok(())
}
