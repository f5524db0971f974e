//! Connections: `/api/v2/connections` (Airflow's Connection API). Passwords and extras are
//! encrypted at rest and masked on the way out; everything needs the Op role, reads included.

use crate::store::connections as connections_store;

use std::collections::{BTreeSet, HashMap};

use actix_web::{web, HttpResponse};
use sea_orm::TransactionTrait;
use serde::Deserialize;
use serde_json::{json, Value};
use updraft_shared::api::{
    BulkAction, BulkActionNotOnExistence, BulkActionOnExistence, BulkActionResponse, BulkBody,
    BulkDeleteEntity, BulkResponse, ConnectionBody, ConnectionCollectionResponse,
    ConnectionResponse, ConnectionTestResponse, HttpError,
};

use self::connections_store::{self as store, Column, PlainConnection};
use super::query::{self, ApiQuery, Page};
use super::variables::{
    bulk_error, in_mask, is_unique_violation, name_filters, no_team_name, py_set, update_mask,
    MaskQuery,
};
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
        get_connections,
        get_connection,
        post_connection,
        patch_connection,
        delete_connection,
        bulk_connections,
        test_connection
    ),
    components(schemas(
        ConnectionBody,
        ConnectionResponse,
        ConnectionCollectionResponse,
        ConnectionTestResponse
    ))
)]
pub struct Doc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/connections/test").post(test_connection))
        .service(
            web::resource("/connections")
                .get(get_connections)
                .post(post_connection)
                .patch(bulk_connections),
        )
        .service(
            web::resource("/connections/{connection_id}")
                .get(get_connection)
                .patch(patch_connection)
                .delete(delete_connection),
        );
}

const MAX_ID_LEN: usize = 200;
const FIELDS: &[&str] = &[
    "connection_id",
    "conn_type",
    "description",
    "host",
    "login",
    "schema",
    "port",
    "password",
    "extra",
];

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<u64>,
    offset: Option<u64>,
    #[serde(default, deserialize_with = "query::one_or_many")]
    order_by: Vec<String>,
    connection_id_pattern: Option<String>,
    connection_id_prefix_pattern: Option<String>,
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "The Connection with connection_id: `{id}` was not found"
    ))
}

/// Airflow's checks of a body: the id's characters and length, `extra` a JSON object.
/// Returns the body with `extra: ""` read as `{}` (Airflow's backward compatibility).
fn checked(mut body: ConnectionBody) -> Result<ConnectionBody, ApiError> {
    let id = &body.connection_id;
    let len = id.chars().count();
    let chars_ok = id
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '-');
    if len == 0 || len > MAX_ID_LEN || !chars_ok {
        return Err(ApiError::Unprocessable(format!(
            "connection_id: `{id}` must be 1 to {MAX_ID_LEN} letters, digits, `_`, `.` or `-`"
        )));
    }
    no_team_name(&body.team_name)?;
    if let Some(Some(extra)) = &mut body.extra {
        if extra.trim().is_empty() {
            *extra = "{}".into();
        }
        match serde_json::from_str::<Value>(extra) {
            Ok(Value::Object(_)) => {}
            _ => {
                return Err(ApiError::Unprocessable(
                    "extra: The `extra` field must be a valid JSON object (e.g., {\"key\": \"value\"}) given as a string".into(),
                ))
            }
        }
    }
    Ok(body)
}

/// A new connection from a body.
fn from_body(body: &ConnectionBody) -> PlainConnection {
    PlainConnection {
        conn_id: body.connection_id.clone(),
        conn_type: body.conn_type.clone(),
        description: body.description.clone().flatten(),
        host: body.host.clone().flatten(),
        schema: body.schema.clone().flatten(),
        login: body.login.clone().flatten(),
        password: body.password.clone().flatten(),
        port: body.port.flatten(),
        extra: body.extra.clone().flatten(),
    }
}

