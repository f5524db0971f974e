//! DAGs: list, get, details, pause/unpause (one or many), delete, and their tags.

mod filter;
pub mod view;

use std::collections::BTreeSet;

use actix_web::{web, HttpResponse};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, TransactionTrait,
};
use serde::Deserialize;
use serde_json::json;
use updraft_shared::api::{
    DagCollectionResponse, DagDeletedResponse, DagDetailsResponse, DagPatchBody, DagResponse,
    DagTagCollectionResponse, HttpError,
};
use updraft_shared::state::{DagRunState, TaskInstanceState};
use utoipa::OpenApi;

use self::filter::DagListQuery;
use super::query::{self, ApiQuery, Page};
use super::ApiError;
use crate::auth::{Identity, Role};
use crate::server::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::dags::{dag, dag_version};
use crate::store::entities::{backfill, dag_run, task_instance, task_instance_history, xcom};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/dags").get(get_dags).patch(patch_dags))
        .service(web::resource("/dagTags").get(get_dag_tags))
        .service(
            web::resource("/dags/{dag_id}")
                .get(get_dag)
                .patch(patch_dag)
                .delete(delete_dag),
        )
        .service(web::resource("/dags/{dag_id}/details").get(get_dag_details));
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(
        get_dags,
        get_dag,
        get_dag_details,
        patch_dag,
        patch_dags,
        delete_dag,
        get_dag_tags
    ),
    components(schemas(
        DagResponse,
        DagDetailsResponse,
        DagCollectionResponse,
        DagPatchBody,
        DagTagCollectionResponse,
        DagDeletedResponse,
        updraft_shared::api::DagTagResponse,
        updraft_shared::api::DagVersionResponse,
    ))
)]
pub struct Doc;

/// The DAG's row, or a 404 that names it.
pub async fn find_dag(state: &AppState, dag_id: &str) -> Result<dag::Model, ApiError> {
    dag::Entity::find_by_id(dag_id.to_string())
        .one(state.db.conn())
        .await?
        .ok_or_else(|| not_found(dag_id))
}

fn not_found(dag_id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "Dag with id {dag_id} was not found; GET /api/v2/dags lists the DAGs (stale ones with exclude_stale=false)"
    ))
}

/// `update_mask` may only name `is_paused` (as in Airflow).
fn check_update_mask(mask: &[String]) -> Result<(), ApiError> {
    let fields: Vec<&str> = mask
        .iter()
        .flat_map(|m| m.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if fields.iter().any(|f| *f != "is_paused") {
        return Err(ApiError::BadRequest(
            "Only `is_paused` field can be updated through the REST API; remove the other names from update_mask".into(),
        ));
    }
    Ok(())
}

/// List DAGs.
#[utoipa::path(
    get,
    path = "/api/v2/dags",
    operation_id = "get_dags",
    tag = "DAG",
    params(
        ("limit" = Option<u64>, Query, description = "Page size (capped by api.maximum_page_limit)"),
        ("offset" = Option<u64>, Query, description = "Entries to skip"),
        ("tags" = Option<Vec<String>>, Query, description = "Tags (repeat the key for several)"),
        ("tags_match_mode" = Option<String>, Query, description = "`any` (default) or `all`"),
        ("owners" = Option<Vec<String>>, Query, description = "Owners (any of them)"),
        ("dag_id_pattern" = Option<String>, Query, description = "Substring of the dag_id, case-insensitive; `|` separates alternatives, `~` matches all"),
        ("dag_id_prefix_pattern" = Option<String>, Query, description = "Start of the dag_id"),
        ("dag_display_name_pattern" = Option<String>, Query, description = "Substring of the display name (the dag_id)"),
        ("dag_display_name_prefix_pattern" = Option<String>, Query, description = "Start of the display name"),
        ("exclude_stale" = Option<bool>, Query, description = "Leave out DAGs whose file is gone (default true)"),
        ("paused" = Option<bool>, Query, description = "Only paused (true) or unpaused (false) DAGs"),
        ("has_import_errors" = Option<bool>, Query, description = "Only DAGs whose file does (not) parse"),
        ("last_dag_run_state" = Option<String>, Query, description = "State of the DAG's newest run"),
        ("dag_run_state" = Option<Vec<String>>, Query, description = "DAGs with a run in one of these states"),
        ("dag_run_start_date_gte" = Option<String>, Query, description = "DAGs with a run started at or after this"),
        ("dag_run_end_date_lte" = Option<String>, Query, description = "DAGs with a run ended at or before this"),
        ("timetable_type" = Option<Vec<String>>, Query, description = "NullTimetable, OnceTimetable or CronDataIntervalTimetable"),
        ("order_by" = Option<Vec<String>>, Query, description = "dag_id (default), dag_display_name, next_dagrun, last_run_state, last_run_start_date, is_paused, fileloc, last_parsed_time; `-` for descending"),
    ),
    responses(
        (status = 200, description = "Successful Response", body = DagCollectionResponse),
        (status = 400, description = "Bad Request", body = HttpError),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 422, description = "Unprocessable", body = HttpError),
    )
)]
pub async fn get_dags(
    state: web::Data<AppState>,
    user: Identity,
    q: ApiQuery<DagListQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let (rows, total) = filter::select(&state, &q.0).await?;
    Ok(collection(&state, &rows, total))
}

