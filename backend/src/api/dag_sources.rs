//! DAG sources (Airflow's `get_dag_source`) and Updraft's own DAG file endpoints: validate a
//! file, upload one into the DAG folder, remove one.

mod files;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde::Deserialize;
use serde_json::json;
use updraft_shared::api::{
    DagFileDeletedResponse, DagFileDiagnostic, DagFileRejected, DagFileUploadResponse,
    DagFileValidation, DagSourceResponse, HttpError,
};
use updraft_shared::dag::{parse_dag_with, ParseOptions};
use utoipa::OpenApi;

use super::dags::find_dag;
use super::ApiError;
use crate::auth::{Identity, Role};
use crate::server::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::dags::{dag, dag_version};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/dagSources/{dag_id}").get(get_dag_source))
        .service(web::resource("/dagFiles/validate").post(validate_dag_file))
        .service(
            web::resource("/dagFiles/{file_name}")
                .put(upload_dag_file)
                .delete(delete_dag_file),
        );
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(get_dag_source, validate_dag_file, upload_dag_file, delete_dag_file),
    components(schemas(
        DagSourceResponse,
        DagFileDiagnostic,
        DagFileValidation,
        DagFileRejected,
        DagFileUploadResponse,
        DagFileDeletedResponse
    ))
)]
pub struct Doc;

#[derive(Debug, Deserialize)]
pub struct SourceQuery {
    version_number: Option<i32>,
}

/// Get the source of a DAG: its file's text, as the current (or a given) version read it.
/// `Accept: text/plain` answers the bare text.
#[utoipa::path(
    get,
    path = "/api/v2/dagSources/{dag_id}",
    operation_id = "get_dag_source",
    tag = "DagSource",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("version_number" = Option<i32>, Query, description = "A version of the DAG; default the current one"),
    ),
    responses(
        (status = 200, description = "Successful Response (the bare text with `Accept: text/plain`)", content(
            (DagSourceResponse = "application/json"),
            (String = "text/plain")
        )),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 404, description = "Not Found", body = HttpError),
    )
)]
pub async fn get_dag_source(
    state: web::Data<AppState>,
    user: Identity,
    req: HttpRequest,
    path: web::Path<String>,
    q: super::query::ApiQuery<SourceQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let dag_id = path.into_inner();
    let row = find_dag(&state, &dag_id).await?;
    let version = match (q.0.version_number, row.current_version_id) {
        (Some(n), _) => {
            dag_version::Entity::find()
                .filter(dag_version::Column::DagId.eq(&dag_id))
                .filter(dag_version::Column::VersionNumber.eq(n))
                .one(state.db.conn())
                .await?
        }
        (None, Some(id)) => {
            dag_version::Entity::find_by_id(id)
                .one(state.db.conn())
                .await?
        }
        (None, None) => None,
    };
    let Some(version) = version else {
        return Err(ApiError::NotFound(match q.0.version_number {
            Some(n) => format!(
                "The source code of the DAG {dag_id}, version_number {n} was not found; GET /api/v2/dags/{dag_id}/details shows the latest version"
            ),
            None => format!(
                "The source code of the DAG {dag_id} was not found: its file never parsed (GET /api/v2/importErrors shows why)"
            ),
        }));
    };
    if wants_text(&req) {
        return Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(version.source));
    }
    Ok(HttpResponse::Ok().json(DagSourceResponse {
        content: Some(version.source),
        dag_id: dag_id.clone(),
        version_number: Some(version.version_number),
        dag_display_name: dag_id,
    }))
}

/// True when the client asks for text before JSON (Airflow answers `text/plain` then).
fn wants_text(req: &HttpRequest) -> bool {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let first = accept
        .split(',')
        .map(|m| m.split(';').next().unwrap_or_default().trim())
        .find(|m| *m == "text/plain" || *m == "application/json" || *m == "*/*");
    first == Some("text/plain")
}

fn parse_options(state: &AppState) -> ParseOptions {
    ParseOptions {
        max_bytes: state.config.settings.core.dag_file_max_bytes,
    }
}

fn unsupported(detail: String) -> HttpResponse {
    HttpResponse::UnsupportedMediaType().json(HttpError { detail })
}

/// Check a DAG file without saving it: the problems the DAG processor would report, each with
/// its line and column.
#[utoipa::path(
    post,
    path = "/api/v2/dagFiles/validate",
    operation_id = "validate_dag_file",
    tag = "DAG Source",
    request_body(content = String, content_type = "application/yaml", description = "The DAG file's text"),
    responses(
        (status = 200, description = "The verdict (valid or not)", body = DagFileValidation),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 413, description = "Over core.dag_file_max_bytes", body = HttpError),
        (status = 415, description = "Not sent as YAML or text", body = HttpError),
    )
)]
pub async fn validate_dag_file(
    state: web::Data<AppState>,
    user: Identity,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::User)?;
    if let Err(detail) = files::check_content_type(&req) {
        return Ok(unsupported(detail));
    }
    let options = parse_options(&state);
    let bytes = files::read_body(payload, options.max_bytes).await?;
    let verdict = match parse_dag_with(&bytes, &options) {
        Ok(dag) => DagFileValidation {
            valid: true,
            dag_id: Some(dag.dag_id),
            diagnostics: Vec::new(),
        },
        Err(diags) => DagFileValidation {
            valid: false,
            dag_id: None,
            diagnostics: files::diagnostics(&diags),
        },
    };
    Ok(HttpResponse::Ok().json(verdict))
}

