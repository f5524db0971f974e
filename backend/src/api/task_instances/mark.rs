//! Marking task instances by hand: `PATCH .../taskInstances/{task_id}` (and `/dry_run`,
//! and the `/{map_index}` variants). As Airflow: the task instance and, when asked, its
//! upstream/downstream tasks and the same tasks in later/earlier runs take the new state
//! (those already in it are left alone); failed downstream tasks are then cleared so they run
//! again; a note only sets the note.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};
use serde::Deserialize;
use updraft_shared::api::{PatchTaskInstanceBody, TaskInstanceCollectionResponse};
use updraft_shared::state::TaskInstanceState as S;

use super::common::{answer, check_note, find_dag, find_run, find_task_instances};
use crate::api::query::{self, ApiQuery};
use crate::api::ApiError;
use crate::auth::{Identity, Role};
use crate::server::AppState;
use crate::store::audit::AuditEntry;
use crate::store::entities::task_instance;
use crate::store::ti_ops::{self, MarkRequest};

#[derive(Debug, Default, Deserialize)]
pub struct PatchQuery {
    pub map_index: Option<i32>,
    /// Only these fields of the body are applied (`new_state`, `note`).
    #[serde(default, deserialize_with = "query::one_or_many")]
    pub update_mask: Vec<String>,
}

/// What a PATCH names.
pub struct Target {
    pub dag_id: String,
    pub run_id: String,
    pub task_id: String,
    pub map_index: Option<i32>,
}

const MARKABLE: [S; 3] = [S::Success, S::Failed, S::Skipped];

/// Marks (or, with `dry_run`, says what would be marked) and answers the task instances
/// concerned.
pub async fn patch(
    state: &AppState,
    user: &Identity,
    target: Target,
    mask: &[String],
    body: PatchTaskInstanceBody,
    dry_run: bool,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::User)?;
    let new_state = match &body.new_state {
        None => None,
        Some(None) => {
            return Err(ApiError::Unprocessable(
                "new_state: 'new_state' should not be empty; use success, failed or skipped".into(),
            ))
        }
        Some(Some(raw)) => Some(
            S::parse(&raw.trim().to_lowercase())
                .filter(|s| MARKABLE.contains(s))
                .ok_or_else(|| {
                    ApiError::Unprocessable(format!(
                        "new_state: {raw:?} is not one of ['success', 'failed', 'skipped']"
                    ))
                })?,
        ),
    };
    check_note(body.note.as_ref().and_then(|n| n.as_deref()))?;
    let wanted = |field: &str| {
        mask.is_empty()
            || mask
                .iter()
                .flat_map(|m| m.split(','))
                .any(|m| m.trim() == field)
    };
    let new_state = new_state.filter(|_| wanted("new_state"));
    let note = body.note.clone().filter(|_| wanted("note"));

    let Target {
        dag_id,
        run_id,
        task_id,
        map_index,
    } = target;
    let Some(new_state) = new_state else {
        // A note (or nothing) to set: only the task instance itself.
        find_dag(state, &dag_id).await?;
        let run = find_run(state, &dag_id, &run_id).await?;
        let targets = find_task_instances(state, &run, &task_id, map_index).await?;
        if dry_run {
            return answer(state, &targets).await;
        }
        let target_ids: Vec<i64> = targets.iter().map(|t| t.id).collect();
        if let Some(note) = &note {
            let txn = state.db.conn().begin().await?;
            crate::store::audit::record(
                &txn,
                ti_ops::task_entry(AuditEntry::new(EVENT, &user.username), &run, &task_id)
                    .extra(serde_json::json!({"note": note, "map_index": map_index})),
            )
            .await?;
            ti_ops::set_note(&txn, &target_ids, note.as_deref(), Utc::now()).await?;
            txn.commit().await?;
        }
        return answer(state, &reread(state, &target_ids).await?).await;
    };

    let req = MarkRequest {
        dag_id,
        run_id,
        task_id,
        map_index,
        new_state,
        upstream: body.include_upstream,
        downstream: body.include_downstream,
        future: body.include_future,
        past: body.include_past,
    };
    let plan = ti_ops::plan_mark(&state.db, &state.engine.cache, &req).await?;
    if dry_run {
        return answer(state, &plan.affected).await;
    }
    let entry = AuditEntry::new(EVENT, &user.username).extra(serde_json::json!({
        "new_state": new_state.as_str(),
        "note": note,
        "map_index": map_index,
        "include_upstream": body.include_upstream,
        "include_downstream": body.include_downstream,
        "include_future": body.include_future,
        "include_past": body.include_past,
    }));
    let marked = ti_ops::apply_mark(&state.db, &req, plan, note, entry).await?;
    for id in &marked.was_running {
        state.engine.signals.stop(*id);
    }
    state.engine.signals.wake_scheduler();
    answer(state, &reread(state, &marked.changed).await?).await
}

/// The audit event of a mark through the API.
const EVENT: &str = "patch_task_instance";

async fn reread(state: &AppState, ids: &[i64]) -> Result<Vec<task_instance::Model>, ApiError> {
    Ok(task_instance::Entity::find()
        .filter(task_instance::Column::Id.is_in(ids.iter().copied()))
        .order_by_asc(task_instance::Column::DagRunId)
        .order_by_asc(task_instance::Column::Id)
        .all(state.db.conn())
        .await?)
}

