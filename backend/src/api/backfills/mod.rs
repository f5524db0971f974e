//! Backfills (Airflow 3's API): runs of a scheduled DAG over a past range of logical dates,
//! created at once as queued `backfill` runs; a dry run lists the dates first. Dates that
//! already have a run are skipped or run again by `reprocess_behavior`.

use actix_web::{web, HttpResponse};
use sea_orm::prelude::Expr;
use sea_orm::{
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use serde::Deserialize;
use updraft_shared::api::{
    BackfillCollectionResponse, BackfillPostBody, BackfillResponse,
    DryRunBackfillCollectionResponse, DryRunBackfillResponse,
};
use updraft_shared::state::DagRunState;
use utoipa::OpenApi;

mod plan;

use plan::{response, responses};

use super::query::{self, ApiQuery, Page};
use super::ApiError;
use crate::auth::{Identity, Role};
use crate::server::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::backfills;
use crate::store::entities::{backfill, dag_run};

pub fn configure(cfg: &mut web::ServiceConfig) {
    // `dry_run` before `{backfill_id}`.
    cfg.service(
        web::resource("/backfills")
            .post(create_backfill)
            .get(list_backfills),
    )
    .service(web::resource("/backfills/dry_run").post(create_backfill_dry_run))
    .service(web::resource("/backfills/{backfill_id}").get(get_backfill))
    .service(web::resource("/backfills/{backfill_id}/pause").put(pause_backfill))
    .service(web::resource("/backfills/{backfill_id}/unpause").put(unpause_backfill))
    .service(web::resource("/backfills/{backfill_id}/cancel").put(cancel_backfill));
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    create_backfill,
    create_backfill_dry_run,
    list_backfills,
    get_backfill,
    pause_backfill,
    unpause_backfill,
    cancel_backfill,
))]
pub struct Doc;

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("Could not find backfill with id {id}"))
}

/// The backfill `id` as it is now, or 404.
async fn answer(state: &AppState, id: i64) -> Result<HttpResponse, ApiError> {
    let row = backfill::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(HttpResponse::Ok().json(response(state.db.conn(), row).await?))
}

/// Create a backfill: its runs are queued at once.
#[utoipa::path(
    post,
    path = "/api/v2/backfills",
    operation_id = "create_backfill",
    tag = "Backfill",
    request_body = BackfillPostBody,
    responses(
        (status = 200, description = "Successful Response", body = BackfillResponse),
        (status = 400, description = "Bad Request", body = updraft_shared::api::HttpError),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 409, description = "Conflict", body = updraft_shared::api::HttpError),
        (status = 422, description = "Validation Error", body = updraft_shared::api::HttpError),
    )
)]
pub async fn create_backfill(
    state: web::Data<AppState>,
    user: Identity,
    body: web::Json<BackfillPostBody>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::User)?;
    let body = body.into_inner();
    let plan = backfills::plan(&state.db, &state.engine.cache, &body).await?;
    let shown_conf = state
        .secrets
        .names
        .redact_json(&serde_json::Value::Object(plan.conf.clone()));
    let backfills::Created { id, taken } = backfills::create(
        &state.db,
        &body,
        plan,
        AuditEntry::new("create_backfill", &user.username),
        shown_conf,
    )
    .await?;
    for ti in taken {
        state.engine.signals.stop(ti);
    }
    state.engine.signals.wake_scheduler();
    answer(&state, id).await
}

/// List the runs a backfill would create or run again, in the order it would.
#[utoipa::path(
    post,
    path = "/api/v2/backfills/dry_run",
    operation_id = "create_backfill_dry_run",
    tag = "Backfill",
    request_body = BackfillPostBody,
    responses(
        (status = 200, description = "Successful Response", body = DryRunBackfillCollectionResponse),
        (status = 400, description = "Bad Request", body = updraft_shared::api::HttpError),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 409, description = "Conflict", body = updraft_shared::api::HttpError),
        (status = 422, description = "Validation Error", body = updraft_shared::api::HttpError),
    )
)]
pub async fn create_backfill_dry_run(
    state: web::Data<AppState>,
    user: Identity,
    body: web::Json<BackfillPostBody>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::User)?;
    let plan = backfills::plan(&state.db, &state.engine.cache, &body).await?;
    let backfills: Vec<DryRunBackfillResponse> = plan
        .items
        .iter()
        .map(|(info, _)| DryRunBackfillResponse {
            logical_date: Some(info.logical_date()),
            partition_key: None,
            partition_date: None,
        })
        .collect();
    Ok(HttpResponse::Ok().json(DryRunBackfillCollectionResponse {
        total_entries: backfills.len() as i64,
        backfills,
    }))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    dag_id: Option<String>,
    limit: Option<u64>,
    offset: Option<u64>,
    #[serde(default, deserialize_with = "query::one_or_many")]
    order_by: Vec<String>,
}

