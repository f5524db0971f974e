//! Connections: `/api/v2/connections` (Airflow's Connection API). Passwords and extras are
//! encrypted at rest and masked on the way out; everything needs the Op role, reads included.

use crate::store::connections as connections_store;

mod fields;

use actix_web::{web, HttpResponse};
use sea_orm::DatabaseTransaction;
use serde::Deserialize;
use serde_json::{json, Value};
use updraft_shared::api::{
    BulkAction, BulkBody, BulkResponse, ConnectionBody, ConnectionCollectionResponse,
    ConnectionResponse, ConnectionTestResponse, HttpError,
};

use self::connections_store::{self as store, Column};
use self::fields::{checked, from_body, patched, shown_extra, shown_password};
use super::bulk::{self, BulkResource};
use super::query::{self, ApiQuery, Page};
use super::variables::{
    audited_txn, is_unique_violation, name_filters, update_mask, Mask, MaskQuery,
};
use super::ApiError;
use crate::auth::{Identity, Role};
use crate::secrets::mask::MASK;
use crate::secrets::{Secrets, SensitiveNames};
use crate::server::AppState;

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
    let txn = audited_txn(
        state.db.conn(),
        &user,
        "post_connection",
        audit_extra(&state.secrets.names, &body),
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
    let txn = audited_txn(
        state.db.conn(),
        &user,
        "patch_connection",
        audit_extra(&state.secrets.names, &body),
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
    let txn = audited_txn(
        state.db.conn(),
        &user,
        "delete_connection",
        json!({"connection_id": id}),
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
    let resource = BulkConnections {
        secrets: &state.secrets,
    };
    let out = bulk::run(&resource, state.db.conn(), &user, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(out))
}

struct BulkConnections<'a> {
    secrets: &'a Secrets,
}

impl BulkResource for BulkConnections<'_> {
    type Body = ConnectionBody;
    type Row = store::Model;
    const EVENT: &'static str = "bulk_connections";
    const WHAT: &'static str = "connections with these connection_ids";
    const MASK_FIELDS: &'static [&'static str] = FIELDS;

    fn key(body: &ConnectionBody) -> &str {
        &body.connection_id
    }
    fn row_key(row: &store::Model) -> &str {
        &row.conn_id
    }
    fn checked(&self, body: ConnectionBody) -> Result<ConnectionBody, ApiError> {
        checked(body)
    }
    fn audit(&self, actions: &[BulkAction<ConnectionBody>]) -> Value {
        bulk::audit_summary::<Self>(actions, "connection_ids", |e| {
            audit_extra(&self.secrets.names, e)
        })
    }
    async fn existing(
        &self,
        txn: &DatabaseTransaction,
        ids: &[String],
    ) -> Result<Vec<store::Model>, ApiError> {
        Ok(store::existing(txn, ids).await?)
    }
    async fn insert(
        &self,
        txn: &DatabaseTransaction,
        body: &ConnectionBody,
    ) -> Result<store::Model, ApiError> {
        Ok(store::insert(txn, self.secrets, &from_body(body)).await?)
    }
    /// The body replaces the row, but `***` still keeps stored secrets.
    async fn overwrite(
        &self,
        txn: &DatabaseTransaction,
        row: store::Model,
        body: &ConnectionBody,
    ) -> Result<store::Model, ApiError> {
        let current = store::plain(self.secrets, &row)?;
        let mut new = patched(&self.secrets.names, current, body, &None);
        let fresh = from_body(body);
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
        Ok(store::replace(txn, self.secrets, row.id, &new).await?)
    }
    async fn update(
        &self,
        txn: &DatabaseTransaction,
        row: store::Model,
        body: &ConnectionBody,
        mask: &Mask,
    ) -> Result<store::Model, ApiError> {
        let current = store::plain(self.secrets, &row)?;
        let new = patched(&self.secrets.names, current, body, mask);
        Ok(store::replace(txn, self.secrets, row.id, &new).await?)
    }
    async fn delete(&self, txn: &DatabaseTransaction, id: &str) -> Result<(), ApiError> {
        store::delete(txn, id).await?;
        Ok(())
    }
}
