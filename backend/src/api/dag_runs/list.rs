//! Listing runs: `GET /dags/{dag_id}/dagRuns` (`~` for every DAG) and the batch list
//! `POST /dags/~/dagRuns/list`, with Airflow's filters, ordering and pagination.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Func, Query, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Deserialize;
use updraft_shared::api::{DagRunCollectionResponse, DagRunsBatchBody};
use updraft_shared::state::{DagRunState, DagRunType};

use super::{RunContext, TRIGGER_EVENT};
use crate::api::query::{self, ApiQuery, Page};
use crate::api::ApiError;
use crate::auth::{Identity, Role};
use crate::server::AppState;
use crate::store::dags::{dag, dag_version};
use crate::store::entities::{audit_log, backfill, dag_run};

use dag_run::Column as C;

/// Names `order_by` accepts.
const ORDER_BY: &[(&str, C)] = &[
    ("id", C::Id),
    ("state", C::State),
    ("dag_id", C::DagId),
    ("run_id", C::RunId),
    ("dag_run_id", C::RunId),
    ("logical_date", C::LogicalDate),
    ("run_after", C::RunAfter),
    ("start_date", C::StartDate),
    ("end_date", C::EndDate),
    ("updated_at", C::UpdatedAt),
    ("queued_at", C::QueuedAt),
    ("data_interval_start", C::DataIntervalStart),
    ("data_interval_end", C::DataIntervalEnd),
    ("run_type", C::RunType),
    ("conf", C::Conf),
];

/// `gte`, `gt`, `lte`, `lt` bounds of one datetime column.
#[derive(Debug, Default, Clone, Copy)]
struct Range {
    gte: Option<DateTime<Utc>>,
    gt: Option<DateTime<Utc>>,
    lte: Option<DateTime<Utc>>,
    lt: Option<DateTime<Utc>>,
}

impl Range {
    fn apply(self, col: C, mut cond: Condition) -> Condition {
        if let Some(t) = self.gte {
            cond = cond.add(col.gte(t));
        }
        if let Some(t) = self.gt {
            cond = cond.add(col.gt(t));
        }
        if let Some(t) = self.lte {
            cond = cond.add(col.lte(t));
        }
        if let Some(t) = self.lt {
            cond = cond.add(col.lt(t));
        }
        cond
    }
}

/// What both list endpoints filter on.
#[derive(Debug, Default)]
struct RunFilter {
    /// None: every DAG.
    dag_ids: Option<Vec<String>>,
    states: Vec<DagRunState>,
    run_types: Vec<DagRunType>,
    version_numbers: Vec<i32>,
    ranges: Vec<(C, Range)>,
    conf_contains: Option<String>,
    run_id_pattern: Option<String>,
    run_id_prefix: Option<String>,
    dag_id_pattern: Option<String>,
    dag_id_prefix: Option<String>,
    user_pattern: Option<String>,
    user_prefix: Option<String>,
}

/// `lower(col) LIKE 'prefix%'`, or None for an empty prefix.
fn prefix<Col: ColumnTrait>(col: Col, raw: Option<&str>) -> Option<Condition> {
    let raw = raw?.trim();
    if raw.is_empty() {
        return None;
    }
    let lowered: SimpleExpr = Func::lower(Expr::col((col.entity_name(), col))).into();
    Some(Condition::all().add(lowered.like(format!("{}%", raw.to_lowercase()))))
}