/// List backfills, of one DAG with `dag_id`.
#[utoipa::path(
    get,
    path = "/api/v2/backfills",
    operation_id = "list_backfills",
    tag = "Backfill",
    params(
        ("dag_id" = Option<String>, Query, description = "The DAG; all when absent"),
        ("limit" = Option<u64>, Query, description = "Page size"),
        ("offset" = Option<u64>, Query, description = "Entries to skip"),
        ("order_by" = Option<Vec<String>>, Query, description = "id, dag_id, from_date, to_date, created_at, updated_at, completed_at; `-` for descending"),
    ),
    responses(
        (status = 200, description = "Successful Response", body = BackfillCollectionResponse),
        (status = 400, description = "Bad Request", body = updraft_shared::api::HttpError),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 422, description = "Validation Error", body = updraft_shared::api::HttpError),
    )
)]
pub async fn list_backfills(
    state: web::Data<AppState>,
    user: Identity,
    q: ApiQuery<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let q = q.0;
    use backfill::Column as B;
    let order = query::order_by(
        &q.order_by,
        &[
            ("id", B::Id),
            ("dag_id", B::DagId),
            ("from_date", B::FromDate),
            ("to_date", B::ToDate),
            ("created_at", B::CreatedAt),
            ("updated_at", B::UpdatedAt),
            ("completed_at", B::CompletedAt),
        ],
        "id",
    )?;
    let page = Page::new(&state.config.settings.api, q.limit, q.offset);
    let mut find = backfill::Entity::find();
    if let Some(dag_id) = q.dag_id.filter(|d| !d.is_empty() && d != "~") {
        find = find.filter(B::DagId.eq(dag_id));
    }
    let total = find.clone().count(state.db.conn()).await?;
    for (col, dir) in order {
        find = find.order_by(col, dir);
    }
    let rows = find
        .order_by_asc(B::Id)
        .limit(page.limit)
        .offset(page.offset)
        .all(state.db.conn())
        .await?;
    Ok(HttpResponse::Ok().json(BackfillCollectionResponse {
        backfills: responses(state.db.conn(), rows).await?,
        total_entries: total as i64,
    }))
}

/// Get a backfill.
#[utoipa::path(
    get,
    path = "/api/v2/backfills/{backfill_id}",
    operation_id = "get_backfill",
    tag = "Backfill",
    params(("backfill_id" = i64, Path, description = "The backfill")),
    responses(
        (status = 200, description = "Successful Response", body = BackfillResponse),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 422, description = "Validation Error", body = updraft_shared::api::HttpError),
    )
)]
pub async fn get_backfill(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let id = path.into_inner();
    answer(&state, id).await
}

#[derive(Clone, Copy)]
enum Action {
    Pause,
    Unpause,
    Cancel,
}

/// Pause, unpause or cancel, with the audit entry, in one transaction; 409 once complete.
async fn act(
    state: &AppState,
    user: &Identity,
    id: i64,
    action: Action,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::User)?;
    let event = match action {
        Action::Pause => "pause_backfill",
        Action::Unpause => "unpause_backfill",
        Action::Cancel => "cancel_backfill",
    };
    let now = crate::timefmt::now();
    let txn = state.db.conn().begin().await?;
    let mut entry =
        AuditEntry::new(event, &user.username).extra(serde_json::json!({ "backfill_id": id }));
    let row = backfill::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?;
    if let Some(row) = &row {
        entry = entry.dag(&row.dag_id);
    }
    audit::record(&txn, entry).await?;
    let row = row.ok_or_else(|| not_found(id))?;
    let shown = response(&txn, row.clone()).await?;
    if shown.completed_at.is_some() {
        return Err(ApiError::Conflict(format!(
            "Backfill {id} is already completed."
        )));
    }
    let mut update = backfill::Entity::update_many()
        .col_expr(backfill::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            backfill::Column::IsPaused,
            Expr::value(!matches!(action, Action::Unpause)),
        );
    if let Action::Cancel = action {
        update = update.col_expr(backfill::Column::CompletedAt, Expr::value(now));
        // As Airflow: runs not started yet fail; running ones go on.
        dag_run::Entity::update_many()
            .col_expr(
                dag_run::Column::State,
                Expr::value(DagRunState::Failed.as_str()),
            )
            .col_expr(dag_run::Column::EndDate, Expr::value(now))
            .col_expr(dag_run::Column::UpdatedAt, Expr::value(now))
            .filter(dag_run::Column::BackfillId.eq(id))
            .filter(dag_run::Column::State.eq(DagRunState::Queued.as_str()))
            .exec(&txn)
            .await?;
    }
    update
        .filter(backfill::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    state.engine.signals.wake_scheduler();
    answer(state, id).await
}

/// Pause a backfill.
#[utoipa::path(
    put,
    path = "/api/v2/backfills/{backfill_id}/pause",
    operation_id = "pause_backfill",
    tag = "Backfill",
    params(("backfill_id" = i64, Path, description = "The backfill")),
    responses(
        (status = 200, description = "Successful Response", body = BackfillResponse),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 409, description = "Conflict", body = updraft_shared::api::HttpError),
    )
)]
pub async fn pause_backfill(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    act(&state, &user, path.into_inner(), Action::Pause).await
}

/// Unpause a backfill.
#[utoipa::path(
    put,
    path = "/api/v2/backfills/{backfill_id}/unpause",
    operation_id = "unpause_backfill",
    tag = "Backfill",
    params(("backfill_id" = i64, Path, description = "The backfill")),
    responses(
        (status = 200, description = "Successful Response", body = BackfillResponse),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 409, description = "Conflict", body = updraft_shared::api::HttpError),
    )
)]
pub async fn unpause_backfill(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    act(&state, &user, path.into_inner(), Action::Unpause).await
}

/// Cancel a backfill: its runs not started yet fail, and it is complete.
#[utoipa::path(
    put,
    path = "/api/v2/backfills/{backfill_id}/cancel",
    operation_id = "cancel_backfill",
    tag = "Backfill",
    params(("backfill_id" = i64, Path, description = "The backfill")),
    responses(
        (status = 200, description = "Successful Response", body = BackfillResponse),
        (status = 401, description = "Unauthorized", body = updraft_shared::api::HttpError),
        (status = 403, description = "Forbidden", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 409, description = "Conflict", body = updraft_shared::api::HttpError),
    )
)]
pub async fn cancel_backfill(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    act(&state, &user, path.into_inner(), Action::Cancel).await
}