/// A page of DAGs, `total` of them in all.
fn collection(state: &AppState, rows: &[dag::Model], total: i64) -> HttpResponse {
    HttpResponse::Ok().json(DagCollectionResponse {
        dags: rows
            .iter()
            .map(|r| view::dag_response(&state.config, r))
            .collect(),
        total_entries: total,
    })
}

/// Get a DAG.
#[utoipa::path(
    get,
    path = "/api/v2/dags/{dag_id}",
    operation_id = "get_dag",
    tag = "DAG",
    params(("dag_id" = String, Path, description = "The DAG")),
    responses(
        (status = 200, description = "Successful Response", body = DagResponse),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 404, description = "Not Found", body = HttpError),
    )
)]
pub async fn get_dag(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let row = find_dag(&state, &path).await?;
    Ok(HttpResponse::Ok().json(view::dag_response(&state.config, &row)))
}

/// Get a DAG with everything its file says.
#[utoipa::path(
    get,
    path = "/api/v2/dags/{dag_id}/details",
    operation_id = "get_dag_details",
    tag = "DAG",
    params(("dag_id" = String, Path, description = "The DAG")),
    responses(
        (status = 200, description = "Successful Response", body = DagDetailsResponse),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 404, description = "Not Found", body = HttpError),
    )
)]
pub async fn get_dag_details(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let row = find_dag(&state, &path).await?;
    let version = match row.current_version_id {
        Some(id) => {
            dag_version::Entity::find_by_id(id)
                .one(state.db.conn())
                .await?
        }
        None => None,
    };
    let active = dag_run::Entity::find()
        .filter(dag_run::Column::DagId.eq(&row.dag_id))
        .filter(dag_run::Column::State.eq(DagRunState::Running.as_str()))
        .count(state.db.conn())
        .await?;
    Ok(HttpResponse::Ok().json(view::details_response(
        &state.config,
        &row,
        version.as_ref(),
        active as i64,
    )))
}

#[derive(Debug, Deserialize)]
pub struct PatchDagQuery {
    #[serde(default)]
    update_mask: Vec<String>,
}

/// Pause or unpause a DAG.
#[utoipa::path(
    patch,
    path = "/api/v2/dags/{dag_id}",
    operation_id = "patch_dag",
    tag = "DAG",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("update_mask" = Option<Vec<String>>, Query, description = "Fields to change: only `is_paused`"),
    ),
    request_body = DagPatchBody,
    responses(
        (status = 200, description = "Successful Response", body = DagResponse),
        (status = 400, description = "Bad Request", body = HttpError),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 404, description = "Not Found", body = HttpError),
        (status = 422, description = "Unprocessable", body = HttpError),
    )
)]
pub async fn patch_dag(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<String>,
    q: ApiQuery<PatchDagQuery>,
    body: web::Json<DagPatchBody>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::User)?;
    check_update_mask(&q.0.update_mask)?;
    let dag_id = path.into_inner();
    let paused = body.is_paused;
    let txn = state.db.conn().begin().await?;
    audit::record(
        &txn,
        AuditEntry::new("patch_dag", &user.username)
            .dag(&dag_id)
            .extra(json!({"is_paused": paused})),
    )
    .await?;
    let changed = dag::Entity::update_many()
        .col_expr(dag::Column::IsPaused, Expr::value(paused))
        .filter(dag::Column::DagId.eq(&dag_id))
        .exec(&txn)
        .await?;
    if changed.rows_affected == 0 {
        // Nothing written but the audit entry: roll it back with the rest.
        txn.rollback().await?;
        return Err(not_found(&dag_id));
    }
    let row = dag::Entity::find_by_id(dag_id.clone())
        .one(&txn)
        .await?
        .ok_or_else(|| not_found(&dag_id))?;
    txn.commit().await?;
    if !paused {
        // Queued runs may start and the schedule resumes now, not at the next tick.
        state.engine.signals.wake_scheduler();
    }
    Ok(HttpResponse::Ok().json(view::dag_response(&state.config, &row)))
}