/// What the four PATCH handlers share: the path's task instance (one map index or, with
/// `None`, all of them) marked, or with `dry_run` only shown.
async fn handle(
    state: &AppState,
    user: &Identity,
    (dag_id, run_id, task_id): (String, String, String),
    map_index: Option<i32>,
    q: PatchQuery,
    body: web::Json<PatchTaskInstanceBody>,
    dry_run: bool,
) -> Result<HttpResponse, ApiError> {
    let target = Target {
        dag_id,
        run_id,
        task_id,
        map_index,
    };
    patch(
        state,
        user,
        target,
        &q.update_mask,
        body.into_inner(),
        dry_run,
    )
    .await
}

/// Mark a task instance (and relatives) success, failed or skipped, or set its note.
#[utoipa::path(
    patch,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}",
    operation_id = "patch_task_instance",
    tag = "Task Instance",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("dag_run_id" = String, Path, description = "The run id"),
        ("task_id" = String, Path, description = "The task"),
        ("map_index" = Option<i32>, Query, description = "Only this map index (-1: not mapped)"),
        ("update_mask" = Option<Vec<String>>, Query, description = "Only these body fields: new_state, note"),
    ),
    request_body = PatchTaskInstanceBody,
    responses(
        (status = 200, description = "The task instances changed", body = TaskInstanceCollectionResponse),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 409, description = "Already in that state", body = updraft_shared::api::HttpError),
        (status = 422, description = "Validation Error", body = updraft_shared::api::HttpError),
    )
)]
pub async fn patch_task_instance(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<(String, String, String)>,
    q: ApiQuery<PatchQuery>,
    body: web::Json<PatchTaskInstanceBody>,
) -> Result<HttpResponse, ApiError> {
    let map_index = q.0.map_index;
    handle(
        &state,
        &user,
        path.into_inner(),
        map_index,
        q.0,
        body,
        false,
    )
    .await
}

/// What marking would change, without changing it.
#[utoipa::path(
    patch,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/dry_run",
    operation_id = "patch_task_instance_dry_run",
    tag = "Task Instance",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("dag_run_id" = String, Path, description = "The run id"),
        ("task_id" = String, Path, description = "The task"),
        ("map_index" = Option<i32>, Query, description = "Only this map index (-1: not mapped)"),
        ("update_mask" = Option<Vec<String>>, Query, description = "Only these body fields: new_state, note"),
    ),
    request_body = PatchTaskInstanceBody,
    responses(
        (status = 200, description = "The task instances that would change", body = TaskInstanceCollectionResponse),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 422, description = "Validation Error", body = updraft_shared::api::HttpError),
    )
)]
pub async fn patch_task_instance_dry_run(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<(String, String, String)>,
    q: ApiQuery<PatchQuery>,
    body: web::Json<PatchTaskInstanceBody>,
) -> Result<HttpResponse, ApiError> {
    let map_index = q.0.map_index;
    handle(&state, &user, path.into_inner(), map_index, q.0, body, true).await
}

/// `patch_task_instance` for one map index.
#[utoipa::path(
    patch,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}",
    operation_id = "patch_task_instance_by_map_index",
    tag = "Task Instance",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("dag_run_id" = String, Path, description = "The run id"),
        ("task_id" = String, Path, description = "The task"),
        ("map_index" = i32, Path, description = "The map index (-1: not mapped)"),
        ("update_mask" = Option<Vec<String>>, Query, description = "Only these body fields: new_state, note"),
    ),
    request_body = PatchTaskInstanceBody,
    responses(
        (status = 200, description = "The task instances changed", body = TaskInstanceCollectionResponse),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 409, description = "Already in that state", body = updraft_shared::api::HttpError),
        (status = 422, description = "Validation Error", body = updraft_shared::api::HttpError),
    )
)]
pub async fn patch_task_instance_by_map_index(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<(String, String, String, i32)>,
    q: ApiQuery<PatchQuery>,
    body: web::Json<PatchTaskInstanceBody>,
) -> Result<HttpResponse, ApiError> {
    let (dag_id, run_id, task_id, map_index) = path.into_inner();
    let path = (dag_id, run_id, task_id);
    handle(&state, &user, path, Some(map_index), q.0, body, false).await
}

/// `patch_task_instance_dry_run` for one map index.
#[utoipa::path(
    patch,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/dry_run",
    operation_id = "patch_task_instance_dry_run_by_map_index",
    tag = "Task Instance",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("dag_run_id" = String, Path, description = "The run id"),
        ("task_id" = String, Path, description = "The task"),
        ("map_index" = i32, Path, description = "The map index (-1: not mapped)"),
        ("update_mask" = Option<Vec<String>>, Query, description = "Only these body fields: new_state, note"),
    ),
    request_body = PatchTaskInstanceBody,
    responses(
        (status = 200, description = "The task instances that would change", body = TaskInstanceCollectionResponse),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 422, description = "Validation Error", body = updraft_shared::api::HttpError),
    )
)]
pub async fn patch_task_instance_dry_run_by_map_index(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<(String, String, String, i32)>,
    q: ApiQuery<PatchQuery>,
    body: web::Json<PatchTaskInstanceBody>,
) -> Result<HttpResponse, ApiError> {
    let (dag_id, run_id, task_id, map_index) = path.into_inner();
    let path = (dag_id, run_id, task_id);
    handle(&state, &user, path, Some(map_index), q.0, body, true).await
}