/// `stored` with the body's fields applied (as the mask allows): absent fields stay, null
/// clears, `***` keeps the stored password and stored entries of `extra`.
fn patched(
    names: &SensitiveNames,
    mut c: PlainConnection,
    body: &ConnectionBody,
    mask: &Option<BTreeSet<String>>,
) -> PlainConnection {
    fn set<T: Clone>(
        target: &mut Option<T>,
        given: &Option<Option<T>>,
        mask: &Option<BTreeSet<String>>,
        field: &str,
    ) {
        if let Some(v) = given {
            if in_mask(mask, field) {
                *target = v.clone();
            }
        }
    }
    if in_mask(mask, "conn_type") {
        c.conn_type = body.conn_type.clone();
    }
    set(&mut c.description, &body.description, mask, "description");
    set(&mut c.host, &body.host, mask, "host");
    set(&mut c.login, &body.login, mask, "login");
    set(&mut c.schema, &body.schema, mask, "schema");
    set(&mut c.port, &body.port, mask, "port");
    if in_mask(mask, "password") {
        match &body.password {
            Some(Some(p)) if p == MASK && c.password.is_some() => {}
            Some(p) => c.password = p.clone(),
            None => {}
        }
    }
    if in_mask(mask, "extra") {
        match &body.extra {
            Some(Some(new)) => {
                let incoming = serde_json::from_str::<Value>(new).ok();
                let stored = c
                    .extra
                    .as_deref()
                    .and_then(|e| serde_json::from_str::<Value>(e).ok());
                c.extra = Some(match (incoming, stored) {
                    (Some(incoming), Some(stored)) => {
                        let merged = names.merge_masked(&incoming, Some(&stored));
                        if merged == incoming {
                            new.clone()
                        } else {
                            merged.to_string()
                        }
                    }
                    _ => new.clone(),
                });
            }
            Some(None) => c.extra = None,
            None => {}
        }
    }
    c
}

/// `extra` as shown: sensitive keys masked (the text kept as written when nothing is).
fn shown_extra(names: &SensitiveNames, extra: &str) -> String {
    match serde_json::from_str::<Value>(extra) {
        Ok(v) => {
            let redacted = names.redact_json(&v);
            if redacted == v {
                extra.to_string()
            } else {
                redacted.to_string()
            }
        }
        Err(_) => names.redact_extra(extra),
    }
}

fn shown_password(names: &SensitiveNames, password: Option<&str>) -> Option<String> {
    password.map(|p| {
        if names.is_sensitive("password") {
            MASK.to_string()
        } else {
            p.to_string()
        }
    })
}

fn response(secrets: &Secrets, row: &store::Model) -> Result<ConnectionResponse, ApiError> {
    let c = store::plain(secrets, row)?;
    let names = &secrets.names;
    Ok(ConnectionResponse {
        password: shown_password(names, c.password.as_deref()),
        extra: c.extra.as_deref().map(|e| shown_extra(names, e)),
        connection_id: c.conn_id,
        conn_type: c.conn_type,
        description: c.description,
        host: c.host,
        login: c.login,
        schema: c.schema,
        port: c.port,
        team_name: None,
    })
}

/// What the audit log keeps of a body: never the password, `extra` masked.
fn audit_extra(names: &SensitiveNames, body: &ConnectionBody) -> Value {
    let given = |f: &Option<Option<String>>| f.clone().flatten();
    json!({
        "connection_id": body.connection_id,
        "conn_type": body.conn_type,
        "description": given(&body.description),
        "host": given(&body.host),
        "login": given(&body.login),
        "schema": given(&body.schema),
        "port": body.port.flatten(),
        "password": body.password.as_ref().map(|p| p.as_ref().map(|_| MASK)),
        "extra": given(&body.extra).map(|e| shown_extra(names, &e)),
    })
}

/// List connections.
#[utoipa::path(
    get,
    path = "/api/v2/connections",
    operation_id = "get_connections",
    tag = "Connection",
    params(
        ("limit" = Option<u64>, Query, description = "Page size"),
        ("offset" = Option<u64>, Query, description = "Entries to skip"),
        ("order_by" = Option<Vec<String>>, Query, description = "connection_id, conn_type, description, host, port, id; `-` for descending"),
        ("connection_id_pattern" = Option<String>, Query, description = "Substring of the id (`%`, `_` wildcards, `|` alternatives)"),
        ("connection_id_prefix_pattern" = Option<String>, Query, description = "Start of the id"),
    ),
    responses(
        (status = 200, description = "Successful Response", body = ConnectionCollectionResponse),
        (status = 400, description = "Bad Request", body = HttpError),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 422, description = "Validation Error", body = HttpError),
    )
)]
pub async fn get_connections(
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
            ("connection_id", Column::ConnId),
            ("conn_id", Column::ConnId),
            ("conn_type", Column::ConnType),
            ("description", Column::Description),
            ("host", Column::Host),
            ("port", Column::Port),
            ("id", Column::Id),
        ],
        "id",
    )?;
    let filter = name_filters(
        Column::ConnId,
        q.connection_id_pattern.as_deref(),
        q.connection_id_prefix_pattern.as_deref(),
    );
    let (rows, total) =
        store::page(state.db.conn(), filter, &order, page.limit, page.offset).await?;
    let connections = rows
        .iter()
        .map(|r| response(&state.secrets, r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(ConnectionCollectionResponse {
        connections,
        total_entries: total,
    }))
}

