//! TODO(issue 5): being written.

use actix_web::web;
use utoipa::OpenApi;

pub fn configure(_cfg: &mut web::ServiceConfig) {}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi()]
pub struct Doc;
