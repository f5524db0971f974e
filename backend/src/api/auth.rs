//! `POST /auth/token`: a username and password for a JWT (Airflow 3's login endpoint).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use updraft_shared::api::{HttpError, LoginBody, LoginResponse};

use super::ApiError;
use crate::server::AppState;

/// Routes inside the `/auth` scope.
pub fn configure_scoped(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/token").post(create_token));
}

/// Get an API token.
#[utoipa::path(
    post,
    path = "/auth/token",
    operation_id = "create_token",
    tag = "Login",
    request_body(content = LoginBody, content_type = "application/json",
        description = "JSON, or the same fields as `application/x-www-form-urlencoded`"),
    responses(
        (status = 201, description = "A token", body = LoginResponse),
        (status = 401, description = "Wrong username or password", body = HttpError),
        (status = 422, description = "The body is not a username and password", body = HttpError),
        (status = 429, description = "Too many failed logins", body = HttpError),
    ),
    security(())
)]
pub async fn create_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let login: LoginBody = if form {
        serde_html_form::from_bytes(&body).map_err(|e| {
            ApiError::Unprocessable(format!("form body: {e}; send username and password"))
        })?
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::Unprocessable(format!(
                "body: {e}; send {{\"username\": \"...\", \"password\": \"...\"}} as JSON or as a form"
            ))
        })?
    };
    let addr = req.peer_addr().map(|a| a.ip());
    let who = state
        .auth
        .login(&state.db, &login.username, &login.password, addr)
        .await?;
    let access_token = state.auth.tokens().issue(&who.username, who.role);
    Ok(HttpResponse::Created().json(LoginResponse { access_token }))
}