/// Get a connection.
#[utoipa::path(
    get,
    path = "/api/v2/connections/{connection_id}",
    operation_id = "get_connection",
    tag = "Connection",
    params(("connection_id" = String, Path, description = "The connection's id")),
    responses(
        (status = 200, description = "Successful Response", body = ConnectionResponse),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 404, description = "Not Found", body = HttpError),
    )
)]
pub async fn get_connection(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Op)?;
    let id = path.into_inner();
    let row = store::find(state.db.conn(), &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(HttpResponse::Ok().json(response(&state.secrets, &row)?))
}

/// Create a connection.
#[utoipa::path(
    post,
    path = "/api/v2/connections",
    operation_id = "post_connection",
    tag = "Connection",
    request_body = ConnectionBody,
    responses(
        (status = 201, description = "Successful Response", body = ConnectionResponse),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 409, description = "Conflict", body = HttpError),
        (status = 422, description = "Validation Error", body = HttpError),
    )
)]
pub async fn post_connection(
    state: web::Data<AppState>,
    user: Identity,
    body: web::Json<ConnectionBody>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Op)?;
    let body = checked(body.into_inner())?;
    let exists = || {
        ApiError::Conflict(format!(
            "The Connection with connection_id: `{}` already exists",
            body.connection_id
        ))
    };
    let txn = state.db.conn().begin().await?;
    audit::record(
        &txn,
        AuditEntry::new("post_connection", &user.username)
            .extra(audit_extra(&state.secrets.names, &body)),
    )
    .await?;
    if store::find(&txn, &body.connection_id).await?.is_some() {
        return Err(exists());
    }
    let row = store::insert(&txn, &state.secrets, &from_body(&body))
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

/// Update a connection (`update_mask` names the fields to change).
#[utoipa::path(
    patch,
    path = "/api/v2/connections/{connection_id}",
    operation_id = "patch_connection",
    tag = "Connection",
    params(
        ("connection_id" = String, Path, description = "The connection's id"),
        ("update_mask" = Option<Vec<String>>, Query, description = "Fields to change"),
    ),
    request_body = ConnectionBody,
    responses(
        (status = 200, description = "Successful Response", body = ConnectionResponse),
        (status = 400, description = "Bad Request", body = HttpError),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 404, description = "Not Found", body = HttpError),
        (status = 422, description = "Validation Error", body = HttpError),
    )
)]
pub async fn patch_connection(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<String>,
    q: ApiQuery<MaskQuery>,
    body: web::Json<ConnectionBody>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Op)?;
    let id = path.into_inner();
    let body = checked(body.into_inner())?;
    if body.connection_id != id {
        return Err(ApiError::BadRequest(format!(
            "The connection_id in the request body (`{}`) does not match the URL parameter (`{id}`): connections are not renamed",
            body.connection_id
        )));
    }
    let mask = update_mask(&q.0.update_mask, FIELDS)?;
    let txn = state.db.conn().begin().await?;
    audit::record(
        &txn,
        AuditEntry::new("patch_connection", &user.username)
            .extra(audit_extra(&state.secrets.names, &body)),
    )
    .await?;
    let row = store::find(&txn, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let current = store::plain(&state.secrets, &row)?;
    let new = patched(&state.secrets.names, current, &body, &mask);
    let row = store::replace(&txn, &state.secrets, row.id, &new).await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(response(&state.secrets, &row)?))
}

