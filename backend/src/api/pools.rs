//! Pools: `/api/v2/pools` (Airflow's Pool API), with slot counts from the task instances
//! that use them. Everything needs the Op role, reads included.

use crate::store::pools as pools_store;

use std::collections::BTreeSet;

use actix_web::{web, HttpResponse};
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde::Deserialize;
use serde_json::{json, Value};
use updraft_shared::api::{
    BulkAction, BulkBody, BulkResponse, HttpError, PoolBody, PoolCollectionResponse, PoolPatchBody,
    PoolResponse,
};

use self::pools_store::{self as store, Column, PoolFields, SlotCounts, DEFAULT_POOL};
use super::bulk::{self, BulkResource, Refusal};
use super::query::{self, ApiQuery, Page};
use super::variables::{
    audited_txn, in_mask, is_unique_violation, name_filters, no_team_name, update_mask, Mask,
    MaskQuery,
};
use super::ApiError;
use crate::auth::{Identity, Role};
use crate::server::AppState;

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(get_pools, get_pool, post_pool, patch_pool, delete_pool, bulk_pools),
    components(schemas(PoolBody, PoolPatchBody, PoolResponse, PoolCollectionResponse))
)]
pub struct Doc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/pools")
            .get(get_pools)
            .post(post_pool)
            .patch(bulk_pools),
    )
    .service(
        web::resource("/pools/{pool_name:.*}")
            .get(get_pool)
            .patch(patch_pool)
            .delete(delete_pool),
    );
}

const MAX_NAME_LEN: usize = 256;
const FIELDS: &[&str] = &["pool", "name", "slots", "description", "include_deferred"];

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<u64>,
    offset: Option<u64>,
    #[serde(default, deserialize_with = "query::one_or_many")]
    order_by: Vec<String>,
    pool_name_pattern: Option<String>,
    pool_name_prefix_pattern: Option<String>,
}

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!("The Pool with name: `{name}` was not found"))
}

fn check_slots(slots: i32) -> Result<(), ApiError> {
    if slots < -1 {
        return Err(ApiError::Unprocessable(format!(
            "slots: {slots} is not a number of slots: use 0 or more, or -1 for unlimited"
        )));
    }
    Ok(())
}

fn check_body(body: &PoolBody) -> Result<(), ApiError> {
    let len = body.name.chars().count();
    if len == 0 || len > MAX_NAME_LEN {
        return Err(ApiError::Unprocessable(format!(
            "name: a pool name has 1 to {MAX_NAME_LEN} characters, this one has {len}"
        )));
    }
    check_slots(body.slots)?;
    no_team_name(&body.team_name)
}

fn fields(body: &PoolBody) -> PoolFields {
    PoolFields {
        name: body.name.clone(),
        slots: body.slots,
        description: body.description.clone(),
        include_deferred: body.include_deferred,
    }
}

fn response(row: &store::Model, counts: SlotCounts) -> PoolResponse {
    PoolResponse {
        name: row.pool.clone(),
        slots: row.slots,
        description: row.description.clone(),
        include_deferred: row.include_deferred,
        occupied_slots: counts.occupied(row.include_deferred),
        running_slots: counts.running,
        queued_slots: counts.queued,
        scheduled_slots: counts.scheduled,
        open_slots: counts.open(row.slots, row.include_deferred),
        deferred_slots: counts.deferred,
        team_name: None,
    }
}

async fn one_response(
    conn: &impl ConnectionTrait,
    row: &store::Model,
) -> Result<PoolResponse, ApiError> {
    let counts = store::slot_counts(conn, Some(std::slice::from_ref(&row.pool))).await?;
    Ok(response(
        row,
        counts.get(&row.pool).copied().unwrap_or_default(),
    ))
}

/// A pool still holding running or queued task instances cannot go (they would lose it).
async fn check_unused(conn: &impl ConnectionTrait, name: &str) -> Result<(), Refusal> {
    let counts = store::slot_counts(conn, Some(&[name.to_string()]))
        .await
        .map_err(|e| (format!("reading the pool's task instances: {e}"), 500))?;
    let c = counts.get(name).copied().unwrap_or_default();
    if c.running + c.queued > 0 {
        return Err((
            format!(
                "The Pool `{name}` has task instances running or queued in it ({} slots): wait for them to finish, or move their tasks to another pool, before deleting it",
                c.running + c.queued
            ),
            409,
        ));
    }
    Ok(())
}

