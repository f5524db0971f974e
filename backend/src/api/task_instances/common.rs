//! What the task instance endpoints share: the response shapes, finding the DAG, run and task
//! instance a path names (with Airflow's 404 details).

use std::collections::{BTreeSet, HashMap};

use actix_web::HttpResponse;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use updraft_shared::api::{
    TaskInstanceCollectionResponse, TaskInstanceHistoryResponse, TaskInstanceResponse,
};
use updraft_shared::state::TaskInstanceState;

use crate::api::ids::{dag_version_response, task_instance_uuid};
use crate::api::ApiError;
use crate::server::AppState;
use crate::store::dags::{dag, dag_version};
use crate::store::entities::{dag_run, task_instance, task_instance_history};
use crate::store::{run_ops, ti_ops};

/// Airflow's `executor_config` of a task that has none.
const NO_EXECUTOR_CONFIG: &str = "{}";

/// A task instance or one of its tries, from a task instance row or a history row (the two
/// share these columns): `$shape` with the fields they share and `$extra`.
macro_rules! from_row {
    ($shape:ident, $row:expr, $version:expr, { $($extra:tt)* }) => {{
        let row = $row;
        $shape {
            task_id: row.task_id.clone(),
            dag_id: row.dag_id.clone(),
            dag_run_id: row.run_id.clone(),
            map_index: row.map_index,
            start_date: row.start_date,
            end_date: row.end_date,
            duration: row.duration,
            state: row.state.as_deref().and_then(TaskInstanceState::parse),
            try_number: row.try_number,
            max_tries: row.max_tries,
            task_display_name: row.task_id.clone(),
            dag_display_name: row.dag_id.clone(),
            hostname: non_empty(&row.hostname),
            unixname: None,
            pool: row.pool.clone(),
            pool_slots: row.pool_slots,
            queue: Some(row.queue.clone()),
            priority_weight: Some(row.priority_weight),
            operator: Some(operator_class(&row.operator)),
            operator_name: Some(operator_class(&row.operator)),
            pid: None,
            executor: None,
            executor_config: NO_EXECUTOR_CONFIG.into(),
            dag_version: $version.map(dag_version_response),
            $($extra)*
        }
    }};
}

/// A task instance as the API shows it, with its run (dates) and DAG version when known.
pub fn task_instance_response(
    ti: &task_instance::Model,
    run: &dag_run::Model,
    version: Option<&dag_version::Model>,
) -> TaskInstanceResponse {
    from_row!(TaskInstanceResponse, ti, version, {
        id: task_instance_uuid(ti.id),
        logical_date: run.logical_date,
        run_after: run.run_after,
        queued_when: ti.queued_dttm,
        scheduled_when: ti.scheduled_dttm,
        note: ti.note.clone(),
        rendered_map_index: None,
        rendered_fields: Some(rendered(ti.rendered_fields.as_deref())),
        trigger: None,
        triggerer_job: None,
    })
}

/// A finished try from the history table (which keeps no queued or scheduled times).
pub fn history_response(
    h: &task_instance_history::Model,
    version: Option<&dag_version::Model>,
) -> TaskInstanceHistoryResponse {
    from_row!(TaskInstanceHistoryResponse, h, version, {
        queued_when: None,
        scheduled_when: None,
    })
}

/// The task instance's current try, shaped as a history entry.
pub fn current_try_response(
    ti: &task_instance::Model,
    version: Option<&dag_version::Model>,
) -> TaskInstanceHistoryResponse {
    from_row!(TaskInstanceHistoryResponse, ti, version, {
        queued_when: ti.queued_dttm,
        scheduled_when: ti.scheduled_dttm,
    })
}

/// Operator names as Airflow shows them (its class names), from the DAG file's names.
const OPERATOR_CLASSES: [(&str, &str); 3] = [
    ("empty", "EmptyOperator"),
    ("bash", "BashOperator"),
    ("python", "PythonOperator"),
];

pub fn operator_class(stored: &str) -> String {
    OPERATOR_CLASSES
        .iter()
        .find(|(name, _)| *name == stored)
        .map_or(stored, |(_, class)| class)
        .to_string()
}

/// The stored name for an operator a filter names (`BashOperator` or `bash`).
pub fn operator_stored(name: &str) -> String {
    OPERATOR_CLASSES
        .iter()
        .find(|(_, class)| *class == name)
        .map_or(name, |(stored, _)| stored)
        .to_string()
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn rendered(raw: Option<&str>) -> serde_json::Value {
    raw.and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_else(|| serde_json::json!({}))
}

/// Responses for task instances of any runs: their runs and versions are read in two queries.
pub async fn responses(
    conn: &impl ConnectionTrait,
    tis: &[task_instance::Model],
) -> Result<Vec<TaskInstanceResponse>, ApiError> {
    let run_ids: BTreeSet<i64> = tis.iter().map(|t| t.dag_run_id).collect();
    let version_ids: BTreeSet<i64> = tis.iter().map(|t| t.dag_version_id).collect();
    let runs: HashMap<i64, dag_run::Model> = dag_run::Entity::find()
        .filter(dag_run::Column::Id.is_in(run_ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    let versions = versions_by_id(conn, version_ids).await?;
    tis.iter()
        .map(|ti| {
            let run = runs.get(&ti.dag_run_id).ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!(
                    "task instance {} has no run {}",
                    ti.id,
                    ti.dag_run_id
                ))
            })?;
            Ok(task_instance_response(
                ti,
                run,
                versions.get(&ti.dag_version_id),
            ))
        })
        .collect()
}

/// All of `tis` as one page: the answer of a mark, a clear and their dry runs.
pub async fn answer(
    state: &AppState,
    tis: &[task_instance::Model],
) -> Result<HttpResponse, ApiError> {
    let task_instances = responses(state.db.conn(), tis).await?;
    Ok(HttpResponse::Ok().json(TaskInstanceCollectionResponse {
        total_entries: task_instances.len() as i64,
        task_instances,
    }))
}

pub async fn versions_by_id(
    conn: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, dag_version::Model>, ApiError> {
    Ok(dag_version::Entity::find()
        .filter(dag_version::Column::Id.is_in(ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|v| (v.id, v))
        .collect())
}

/// The DAG `dag_id`, or 404.
pub async fn find_dag(state: &AppState, dag_id: &str) -> Result<dag::Model, ApiError> {
    Ok(ti_ops::find_dag(state.db.conn(), dag_id).await?)
}

/// The run `run_id` of `dag_id`, or 404.
pub async fn find_run(
    state: &AppState,
    dag_id: &str,
    run_id: &str,
) -> Result<dag_run::Model, ApiError> {
    Ok(run_ops::find_run_in(state.db.conn(), dag_id, run_id).await?)
}

/// The task instances of `task_id` in the run (one per map index, or the one asked for), or
/// 404 naming what was looked for.
pub async fn find_task_instances(
    state: &AppState,
    run: &dag_run::Model,
    task_id: &str,
    map_index: Option<i32>,
) -> Result<Vec<task_instance::Model>, ApiError> {
    Ok(ti_ops::find_task_instances(state.db.conn(), run, task_id, map_index).await?)
}

/// A note longer than Airflow's limit is refused.
pub fn check_note(note: Option<&str>) -> Result<(), ApiError> {
    match note {
        Some(n) if n.chars().count() > 1000 => Err(ApiError::Unprocessable(format!(
            "note: at most 1000 characters, not {}",
            n.chars().count()
        ))),
        _ => Ok(()),
    }
}
