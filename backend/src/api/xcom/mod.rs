//! XCom entries: list (with `~` for any DAG, run or task), get (JSON or Python-style string),
//! and create, update and delete by hand (`write`). Values are stored as JSON text.

mod response;
mod write;

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Func, Query, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Deserialize;
use updraft_shared::api::{
    XComCollectionResponse, XComCreateBody, XComResponse, XComResponseNative, XComResponseString,
    XComUpdateBody,
};
use utoipa::OpenApi;

use self::response::{entry, native, stringified, RunTimes};
use self::write::{create_xcom_entry, delete_xcom_entry, update_xcom_entry};
use super::dag_runs::find_run;
use super::query::{self, ApiQuery, Page};
use super::ApiError;
use crate::auth::{Identity, Role};
use crate::server::AppState;
use crate::store::entities::{dag_run, xcom};

const ENTRIES: &str = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(ENTRIES)
            .get(get_xcom_entries)
            .post(create_xcom_entry),
    )
    .service(
        web::resource(format!("{ENTRIES}/{{xcom_key}}"))
            .get(get_xcom_entry)
            .patch(update_xcom_entry)
            .delete(delete_xcom_entry),
    );
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(
        get_xcom_entries,
        get_xcom_entry,
        write::create_xcom_entry,
        write::update_xcom_entry,
        write::delete_xcom_entry
    ),
    components(schemas(
        XComResponse,
        XComResponseNative,
        XComResponseString,
        XComCollectionResponse,
        XComCreateBody,
        XComUpdateBody
    ))
)]
pub struct Doc;

// ---------------------------------------------------------------------------------------------
// List

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    xcom_key: Option<String>,
    map_index: Option<i32>,
    limit: Option<u64>,
    offset: Option<u64>,
    xcom_key_pattern: Option<String>,
    xcom_key_prefix_pattern: Option<String>,
    dag_display_name_pattern: Option<String>,
    dag_display_name_prefix_pattern: Option<String>,
    run_id_pattern: Option<String>,
    run_id_prefix_pattern: Option<String>,
    task_id_pattern: Option<String>,
    task_id_prefix_pattern: Option<String>,
    map_index_filter: Option<i32>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    logical_date_gte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    logical_date_gt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    logical_date_lte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    logical_date_lt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    run_after_gte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    run_after_gt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    run_after_lte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    run_after_lt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::one_or_many")]
    order_by: Vec<String>,
}

/// A `*_prefix_pattern` filter: starts with (case-insensitive; `|` separates alternatives).
fn prefix<C: ColumnTrait>(col: C, raw: Option<&str>) -> Option<Condition> {
    let raw = raw?.trim();
    if raw.is_empty() {
        return None;
    }
    let mut any = Condition::any();
    for alt in raw.split('|').map(str::trim).filter(|a| !a.is_empty()) {
        let lowered: SimpleExpr = Func::lower(Expr::col((col.entity_name(), col))).into();
        any = any.add(lowered.like(format!("{}%", alt.to_lowercase())));
    }
    Some(any)
}

fn check_map_index(map_index: Option<i32>, name: &str) -> Result<(), ApiError> {
    match map_index {
        Some(i) if i < -1 => Err(ApiError::Unprocessable(format!(
            "{name} must be -1 (not mapped) or more, not {i}"
        ))),
        _ => Ok(()),
    }
}

