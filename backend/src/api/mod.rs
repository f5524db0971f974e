//! The REST API under `/api/v2`, wire-compatible with Airflow 3's public API.
//!
//! Each resource has its module with a `configure` function; this module mounts them, owns the
//! error type and makes sure every error under `/api` is JSON `{"detail": ...}`.

pub mod dag_runs;
pub mod error;
pub mod monitor;
pub mod openapi;
pub mod version;

use actix_web::{middleware::ErrorHandlers, web, HttpResponse};

pub use error::ApiError;

/// Mounts `/api/...`. Unknown paths under `/api` answer a JSON 404 (never the UI's page).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api")
            .wrap(ErrorHandlers::new().default_handler(error::json_error_body))
            .service(
                web::scope("/v2")
                    .configure(version::configure)
                    .configure(monitor::configure)
                    .configure(dag_runs::configure)
                    .route("/openapi.json", web::get().to(openapi_json))
                    .default_service(web::to(not_found)),
            )
            .default_service(web::to(not_found)),
    );
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("Not Found".into()))
}

/// The spec as JSON, for tools that fetch it from a running server.
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(openapi::spec())
}
