//! `GET /api/v2/version` (public).

use actix_web::{web, HttpResponse};
use updraft_shared::api::VersionInfo;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // A resource (not a bare route) so other methods get 405, as in Airflow.
    cfg.service(web::resource("/version").get(get_version));
}

pub fn version_info() -> VersionInfo {
    VersionInfo {
        version: crate::VERSION.to_string(),
        git_version: crate::GIT_VERSION.map(str::to_string),
    }
}

/// Get version information.
#[utoipa::path(
    get,
    path = "/api/v2/version",
    operation_id = "get_version",
    tag = "Version",
    security(()),
    responses((status = 200, description = "Successful Response", body = VersionInfo))
)]
pub async fn get_version() -> HttpResponse {
    HttpResponse::Ok().json(version_info())
}