/// List XCom entries (without their values); `~` as DAG, run or task id means all.
#[utoipa::path(
    get,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries",
    operation_id = "get_xcom_entries",
    tag = "XCom",
    params(
        ("dag_id" = String, Path, description = "The DAG, or ~ for all"),
        ("dag_run_id" = String, Path, description = "The run id, or ~ for all"),
        ("task_id" = String, Path, description = "The task, or ~ for all"),
        ("xcom_key" = Option<String>, Query, description = "Only this key"),
        ("map_index" = Option<i32>, Query, description = "Only this map index (-1: not mapped)"),
        ("limit" = Option<u64>, Query, description = "Page size"),
        ("offset" = Option<u64>, Query, description = "Entries to skip"),
        ("xcom_key_pattern" = Option<String>, Query, description = "Key contains (| for or, ~ for all)"),
        ("xcom_key_prefix_pattern" = Option<String>, Query, description = "Key starts with"),
        ("dag_display_name_pattern" = Option<String>, Query, description = "DAG name contains"),
        ("dag_display_name_prefix_pattern" = Option<String>, Query, description = "DAG name starts with"),
        ("run_id_pattern" = Option<String>, Query, description = "Run id contains"),
        ("run_id_prefix_pattern" = Option<String>, Query, description = "Run id starts with"),
        ("task_id_pattern" = Option<String>, Query, description = "Task id contains"),
        ("task_id_prefix_pattern" = Option<String>, Query, description = "Task id starts with"),
        ("map_index_filter" = Option<i32>, Query, description = "Only this map index"),
        ("logical_date_gte" = Option<DateTime<Utc>>, Query, description = "Run's logical date at or after"),
        ("logical_date_gt" = Option<DateTime<Utc>>, Query, description = "Run's logical date after"),
        ("logical_date_lte" = Option<DateTime<Utc>>, Query, description = "Run's logical date at or before"),
        ("logical_date_lt" = Option<DateTime<Utc>>, Query, description = "Run's logical date before"),
        ("run_after_gte" = Option<DateTime<Utc>>, Query, description = "Run's run_after at or after"),
        ("run_after_gt" = Option<DateTime<Utc>>, Query, description = "Run's run_after after"),
        ("run_after_lte" = Option<DateTime<Utc>>, Query, description = "Run's run_after at or before"),
        ("run_after_lt" = Option<DateTime<Utc>>, Query, description = "Run's run_after before"),
        ("order_by" = Option<Vec<String>>, Query, description = "key, dag_id, run_id, task_id, map_index, timestamp; - for descending"),
    ),
    responses(
        (status = 200, description = "Successful Response", body = XComCollectionResponse),
        (status = 400, description = "Bad Request", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 422, description = "Validation Error", body = updraft_shared::api::HttpError),
    )
)]
pub async fn get_xcom_entries(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<(String, String, String)>,
    query: ApiQuery<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let (dag_id, run_id, task_id) = path.into_inner();
    let q = query.0;
    check_map_index(q.map_index, "map_index")?;
    use xcom::Column as C;
    let mut cond = Condition::all();
    for (value, col) in [
        (&dag_id, C::DagId),
        (&run_id, C::RunId),
        (&task_id, C::TaskId),
    ] {
        if value != "~" {
            cond = cond.add(col.eq(value.as_str()));
        }
    }
    if let Some(key) = &q.xcom_key {
        cond = cond.add(C::Key.eq(key.as_str()));
    }
    for index in [q.map_index, q.map_index_filter].into_iter().flatten() {
        cond = cond.add(C::MapIndex.eq(index));
    }
    for (col, contains, starts) in [
        (C::Key, &q.xcom_key_pattern, &q.xcom_key_prefix_pattern),
        (
            C::DagId,
            &q.dag_display_name_pattern,
            &q.dag_display_name_prefix_pattern,
        ),
        (C::RunId, &q.run_id_pattern, &q.run_id_prefix_pattern),
        (C::TaskId, &q.task_id_pattern, &q.task_id_prefix_pattern),
    ] {
        if let Some(c) = query::pattern(col, contains.as_deref()) {
            cond = cond.add(c);
        }
        if let Some(c) = prefix(col, starts.as_deref()) {
            cond = cond.add(c);
        }
    }
    // Filters on the run: the XComs of the runs that pass them.
    let mut runs = Condition::all();
    let ranges = [
        (
            dag_run::Column::LogicalDate,
            q.logical_date_gte,
            q.logical_date_gt,
            q.logical_date_lte,
            q.logical_date_lt,
        ),
        (
            dag_run::Column::RunAfter,
            q.run_after_gte,
            q.run_after_gt,
            q.run_after_lte,
            q.run_after_lt,
        ),
    ];
    let mut filter_runs = false;
    for (col, gte, gt, lte, lt) in ranges {
        let bounds = [
            gte.map(|at| col.gte(at)),
            gt.map(|at| col.gt(at)),
            lte.map(|at| col.lte(at)),
            lt.map(|at| col.lt(at)),
        ];
        for bound in bounds.into_iter().flatten() {
            runs = runs.add(bound);
            filter_runs = true;
        }
    }
    if filter_runs {
        cond = cond.add(
            C::DagRunId.in_subquery(
                Query::select()
                    .column(dag_run::Column::Id)
                    .from(dag_run::Entity)
                    .cond_where(runs)
                    .to_owned(),
            ),
        );
    }
    let default = [C::DagId, C::TaskId, C::RunId, C::MapIndex, C::Key];
    let mut ordering: Vec<(C, Order)> = if q.order_by.is_empty() {
        Vec::new()
    } else {
        query::order_by(
            &q.order_by,
            &[
                ("key", C::Key),
                ("dag_id", C::DagId),
                ("dag_display_name", C::DagId),
                ("run_id", C::RunId),
                ("task_id", C::TaskId),
                ("map_index", C::MapIndex),
                ("timestamp", C::Timestamp),
            ],
            "dag_id",
        )?
    };
    ordering.extend(default.into_iter().map(|c| (c, Order::Asc)));
    let conn = state.db.conn();
    let page = Page::new(&state.config.settings.api, q.limit, q.offset);
    let total_entries = xcom::Entity::find()
        .filter(cond.clone())
        .count(conn)
        .await?;
    let mut select = xcom::Entity::find().filter(cond);
    for (col, order) in ordering {
        select = select.order_by(col, order);
    }
    let rows = select
        .offset(page.offset)
        .limit(page.limit)
        .all(conn)
        .await?;
    let run_ids: Vec<i64> = rows.iter().map(|x| x.dag_run_id).collect();
    let times: HashMap<i64, RunTimes> = if run_ids.is_empty() {
        HashMap::new()
    } else {
        dag_run::Entity::find()
            .filter(dag_run::Column::Id.is_in(run_ids))
            .all(conn)
            .await?
            .iter()
            .map(|r| (r.id, RunTimes::from(r)))
            .collect()
    };
    let xcom_entries = rows
        .into_iter()
        .filter_map(|x| {
            let run = *times.get(&x.dag_run_id)?;
            Some(entry(x, run))
        })
        .collect();
    Ok(HttpResponse::Ok().json(XComCollectionResponse {
        xcom_entries,
        total_entries: total_entries as i64,
    }))
}

