//! Users and their roles (Updraft's own; Airflow keeps these in its auth manager's API).
//! Admin only. The last admin cannot be deleted or demoted.

use actix_web::{web, HttpResponse};
use sea_orm::TransactionTrait;
use updraft_shared::api::{
    HttpError, UserCollectionResponse, UserPatchBody, UserPostBody, UserResponse,
};
use utoipa::OpenApi;

use super::query::{ApiQuery, Page};
use super::ApiError;
use crate::auth::{password, Identity, Role};
use crate::server::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::entities::user;
use crate::store::users;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/users").get(get_users).post(post_user))
        .service(
            web::resource("/users/{username}")
                .get(get_user)
                .patch(patch_user)
                .delete(delete_user),
        );
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(get_users, post_user, get_user, patch_user, delete_user),
    components(schemas(UserResponse, UserCollectionResponse, UserPostBody, UserPatchBody))
)]
pub struct Doc;

fn response(u: user::Model) -> UserResponse {
    UserResponse {
        username: u.username,
        role: u.role,
        first_name: u.first_name,
        last_name: u.last_name,
        email: u.email,
        active: u.active,
        created_on: u.created_on,
        changed_on: u.changed_on,
        last_login: u.last_login,
    }
}

fn role_of(raw: &str) -> Result<Role, ApiError> {
    Role::parse(raw).ok_or_else(|| {
        ApiError::Unprocessable(format!(
            "role {raw:?} does not exist: use Viewer, User, Op or Admin"
        ))
    })
}

fn check_username(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::Unprocessable(format!(
            "username {name:?} is not valid: use 1 to 256 letters, digits, `_`, `-`, `.` or `@`"
        )))
    }
}

async fn hash(password: String) -> Result<String, ApiError> {
    password::check_strength(&password).map_err(ApiError::Unprocessable)?;
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("hashing failed: {e}")))?
        .map_err(ApiError::Internal)
}

async fn find(state: &AppState, username: &str) -> Result<user::Model, ApiError> {
    users::find(&state.db, username).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "The User with username: `{username}` was not found"
        ))
    })
}

#[derive(Debug, serde::Deserialize)]
pub struct ListQuery {
    limit: Option<u64>,
    offset: Option<u64>,
}

/// List users.
#[utoipa::path(
    get,
    path = "/api/v2/users",
    operation_id = "get_users",
    tag = "User",
    params(("limit" = Option<u64>, Query), ("offset" = Option<u64>, Query)),
    responses(
        (status = 200, description = "Successful Response", body = UserCollectionResponse),
        (status = 401, description = "Not authenticated", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
    )
)]
pub async fn get_users(
    state: web::Data<AppState>,
    user: Identity,
    q: ApiQuery<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Admin)?;
    let page = Page::new(&state.config.settings.api, q.0.limit, q.0.offset);
    let (rows, total) = users::list(&state.db, page.limit, page.offset).await?;
    Ok(HttpResponse::Ok().json(UserCollectionResponse {
        users: rows.into_iter().map(response).collect(),
        total_entries: total as i64,
    }))
}

/// Create a user.
#[utoipa::path(
    post,
    path = "/api/v2/users",
    operation_id = "post_user",
    tag = "User",
    request_body = UserPostBody,
    responses(
        (status = 201, description = "Created", body = UserResponse),
        (status = 401, description = "Not authenticated", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 409, description = "The username is taken", body = HttpError),
        (status = 422, description = "Bad username, role or password", body = HttpError),
    )
)]
pub async fn post_user(
    state: web::Data<AppState>,
    user: Identity,
    body: web::Json<UserPostBody>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Admin)?;
    let body = body.into_inner();
    check_username(&body.username)?;
    let role = role_of(&body.role)?;
    let password_hash = hash(body.password).await?;
    let txn = state.db.conn().begin().await?;
    audit::record(
        &txn,
        AuditEntry::new("post_user", &user.username)
            .extra(serde_json::json!({"username": body.username, "role": role.as_str()})),
    )
    .await?;
    if users::find(&state.db, &body.username).await?.is_some() {
        return Err(ApiError::Conflict(format!(
            "The User with username: `{}` already exists",
            body.username
        )));
    }
    users::insert(
        &txn,
        users::NewUser {
            username: &body.username,
            password_hash,
            role: role.as_str(),
            first_name: &body.first_name,
            last_name: &body.last_name,
            email: &body.email,
        },
    )
    .await?;
    txn.commit().await?;
    let created = find(&state, &body.username).await?;
    Ok(HttpResponse::Created().json(response(created)))
}

