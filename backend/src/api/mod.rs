//! The REST API under `/api/v2`, wire-compatible with Airflow 3's public API.
//!
//! Each resource has its module with a `configure` function; this module mounts them, owns the
//! error type and makes sure every error under `/api` is JSON `{"detail": ...}`.

pub mod auth;
pub mod backfills;
pub mod bulk;
pub mod connections;
pub mod dag_runs;
pub mod dag_sources;
pub mod dags;
pub mod error;
pub mod event_logs;
pub mod ids;
pub mod import_errors;
pub mod logs;
pub mod monitor;
pub mod openapi;
pub mod pools;
pub mod query;
pub mod task_instances;
pub mod users;
pub mod variables;
pub mod version;
pub mod xcom;

use actix_web::middleware::{self, ErrorHandlers};
use actix_web::{web, HttpResponse};

pub use error::ApiError;

/// Mounts `/auth/token` and `/api/...`. Unknown paths under `/api` answer a JSON 404 (never
/// the UI's page); everything under `/api/v2` but the public paths needs credentials.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/auth")
            .wrap(ErrorHandlers::new().default_handler(error::json_error_body))
            .configure(auth::configure_scoped)
            .default_service(web::to(not_found)),
    );
    cfg.service(
        web::scope("/api")
            .wrap(ErrorHandlers::new().default_handler(error::json_error_body))
            .service(
                web::scope("/v2")
                    .wrap(middleware::from_fn(crate::auth::authenticate))
                    .configure(version::configure)
                    .configure(monitor::configure)
                    .configure(dags::configure)
                    .configure(dag_sources::configure)
                    .configure(import_errors::configure)
                    .configure(backfills::configure)
                    .configure(task_instances::configure)
                    .configure(logs::configure)
                    .configure(xcom::configure)
                    .configure(dag_runs::configure)
                    .configure(variables::configure)
                    .configure(connections::configure)
                    .configure(pools::configure)
                    .configure(users::configure)
                    .configure(event_logs::configure)
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