/// Pause or unpause every DAG matching the filters (Airflow's bulk patch).
#[utoipa::path(
    patch,
    path = "/api/v2/dags",
    operation_id = "patch_dags",
    tag = "DAG",
    params(
        ("update_mask" = Option<Vec<String>>, Query, description = "Fields to change: only `is_paused`"),
        ("limit" = Option<u64>, Query, description = "At most this many DAGs (capped by api.maximum_page_limit)"),
        ("offset" = Option<u64>, Query, description = "Matching DAGs to skip (sorted by dag_id)"),
        ("tags" = Option<Vec<String>>, Query, description = "Tags"),
        ("tags_match_mode" = Option<String>, Query, description = "`any` (default) or `all`"),
        ("owners" = Option<Vec<String>>, Query, description = "Owners"),
        ("dag_id_pattern" = Option<String>, Query, description = "Substring of the dag_id; `|` separates alternatives, `~` matches all"),
        ("dag_id_prefix_pattern" = Option<String>, Query, description = "Start of the dag_id"),
        ("exclude_stale" = Option<bool>, Query, description = "Leave out DAGs whose file is gone (default true)"),
        ("paused" = Option<bool>, Query, description = "Only paused (true) or unpaused (false) DAGs"),
    ),
    request_body = DagPatchBody,
    responses(
        (status = 200, description = "Successful Response", body = DagCollectionResponse),
        (status = 400, description = "Bad Request", body = HttpError),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 422, description = "Unprocessable", body = HttpError),
    )
)]
pub async fn patch_dags(
    state: web::Data<AppState>,
    user: Identity,
    q: ApiQuery<DagListQuery>,
    body: web::Json<DagPatchBody>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::User)?;
    let q = q.0;
    check_update_mask(&q.update_mask)?;
    let paused = body.is_paused;
    let (mut rows, total) = filter::select(&state, &q).await?;
    let ids: Vec<String> = rows.iter().map(|r| r.dag_id.clone()).collect();
    let txn = state.db.conn().begin().await?;
    audit::record(
        &txn,
        AuditEntry::new("patch_dags", &user.username)
            .extra(json!({"is_paused": paused, "dag_ids": ids})),
    )
    .await?;
    if !ids.is_empty() {
        dag::Entity::update_many()
            .col_expr(dag::Column::IsPaused, Expr::value(paused))
            .filter(dag::Column::DagId.is_in(ids.iter().cloned()))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    if !paused && !ids.is_empty() {
        state.engine.signals.wake_scheduler();
    }
    for r in &mut rows {
        r.is_paused = paused;
    }
    Ok(collection(&state, &rows, total))
}

/// Delete a DAG with its runs, task instances, tries, XComs, backfills and versions.
///
/// The file stays in the DAG folder: the DAG processor registers it again (as a new DAG,
/// version 1, paused per `core.dags_are_paused_at_creation`) the next time the file changes
/// or the processor starts, as Airflow's processor re-adds it on its next parse. Delete the
/// file (`DELETE /api/v2/dagFiles/{file_name}`) to remove the DAG for good.
#[utoipa::path(
    delete,
    path = "/api/v2/dags/{dag_id}",
    operation_id = "delete_dag",
    tag = "DAG",
    params(("dag_id" = String, Path, description = "The DAG")),
    responses(
        (status = 200, description = "Successful Response", body = DagDeletedResponse),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 404, description = "Not Found", body = HttpError),
        (status = 409, description = "A task instance of the DAG is running", body = HttpError),
    )
)]
pub async fn delete_dag(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::User)?;
    let dag_id = path.into_inner();
    let txn = state.db.conn().begin().await?;
    audit::record(
        &txn,
        AuditEntry::new("delete_dag", &user.username).dag(&dag_id),
    )
    .await?;
    let row = dag::Entity::find_by_id(dag_id.clone()).one(&txn).await?;
    let Some(row) = row else {
        txn.rollback().await?;
        return Err(not_found(&dag_id));
    };
    let running = task_instance::Entity::find()
        .filter(task_instance::Column::DagId.eq(&dag_id))
        .filter(task_instance::Column::State.eq(TaskInstanceState::Running.as_str()))
        .count(&txn)
        .await?;
    if running > 0 {
        txn.rollback().await?;
        return Err(ApiError::Conflict(format!(
            "Task instances of dag with id: '{dag_id}' are still running ({running}); wait for them to end, or mark them failed, then delete again"
        )));
    }
    xcom::Entity::delete_many()
        .filter(xcom::Column::DagId.eq(&dag_id))
        .exec(&txn)
        .await?;
    task_instance_history::Entity::delete_many()
        .filter(task_instance_history::Column::DagId.eq(&dag_id))
        .exec(&txn)
        .await?;
    task_instance::Entity::delete_many()
        .filter(task_instance::Column::DagId.eq(&dag_id))
        .exec(&txn)
        .await?;
    let runs = dag_run::Entity::delete_many()
        .filter(dag_run::Column::DagId.eq(&dag_id))
        .exec(&txn)
        .await?
        .rows_affected;
    backfill::Entity::delete_many()
        .filter(backfill::Column::DagId.eq(&dag_id))
        .exec(&txn)
        .await?;
    let versions = dag_version::Entity::delete_many()
        .filter(dag_version::Column::DagId.eq(&dag_id))
        .exec(&txn)
        .await?
        .rows_affected;
    dag::Entity::delete_by_id(dag_id.clone()).exec(&txn).await?;
    txn.commit().await?;
    // Runs the scheduler was tracking are gone.
    state.engine.signals.wake_scheduler();
    Ok(HttpResponse::Ok().json(DagDeletedResponse {
        detail: format!(
            "DAG {dag_id} deleted with {runs} run(s); its file {} is still in the DAG folder and brings the DAG back when it changes or the DAG processor restarts: delete the file to remove the DAG for good",
            row.fileloc
        ),
        dag_id,
        deleted_runs: runs,
        deleted_versions: versions,
    }))
}