impl RunFilter {
    fn condition(&self) -> Condition {
        let mut cond = Condition::all();
        if let Some(ids) = &self.dag_ids {
            cond = cond.add(C::DagId.is_in(ids.iter().cloned()));
        }
        if !self.states.is_empty() {
            cond = cond.add(C::State.is_in(self.states.iter().map(|s| s.as_str())));
        }
        if !self.run_types.is_empty() {
            cond = cond.add(C::RunType.is_in(self.run_types.iter().map(|s| s.as_str())));
        }
        if !self.version_numbers.is_empty() {
            let mut sub = Query::select();
            sub.column(dag_version::Column::Id)
                .from(dag_version::Entity)
                .and_where(dag_version::Column::VersionNumber.is_in(self.version_numbers.clone()));
            cond = cond.add(C::DagVersionId.in_subquery(sub));
        }
        for (col, range) in &self.ranges {
            cond = range.apply(*col, cond);
        }
        if let Some(text) = self.conf_contains.as_deref().filter(|t| !t.is_empty()) {
            cond = cond.add(C::Conf.contains(text));
        }
        for c in [
            query::pattern(C::RunId, self.run_id_pattern.as_deref()),
            prefix(C::RunId, self.run_id_prefix.as_deref()),
            query::pattern(C::DagId, self.dag_id_pattern.as_deref()),
            prefix(C::DagId, self.dag_id_prefix.as_deref()),
        ]
        .into_iter()
        .flatten()
        {
            cond = cond.add(c);
        }
        let users = [
            (
                query::pattern(audit_log::Column::Owner, self.user_pattern.as_deref()),
                query::pattern(
                    backfill::Column::TriggeringUser,
                    self.user_pattern.as_deref(),
                ),
            ),
            (
                prefix(audit_log::Column::Owner, self.user_prefix.as_deref()),
                prefix(
                    backfill::Column::TriggeringUser,
                    self.user_prefix.as_deref(),
                ),
            ),
        ];
        for (by_trigger, by_backfill) in users {
            let (Some(by_trigger), Some(by_backfill)) = (by_trigger, by_backfill) else {
                continue;
            };
            let mut triggered = Query::select();
            triggered
                .columns([audit_log::Column::DagId, audit_log::Column::RunId])
                .from(audit_log::Entity)
                .and_where(audit_log::Column::Event.eq(TRIGGER_EVENT))
                .cond_where(by_trigger);
            let mut backfills = Query::select();
            backfills
                .column(backfill::Column::Id)
                .from(backfill::Entity)
                .cond_where(by_backfill);
            let pair = Expr::tuple([
                Expr::col((dag_run::Entity, C::DagId)).into(),
                Expr::col((dag_run::Entity, C::RunId)).into(),
            ]);
            cond = cond.add(
                Condition::any()
                    .add(pair.in_subquery(triggered))
                    .add(C::BackfillId.in_subquery(backfills)),
            );
        }
        cond
    }
}

/// Runs matching `filter`, one page in `order`, and how many match in all.
async fn page_of_runs(
    state: &AppState,
    filter: &RunFilter,
    order: &[String],
    page: Page,
) -> Result<DagRunCollectionResponse, ApiError> {
    let order = query::order_by(order, ORDER_BY, "id")?;
    let base = dag_run::Entity::find().filter(filter.condition());
    let total = base.clone().count(state.db.conn()).await?;
    let mut q = base;
    for (col, dir) in order {
        q = q.order_by(col, dir);
    }
    let runs = q
        .order_by_asc(C::Id)
        .limit(page.limit)
        .offset(page.offset)
        .all(state.db.conn())
        .await?;
    let ctx = RunContext::load(state.db.conn(), &runs).await?;
    Ok(DagRunCollectionResponse {
        dag_runs: runs.into_iter().map(|r| ctx.response(r)).collect(),
        total_entries: total as i64,
    })
}

fn parse_states(raw: &[String]) -> Result<Vec<DagRunState>, ApiError> {
    raw.iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            DagRunState::parse(s).ok_or_else(|| {
                ApiError::Unprocessable(format!(
                    "Invalid value for state: {s:?}; use queued, running, success or failed"
                ))
            })
        })
        .collect()
}

fn parse_run_types(raw: &[String]) -> Result<Vec<DagRunType>, ApiError> {
    raw.iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            DagRunType::parse(s).ok_or_else(|| {
                let valid: Vec<&str> = DagRunType::ALL.iter().map(|t| t.as_str()).collect();
                ApiError::Unprocessable(format!(
                    "Invalid value for run_type: {s:?}; use one of {}",
                    valid.join(", ")
                ))
            })
        })
        .collect()
}