/// Get a user.
#[utoipa::path(
    get,
    path = "/api/v2/users/{username}",
    operation_id = "get_user",
    tag = "User",
    params(("username" = String, Path)),
    responses(
        (status = 200, description = "Successful Response", body = UserResponse),
        (status = 401, description = "Not authenticated", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 404, description = "Not Found", body = HttpError),
    )
)]
pub async fn get_user(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Admin)?;
    Ok(HttpResponse::Ok().json(response(find(&state, &path).await?)))
}

/// Change a user's role or password.
#[utoipa::path(
    patch,
    path = "/api/v2/users/{username}",
    operation_id = "patch_user",
    tag = "User",
    params(("username" = String, Path)),
    request_body = UserPatchBody,
    responses(
        (status = 200, description = "Successful Response", body = UserResponse),
        (status = 401, description = "Not authenticated", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 404, description = "Not Found", body = HttpError),
        (status = 409, description = "It would leave no admin", body = HttpError),
        (status = 422, description = "Bad role or password", body = HttpError),
    )
)]
pub async fn patch_user(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<String>,
    body: web::Json<UserPatchBody>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Admin)?;
    let username = path.into_inner();
    let body = body.into_inner();
    let role = body.role.as_deref().map(role_of).transpose()?;
    let password_hash = match body.password {
        Some(p) => Some(hash(p).await?),
        None => None,
    };
    let txn = state.db.conn().begin().await?;
    audit::record(
        &txn,
        AuditEntry::new("patch_user", &user.username).extra(serde_json::json!({
            "username": username,
            "role": role.map(Role::as_str),
            "password_changed": password_hash.is_some(),
        })),
    )
    .await?;
    let current = find(&state, &username).await?;
    if current.role == Role::Admin.as_str()
        && role.is_some_and(|r| r != Role::Admin)
        && users::count_admins(&txn).await? <= 1
    {
        return Err(ApiError::Conflict(
            "this is the last Admin: make another user Admin first".into(),
        ));
    }
    users::update(&txn, &username, role.map(Role::as_str), password_hash).await?;
    txn.commit().await?;
    state.auth.forget(&username);
    Ok(HttpResponse::Ok().json(response(find(&state, &username).await?)))
}

/// Delete a user.
#[utoipa::path(
    delete,
    path = "/api/v2/users/{username}",
    operation_id = "delete_user",
    tag = "User",
    params(("username" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = HttpError),
        (status = 403, description = "Forbidden", body = HttpError),
        (status = 404, description = "Not Found", body = HttpError),
        (status = 409, description = "It is the last admin", body = HttpError),
    )
)]
pub async fn delete_user(
    state: web::Data<AppState>,
    user: Identity,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Admin)?;
    let username = path.into_inner();
    let txn = state.db.conn().begin().await?;
    audit::record(
        &txn,
        AuditEntry::new("delete_user", &user.username)
            .extra(serde_json::json!({"username": username})),
    )
    .await?;
    let current = find(&state, &username).await?;
    if current.role == Role::Admin.as_str() && users::count_admins(&txn).await? <= 1 {
        return Err(ApiError::Conflict(
            "this is the last Admin: make another user Admin first".into(),
        ));
    }
    users::delete(&txn, &username).await?;
    txn.commit().await?;
    state.auth.forget(&username);
    Ok(HttpResponse::NoContent().finish())
}
