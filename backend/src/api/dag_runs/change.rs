//! Changing runs by hand: patch (state, note), clear, delete. Each change commits with its
//! audit entry; tries taken away from a worker of this process are stopped at once (workers
//! elsewhere stop them at their next lease renewal).

use actix_web::{web, HttpResponse};
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, TransactionTrait};
use serde::Deserialize;
use updraft_shared::api::{DagRunClearBody, DagRunMutableStates, DagRunPatchBody, DagRunResponse};
use updraft_shared::state::DagRunState;

use super::{find_run, run_response};
use crate::api::query::{self, ApiQuery};
use crate::api::ApiError;
use crate::auth::{Identity, Role};
use crate::server::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::entities::dag_run;
use crate::store::run_ops;

const NOTE_MAX: usize = 1000;

#[derive(Debug, Deserialize)]
pub struct PatchQuery {
    #[serde(default, deserialize_with = "query::one_or_many")]
    update_mask: Vec<String>,
}

/// Mark a run success, failed or queued, or set its note.
#[utoipa::path(
    patch,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}",
    operation_id = "patch_dag_run",
    tag = "DagRun",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("dag_run_id" = String, Path, description = "The run id"),
        ("update_mask" = Option<Vec<String>>, Query, description = "Fields to change (state, note); all given ones when absent"),
    ),
    request_body = DagRunPatchBody,
    responses(
        (status = 200, description = "Successful Response", body = DagRunResponse),
        (status = 400, description = "Bad Request", body = updraft_shared::api::HttpError),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 422, description = "Validation Error", body = updraft_shared::api::HttpError),
    )
)]
pub async fn patch_dag_run(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<(String, String)>,
    q: ApiQuery<PatchQuery>,
    body: web::Json<DagRunPatchBody>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::User)?;
    let (dag_id, run_id) = path.into_inner();
    let body = body.into_inner();
    let mask: Vec<String> =
        q.0.update_mask
            .iter()
            .flat_map(|m| m.split(','))
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect();
    if let Some(bad) = mask
        .iter()
        .find(|m| !["state", "note"].contains(&m.as_str()))
    {
        return Err(ApiError::BadRequest(format!(
            "Invalid field `{bad}` in update mask: a run's state and note can be changed"
        )));
    }
    let wanted = |field: &str| mask.is_empty() || mask.iter().any(|m| m == field);
    let new_state = body.state.filter(|_| wanted("state")).map(|s| match s {
        DagRunMutableStates::Queued => DagRunState::Queued,
        DagRunMutableStates::Success => DagRunState::Success,
        DagRunMutableStates::Failed => DagRunState::Failed,
    });
    let new_note = body.note.filter(|_| wanted("note"));
    if let Some(Some(note)) = &new_note {
        if note.chars().count() > NOTE_MAX {
            return Err(ApiError::Unprocessable(format!(
                "note: at most {NOTE_MAX} characters, not {}",
                note.chars().count()
            )));
        }
    }
    let entry = AuditEntry::new("patch_dag_run", &user.username).extra(serde_json::json!({
        "state": new_state.map(|s| s.as_str()),
        "note": new_note,
        "update_mask": mask,
    }));
    let taken = run_ops::patch(&state.db, &dag_id, &run_id, new_state, new_note, entry).await?;
    answer_changed(&state, taken, &dag_id, &run_id).await
}

/// Commits a change to the run and answers as [`answer_changed`].
async fn commit_and_answer(
    state: &AppState,
    txn: DatabaseTransaction,
    taken: Vec<i64>,
    dag_id: &str,
    run_id: &str,
) -> Result<HttpResponse, ApiError> {
    txn.commit().await?;
    answer_changed(state, taken, dag_id, run_id).await
}

/// After a committed change to the run: stops the task instances it took from their workers,
/// wakes the scheduler and answers the run as it is now.
async fn answer_changed(
    state: &AppState,
    taken: Vec<i64>,
    dag_id: &str,
    run_id: &str,
) -> Result<HttpResponse, ApiError> {
    // The run as this change left it, read before the scheduler (woken next) moves it on.
    let run = find_run(state, dag_id, run_id).await?;
    let answer = run_response(state.db.conn(), run).await?;
    for id in taken {
        state.engine.signals.stop(id);
    }
    state.engine.signals.wake_scheduler();
    Ok(HttpResponse::Ok().json(answer))
}

/// Clear a run: a dry run (the default) lists the task instances that would run again;
/// otherwise they lose their state and the run is queued again.
#[utoipa::path(
    post,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/clear",
    operation_id = "clear_dag_run",
    tag = "DagRun",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("dag_run_id" = String, Path, description = "The run id"),
    ),
    request_body = DagRunClearBody,
    responses(
        (status = 200, description = "Successful Response: TaskInstanceCollectionResponse for a dry run, DAGRunResponse otherwise", body = updraft_shared::api::ResponseClearDagRun),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 422, description = "Validation Error", body = updraft_shared::api::HttpError),
    )
)]
pub async fn clear_dag_run(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<(String, String)>,
    body: web::Json<DagRunClearBody>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::User)?;
    let (dag_id, run_id) = path.into_inner();
    let body = body.into_inner();
    let run = find_run(&state, &dag_id, &run_id).await?;
    if body.dry_run {
        let tis =
            run_ops::clearable(state.db.conn(), run.id, body.only_failed, body.only_new).await?;
        return crate::api::task_instances::task_instances_answer(&state, &tis).await;
    }
    let loaded = state
        .engine
        .cache
        .get(&state.db, run.dag_version_id)
        .await
        .ok();
    let now = crate::timefmt::now();
    let txn = state.db.conn().begin().await?;
    audit::record(
        &txn,
        AuditEntry::new("clear_dag_run", &user.username)
            .dag(&dag_id)
            .run(&run_id)
            .extra(serde_json::json!({"only_failed": body.only_failed, "only_new": body.only_new})),
    )
    .await?;
    let tis = run_ops::clearable(&txn, run.id, body.only_failed, body.only_new).await?;
    let taken = run_ops::clear(&txn, &run, &tis, loaded.as_deref(), now).await?;
    if let Some(note) = &body.note {
        dag_run::Entity::update_many()
            .col_expr(
                dag_run::Column::Note,
                sea_orm::sea_query::Expr::value(note.clone()),
            )
            .filter(dag_run::Column::Id.eq(run.id))
            .exec(&txn)
            .await?;
    }
    commit_and_answer(&state, txn, taken, &dag_id, &run_id).await
}

/// Delete a run with its task instances, their tries and XComs.
#[utoipa::path(
    delete,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}",
    operation_id = "delete_dag_run",
    tag = "DagRun",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("dag_run_id" = String, Path, description = "The run id"),
    ),
    responses(
        (status = 204, description = "Successful Response"),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
    )
)]
pub async fn delete_dag_run(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::User)?;
    let (dag_id, run_id) = path.into_inner();
    let running = run_ops::delete(
        &state.db,
        &dag_id,
        &run_id,
        AuditEntry::new("delete_dag_run", &user.username),
    )
    .await?;
    for id in running {
        state.engine.signals.stop(id);
    }
    state.engine.signals.wake_scheduler();
    Ok(HttpResponse::NoContent().finish())
}
