//! The audit log as Airflow 3 serves it: `GET /api/v2/eventLogs` and `/eventLogs/{id}`.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Deserialize;
use updraft_shared::api::{EventLogCollectionResponse, EventLogResponse, HttpError};
use utoipa::OpenApi;

use super::query::{self, ApiQuery, Page};
use super::ApiError;
use crate::auth::{Identity, Role};
use crate::server::AppState;
use crate::store::entities::audit_log::{self, Column as C};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/eventLogs").get(get_event_logs))
        .service(web::resource("/eventLogs/{event_log_id}").get(get_event_log));
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(get_event_logs, get_event_log),
    components(schemas(EventLogResponse, EventLogCollectionResponse))
)]
pub struct Doc;

fn response(row: audit_log::Model) -> EventLogResponse {
    EventLogResponse {
        event_log_id: row.id,
        when: row.dttm,
        dag_display_name: row.dag_id.clone(),
        task_display_name: row.task_id.clone(),
        dag_id: row.dag_id,
        task_id: row.task_id,
        run_id: row.run_id,
        map_index: row.map_index,
        try_number: row.try_number,
        event: row.event,
        logical_date: row.logical_date,
        owner: row.owner,
        extra: row.extra,
    }
}

#[derive(Debug, Deserialize)]
pub struct EventLogQuery {
    limit: Option<u64>,
    offset: Option<u64>,
    #[serde(default, deserialize_with = "query::one_or_many")]
    order_by: Vec<String>,
    dag_id: Option<String>,
    task_id: Option<String>,
    run_id: Option<String>,
    map_index: Option<i32>,
    try_number: Option<i32>,
    owner: Option<String>,
    event: Option<String>,
    #[serde(default, deserialize_with = "query::one_or_many")]
    excluded_events: Vec<String>,
    #[serde(default, deserialize_with = "query::one_or_many")]
    included_events: Vec<String>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    before: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    after: Option<DateTime<Utc>>,
    dag_id_pattern: Option<String>,
    task_id_pattern: Option<String>,
    run_id_pattern: Option<String>,
    owner_pattern: Option<String>,
    event_pattern: Option<String>,
}

/// List audit entries, newest first by default.
#[utoipa::path(
    get,
    path = "/api/v2/eventLogs",
    operation_id = "get_event_logs",
    tag = "Event Log",
    params(
        ("limit" = Option<u64>, Query), ("offset" = Option<u64>, Query),
        ("order_by" = Option<Vec<String>>, Query, description = "id, when, dag_id, task_id, run_id, event, owner, logical_date, map_index, try_number; `-` for descending (default `-id`)"),
        ("dag_id" = Option<String>, Query), ("task_id" = Option<String>, Query),
        ("run_id" = Option<String>, Query), ("map_index" = Option<i32>, Query),
        ("try_number" = Option<i32>, Query), ("owner" = Option<String>, Query),
        ("event" = Option<String>, Query),
        ("excluded_events" = Option<Vec<String>>, Query), ("included_events" = Option<Vec<String>>, Query),
        ("before" = Option<String>, Query, format = DateTime), ("after" = Option<String>, Query, format = DateTime),
        ("dag_id_pattern" = Option<String>, Query), ("task_id_pattern" = Option<String>, Query),
        ("run_id_pattern" = Option<String>, Query), ("owner_pattern" = Option<String>, Query),
        ("event_pattern" = Option<String>, Query),
    ),
    responses(
        (status = 200, description = "Successful Response", body = EventLogCollectionResponse),
        (status = 400, description = "Bad order_by", body = HttpError),
        (status = 401, description = "Not authenticated", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 422, description = "Bad query parameter", body = HttpError),
    )
)]
pub async fn get_event_logs(
    state: web::Data<AppState>,
    user: Identity,
    q: ApiQuery<EventLogQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let q = q.0;
    let page = Page::new(&state.config.settings.api, q.limit, q.offset);
    let order = query::order_by(
        &q.order_by,
        &[
            ("id", C::Id),
            ("event_log_id", C::Id),
            ("when", C::Dttm),
            ("dttm", C::Dttm),
            ("dag_id", C::DagId),
            ("task_id", C::TaskId),
            ("run_id", C::RunId),
            ("event", C::Event),
            ("owner", C::Owner),
            ("logical_date", C::LogicalDate),
            ("map_index", C::MapIndex),
            ("try_number", C::TryNumber),
        ],
        "-id",
    )?;
    let mut cond = Condition::all();
    for (col, value) in [
        (C::DagId, &q.dag_id),
        (C::TaskId, &q.task_id),
        (C::RunId, &q.run_id),
        (C::Owner, &q.owner),
        (C::Event, &q.event),
    ] {
        if let Some(v) = value {
            cond = cond.add(col.eq(v.as_str()));
        }
    }
    if let Some(m) = q.map_index {
        cond = cond.add(C::MapIndex.eq(m));
    }
    if let Some(t) = q.try_number {
        cond = cond.add(C::TryNumber.eq(t));
    }
    if !q.included_events.is_empty() {
        cond = cond.add(C::Event.is_in(q.included_events.clone()));
    }
    if !q.excluded_events.is_empty() {
        cond = cond.add(C::Event.is_not_in(q.excluded_events.clone()));
    }
    if let Some(t) = q.before {
        cond = cond.add(C::Dttm.lt(t));
    }
    if let Some(t) = q.after {
        cond = cond.add(C::Dttm.gt(t));
    }
    for (col, raw) in [
        (C::DagId, &q.dag_id_pattern),
        (C::TaskId, &q.task_id_pattern),
        (C::RunId, &q.run_id_pattern),
        (C::Owner, &q.owner_pattern),
        (C::Event, &q.event_pattern),
    ] {
        if let Some(c) = query::pattern(col, raw.as_deref()) {
            cond = cond.add(c);
        }
    }
    let base = audit_log::Entity::find().filter(cond);
    let total = base.clone().count(state.db.conn()).await?;
    let mut select = base.limit(page.limit).offset(page.offset);
    for (col, dir) in order {
        select = select.order_by(col, dir);
    }
    let rows = select.all(state.db.conn()).await?;
    Ok(HttpResponse::Ok().json(EventLogCollectionResponse {
        event_logs: rows.into_iter().map(response).collect(),
        total_entries: total as i64,
    }))
}

/// Get one audit entry.
#[utoipa::path(
    get,
    path = "/api/v2/eventLogs/{event_log_id}",
    operation_id = "get_event_log",
    tag = "Event Log",
    params(("event_log_id" = i64, Path)),
    responses(
        (status = 200, description = "Successful Response", body = EventLogResponse),
        (status = 401, description = "Not authenticated", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 404, description = "Not Found", body = HttpError),
        (status = 422, description = "The id is not a number", body = HttpError),
    )
)]
pub async fn get_event_log(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let id = path.into_inner();
    let row = audit_log::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("The Event Log with id: `{id}` not found")))?;
    Ok(HttpResponse::Ok().json(response(row)))
}