/// The fields a patch changes on the default pool may only be slots and include_deferred.
fn default_pool_guard(name: &str, changed: &BTreeSet<&str>) -> Result<(), ApiError> {
    if name == DEFAULT_POOL
        && changed
            .iter()
            .any(|f| !matches!(*f, "slots" | "include_deferred"))
    {
        return Err(ApiError::BadRequest(
            "Only slots and included_deferred can be modified on Default Pool".into(),
        ));
    }
    Ok(())
}

/// List pools.
#[utoipa::path(
    get,
    path = "/api/v2/pools",
    operation_id = "get_pools",
    tag = "Pool",
    params(
        ("limit" = Option<u64>, Query, description = "Page size"),
        ("offset" = Option<u64>, Query, description = "Entries to skip"),
        ("order_by" = Option<Vec<String>>, Query, description = "id, pool (or name); `-` for descending"),
        ("pool_name_pattern" = Option<String>, Query, description = "Substring of the name (`%`, `_` wildcards, `|` alternatives)"),
        ("pool_name_prefix_pattern" = Option<String>, Query, description = "Start of the name"),
    ),
    responses(
        (status = 200, description = "Successful Response", body = PoolCollectionResponse),
        (status = 400, description = "Bad Request", body = HttpError),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 422, description = "Validation Error", body = HttpError),
    )
)]
pub async fn get_pools(
    state: web::Data<AppState>,
    user: Identity,
    q: ApiQuery<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Op)?;
    let q = q.0;
    let page = Page::new(&state.config.settings.api, q.limit, q.offset);
    let order = query::order_by(
        &q.order_by,
        &[
            ("id", Column::Id),
            ("pool", Column::Pool),
            ("name", Column::Pool),
        ],
        "id",
    )?;
    let filter = name_filters(
        Column::Pool,
        q.pool_name_pattern.as_deref(),
        q.pool_name_prefix_pattern.as_deref(),
    );
    let (rows, total) =
        store::page(state.db.conn(), filter, &order, page.limit, page.offset).await?;
    let names: Vec<String> = rows.iter().map(|r| r.pool.clone()).collect();
    let counts = store::slot_counts(state.db.conn(), Some(&names)).await?;
    let pools = rows
        .iter()
        .map(|r| response(r, counts.get(&r.pool).copied().unwrap_or_default()))
        .collect();
    Ok(HttpResponse::Ok().json(PoolCollectionResponse {
        pools,
        total_entries: total,
    }))
}

/// Get a pool.
#[utoipa::path(
    get,
    path = "/api/v2/pools/{pool_name}",
    operation_id = "get_pool",
    tag = "Pool",
    params(("pool_name" = String, Path, description = "The pool's name")),
    responses(
        (status = 200, description = "Successful Response", body = PoolResponse),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 404, description = "Not Found", body = HttpError),
    )
)]
pub async fn get_pool(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Op)?;
    let name = path.into_inner();
    let row = store::find(state.db.conn(), &name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    Ok(HttpResponse::Ok().json(one_response(state.db.conn(), &row).await?))
}

/// Create a pool.
#[utoipa::path(
    post,
    path = "/api/v2/pools",
    operation_id = "post_pool",
    tag = "Pool",
    request_body = PoolBody,
    responses(
        (status = 201, description = "Successful Response", body = PoolResponse),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 409, description = "Conflict", body = HttpError),
        (status = 422, description = "Validation Error", body = HttpError),
    )
)]
pub async fn post_pool(
    state: web::Data<AppState>,
    user: Identity,
    body: web::Json<PoolBody>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Op)?;
    let body = body.into_inner();
    check_body(&body)?;
    let exists = || {
        ApiError::Conflict(format!(
            "The Pool with name: `{}` already exists",
            body.name
        ))
    };
    let txn = audited_txn(state.db.conn(), &user, "post_pool", json!(body)).await?;
    if store::find(&txn, &body.name).await?.is_some() {
        return Err(exists());
    }
    let row = store::insert(&txn, &fields(&body)).await.map_err(|e| {
        if is_unique_violation(&e) {
            exists()
        } else {
            e.into()
        }
    })?;
    let shown = one_response(&txn, &row).await?;
    txn.commit().await?;
    state.engine.signals.wake_scheduler();
    Ok(HttpResponse::Created().json(shown))
}

