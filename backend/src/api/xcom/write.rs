//! Creating, changing and deleting XCom entries by hand (Op role), audited.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde::Deserialize;
use serde_json::{json, Value};
use updraft_shared::api::{XComCreateBody, XComResponseNative, XComUpdateBody};

use super::response::{native, RunTimes};
use super::{check_map_index, entry_not_found, find_entry, no_map_index};
use crate::api::dag_runs::find_run;
use crate::api::query::ApiQuery;
use crate::api::ApiError;
use crate::auth::{Identity, Role};
use crate::server::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::entities::{task_instance, xcom};

#[derive(Debug, Deserialize)]
pub struct DeleteQuery {
    #[serde(default = "no_map_index")]
    map_index: i32,
}

/// The value as stored, refused when over `core.xcom_max_size`.
fn stored_value(state: &AppState, value: &Value) -> Result<String, ApiError> {
    let text = value.to_string();
    let max = state.config.settings.core.xcom_max_size;
    if text.len() > max {
        return Err(ApiError::PayloadTooLarge(format!(
            "The XCom value is {} bytes of JSON, over the limit of {max} bytes (core.xcom_max_size): \
             store large data elsewhere and push its location instead",
            text.len()
        )));
    }
    Ok(text)
}

fn audit_entry(
    event: &str,
    user: &Identity,
    dag_id: &str,
    run_id: &str,
    task_id: &str,
) -> AuditEntry {
    AuditEntry::new(event, &user.username)
        .dag(dag_id)
        .run(run_id)
        .task(task_id)
}

/// Create an XCom entry.
#[utoipa::path(
    post,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries",
    operation_id = "create_xcom_entry",
    tag = "XCom",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("dag_run_id" = String, Path, description = "The run id"),
        ("task_id" = String, Path, description = "The task"),
    ),
    request_body = XComCreateBody,
    responses(
        (status = 201, description = "Successful Response", body = XComResponseNative),
        (status = 400, description = "Bad Request", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 409, description = "Conflict", body = updraft_shared::api::HttpError),
        (status = 413, description = "Value too large", body = updraft_shared::api::HttpError),
        (status = 422, description = "Validation Error", body = updraft_shared::api::HttpError),
    )
)]
pub async fn create_xcom_entry(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<(String, String, String)>,
    body: web::Json<XComCreateBody>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Op)?;
    let (dag_id, run_id, task_id) = path.into_inner();
    let body = body.into_inner();
    check_map_index(Some(body.map_index), "map_index")?;
    if body.key.trim().is_empty() {
        return Err(ApiError::Unprocessable("key must not be empty".into()));
    }
    let run = find_run(&state, &dag_id, &run_id).await?;
    let task_known = task_instance::Entity::find()
        .filter(task_instance::Column::DagRunId.eq(run.id))
        .filter(task_instance::Column::TaskId.eq(task_id.as_str()))
        .one(state.db.conn())
        .await?
        .is_some();
    if !task_known {
        return Err(ApiError::NotFound(format!(
            "Task with ID: `{task_id}` not found in dag: `{dag_id}` (run `{run_id}`)"
        )));
    }
    let text = stored_value(&state, &body.value)?;
    let txn = state.db.conn().begin().await?;
    let mut audit =
        audit_entry("create_xcom_entry", &user, &dag_id, &run_id, &task_id).extra(json!({
            "key": body.key,
            "map_index": body.map_index,
            "value": state.secrets.names.redact_json(&body.value),
        }));
    audit.map_index = Some(body.map_index);
    audit::record(&txn, audit).await?;
    let exists = xcom::Entity::find()
        .filter(find_entry(run.id, &task_id, body.map_index, &body.key))
        .one(&txn)
        .await?
        .is_some();
    if exists {
        return Err(ApiError::Conflict(format!(
            "The XCom with key: `{}` with mentioned task instance already exists: change it with PATCH instead",
            body.key
        )));
    }
    let row = xcom::Model {
        dag_run_id: run.id,
        task_id: task_id.clone(),
        map_index: body.map_index,
        key: body.key.clone(),
        dag_id: dag_id.clone(),
        run_id: run_id.clone(),
        value: text,
        timestamp: Utc::now(),
    };
    xcom::Entity::insert(xcom::ActiveModel {
        dag_run_id: Set(row.dag_run_id),
        task_id: Set(row.task_id.clone()),
        map_index: Set(row.map_index),
        key: Set(row.key.clone()),
        dag_id: Set(row.dag_id.clone()),
        run_id: Set(row.run_id.clone()),
        value: Set(row.value.clone()),
        timestamp: Set(row.timestamp),
    })
    .exec_without_returning(&txn)
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Created().json(native(row, RunTimes::from(&run))))
}

