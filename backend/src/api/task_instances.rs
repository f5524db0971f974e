//! Task instances: list (per run, across runs with `~`, or by a batch body), get one, its
//! tries, mark by hand (`PATCH`) and clear (`clearTaskInstances`), with Airflow 3's paths,
//! operation ids and shapes. Logs and XComs live in their own modules.

mod clear;
mod common;
mod list;
mod mark;

pub use clear::restart as restart_cleared;
pub use common::{answer as task_instances_answer, task_instance_response};

use actix_web::{web, HttpResponse};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use updraft_shared::api::{
    ClearTaskId, ClearTaskInstancesBody, JobResponse, PatchTaskInstanceBody,
    TaskInstanceCollectionResponse, TaskInstanceHistoryCollectionResponse,
    TaskInstanceHistoryResponse, TaskInstanceResponse, TaskInstancesBatchBody, TriggerResponse,
};
use utoipa::OpenApi;

use self::common::{
    current_try_response, find_run, find_task_instances, history_response, versions_by_id,
};
use self::list::ListQuery;
use super::query::{ApiQuery, Page};
use super::ApiError;
use crate::auth::{Identity, Role};
use crate::server::AppState;
use crate::store::entities::task_instance_history;

const RUN: &str = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances";

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Fixed segments before `{task_id}`; a map index is digits, so the paths of the logs,
    // XCom and links endpoints under `{task_id}/` never match here.
    const MAPPED: &str = "{task_id}/{map_index:-?[0-9]+}";
    cfg.service(web::resource(RUN).get(get_task_instances))
        .service(web::resource(format!("{RUN}/list")).post(get_task_instances_batch))
        .service(web::resource(format!("{RUN}/{{task_id}}/tries")).get(get_task_instance_tries))
        .service(
            web::resource(format!("{RUN}/{{task_id}}/tries/{{task_try_number}}"))
                .get(get_task_instance_try_details),
        )
        .service(
            web::resource(format!("{RUN}/{{task_id}}/dry_run"))
                .patch(mark::patch_task_instance_dry_run),
        )
        .service(
            web::resource(format!("{RUN}/{MAPPED}"))
                .get(get_mapped_task_instance)
                .patch(mark::patch_task_instance_by_map_index),
        )
        .service(web::resource(format!("{RUN}/{MAPPED}/tries")).get(get_mapped_task_instance_tries))
        .service(
            web::resource(format!("{RUN}/{MAPPED}/tries/{{task_try_number}}"))
                .get(get_mapped_task_instance_try_details),
        )
        .service(
            web::resource(format!("{RUN}/{MAPPED}/dry_run"))
                .patch(mark::patch_task_instance_dry_run_by_map_index),
        )
        .service(
            web::resource(format!("{RUN}/{{task_id}}"))
                .get(get_task_instance)
                .patch(mark::patch_task_instance),
        )
        .service(
            web::resource("/dags/{dag_id}/clearTaskInstances")
                .post(clear::post_clear_task_instances),
        );
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(
        get_task_instances,
        get_task_instances_batch,
        get_task_instance,
        get_mapped_task_instance,
        get_task_instance_tries,
        get_mapped_task_instance_tries,
        get_task_instance_try_details,
        get_mapped_task_instance_try_details,
        mark::patch_task_instance,
        mark::patch_task_instance_dry_run,
        mark::patch_task_instance_by_map_index,
        mark::patch_task_instance_dry_run_by_map_index,
        clear::post_clear_task_instances,
    ),
    components(schemas(
        TaskInstanceResponse,
        TaskInstanceCollectionResponse,
        TaskInstanceHistoryResponse,
        TaskInstanceHistoryCollectionResponse,
        TaskInstancesBatchBody,
        PatchTaskInstanceBody,
        ClearTaskInstancesBody,
        ClearTaskId,
        TriggerResponse,
        JobResponse,
    ))
)]
pub struct Doc;