/// Update a pool (`update_mask`: slots, description, include_deferred).
#[utoipa::path(
    patch,
    path = "/api/v2/pools/{pool_name}",
    operation_id = "patch_pool",
    tag = "Pool",
    params(
        ("pool_name" = String, Path, description = "The pool's name"),
        ("update_mask" = Option<Vec<String>>, Query, description = "Fields to change"),
    ),
    request_body = PoolPatchBody,
    responses(
        (status = 200, description = "Successful Response", body = PoolResponse),
        (status = 400, description = "Bad Request", body = HttpError),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 404, description = "Not Found", body = HttpError),
        (status = 422, description = "Validation Error", body = HttpError),
    )
)]
pub async fn patch_pool(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<String>,
    q: ApiQuery<MaskQuery>,
    body: web::Json<PoolPatchBody>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Op)?;
    let name = path.into_inner();
    let body = body.into_inner();
    if let Some(slots) = body.slots {
        check_slots(slots)?;
    }
    no_team_name(&body.team_name)?;
    if body.pool.as_ref().is_some_and(|p| *p != name) {
        return Err(ApiError::BadRequest(format!(
            "Invalid body, pool name from request body doesn't match uri parameter (`{name}`): pools are not renamed"
        )));
    }
    let mask = update_mask(&q.0.update_mask, FIELDS)?;
    let mut changed = BTreeSet::new();
    if body.slots.is_some() && in_mask(&mask, "slots") {
        changed.insert("slots");
    }
    if body.description.is_some() && in_mask(&mask, "description") {
        changed.insert("description");
    }
    if body.include_deferred.is_some() && in_mask(&mask, "include_deferred") {
        changed.insert("include_deferred");
    }
    default_pool_guard(&name, &changed)?;
    let txn = audited_txn(
        state.db.conn(),
        &user,
        "patch_pool",
        json!({"pool": name, "update": body, "update_mask": mask}),
    )
    .await?;
    let row = store::find(&txn, &name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    let mut new = PoolFields {
        name: row.pool.clone(),
        slots: row.slots,
        description: row.description.clone(),
        include_deferred: row.include_deferred,
    };
    if changed.contains("slots") {
        new.slots = body.slots.unwrap_or(new.slots);
    }
    if changed.contains("description") {
        new.description = body.description.clone().flatten();
    }
    if changed.contains("include_deferred") {
        new.include_deferred = body.include_deferred.unwrap_or(new.include_deferred);
    }
    let row = store::replace(&txn, row, &new).await?;
    let shown = one_response(&txn, &row).await?;
    txn.commit().await?;
    state.engine.signals.wake_scheduler();
    Ok(HttpResponse::Ok().json(shown))
}

/// Delete a pool.
#[utoipa::path(
    delete,
    path = "/api/v2/pools/{pool_name}",
    operation_id = "delete_pool",
    tag = "Pool",
    params(("pool_name" = String, Path, description = "The pool's name")),
    responses(
        (status = 204, description = "Successful Response"),
        (status = 400, description = "Bad Request", body = HttpError),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 404, description = "Not Found", body = HttpError),
        (status = 409, description = "Conflict", body = HttpError),
    )
)]
pub async fn delete_pool(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Op)?;
    let name = path.into_inner();
    if name == DEFAULT_POOL {
        return Err(ApiError::BadRequest("Default Pool can't be deleted".into()));
    }
    let txn = audited_txn(state.db.conn(), &user, "delete_pool", json!({"pool": name})).await?;
    if store::find(&txn, &name).await?.is_none() {
        return Err(not_found(&name));
    }
    check_unused(&txn, &name)
        .await
        .map_err(|(detail, status)| {
            if status == 409 {
                ApiError::Conflict(detail)
            } else {
                ApiError::Internal(anyhow::anyhow!(detail))
            }
        })?;
    store::delete(&txn, &name).await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Create, update and delete pools in one request.