/// Delete a connection.
#[utoipa::path(
    delete,
    path = "/api/v2/connections/{connection_id}",
    operation_id = "delete_connection",
    tag = "Connection",
    params(("connection_id" = String, Path, description = "The connection's id")),
    responses(
        (status = 204, description = "Successful Response"),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 404, description = "Not Found", body = HttpError),
    )
)]
pub async fn delete_connection(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Op)?;
    let id = path.into_inner();
    let txn = state.db.conn().begin().await?;
    audit::record(
        &txn,
        AuditEntry::new("delete_connection", &user.username).extra(json!({"connection_id": id})),
    )
    .await?;
    if store::delete(&txn, &id).await? == 0 {
        return Err(not_found(&id));
    }
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Test a connection: disabled, as in Airflow by default (`core.test_connection`).
#[utoipa::path(
    post,
    path = "/api/v2/connections/test",
    operation_id = "test_connection",
    tag = "Connection",
    request_body = ConnectionBody,
    responses(
        (status = 200, description = "Successful Response", body = ConnectionTestResponse),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
    )
)]
pub async fn test_connection(user: Identity) -> Result<HttpResponse, ApiError> {
    user.require(Role::Op)?;
    Err(ApiError::Forbidden(
        "Testing connections is disabled in Airflow configuration. Contact your deployment admin to enable it.".into(),
    ))
}

/// Create, update and delete connections in one request.
#[utoipa::path(
    patch,
    path = "/api/v2/connections",
    operation_id = "bulk_connections",
    tag = "Connection",
    request_body = BulkBody<ConnectionBody>,
    responses(
        (status = 200, description = "Successful Response", body = BulkResponse),
        (status = 400, description = "Bad Request", body = HttpError),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 422, description = "Validation Error", body = HttpError),
    )
)]
pub async fn bulk_connections(
    state: web::Data<AppState>,
    user: Identity,
    body: web::Json<BulkBody<ConnectionBody>>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Op)?;
    let names = &state.secrets.names;
    let mut actions = Vec::new();
    let mut summary = Vec::new();
    for action in body.into_inner().actions {
        let action = match action {
            BulkAction::Create {
                entities,
                action_on_existence,
            } => BulkAction::Create {
                entities: entities
                    .into_iter()
                    .map(checked)
                    .collect::<Result<_, _>>()?,
                action_on_existence,
            },
            BulkAction::Update {
                entities,
                update_mask,
                action_on_non_existence,
            } => BulkAction::Update {
                entities: entities
                    .into_iter()
                    .map(checked)
                    .collect::<Result<_, _>>()?,
                update_mask,
                action_on_non_existence,
            },
            delete => delete,
        };
        summary.push(match &action {
            BulkAction::Create { entities, .. } | BulkAction::Update { entities, .. } => json!({
                "action": if matches!(action, BulkAction::Create { .. }) { "create" } else { "update" },
                "entities": entities.iter().map(|e| audit_extra(names, e)).collect::<Vec<_>>(),
            }),
            BulkAction::Delete { entities, .. } => {
                json!({"action": "delete", "connection_ids": delete_ids(entities)})
            }
        });
        actions.push(action);
    }
    let txn = state.db.conn().begin().await?;
    audit::record(
        &txn,
        AuditEntry::new("bulk_connections", &user.username).extra(json!({"actions": summary})),
    )
    .await?;
    let mut out = BulkResponse::default();
    for action in actions {
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
                let mask = update_mask(&mask.unwrap_or_default(), FIELDS)?;
                let ids: Vec<String> = entities.iter().map(|e| e.connection_id.clone()).collect();
                let mut rows = by_id(store::existing(&txn, &ids).await?);
                let missing: Vec<&String> = ids.iter().filter(|k| !rows.contains_key(*k)).collect();
                if action_on_non_existence == BulkActionNotOnExistence::Fail && !missing.is_empty()
                {
                    let detail = format!(
                        "The connections with these connection_ids: {} were not found.",
                        py_set(missing)
                    );
                    bulk_error(results, detail, 404);
                    continue;
                }
                for body in entities {
                    let Some(row) = rows.remove(&body.connection_id) else {
                        continue;
                    };
                    let current = store::plain(&state.secrets, &row)?;
                    let new = patched(names, current, &body, &mask);
                    let row = store::replace(&txn, &state.secrets, row.id, &new).await?;
                    results.success.push(body.connection_id.clone());
                    rows.insert(body.connection_id, row);
                }
            }
            BulkAction::Delete {
                entities,
                action_on_non_existence,
            } => {
                let results = out.delete.get_or_insert_with(Default::default);
                let ids = delete_ids(&entities);
                let rows = by_id(store::existing(&txn, &ids).await?);
                let missing: Vec<&String> = ids.iter().filter(|k| !rows.contains_key(*k)).collect();
                if action_on_non_existence == BulkActionNotOnExistence::Fail && !missing.is_empty()
                {
                    let detail = format!(
                        "The connections with these connection_ids: {} were not found.",
                        py_set(missing)
                    );
                    bulk_error(results, detail, 404);
                    continue;
                }
                for id in ids.iter().filter(|id| rows.contains_key(*id)) {
                    store::delete(&txn, id).await?;
                    results.success.push(id.clone());
                }
            }
        }
    }
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(out))
}