/// Change the value of an XCom entry.
#[utoipa::path(
    patch,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}",
    operation_id = "update_xcom_entry",
    tag = "XCom",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("dag_run_id" = String, Path, description = "The run id"),
        ("task_id" = String, Path, description = "The task"),
        ("xcom_key" = String, Path, description = "The key"),
    ),
    request_body = XComUpdateBody,
    responses(
        (status = 200, description = "Successful Response", body = XComResponseNative),
        (status = 400, description = "Bad Request", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 413, description = "Value too large", body = updraft_shared::api::HttpError),
        (status = 422, description = "Validation Error", body = updraft_shared::api::HttpError),
    )
)]
pub async fn update_xcom_entry(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<(String, String, String, String)>,
    body: web::Json<XComUpdateBody>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Op)?;
    let (dag_id, run_id, task_id, key) = path.into_inner();
    let body = body.into_inner();
    check_map_index(Some(body.map_index), "map_index")?;
    let run = find_run(&state, &dag_id, &run_id).await?;
    let text = stored_value(&state, &body.value)?;
    let txn = state.db.conn().begin().await?;
    let mut audit =
        audit_entry("update_xcom_entry", &user, &dag_id, &run_id, &task_id).extra(json!({
            "key": key,
            "map_index": body.map_index,
            "value": state.secrets.names.redact_json(&body.value),
        }));
    audit.map_index = Some(body.map_index);
    audit::record(&txn, audit).await?;
    let now = Utc::now();
    let updated = xcom::Entity::update_many()
        .col_expr(xcom::Column::Value, Expr::value(text))
        .col_expr(xcom::Column::Timestamp, Expr::value(now))
        .filter(find_entry(run.id, &task_id, body.map_index, &key))
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        return Err(entry_not_found(&key, &task_id, body.map_index, &run_id));
    }
    let row = xcom::Entity::find()
        .filter(find_entry(run.id, &task_id, body.map_index, &key))
        .one(&txn)
        .await?
        .ok_or_else(|| entry_not_found(&key, &task_id, body.map_index, &run_id))?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(native(row, RunTimes::from(&run))))
}

/// Delete an XCom entry.
#[utoipa::path(
    delete,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}",
    operation_id = "delete_xcom_entry",
    tag = "XCom",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("dag_run_id" = String, Path, description = "The run id"),
        ("task_id" = String, Path, description = "The task"),
        ("xcom_key" = String, Path, description = "The key"),
        ("map_index" = Option<i32>, Query, description = "The map index (-1, the default: not mapped)"),
    ),
    responses(
        (status = 204, description = "Successful Response"),
        (status = 400, description = "Bad Request", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
        (status = 422, description = "Validation Error", body = updraft_shared::api::HttpError),
    )
)]
pub async fn delete_xcom_entry(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<(String, String, String, String)>,
    query: ApiQuery<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Op)?;
    let (dag_id, run_id, task_id, key) = path.into_inner();
    let map_index = query.0.map_index;
    check_map_index(Some(map_index), "map_index")?;
    let run = find_run(&state, &dag_id, &run_id).await?;
    let txn = state.db.conn().begin().await?;
    let mut audit = audit_entry("delete_xcom_entry", &user, &dag_id, &run_id, &task_id)
        .extra(json!({"key": key, "map_index": map_index}));
    audit.map_index = Some(map_index);
    audit::record(&txn, audit).await?;
    let deleted = xcom::Entity::delete_many()
        .filter(find_entry(run.id, &task_id, map_index, &key))
        .exec(&txn)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(entry_not_found(&key, &task_id, map_index, &run_id));
    }
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