/// List task instances of a run; `~` for the DAG and/or the run lists across them.
#[utoipa::path(
    get,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances",
    operation_id = "get_task_instances",
    tag = "Task Instance",
    params(
        ("dag_id" = String, Path, description = "The DAG, or ~ for all"),
        ("dag_run_id" = String, Path, description = "The run id, or ~ for all"),
        ("limit" = Option<u64>, Query, description = "Page size"),
        ("offset" = Option<u64>, Query, description = "Entries to skip"),
        ("order_by" = Option<Vec<String>>, Query, description = "Fields to sort by, - for descending (default map_index)"),
        ("task_id" = Option<String>, Query, description = "Only this task"),
        ("state" = Option<Vec<String>>, Query, description = "Any of these states; no_status for none"),
        ("pool" = Option<Vec<String>>, Query, description = "Any of these pools"),
        ("queue" = Option<Vec<String>>, Query, description = "Any of these queues"),
        ("executor" = Option<Vec<String>>, Query, description = "Any of these executors"),
        ("operator" = Option<Vec<String>>, Query, description = "Any of these operators"),
        ("version_number" = Option<Vec<i32>>, Query, description = "Any of these DAG versions"),
        ("try_number" = Option<Vec<i32>>, Query, description = "Any of these try numbers"),
        ("map_index" = Option<Vec<i32>>, Query, description = "Any of these map indexes"),
        ("task_display_name_pattern" = Option<String>, Query, description = "Task ids containing this (| separates alternatives)"),
        ("dag_id_pattern" = Option<String>, Query, description = "DAG ids containing this"),
        ("run_id_pattern" = Option<String>, Query, description = "Run ids containing this"),
        ("logical_date_gte" = Option<String>, Query, description = "Runs with a logical date from (also _gt, _lt, _lte; likewise run_after_*, start_date_*, end_date_*, updated_at_*)"),
        ("duration_gte" = Option<f64>, Query, description = "Seconds at least (also _gt, _lt, _lte)"),
    ),
    responses(
        (status = 200, description = "Successful Response", body = TaskInstanceCollectionResponse),
        (status = 400, description = "Bad Request", body = updraft_shared::api::HttpError),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 422, description = "Validation Error", body = updraft_shared::api::HttpError),
    )
)]
pub async fn get_task_instances(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<(String, String)>,
    q: ApiQuery<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let (dag_id, run_id) = path.into_inner();
    let q = q.0;
    let filters = list::query_filters(&q)?;
    let scope = list::path_scope(&state, &dag_id, &run_id).await?;
    let page = Page::new(&state.config.settings.api, q.limit, q.offset);
    let body = list::page(&state, scope, filters, &q.order_by, page).await?;
    Ok(HttpResponse::Ok().json(body))
}

