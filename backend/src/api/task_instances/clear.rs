//! `POST /api/v2/dags/{dag_id}/clearTaskInstances`: clear task instances so they run again
//! (Airflow's `DAG.clear` + `clear_task_instances`), or with `dry_run` say which would be.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};
use updraft_shared::api::{ClearTaskId, ClearTaskInstancesBody, TaskInstanceCollectionResponse};
use updraft_shared::state::TaskInstanceState as S;

use super::common::{answer, check_note, find_dag, relatives};
use super::store;
use crate::api::ApiError;
use crate::auth::{Identity, Role};
use crate::scheduler::loaded::LoadedDag;
use crate::server::AppState;
use crate::store::audit::AuditEntry;
use crate::store::entities::{dag_run, task_instance};

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
    let dag = find_dag(&state, &dag_id).await?;

    // Which runs.
    let mut runs = dag_run::Entity::find().filter(dag_run::Column::DagId.eq(dag_id.as_str()));
    let (mut start, mut end) = (body.start_date, body.end_date);
    if let Some(run_id) = &body.dag_run_id {
        let run = dag_run::Entity::find()
            .filter(dag_run::Column::DagId.eq(dag_id.as_str()))
            .filter(dag_run::Column::RunId.eq(run_id.as_str()))
            .one(state.db.conn())
            .await?
            .ok_or_else(|| {
                ApiError::NotFound(format!("Dag Run id {run_id} not found in dag {dag_id}"))
            })?;
        if body.include_past || body.include_future {
            let logical = run.logical_date.ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "Cannot use include_past or include_future with run {run_id}: it has no logical_date (a manual or asset-triggered run)"
                ))
            })?;
            start = (!body.include_past).then_some(logical);
            end = (!body.include_future).then_some(logical);
        } else {
            runs = runs.filter(dag_run::Column::Id.eq(run.id));
        }
    }
    if let (Some(s), Some(e)) = (start, end) {
        if s > e {
            return Err(ApiError::BadRequest(format!(
                "start_date ({s}) is after end_date ({e}): nothing lies between"
            )));
        }
    }
    if let Some(s) = start {
        runs = runs.filter(dag_run::Column::LogicalDate.gte(s));
    }
    if let Some(e) = end {
        runs = runs.filter(dag_run::Column::LogicalDate.lte(e));
    }
    let runs = runs.all(state.db.conn()).await?;

    // The DAG versions those runs execute, and the current one (to check task ids).
    let mut versions: HashMap<i64, Arc<LoadedDag>> = HashMap::new();
    let wanted: BTreeSet<i64> = runs
        .iter()
        .map(|r| r.dag_version_id)
        .chain(dag.current_version_id)
        .collect();
    for id in wanted {
        versions.insert(id, state.engine.cache.get(&state.db, id).await?);
    }
    if let Some(ids) = &body.task_ids {
        for t in ids {
            let known = versions
                .values()
                .any(|v| v.graph.index_of(t.task_id()).is_some());
            if !known {
                return Err(ApiError::BadRequest(format!(
                    "task_ids: DAG {dag_id} has no task {:?}",
                    t.task_id()
                )));
            }
        }
    }

    // Which task instances, run by run (each run's own graph gives the relatives).
    let mut states: Vec<&str> = Vec::new();
    if body.only_failed {
        states.extend([S::Failed.as_str(), S::UpstreamFailed.as_str()]);
    }
    if body.only_running {
        states.push(S::Running.as_str());
    }
    let mut by_version: HashMap<i64, Vec<i64>> = HashMap::new();
    for r in &runs {
        by_version.entry(r.dag_version_id).or_default().push(r.id);
    }
    let mut selected = Vec::new();
    for (version_id, run_ids) in by_version {
        let Some(loaded) = versions.get(&version_id) else {
            continue;
        };
        let mut select = task_instance::Entity::find()
            .filter(task_instance::Column::DagRunId.is_in(run_ids))
            .order_by_asc(task_instance::Column::DagRunId)
            .order_by_asc(task_instance::Column::Id);
        if !states.is_empty() {
            select = select.filter(task_instance::Column::State.is_in(states.clone()));
        }
        let Some(ids) = &body.task_ids else {
            selected.extend(select.all(state.db.conn()).await?);
            continue;
        };
        // Whole tasks (with their relatives), and single map indexes of tasks.
        let mut whole: BTreeSet<String> = BTreeSet::new();
        let mut mapped: BTreeSet<(String, i32)> = BTreeSet::new();
        for t in ids {
            let Some(idx) = loaded.graph.index_of(t.task_id()) else {
                continue;
            };
            if let ClearTaskId::Mapped(task, m) = t {
                mapped.insert((task.clone(), *m));
            } else {
                whole.insert(t.task_id().to_string());
            }
            let others = relatives(
                &loaded.graph,
                idx,
                body.include_upstream,
                body.include_downstream,
            );
            whole.extend(
                others
                    .into_iter()
                    .filter(|&i| i != idx)
                    .map(|i| loaded.dag.tasks[i].id.clone()),
            );
        }
        let mut names: Vec<String> = whole.iter().cloned().collect();
        names.extend(mapped.iter().map(|(t, _)| t.clone()));
        let found = select
            .filter(task_instance::Column::TaskId.is_in(names))
            .all(state.db.conn())
            .await?;
        selected.extend(found.into_iter().filter(|ti| {
            whole.contains(&ti.task_id) || mapped.contains(&(ti.task_id.clone(), ti.map_index))
        }));
    }
    selected.sort_by_key(|ti| (ti.dag_run_id, ti.id));

    if body.dry_run {
        return answer(&state, &selected).await;
    }
    if body.prevent_running_task {
        if let Some(ti) = selected
            .iter()
            .find(|t| t.state.as_deref() == Some(S::Running.as_str()))
        {
            return Err(ApiError::BadRequest(format!(
                "Task instance {} of run {} is running and prevent_running_task is set: wait for it to end, or clear without prevent_running_task",
                ti.task_id, ti.run_id
            )));
        }
    }

    // The versions of the task instances themselves give their retries.
    for id in selected
        .iter()
        .map(|t| t.dag_version_id)
        .collect::<BTreeSet<_>>()
    {
        if let std::collections::hash_map::Entry::Vacant(e) = versions.entry(id) {
            e.insert(state.engine.cache.get(&state.db, id).await?);
        }
    }
    let retries = |ti: &task_instance::Model| {
        let loaded = versions.get(&ti.dag_version_id)?;
        loaded
            .graph
            .index_of(&ti.task_id)
            .map(|i| loaded.retries(i))
    };
    let now = Utc::now();
    let txn = state.db.conn().begin().await?;
    let mut entry = AuditEntry::new("post_clear_task_instances", &user.username)
        .dag(&dag_id)
        .extra(serde_json::to_value(&body).unwrap_or_default());
    entry.run_id = body.dag_run_id.clone();
    crate::store::audit::record(&txn, entry).await?;
    let cleared = store::clear(
        &txn,
        &selected,
        retries,
        body.reset_dag_runs,
        body.note.as_deref(),
        now,
    )
    .await?;
    txn.commit().await?;
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
    store::release_restarting(state.db.conn(), ids, Utc::now()).await?;
    Ok(())
}