fn by_id(rows: Vec<store::Model>) -> HashMap<String, store::Model> {
    rows.into_iter().map(|r| (r.conn_id.clone(), r)).collect()
}

fn delete_ids(entities: &[BulkDeleteEntity<ConnectionBody>]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for e in entities {
        let id = match e {
            BulkDeleteEntity::Key(k) => k.clone(),
            BulkDeleteEntity::Entity(c) => c.connection_id.clone(),
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

async fn bulk_create(
    txn: &sea_orm::DatabaseTransaction,
    secrets: &Secrets,
    entities: Vec<ConnectionBody>,
    on_existence: BulkActionOnExistence,
    results: &mut BulkActionResponse,
) -> Result<(), ApiError> {
    let ids: Vec<String> = entities.iter().map(|e| e.connection_id.clone()).collect();
    let mut rows = by_id(store::existing(txn, &ids).await?);
    if on_existence == BulkActionOnExistence::Fail && !rows.is_empty() {
        let detail = format!(
            "The connections with these connection_ids: {} already exist.",
            py_set(rows.keys())
        );
        bulk_error(results, detail, 409);
        return Ok(());
    }
    for body in entities {
        let row = match rows.remove(&body.connection_id) {
            Some(_) if on_existence == BulkActionOnExistence::Skip => continue,
            // Overwrite: the body replaces the row, but `***` still keeps stored secrets.
            Some(row) => {
                let current = store::plain(secrets, &row)?;
                let mut new = patched(&secrets.names, current, &body, &None);
                let fresh = from_body(&body);
                new.description = fresh.description;
                new.host = fresh.host;
                new.login = fresh.login;
                new.schema = fresh.schema;
                new.port = fresh.port;
                if body.password.is_none() {
                    new.password = None;
                }
                if body.extra.is_none() {
                    new.extra = None;
                }
                store::replace(txn, secrets, row.id, &new).await?
            }
            None => store::insert(txn, secrets, &from_body(&body)).await?,
        };
        results.success.push(body.connection_id.clone());
        rows.insert(body.connection_id, row);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_keeps_masked_secrets_and_applies_the_rest() {
        let names = SensitiveNames::default();
        let stored = PlainConnection {
            conn_id: "c".into(),
            conn_type: "http".into(),
            host: Some("old".into()),
            password: Some("pw".into()),
            extra: Some(r#"{"api_key": "k", "region": "eu"}"#.into()),
            ..Default::default()
        };
        let body = ConnectionBody {
            connection_id: "c".into(),
            conn_type: "http".into(),
            host: Some(Some("new".into())),
            password: Some(Some("***".into())),
            extra: Some(Some(r#"{"api_key": "***", "region": "us"}"#.into())),
            ..Default::default()
        };
        let new = patched(&names, stored.clone(), &body, &None);
        assert_eq!(new.host.as_deref(), Some("new"));
        assert_eq!(new.password.as_deref(), Some("pw"));
        let extra: Value = serde_json::from_str(new.extra.as_deref().unwrap()).unwrap();
        assert_eq!(extra, json!({"api_key": "k", "region": "us"}));
        let mask = update_mask(&["host".into()], FIELDS).unwrap();
        let only_host = ConnectionBody {
            password: Some(None),
            ..body
        };
        let new = patched(&names, stored, &only_host, &mask);
        assert_eq!(new.password.as_deref(), Some("pw"));
    }

    #[test]
    fn extra_must_be_a_json_object() {
        let body = |extra: &str| ConnectionBody {
            connection_id: "c".into(),
            conn_type: "http".into(),
            extra: Some(Some(extra.into())),
            ..Default::default()
        };
        assert!(checked(body("[1]")).is_err());
        assert!(checked(body("nope")).is_err());
        assert_eq!(
            checked(body("")).unwrap().extra,
            Some(Some("{}".to_string()))
        );
        let bad_id = ConnectionBody {
            connection_id: "a b".into(),
            ..body("{}")
        };
        assert!(checked(bad_id).is_err());
    }
}