/// List task instances across DAGs and runs by the filters of a body.
#[utoipa::path(
    post,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/list",
    operation_id = "get_task_instances_batch",
    tag = "Task Instance",
    params(
        ("dag_id" = String, Path, description = "~ (or a DAG to list only its task instances)"),
        ("dag_run_id" = String, Path, description = "~ (or a run id)"),
    ),
    request_body = TaskInstancesBatchBody,
    responses(
        (status = 200, description = "Successful Response", body = TaskInstanceCollectionResponse),
        (status = 400, description = "Bad Request", body = updraft_shared::api::HttpError),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 422, description = "Validation Error", body = updraft_shared::api::HttpError),
    )
)]
pub async fn get_task_instances_batch(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<(String, String)>,
    body: web::Json<TaskInstancesBatchBody>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let (dag_id, run_id) = path.into_inner();
    let body = body.into_inner();
    let filters = list::batch_filters(&body)?;
    let scope = list::path_scope(&state, &dag_id, &run_id).await?;
    let page = Page::new(
        &state.config.settings.api,
        Some(body.page_limit.unwrap_or(100)),
        body.page_offset,
    );
    let order_by: Vec<String> = body.order_by.into_iter().collect();
    let answer = list::page(&state, scope, filters, &order_by, page).await?;
    Ok(HttpResponse::Ok().json(answer))
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct MapIndexQuery {
    pub map_index: Option<i32>,
}

async fn one_task_instance(
    state: &AppState,
    dag_id: &str,
    run_id: &str,
    task_id: &str,
    map_index: i32,
) -> Result<HttpResponse, ApiError> {
    let run = find_run(state, dag_id, run_id).await?;
    let ti = find_task_instances(state, &run, task_id, Some(map_index))
        .await?
        .remove(0);
    let versions = versions_by_id(state.db.conn(), [ti.dag_version_id]).await?;
    Ok(HttpResponse::Ok().json(task_instance_response(
        &ti,
        &run,
        versions.get(&ti.dag_version_id),
    )))
}

/// Get a task instance.
#[utoipa::path(
    get,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}",
    operation_id = "get_task_instance",
    tag = "Task Instance",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("dag_run_id" = String, Path, description = "The run id"),
        ("task_id" = String, Path, description = "The task"),
    ),
    responses(
        (status = 200, description = "Successful Response", body = TaskInstanceResponse),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
    )
)]
pub async fn get_task_instance(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let (dag_id, run_id, task_id) = path.into_inner();
    one_task_instance(&state, &dag_id, &run_id, &task_id, -1).await
}

/// Get a task instance by map index.
#[utoipa::path(
    get,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}",
    operation_id = "get_mapped_task_instance",
    tag = "Task Instance",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("dag_run_id" = String, Path, description = "The run id"),
        ("task_id" = String, Path, description = "The task"),
        ("map_index" = i32, Path, description = "The map index (-1: not mapped)"),
    ),
    responses(
        (status = 200, description = "Successful Response", body = TaskInstanceResponse),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
    )
)]
pub async fn get_mapped_task_instance(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<(String, String, String, i32)>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let (dag_id, run_id, task_id, map_index) = path.into_inner();
    one_task_instance(&state, &dag_id, &run_id, &task_id, map_index).await
}

/// Every try of a task instance: the history's finished tries, then the current try when it
/// is not among them (running, or marked by hand).
async fn tries(
    state: &AppState,
    dag_id: &str,
    run_id: &str,
    task_id: &str,
    map_index: i32,
) -> Result<Vec<TaskInstanceHistoryResponse>, ApiError> {
    let run = find_run(state, dag_id, run_id).await?;
    let ti = find_task_instances(state, &run, task_id, Some(map_index))
        .await?
        .remove(0);
    use task_instance_history::Column as H;
    let history = task_instance_history::Entity::find()
        .filter(H::DagRunId.eq(run.id))
        .filter(H::TaskId.eq(task_id))
        .filter(H::MapIndex.eq(map_index))
        .order_by_asc(H::TryNumber)
        .all(state.db.conn())
        .await?;
    let versions = versions_by_id(
        state.db.conn(),
        history
            .iter()
            .map(|h| h.dag_version_id)
            .chain([ti.dag_version_id]),
    )
    .await?;
    let mut out: Vec<TaskInstanceHistoryResponse> = history
        .iter()
        .map(|h| history_response(h, versions.get(&h.dag_version_id)))
        .collect();
    if ti.try_number >= 1 && !history.iter().any(|h| h.try_number == ti.try_number) {
        out.push(current_try_response(&ti, versions.get(&ti.dag_version_id)));
    }
    Ok(out)
}

fn tries_answer(task_instances: Vec<TaskInstanceHistoryResponse>) -> HttpResponse {
    HttpResponse::Ok().json(TaskInstanceHistoryCollectionResponse {
        total_entries: task_instances.len() as i64,
        task_instances,
    })
}