// ---------------------------------------------------------------------------------------------
// One entry

#[derive(Debug, Deserialize)]
pub struct EntryQuery {
    #[serde(default = "no_map_index")]
    map_index: i32,
    #[serde(default)]
    #[allow(dead_code)] // values are JSON already: deserialized or not, they read the same
    deserialize: bool,
    #[serde(default)]
    stringify: bool,
}

fn no_map_index() -> i32 {
    -1
}

fn find_entry(dag_run_id: i64, task_id: &str, map_index: i32, key: &str) -> Condition {
    Condition::all()
        .add(xcom::Column::DagRunId.eq(dag_run_id))
        .add(xcom::Column::TaskId.eq(task_id))
        .add(xcom::Column::MapIndex.eq(map_index))
        .add(xcom::Column::Key.eq(key))
}

fn entry_not_found(key: &str, task_id: &str, map_index: i32, run_id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "XCom entry with key: `{key}` not found for task `{task_id}` (map_index {map_index}) in run `{run_id}`"
    ))
}

/// Get an XCom entry: its value as JSON, or with `stringify=true` as Python's `str()`.
#[utoipa::path(
    get,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}",
    operation_id = "get_xcom_entry",
    tag = "XCom",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("dag_run_id" = String, Path, description = "The run id"),
        ("task_id" = String, Path, description = "The task"),
        ("xcom_key" = String, Path, description = "The key"),
        ("map_index" = Option<i32>, Query, description = "The map index (-1, the default: not mapped)"),
        ("deserialize" = Option<bool>, Query, description = "Accepted for Airflow's clients: values are JSON either way"),
        ("stringify" = Option<bool>, Query, description = "The value as a Python-style string"),
    ),
    responses(
        (status = 200, description = "Successful Response", body = XComResponseNative),
        (status = 400, description = "Bad Request", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 422, description = "Validation Error", body = updraft_shared::api::HttpError),
    )
)]
pub async fn get_xcom_entry(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<(String, String, String, String)>,
    query: ApiQuery<EntryQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let (dag_id, run_id, task_id, key) = path.into_inner();
    let q = query.0;
    check_map_index(Some(q.map_index), "map_index")?;
    let run = find_run(&state, &dag_id, &run_id).await?;
    let x = xcom::Entity::find()
        .filter(find_entry(run.id, &task_id, q.map_index, &key))
        .one(state.db.conn())
        .await?
        .ok_or_else(|| entry_not_found(&key, &task_id, q.map_index, &run_id))?;
    let value = native(x, RunTimes::from(&run));
    Ok(if q.stringify {
        HttpResponse::Ok().json(stringified(value))
    } else {
        HttpResponse::Ok().json(value)
    })
}