/// Query parameters of `get_dag_runs`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<u64>,
    offset: Option<u64>,
    #[serde(default, deserialize_with = "query::one_or_many")]
    order_by: Vec<String>,
    #[serde(default)]
    state: Vec<String>,
    #[serde(default)]
    run_type: Vec<String>,
    #[serde(default)]
    dag_version: Vec<String>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    run_after_gte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    run_after_gt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    run_after_lte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    run_after_lt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    logical_date_gte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    logical_date_gt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    logical_date_lte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    logical_date_lt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    start_date_gte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    start_date_gt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    start_date_lte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    start_date_lt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    end_date_gte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    end_date_gt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    end_date_lte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    end_date_lt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    updated_at_gte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    updated_at_gt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    updated_at_lte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    updated_at_lt: Option<DateTime<Utc>>,
    conf_contains: Option<String>,
    run_id_pattern: Option<String>,
    run_id_prefix_pattern: Option<String>,
    dag_id_pattern: Option<String>,
    dag_id_prefix_pattern: Option<String>,
    triggering_user_name_pattern: Option<String>,
    triggering_user_name_prefix_pattern: Option<String>,
}

/// List the runs of a DAG, or of every DAG with `~`.
#[utoipa::path(
    get,
    path = "/api/v2/dags/{dag_id}/dagRuns",
    operation_id = "get_dag_runs",
    tag = "DagRun",
    params(
        ("dag_id" = String, Path, description = "The DAG, or `~` for all"),
        ("limit" = Option<u64>, Query, description = "Page size"),
        ("offset" = Option<u64>, Query, description = "Entries to skip"),
        ("order_by" = Option<Vec<String>>, Query, description = "Fields to sort by, `-` for descending: id, state, dag_id, run_id, logical_date, run_after, start_date, end_date, updated_at, ..."),
        ("state" = Option<Vec<String>>, Query, description = "Run states"),
        ("run_type" = Option<Vec<String>>, Query, description = "Run types"),
        ("dag_version" = Option<Vec<i32>>, Query, description = "DAG version numbers"),
        ("logical_date_gte" = Option<String>, Query, description = "Datetime bound (also _gt, _lte, _lt; and for run_after, start_date, end_date, updated_at)"),
        ("run_id_pattern" = Option<String>, Query, description = "Run id contains (`|` for or)"),
        ("dag_id_pattern" = Option<String>, Query, description = "DAG id contains"),
        ("triggering_user_name_pattern" = Option<String>, Query, description = "Triggering user contains"),
        ("conf_contains" = Option<String>, Query, description = "conf JSON text contains"),
    ),
    responses(
        (status = 200, description = "Successful Response", body = DagRunCollectionResponse),
        (status = 400, description = "Bad Request", body = updraft_shared::api::HttpError),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 422, description = "Validation Error", body = updraft_shared::api::HttpError),
    )
)]
pub async fn get_dag_runs(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<String>,
    q: ApiQuery<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let dag_id = path.into_inner();
    let q = q.0;
    let dag_ids = if dag_id == "~" {
        None
    } else {
        if dag::Entity::find_by_id(dag_id.clone())
            .one(state.db.conn())
            .await?
            .is_none()
        {
            return Err(ApiError::NotFound(format!(
                "The DAG with dag_id: `{dag_id}` was not found"
            )));
        }
        Some(vec![dag_id])
    };
    let version_numbers = q
        .dag_version
        .iter()
        .map(|v| {
            v.trim().parse::<i32>().map_err(|_| {
                ApiError::Unprocessable(format!(
                    "dag_version must be a version number (an integer), not {v:?}"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let range = |gte, gt, lte, lt| Range { gte, gt, lte, lt };
    let filter = RunFilter {
        dag_ids,
        states: parse_states(&q.state)?,
        run_types: parse_run_types(&q.run_type)?,
        version_numbers,
        ranges: vec![
            (
                C::RunAfter,
                range(
                    q.run_after_gte,
                    q.run_after_gt,
                    q.run_after_lte,
                    q.run_after_lt,
                ),
            ),
            (
                C::LogicalDate,
                range(
                    q.logical_date_gte,
                    q.logical_date_gt,
                    q.logical_date_lte,
                    q.logical_date_lt,
                ),
            ),
            (
                C::StartDate,
                range(
                    q.start_date_gte,
                    q.start_date_gt,
                    q.start_date_lte,
                    q.start_date_lt,
                ),
            ),
            (
                C::EndDate,
                range(q.end_date_gte, q.end_date_gt, q.end_date_lte, q.end_date_lt),
            ),
            (
                C::UpdatedAt,
                range(
                    q.updated_at_gte,
                    q.updated_at_gt,
                    q.updated_at_lte,
                    q.updated_at_lt,
                ),
            ),
        ],
        conf_contains: q.conf_contains,
        run_id_pattern: q.run_id_pattern,
        run_id_prefix: q.run_id_prefix_pattern,
        dag_id_pattern: q.dag_id_pattern,
        dag_id_prefix: q.dag_id_prefix_pattern,
        user_pattern: q.triggering_user_name_pattern,
        user_prefix: q.triggering_user_name_prefix_pattern,
    };
    let page = Page::new(&state.config.settings.api, q.limit, q.offset);
    Ok(HttpResponse::Ok().json(page_of_runs(&state, &filter, &q.order_by, page).await?))
}

/// List runs of several DAGs with the filters in the body.
#[utoipa::path(
    post,
    path = "/api/v2/dags/{dag_id}/dagRuns/list",
    operation_id = "get_list_dag_runs_batch",
    tag = "DagRun",
    params(("dag_id" = String, Path, description = "Only `~`: the DAGs are chosen with dag_ids")),
    request_body = DagRunsBatchBody,
    responses(
        (status = 200, description = "Successful Response", body = DagRunCollectionResponse),
        (status = 400, description = "Bad Request", body = updraft_shared::api::HttpError),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 422, description = "Validation Error", body = updraft_shared::api::HttpError),
    )
)]
pub async fn get_list_dag_runs_batch(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<String>,
    body: web::Json<DagRunsBatchBody>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let dag_id = path.into_inner();
    if dag_id != "~" {
        return Err(ApiError::Unprocessable(format!(
            "dag_id must be `~` here, not {dag_id:?}: choose the DAGs with dag_ids in the body"
        )));
    }
    let b = body.into_inner();
    let range = |gte, gt, lte, lt| Range { gte, gt, lte, lt };
    let filter = RunFilter {
        dag_ids: b.dag_ids.filter(|ids| !ids.is_empty()),
        states: b.states.unwrap_or_default().into_iter().flatten().collect(),
        ranges: vec![
            (
                C::RunAfter,
                range(
                    b.run_after_gte,
                    b.run_after_gt,
                    b.run_after_lte,
                    b.run_after_lt,
                ),
            ),
            (
                C::LogicalDate,
                range(
                    b.logical_date_gte,
                    b.logical_date_gt,
                    b.logical_date_lte,
                    b.logical_date_lt,
                ),
            ),
            (
                C::StartDate,
                range(
                    b.start_date_gte,
                    b.start_date_gt,
                    b.start_date_lte,
                    b.start_date_lt,
                ),
            ),
            (
                C::EndDate,
                range(b.end_date_gte, b.end_date_gt, b.end_date_lte, b.end_date_lt),
            ),
        ],
        conf_contains: b.conf_contains,
        ..Default::default()
    };
    let page = Page::new(
        &state.config.settings.api,
        Some(b.page_limit.unwrap_or(100)),
        b.page_offset,
    );
    let order: Vec<String> = b.order_by.into_iter().collect();
    Ok(HttpResponse::Ok().json(page_of_runs(&state, &filter, &order, page).await?))
}