#[derive(Debug, Deserialize)]
pub struct DagTagsQuery {
    limit: Option<u64>,
    offset: Option<u64>,
    #[serde(default, deserialize_with = "query::one_or_many")]
    order_by: Vec<String>,
    tag_name_pattern: Option<String>,
    tag_name_prefix_pattern: Option<String>,
}

/// List the tags of the DAGs (each once).
#[utoipa::path(
    get,
    path = "/api/v2/dagTags",
    operation_id = "get_dag_tags",
    tag = "DAG",
    params(
        ("limit" = Option<u64>, Query, description = "Page size"),
        ("offset" = Option<u64>, Query, description = "Entries to skip"),
        ("order_by" = Option<Vec<String>>, Query, description = "`name` (default) or `-name`"),
        ("tag_name_pattern" = Option<String>, Query, description = "Substring of the tag, case-insensitive; `|` separates alternatives"),
        ("tag_name_prefix_pattern" = Option<String>, Query, description = "Start of the tag"),
    ),
    responses(
        (status = 200, description = "Successful Response", body = DagTagCollectionResponse),
        (status = 400, description = "Bad Request", body = HttpError),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
    )
)]
pub async fn get_dag_tags(
    state: web::Data<AppState>,
    user: Identity,
    q: ApiQuery<DagTagsQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let q = q.0;
    let order = query::order_by(&q.order_by, &[("name", ())], "name")?;
    let descending = order
        .first()
        .is_some_and(|(_, o)| *o == sea_orm::Order::Desc);
    let stored: Vec<String> = dag::Entity::find()
        .select_only()
        .column(dag::Column::Tags)
        .into_tuple()
        .all(state.db.conn())
        .await?;
    let alternatives = |raw: &Option<String>| -> Vec<String> {
        raw.as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty() && *r != "~")
            .map(|r| {
                r.split('|')
                    .map(|a| a.trim().to_lowercase())
                    .filter(|a| !a.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    let contains = alternatives(&q.tag_name_pattern);
    let starts = q
        .tag_name_prefix_pattern
        .as_deref()
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty() && p != "~");
    let tags: BTreeSet<String> = stored
        .iter()
        .flat_map(|t| serde_json::from_str::<Vec<String>>(t).unwrap_or_default())
        .filter(|t| {
            let lower = t.to_lowercase();
            (contains.is_empty() || contains.iter().any(|c| lower.contains(c.as_str())))
                && starts.as_deref().is_none_or(|s| lower.starts_with(s))
        })
        .collect();
    let page = Page::new(&state.config.settings.api, q.limit, q.offset);
    let total = tags.len() as i64;
    let mut tags: Vec<String> = tags.into_iter().collect();
    if descending {
        tags.reverse();
    }
    let tags = tags
        .into_iter()
        .skip(page.offset as usize)
        .take(page.limit as usize)
        .collect();
    Ok(HttpResponse::Ok().json(DagTagCollectionResponse {
        tags,
        total_entries: total,
    }))
}
