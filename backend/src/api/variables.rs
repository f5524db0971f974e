//! Variables: `/api/v2/variables` (Airflow's Variable API). Values are encrypted at rest and
//! masked on the way out; everything needs the Op role, reads included (Airflow's FAB rule).
//!
//! Also the helpers the connection and pool modules share: update masks, name patterns,
//! body checks.

use crate::store::variables as variables_store;

mod values;

use std::collections::BTreeSet;

use actix_web::{web, HttpResponse};
use sea_orm::sea_query::{Expr, Func, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait,
};
use serde::Deserialize;
use serde_json::{json, Value};
use updraft_shared::api::{
    BulkAction, BulkActionNotOnExistence, BulkActionOnExistence, BulkActionResponse, BulkBody,
    BulkResponse, HttpError, VariableBody, VariableCollectionResponse, VariableResponse,
};

pub use self::values::shown_value;
use self::values::{incoming_value, value_text};
use self::variables_store::{self as store, Column};
use super::bulk::{self, BulkResource};
use super::query::{self, ApiQuery, Page};
use super::ApiError;
use crate::auth::{Identity, Role};
use crate::secrets::{Secrets, SensitiveNames};
use crate::server::AppState;
use crate::store::audit::{self, AuditEntry};

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        get_variables,
        get_variable,
        post_variable,
        patch_variable,
        delete_variable,
        bulk_variables
    ),
    components(schemas(
        VariableBody,
        VariableResponse,
        VariableCollectionResponse,
        BulkActionResponse,
        BulkResponse,
        BulkActionOnExistence,
        BulkActionNotOnExistence
    ))
)]
pub struct Doc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/variables")
            .get(get_variables)
            .post(post_variable)
            .patch(bulk_variables),
    )
    .service(
        web::resource("/variables/{variable_key:.*}")
            .get(get_variable)
            .patch(patch_variable)
            .delete(delete_variable),
    );
}

const MAX_KEY_LEN: usize = 250;
const FIELDS: &[&str] = &["key", "value", "description"];

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<u64>,
    offset: Option<u64>,
    #[serde(default, deserialize_with = "query::one_or_many")]
    order_by: Vec<String>,
    variable_key_pattern: Option<String>,
    variable_key_prefix_pattern: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct MaskQuery {
    #[serde(default, deserialize_with = "query::one_or_many")]
    pub update_mask: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// Helpers shared with connections and pools
// ---------------------------------------------------------------------------------------

/// The fields an `update_mask` names; `None` for all.
pub(crate) type Mask = Option<BTreeSet<String>>;

/// `update_mask` names (repeated or comma-separated) checked against the fields that can be
/// changed; `None` when absent (every given field changes).
pub(crate) fn update_mask(raw: &[String], allowed: &[&str]) -> Result<Mask, ApiError> {
    let names: BTreeSet<String> = raw
        .iter()
        .flat_map(|r| r.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    if let Some(bad) = names.iter().find(|n| !allowed.contains(&n.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "update_mask names `{bad}`, which cannot be updated; use some of: {}",
            allowed.join(", ")
        )));
    }
    Ok(Some(names))
}

/// Whether `field` may change under `mask`.
pub(crate) fn in_mask(mask: &Mask, field: &str) -> bool {
    mask.as_ref().is_none_or(|m| m.contains(field))
}

/// A `*_prefix_pattern` filter: names starting with the text (case-insensitive).
pub(crate) fn prefix_pattern<C: ColumnTrait>(col: C, raw: Option<&str>) -> Option<Condition> {
    let raw = raw?.trim();
    if raw.is_empty() || raw == "~" {
        return None;
    }
    let lowered: SimpleExpr = Func::lower(Expr::col((col.entity_name(), col))).into();
    Some(Condition::all().add(lowered.like(format!("{}%", raw.to_lowercase()))))
}