#[utoipa::path(
    patch,
    path = "/api/v2/pools",
    operation_id = "bulk_pools",
    tag = "Pool",
    request_body = BulkBody<PoolBody>,
    responses(
        (status = 200, description = "Successful Response", body = BulkResponse),
        (status = 400, description = "Bad Request", body = HttpError),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 422, description = "Validation Error", body = HttpError),
    )
)]
pub async fn bulk_pools(
    state: web::Data<AppState>,
    user: Identity,
    body: web::Json<BulkBody<PoolBody>>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Op)?;
    let out = bulk::run(&BulkPools, state.db.conn(), &user, body.into_inner()).await?;
    state.engine.signals.wake_scheduler();
    Ok(HttpResponse::Ok().json(out))
}

/// The fields a bulk update changes: every field of a bulk entity is given, so only the
/// mask narrows them (and the default pool needs one).
fn bulk_changed(mask: &Mask) -> BTreeSet<&'static str> {
    ["slots", "description", "include_deferred"]
        .into_iter()
        .filter(|f| in_mask(mask, f))
        .collect()
}

struct BulkPools;

impl BulkResource for BulkPools {
    type Body = PoolBody;
    type Row = store::Model;
    const EVENT: &'static str = "bulk_pools";
    const WHAT: &'static str = "pools with these pool names";
    const MASK_FIELDS: &'static [&'static str] = FIELDS;

    fn key(body: &PoolBody) -> &str {
        &body.name
    }
    fn row_key(row: &store::Model) -> &str {
        &row.pool
    }
    fn checked(&self, body: PoolBody) -> Result<PoolBody, ApiError> {
        check_body(&body)?;
        Ok(body)
    }
    fn audit(&self, actions: &[BulkAction<PoolBody>]) -> Value {
        json!({ "actions": actions })
    }
    async fn existing(
        &self,
        txn: &DatabaseTransaction,
        names: &[String],
    ) -> Result<Vec<store::Model>, ApiError> {
        Ok(store::existing(txn, names).await?)
    }
    async fn insert(
        &self,
        txn: &DatabaseTransaction,
        body: &PoolBody,
    ) -> Result<store::Model, ApiError> {
        Ok(store::insert(txn, &fields(body)).await?)
    }
    async fn overwrite(
        &self,
        txn: &DatabaseTransaction,
        row: store::Model,
        body: &PoolBody,
    ) -> Result<store::Model, ApiError> {
        Ok(store::replace(txn, row, &fields(body)).await?)
    }
    async fn update(
        &self,
        txn: &DatabaseTransaction,
        row: store::Model,
        body: &PoolBody,
        mask: &Mask,
    ) -> Result<store::Model, ApiError> {
        let changed = bulk_changed(mask);
        let new = PoolFields {
            name: row.pool.clone(),
            slots: if changed.contains("slots") {
                body.slots
            } else {
                row.slots
            },
            description: if changed.contains("description") {
                body.description.clone()
            } else {
                row.description.clone()
            },
            include_deferred: if changed.contains("include_deferred") {
                body.include_deferred
            } else {
                row.include_deferred
            },
        };
        Ok(store::replace(txn, row, &new).await?)
    }
    async fn delete(&self, txn: &DatabaseTransaction, name: &str) -> Result<(), ApiError> {
        store::delete(txn, name).await?;
        Ok(())
    }

    fn refuse_update(&self, names: &[String], mask: &Mask) -> Option<Refusal> {
        if !names.iter().any(|n| n == DEFAULT_POOL) {
            return None;
        }
        default_pool_guard(DEFAULT_POOL, &bulk_changed(mask))
            .err()
            .map(|e| (e.to_string(), 400))
    }
    fn refuse_delete(&self, names: &[String]) -> Option<Refusal> {
        names
            .iter()
            .any(|n| n == DEFAULT_POOL)
            .then(|| ("Default Pool can't be deleted".into(), 400))
    }
    async fn check_deletable(&self, txn: &DatabaseTransaction, name: &str) -> Result<(), Refusal> {
        check_unused(txn, name).await
    }
}