/// The tries of a task instance.
#[utoipa::path(
    get,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/tries",
    operation_id = "get_task_instance_tries",
    tag = "Task Instance",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("dag_run_id" = String, Path, description = "The run id"),
        ("task_id" = String, Path, description = "The task"),
        ("map_index" = Option<i32>, Query, description = "The map index (default -1)"),
    ),
    responses(
        (status = 200, description = "Successful Response", body = TaskInstanceHistoryCollectionResponse),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
    )
)]
pub async fn get_task_instance_tries(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<(String, String, String)>,
    q: ApiQuery<MapIndexQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let (dag_id, run_id, task_id) = path.into_inner();
    let map_index = q.0.map_index.unwrap_or(-1);
    Ok(tries_answer(
        tries(&state, &dag_id, &run_id, &task_id, map_index).await?,
    ))
}

/// The tries of a task instance by map index.
#[utoipa::path(
    get,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/tries",
    operation_id = "get_mapped_task_instance_tries",
    tag = "Task Instance",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("dag_run_id" = String, Path, description = "The run id"),
        ("task_id" = String, Path, description = "The task"),
        ("map_index" = i32, Path, description = "The map index (-1: not mapped)"),
    ),
    responses(
        (status = 200, description = "Successful Response", body = TaskInstanceHistoryCollectionResponse),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
    )
)]
pub async fn get_mapped_task_instance_tries(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<(String, String, String, i32)>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let (dag_id, run_id, task_id, map_index) = path.into_inner();
    Ok(tries_answer(
        tries(&state, &dag_id, &run_id, &task_id, map_index).await?,
    ))
}

async fn one_try(
    state: &AppState,
    (dag_id, run_id, task_id): (&str, &str, &str),
    map_index: i32,
    try_number: i32,
) -> Result<HttpResponse, ApiError> {
    let found = tries(state, dag_id, run_id, task_id, map_index)
        .await?
        .into_iter()
        .find(|t| t.try_number == try_number);
    match found {
        Some(t) => Ok(HttpResponse::Ok().json(t)),
        None => Err(ApiError::NotFound(format!(
            "The Task Instance with dag_id: `{dag_id}`, run_id: `{run_id}`, task_id: `{task_id}`, try_number: `{try_number}` and map_index: `{map_index}` was not found"
        ))),
    }
}

/// One try of a task instance.
#[utoipa::path(
    get,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/tries/{task_try_number}",
    operation_id = "get_task_instance_try_details",
    tag = "Task Instance",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("dag_run_id" = String, Path, description = "The run id"),
        ("task_id" = String, Path, description = "The task"),
        ("task_try_number" = i32, Path, description = "The try, from 1"),
        ("map_index" = Option<i32>, Query, description = "The map index (default -1)"),
    ),
    responses(
        (status = 200, description = "Successful Response", body = TaskInstanceHistoryResponse),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
    )
)]
pub async fn get_task_instance_try_details(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<(String, String, String, i32)>,
    q: ApiQuery<MapIndexQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let (dag_id, run_id, task_id, try_number) = path.into_inner();
    let map_index = q.0.map_index.unwrap_or(-1);
    one_try(&state, (&dag_id, &run_id, &task_id), map_index, try_number).await
}

/// One try of a task instance by map index.
#[utoipa::path(
    get,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/tries/{task_try_number}",
    operation_id = "get_mapped_task_instance_try_details",
    tag = "Task Instance",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("dag_run_id" = String, Path, description = "The run id"),
        ("task_id" = String, Path, description = "The task"),
        ("map_index" = i32, Path, description = "The map index (-1: not mapped)"),
        ("task_try_number" = i32, Path, description = "The try, from 1"),
    ),
    responses(
        (status = 200, description = "Successful Response", body = TaskInstanceHistoryResponse),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
    )
)]
pub async fn get_mapped_task_instance_try_details(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<(String, String, String, i32, i32)>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let (dag_id, run_id, task_id, map_index, try_number) = path.into_inner();
    one_try(&state, (&dag_id, &run_id, &task_id), map_index, try_number).await
}