/// Both pattern filters together.
pub(crate) fn name_filters<C: ColumnTrait>(
    col: C,
    pattern: Option<&str>,
    prefix: Option<&str>,
) -> Option<Condition> {
    let parts: Vec<Condition> = [query::pattern(col, pattern), prefix_pattern(col, prefix)]
        .into_iter()
        .flatten()
        .collect();
    if parts.is_empty() {
        return None;
    }
    Some(parts.into_iter().fold(Condition::all(), Condition::add))
}

/// Airflow has `team_name` only in multi-team mode; Updraft never is.
pub(crate) fn no_team_name(team_name: &Option<String>) -> Result<(), ApiError> {
    match team_name {
        Some(_) => Err(ApiError::Unprocessable(
            "team_name cannot be set: multi-team mode is not available; leave it out".into(),
        )),
        None => Ok(()),
    }
}

/// Starts a write's transaction with its audit entry already in it: both commit, or neither.
pub(crate) async fn audited_txn(
    db: &DatabaseConnection,
    user: &Identity,
    event: &str,
    extra: Value,
) -> Result<DatabaseTransaction, ApiError> {
    let txn = db.begin().await?;
    audit::record(&txn, AuditEntry::new(event, &user.username).extra(extra)).await?;
    Ok(txn)
}

pub(crate) fn is_unique_violation(e: &DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

fn response(secrets: &Secrets, row: &store::Model) -> Result<VariableResponse, ApiError> {
    let plain = store::plain(secrets, row)?;
    Ok(VariableResponse {
        key: row.key.clone(),
        value: Some(shown_value(&secrets.names, &row.key, &plain)),
        description: row.description.clone(),
        is_encrypted: row.is_encrypted,
        team_name: None,
    })
}

fn check_body(body: &VariableBody) -> Result<(), ApiError> {
    let len = body.key.chars().count();
    if len == 0 || len > MAX_KEY_LEN {
        return Err(ApiError::Unprocessable(format!(
            "key: a variable key has 1 to {MAX_KEY_LEN} characters, this one has {len}"
        )));
    }
    no_team_name(&body.team_name)
}

/// What the audit log keeps of a body: the value as a read would show it.
fn audit_extra(names: &SensitiveNames, body: &VariableBody) -> Value {
    json!({
        "key": body.key,
        "value": shown_value(names, &body.key, &value_text(&body.value)),
        "description": body.description.clone().flatten(),
    })
}

fn not_found(key: &str) -> ApiError {
    ApiError::NotFound(format!("The Variable with key: `{key}` was not found"))
}

// ---------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------

/// List variables.
#[utoipa::path(
    get,
    path = "/api/v2/variables",
    operation_id = "get_variables",
    tag = "Variable",
    params(
        ("limit" = Option<u64>, Query, description = "Page size"),
        ("offset" = Option<u64>, Query, description = "Entries to skip"),
        ("order_by" = Option<Vec<String>>, Query, description = "key, id, _val, description, is_encrypted; `-` for descending"),
        ("variable_key_pattern" = Option<String>, Query, description = "Substring of the key (`%`, `_` wildcards, `|` alternatives)"),
        ("variable_key_prefix_pattern" = Option<String>, Query, description = "Start of the key"),
    ),
    responses(
        (status = 200, description = "Successful Response", body = VariableCollectionResponse),
        (status = 400, description = "Bad Request", body = HttpError),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 422, description = "Validation Error", body = HttpError),
    )
)]
pub async fn get_variables(
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
            ("key", Column::Key),
            ("id", Column::Id),
            ("_val", Column::Val),
            ("description", Column::Description),
            ("is_encrypted", Column::IsEncrypted),
        ],
        "id",
    )?;
    let filter = name_filters(
        Column::Key,
        q.variable_key_pattern.as_deref(),
        q.variable_key_prefix_pattern.as_deref(),
    );
    let (rows, total) =
        store::page(state.db.conn(), filter, &order, page.limit, page.offset).await?;
    let variables = rows
        .iter()
        .map(|r| response(&state.secrets, r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(VariableCollectionResponse {
        variables,
        total_entries: total,
    }))
}