/// Upload a DAG file into the DAG folder: validated first (422 with every problem), written
/// atomically, and registered at once, so the DAG is in the next `GET /api/v2/dags`.
#[utoipa::path(
    put,
    path = "/api/v2/dagFiles/{file_name}",
    operation_id = "upload_dag_file",
    tag = "DAG Source",
    params(("file_name" = String, Path, description = "A plain `*.yaml`/`*.yml` name in the DAG folder")),
    request_body(content = String, content_type = "application/yaml", description = "The DAG file's text"),
    responses(
        (status = 201, description = "A new file", body = DagFileUploadResponse),
        (status = 200, description = "A file replaced", body = DagFileUploadResponse),
        (status = 400, description = "Not a plain YAML file name", body = HttpError),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 409, description = "Another file defines the same dag_id", body = HttpError),
        (status = 413, description = "Over core.dag_file_max_bytes", body = HttpError),
        (status = 415, description = "Not sent as YAML or text", body = HttpError),
        (status = 422, description = "The file does not parse", body = DagFileRejected),
    )
)]
pub async fn upload_dag_file(
    state: web::Data<AppState>,
    user: Identity,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Admin)?;
    let file_name = path.into_inner();
    files::check_file_name(&file_name)?;
    if let Err(detail) = files::check_content_type(&req) {
        return Ok(unsupported(detail));
    }
    let options = parse_options(&state);
    let bytes = files::read_body(payload, options.max_bytes).await?;
    let parsed = match parse_dag_with(&bytes, &options) {
        Ok(dag) => dag,
        Err(diags) => {
            let first = diags.first().map(|d| d.to_string()).unwrap_or_default();
            return Ok(HttpResponse::UnprocessableEntity().json(DagFileRejected {
                detail: format!(
                    "{file_name} was not saved: {} problem(s), the first at {first}; fix them (every one is in `diagnostics`) and upload again",
                    diags.len()
                ),
                diagnostics: files::diagnostics(&diags),
            }));
        }
    };
    let dag_id = parsed.dag_id.clone();
    // Another live file declaring the same dag_id would make this one an import error.
    if let Some(owner) = dag::Entity::find_by_id(dag_id.clone())
        .one(state.db.conn())
        .await?
        .filter(|d| !d.is_stale && d.fileloc != file_name)
        .filter(|d| state.config.dags_folder.join(&d.fileloc).exists())
    {
        return Err(ApiError::Conflict(format!(
            "dag_id `{dag_id}` is already defined in {}; give this DAG another dag_id, or upload it as {} to replace that file",
            owner.fileloc, owner.fileloc
        )));
    }
    let replaced = files::write_atomically(
        state.config.dags_folder.clone(),
        file_name.clone(),
        bytes.clone(),
    )
    .await?;
    let report = files::register(&state, &file_name, &bytes, parsed).await?;
    if let Some(i) = report.import_errors.iter().position(|f| *f == file_name) {
        return Err(ApiError::Conflict(format!(
            "{file_name} was saved but not registered: {}",
            report.first_problems.get(i).cloned().unwrap_or_default()
        )));
    }
    let row = find_dag(&state, &dag_id).await?;
    let version_number = match row.current_version_id {
        Some(id) => dag_version::Entity::find_by_id(id)
            .one(state.db.conn())
            .await?
            .map(|v| v.version_number),
        None => None,
    }
    .ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "DAG {dag_id} has no version after its sync"
        ))
    })?;
    let txn = state.db.conn().begin().await?;
    audit::record(
        &txn,
        AuditEntry::new("upload_dag_file", &user.username)
            .dag(&dag_id)
            .extra(json!({
                "file_name": file_name,
                "replaced": replaced,
                "version_number": version_number,
            })),
    )
    .await?;
    txn.commit().await?;
    let body = DagFileUploadResponse {
        dag_id,
        fileloc: state
            .config
            .dags_folder
            .join(&file_name)
            .display()
            .to_string(),
        relative_fileloc: file_name,
        version_number,
    };
    Ok(if replaced {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::Created().json(body)
    })
}

/// Remove a DAG file from the DAG folder: its DAGs become stale at once (their runs and logs
/// are kept; `DELETE /api/v2/dags/{dag_id}` removes those).
#[utoipa::path(
    delete,
    path = "/api/v2/dagFiles/{file_name}",
    operation_id = "delete_dag_file",
    tag = "DAG Source",
    params(("file_name" = String, Path, description = "A plain `*.yaml`/`*.yml` name in the DAG folder")),
    responses(
        (status = 200, description = "Removed", body = DagFileDeletedResponse),
        (status = 400, description = "Not a plain YAML file name", body = HttpError),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 404, description = "No such file", body = HttpError),
    )
)]
pub async fn delete_dag_file(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Admin)?;
    let file_name = path.into_inner();
    files::check_file_name(&file_name)?;
    let full = state.config.dags_folder.join(&file_name);
    match tokio::fs::remove_file(&full).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::NotFound(format!(
                "There is no file {file_name} in the DAG folder; a DAG's relative_fileloc names its file"
            )))
        }
        Err(e) => {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "removing {}: {e}",
                full.display()
            )))
        }
    }
    let report = files::unregister(&state, &file_name).await?;
    let txn = state.db.conn().begin().await?;
    audit::record(
        &txn,
        AuditEntry::new("delete_dag_file", &user.username)
            .extra(json!({"file_name": file_name, "stale_dag_ids": report.stale_dags})),
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(DagFileDeletedResponse {
        relative_fileloc: file_name,
        stale_dag_ids: report.stale_dags,
    }))
}
