//! Import errors: DAG files that do not parse, with every problem's line and column.

use actix_web::{web, HttpResponse};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Deserialize;
use updraft_shared::api::{HttpError, ImportErrorCollectionResponse, ImportErrorResponse};
use utoipa::OpenApi;

use super::dags::view::BUNDLE_NAME;
use super::query::{self, ApiQuery, Page};
use super::ApiError;
use crate::auth::{Identity, Role};
use crate::server::AppState;
use crate::store::dags::import_error;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/importErrors").get(get_import_errors))
        .service(web::resource("/importErrors/{import_error_id}").get(get_import_error));
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(get_import_errors, get_import_error),
    components(schemas(ImportErrorResponse, ImportErrorCollectionResponse))
)]
pub struct Doc;

fn response(e: import_error::Model) -> ImportErrorResponse {
    ImportErrorResponse {
        import_error_id: e.id,
        timestamp: e.timestamp,
        filename: e.filename,
        bundle_name: Some(BUNDLE_NAME.into()),
        stack_trace: e.stack_trace,
    }
}

#[derive(Debug, Deserialize)]
pub struct ImportErrorsQuery {
    limit: Option<u64>,
    offset: Option<u64>,
    #[serde(default, deserialize_with = "query::one_or_many")]
    order_by: Vec<String>,
    filename_pattern: Option<String>,
    filename_prefix_pattern: Option<String>,
    filename: Option<String>,
    bundle_name: Option<String>,
}

/// List import errors.
#[utoipa::path(
    get,
    path = "/api/v2/importErrors",
    operation_id = "get_import_errors",
    tag = "Import Error",
    params(
        ("limit" = Option<u64>, Query, description = "Page size (capped by api.maximum_page_limit)"),
        ("offset" = Option<u64>, Query, description = "Entries to skip"),
        ("order_by" = Option<Vec<String>>, Query, description = "import_error_id (default), id, timestamp, filename, stack_trace; `-` for descending"),
        ("filename_pattern" = Option<String>, Query, description = "Substring of the file's path, case-insensitive; `|` separates alternatives"),
        ("filename_prefix_pattern" = Option<String>, Query, description = "Start of the file's path"),
        ("filename" = Option<String>, Query, description = "The file's path relative to the DAG folder, exactly"),
        ("bundle_name" = Option<String>, Query, description = "Only `dags-folder` matches"),
    ),
    responses(
        (status = 200, description = "Successful Response", body = ImportErrorCollectionResponse),
        (status = 400, description = "Bad Request", body = HttpError),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 422, description = "Unprocessable", body = HttpError),
    )
)]
pub async fn get_import_errors(
    state: web::Data<AppState>,
    user: Identity,
    q: ApiQuery<ImportErrorsQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let q = q.0;
    use import_error::Column as C;
    let order = query::order_by(
        &q.order_by,
        &[
            ("import_error_id", C::Id),
            ("id", C::Id),
            ("timestamp", C::Timestamp),
            ("filename", C::Filename),
            ("stack_trace", C::StackTrace),
            ("stacktrace", C::StackTrace),
        ],
        "import_error_id",
    )?;
    let page = Page::new(&state.config.settings.api, q.limit, q.offset);
    if q.bundle_name.as_deref().is_some_and(|b| b != BUNDLE_NAME) {
        return Ok(HttpResponse::Ok().json(ImportErrorCollectionResponse {
            import_errors: Vec::new(),
            total_entries: 0,
        }));
    }
    let mut cond = Condition::all();
    if let Some(c) = query::pattern(C::Filename, q.filename_pattern.as_deref()) {
        cond = cond.add(c);
    }
    if let Some(p) = q
        .filename_prefix_pattern
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != "~")
    {
        cond = cond.add(C::Filename.starts_with(p));
    }
    if let Some(f) = q.filename.as_deref() {
        cond = cond.add(C::Filename.eq(f));
    }
    let total = import_error::Entity::find()
        .filter(cond.clone())
        .count(state.db.conn())
        .await?;
    let mut select = import_error::Entity::find().filter(cond);
    for (col, o) in order {
        select = select.order_by(col, o);
    }
    let rows = select
        .order_by_asc(C::Id)
        .offset(page.offset)
        .limit(page.limit)
        .all(state.db.conn())
        .await?;
    Ok(HttpResponse::Ok().json(ImportErrorCollectionResponse {
        import_errors: rows.into_iter().map(response).collect(),
        total_entries: total as i64,
    }))
}

/// Get an import error.
#[utoipa::path(
    get,
    path = "/api/v2/importErrors/{import_error_id}",
    operation_id = "get_import_error",
    tag = "Import Error",
    params(("import_error_id" = i64, Path, description = "The import error's id")),
    responses(
        (status = 200, description = "Successful Response", body = ImportErrorResponse),
        (status = 401, description = "Unauthorized", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 404, description = "Not Found", body = HttpError),
        (status = 422, description = "Unprocessable", body = HttpError),
    )
)]
pub async fn get_import_error(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let id = path.into_inner();
    let row = import_error::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "The ImportError with import_error_id: `{id}` was not found; it is gone once its file parses or is removed (GET /api/v2/importErrors lists the current ones)"
            ))
        })?;
    Ok(HttpResponse::Ok().json(response(row)))
}