/// Get a variable.
#[utoipa::path(
    get,
    path = "/api/v2/variables/{variable_key}",
    operation_id = "get_variable",
    tag = "Variable",
    params(("variable_key" = String, Path, description = "The variable's key")),
    responses(
        (status = 200, description = "Successful Response", body = VariableResponse),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 404, description = "Not Found", body = HttpError),
    )
)]
pub async fn get_variable(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Op)?;
    let key = path.into_inner();
    let row = store::find(state.db.conn(), &key)
        .await?
        .ok_or_else(|| not_found(&key))?;
    Ok(HttpResponse::Ok().json(response(&state.secrets, &row)?))
}

/// Create a variable.
#[utoipa::path(
    post,
    path = "/api/v2/variables",
    operation_id = "post_variable",
    tag = "Variable",
    request_body = VariableBody,
    responses(
        (status = 201, description = "Successful Response", body = VariableResponse),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 409, description = "Conflict", body = HttpError),
        (status = 422, description = "Validation Error", body = HttpError),
    )
)]
pub async fn post_variable(
    state: web::Data<AppState>,
    user: Identity,
    body: web::Json<VariableBody>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Op)?;
    let body = body.into_inner();
    check_body(&body)?;
    let exists = || {
        ApiError::Conflict(format!(
            "The Variable with key: `{}` already exists",
            body.key
        ))
    };
    let txn = audited_txn(
        state.db.conn(),
        &user,
        "post_variable",
        audit_extra(&state.secrets.names, &body),
    )
    .await?;
    if store::find(&txn, &body.key).await?.is_some() {
        return Err(exists());
    }
    let row = store::insert(
        &txn,
        &state.secrets,
        &body.key,
        &value_text(&body.value),
        body.description.clone().flatten(),
    )
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            exists()
        } else {
            e.into()
        }
    })?;
    txn.commit().await?;
    Ok(HttpResponse::Created().json(response(&state.secrets, &row)?))
}

/// Applies a body to a stored variable (value and description, as the mask allows).
async fn apply_update(
    conn: &impl sea_orm::ConnectionTrait,
    secrets: &Secrets,
    row: store::Model,
    body: &VariableBody,
    mask: &Mask,
) -> Result<store::Model, ApiError> {
    let plain = if in_mask(mask, "value") {
        let stored = store::plain(secrets, &row)?;
        incoming_value(&secrets.names, &row.key, &body.value, Some(&stored))
    } else {
        None
    };
    let description = if in_mask(mask, "description") {
        body.description.clone()
    } else {
        None
    };
    Ok(store::update(conn, secrets, row, plain.as_deref(), description).await?)
}

/// Update a variable (`update_mask`: value, description).
#[utoipa::path(
    patch,
    path = "/api/v2/variables/{variable_key}",
    operation_id = "patch_variable",
    tag = "Variable",
    params(
        ("variable_key" = String, Path, description = "The variable's key"),
        ("update_mask" = Option<Vec<String>>, Query, description = "Fields to change: value, description"),
    ),
    request_body = VariableBody,
    responses(
        (status = 200, description = "Successful Response", body = VariableResponse),
        (status = 400, description = "Bad Request", body = HttpError),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 404, description = "Not Found", body = HttpError),
        (status = 422, description = "Validation Error", body = HttpError),
    )
)]
pub async fn patch_variable(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<String>,
    q: ApiQuery<MaskQuery>,
    body: web::Json<VariableBody>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Op)?;
    let key = path.into_inner();
    let body = body.into_inner();
    check_body(&body)?;
    if body.key != key {
        return Err(ApiError::BadRequest(format!(
            "Invalid body, key from request body doesn't match uri parameter: `{}` vs `{key}` (variables are not renamed)",
            body.key
        )));
    }
    let mask = update_mask(&q.0.update_mask, FIELDS)?;
    let txn = audited_txn(
        state.db.conn(),
        &user,
        "patch_variable",
        audit_extra(&state.secrets.names, &body),
    )
    .await?;
    let row = store::find(&txn, &key)
        .await?
        .ok_or_else(|| not_found(&key))?;
    let row = apply_update(&txn, &state.secrets, row, &body, &mask).await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(response(&state.secrets, &row)?))
}

