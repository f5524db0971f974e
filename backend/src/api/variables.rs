//! Variables: `/api/v2/variables` (Airflow's Variable API). Values are encrypted at rest and
//! masked on the way out; everything needs the Op role, reads included (Airflow's FAB rule).
//!
//! Also the helpers the connection and pool modules share: update masks, prefix patterns,
//! bulk error entries.

use crate::store::variables as variables_store;

use std::collections::{BTreeSet, HashMap};

use actix_web::{web, HttpResponse};
use sea_orm::sea_query::{Expr, Func, SimpleExpr};
use sea_orm::{ColumnTrait, Condition, DbErr, TransactionTrait};
use serde::Deserialize;
use serde_json::{json, Value};
use updraft_shared::api::{
    BulkAction, BulkActionNotOnExistence, BulkActionOnExistence, BulkActionResponse, BulkBody,
    BulkDeleteEntity, BulkResponse, HttpError, VariableBody, VariableCollectionResponse,
    VariableResponse,
};

use self::variables_store::{self as store, Column};
use super::query::{self, ApiQuery, Page};
use super::ApiError;
use crate::auth::{Identity, Role};
use crate::secrets::mask::MASK;
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

/// `update_mask` names (repeated or comma-separated) checked against the fields that can be
/// changed; `None` when absent (every given field changes).
pub(crate) fn update_mask(
    raw: &[String],
    allowed: &[&str],
) -> Result<Option<BTreeSet<String>>, ApiError> {
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
pub(crate) fn in_mask(mask: &Option<BTreeSet<String>>, field: &str) -> bool {
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

/// Names the way Airflow prints a set in its bulk errors: `{'a', 'b'}`.
pub(crate) fn py_set<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let sorted: BTreeSet<&String> = names.into_iter().collect();
    let inner: Vec<String> = sorted.iter().map(|n| format!("'{n}'")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// One entry of a bulk action's `errors`.
pub(crate) fn bulk_error(results: &mut BulkActionResponse, detail: String, status: u16) {
    results
        .errors
        .push(json!({"error": detail, "status_code": status}));
}

pub(crate) fn is_unique_violation(e: &DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

// ---------------------------------------------------------------------------------------
// Values in and out
// ---------------------------------------------------------------------------------------

/// The text stored for a body's value: strings as they are, other JSON as its text.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A plain value as shown: `***` for a sensitive key; a JSON object or list with its
/// sensitive keys masked (the text kept as written when nothing is masked).
pub fn shown_value(names: &SensitiveNames, key: &str, plain: &str) -> String {
    if names.is_sensitive(key) {
        return MASK.into();
    }
    match serde_json::from_str::<Value>(plain) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => {
            let redacted = names.redact_json(&v);
            if redacted == v {
                plain.to_string()
            } else {
                redacted.to_string()
            }
        }
        _ => plain.to_string(),
    }
}

/// The plain text to store for an incoming value, given the stored one: `None` keeps the
/// stored value (`***` sent back for a sensitive key); JSON with `***` under sensitive keys
/// keeps those entries.
fn incoming_value(
    names: &SensitiveNames,
    key: &str,
    incoming: &Value,
    stored: Option<&str>,
) -> Option<String> {
    let text = value_text(incoming);
    let Some(stored) = stored else {
        return Some(text);
    };
    if text == MASK && names.is_sensitive(key) {
        return None;
    }
    let parsed = serde_json::from_str::<Value>(&text).ok();
    let old = serde_json::from_str::<Value>(stored).ok();
    match (parsed, old) {
        (Some(new @ (Value::Object(_) | Value::Array(_))), Some(old)) => {
            let merged = names.merge_masked(&new, Some(&old));
            Some(if merged == new {
                text
            } else {
                merged.to_string()
            })
        }
        _ => Some(text),
    }
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
    let txn = state.db.conn().begin().await?;
    audit::record(
        &txn,
        AuditEntry::new("post_variable", &user.username)
            .extra(audit_extra(&state.secrets.names, &body)),
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
    mask: &Option<BTreeSet<String>>,
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
    let mask = update_mask(&q.0.update_mask, &["key", "value", "description"])?;
    let txn = state.db.conn().begin().await?;
    audit::record(
        &txn,
        AuditEntry::new("patch_variable", &user.username)
            .extra(audit_extra(&state.secrets.names, &body)),
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
    let txn = state.db.conn().begin().await?;
    audit::record(
        &txn,
        AuditEntry::new("delete_variable", &user.username).extra(json!({"key": key})),
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
    let body = body.into_inner();
    let names = &state.secrets.names;
    let mut summary = Vec::new();
    for action in &body.actions {
        match action {
            BulkAction::Create { entities, .. } | BulkAction::Update { entities, .. } => {
                entities.iter().try_for_each(check_body)?;
                let kind = if matches!(action, BulkAction::Create { .. }) {
                    "create"
                } else {
                    "update"
                };
                summary.push(json!({
                    "action": kind,
                    "entities": entities.iter().map(|e| audit_extra(names, e)).collect::<Vec<_>>(),
                }));
            }
            BulkAction::Delete { entities, .. } => {
                summary.push(json!({"action": "delete", "keys": delete_keys(entities)}));
            }
        }
    }
    let txn = state.db.conn().begin().await?;
    audit::record(
        &txn,
        AuditEntry::new("bulk_variables", &user.username).extra(json!({"actions": summary})),
    )
    .await?;
    let mut out = BulkResponse::default();
    for action in body.actions {
        match action {
            BulkAction::Create {
                entities,
                action_on_existence,
            } => {
                let results = out.create.get_or_insert_with(Default::default);
                bulk_create(&txn, &state.secrets, entities, action_on_existence, results).await?;
            }
            BulkAction::Update {
                entities,
                update_mask: mask,
                action_on_non_existence,
            } => {
                let results = out.update.get_or_insert_with(Default::default);
                let mask =
                    update_mask(&mask.unwrap_or_default(), &["key", "value", "description"])?;
                bulk_update(
                    &txn,
                    &state.secrets,
                    entities,
                    &mask,
                    action_on_non_existence,
                    results,
                )
                .await?;
            }
            BulkAction::Delete {
                entities,
                action_on_non_existence,
            } => {
                let results = out.delete.get_or_insert_with(Default::default);
                let keys = delete_keys(&entities);
                let found = store::existing_keys(&txn, &keys).await?;
                let missing: Vec<&String> = keys
                    .iter()
                    .filter(|k| !found.iter().any(|r| &r.key == *k))
                    .collect();
                if action_on_non_existence == BulkActionNotOnExistence::Fail && !missing.is_empty()
                {
                    bulk_error(
                        results,
                        format!(
                            "The variables with these keys: {} were not found.",
                            py_set(missing)
                        ),
                        404,
                    );
                    continue;
                }
                for key in keys.iter().filter(|k| found.iter().any(|r| &r.key == *k)) {
                    store::delete(&txn, key).await?;
                    results.success.push(key.clone());
                }
            }
        }
    }
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(out))
}

fn delete_keys(entities: &[BulkDeleteEntity<VariableBody>]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for e in entities {
        let key = match e {
            BulkDeleteEntity::Key(k) => k.clone(),
            BulkDeleteEntity::Entity(v) => v.key.clone(),
        };
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

async fn bulk_create(
    txn: &sea_orm::DatabaseTransaction,
    secrets: &Secrets,
    entities: Vec<VariableBody>,
    on_existence: BulkActionOnExistence,
    results: &mut BulkActionResponse,
) -> Result<(), ApiError> {
    let keys: Vec<String> = entities.iter().map(|e| e.key.clone()).collect();
    let mut rows: HashMap<String, store::Model> = store::existing_keys(txn, &keys)
        .await?
        .into_iter()
        .map(|r| (r.key.clone(), r))
        .collect();
    if on_existence == BulkActionOnExistence::Fail && !rows.is_empty() {
        let detail = format!(
            "The variables with these keys: {} already exist.",
            py_set(rows.keys())
        );
        bulk_error(results, detail, 409);
        return Ok(());
    }
    for body in entities {
        let row = match rows.remove(&body.key) {
            Some(_) if on_existence == BulkActionOnExistence::Skip => continue,
            Some(row) => apply_update(txn, secrets, row, &body, &None).await?,
            None => {
                store::insert(
                    txn,
                    secrets,
                    &body.key,
                    &value_text(&body.value),
                    body.description.clone().flatten(),
                )
                .await?
            }
        };
        results.success.push(body.key.clone());
        // A key given twice in one action: the second overwrites the first.
        rows.insert(body.key, row);
    }
    Ok(())
}

async fn bulk_update(
    txn: &sea_orm::DatabaseTransaction,
    secrets: &Secrets,
    entities: Vec<VariableBody>,
    mask: &Option<BTreeSet<String>>,
    on_non_existence: BulkActionNotOnExistence,
    results: &mut BulkActionResponse,
) -> Result<(), ApiError> {
    let keys: Vec<String> = entities.iter().map(|e| e.key.clone()).collect();
    let mut rows: HashMap<String, store::Model> = store::existing_keys(txn, &keys)
        .await?
        .into_iter()
        .map(|r| (r.key.clone(), r))
        .collect();
    let missing: Vec<&String> = keys.iter().filter(|k| !rows.contains_key(*k)).collect();
    if on_non_existence == BulkActionNotOnExistence::Fail && !missing.is_empty() {
        let detail = format!(
            "The variables with these keys: {} were not found.",
            py_set(missing)
        );
        bulk_error(results, detail, 404);
        return Ok(());
    }
    for body in entities {
        let Some(row) = rows.remove(&body.key) else {
            continue;
        };
        let row = apply_update(txn, secrets, row, &body, mask).await?;
        results.success.push(body.key.clone());
        rows.insert(body.key, row);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_masked_by_key_and_inside_json() {
        let n = SensitiveNames::default();
        assert_eq!(shown_value(&n, "db_password", "hunter2"), "***");
        assert_eq!(shown_value(&n, "region", "eu-west-1"), "eu-west-1");
        assert_eq!(shown_value(&n, "cfg", r#"{"a": 1}"#), r#"{"a": 1}"#);
        let shown = shown_value(&n, "cfg", r#"{"api_key": "k", "region": "eu"}"#);
        let v: Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(v, json!({"api_key": "***", "region": "eu"}));
    }

    #[test]
    fn masked_values_sent_back_keep_the_stored_ones() {
        let n = SensitiveNames::default();
        assert_eq!(
            incoming_value(&n, "db_password", &json!("***"), Some("old")),
            None
        );
        assert_eq!(
            incoming_value(&n, "region", &json!("***"), Some("old")).as_deref(),
            Some("***")
        );
        let merged = incoming_value(
            &n,
            "cfg",
            &json!(r#"{"api_key": "***", "region": "us"}"#),
            Some(r#"{"api_key": "k", "region": "eu"}"#),
        )
        .unwrap();
        let v: Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(v, json!({"api_key": "k", "region": "us"}));
        assert_eq!(
            incoming_value(&n, "x", &json!(5), None).as_deref(),
            Some("5")
        );
    }
}