/// Delete a variable.
#[utoipa::path(
    delete,
    path = "/api/v2/variables/{variable_key}",
    operation_id = "delete_variable",
    tag = "Variable",
    params(("variable_key" = String, Path, description = "The variable's key")),
    responses(
        (status = 204, description = "Successful Response"),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 404, description = "Not Found", body = HttpError),
    )
)]
pub async fn delete_variable(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Op)?;
    let key = path.into_inner();
    let txn = audited_txn(
        state.db.conn(),
        &user,
        "delete_variable",
        json!({"key": key}),
    )
    .await?;
    if store::delete(&txn, &key).await? == 0 {
        return Err(not_found(&key));
    }
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Create, update and delete variables in one request.
#[utoipa::path(
    patch,
    path = "/api/v2/variables",
    operation_id = "bulk_variables",
    tag = "Variable",
    request_body = BulkBody<VariableBody>,
    responses(
        (status = 200, description = "Successful Response", body = BulkResponse),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 422, description = "Validation Error", body = HttpError),
    )
)]
pub async fn bulk_variables(
    state: web::Data<AppState>,
    user: Identity,
    body: web::Json<BulkBody<VariableBody>>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Op)?;
    let resource = BulkVariables {
        secrets: &state.secrets,
    };
    let out = bulk::run(&resource, state.db.conn(), &user, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(out))
}

struct BulkVariables<'a> {
    secrets: &'a Secrets,
}

impl BulkResource for BulkVariables<'_> {
    type Body = VariableBody;
    type Row = store::Model;
    const EVENT: &'static str = "bulk_variables";
    const WHAT: &'static str = "variables with these keys";
    const MASK_FIELDS: &'static [&'static str] = FIELDS;

    fn key(body: &VariableBody) -> &str {
        &body.key
    }
    fn row_key(row: &store::Model) -> &str {
        &row.key
    }
    fn checked(&self, body: VariableBody) -> Result<VariableBody, ApiError> {
        check_body(&body)?;
        Ok(body)
    }
    fn audit(&self, actions: &[BulkAction<VariableBody>]) -> Value {
        bulk::audit_summary::<Self>(actions, "keys", |e| audit_extra(&self.secrets.names, e))
    }
    async fn existing(
        &self,
        txn: &DatabaseTransaction,
        keys: &[String],
    ) -> Result<Vec<store::Model>, ApiError> {
        Ok(store::existing_keys(txn, keys).await?)
    }
    async fn insert(
        &self,
        txn: &DatabaseTransaction,
        body: &VariableBody,
    ) -> Result<store::Model, ApiError> {
        Ok(store::insert(
            txn,
            self.secrets,
            &body.key,
            &value_text(&body.value),
            body.description.clone().flatten(),
        )
        .await?)
    }
    async fn overwrite(
        &self,
        txn: &DatabaseTransaction,
        row: store::Model,
        body: &VariableBody,
    ) -> Result<store::Model, ApiError> {
        apply_update(txn, self.secrets, row, body, &None).await
    }
    async fn update(
        &self,
        txn: &DatabaseTransaction,
        row: store::Model,
        body: &VariableBody,
        mask: &Mask,
    ) -> Result<store::Model, ApiError> {
        apply_update(txn, self.secrets, row, body, mask).await
    }
    async fn delete(&self, txn: &DatabaseTransaction, key: &str) -> Result<(), ApiError> {
        store::delete(txn, key).await?;
        Ok(())
    }
}
