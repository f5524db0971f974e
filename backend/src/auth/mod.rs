//! Who is calling and what they may do.
//!
//! Users log in with a password (argon2id hashes in `ab_user`) and get a JWT from
//! `POST /auth/token`; every `/api/v2` request carries it as `Authorization: Bearer`, or the
//! password itself as HTTP Basic. [`authenticate`] (a middleware on `/api/v2`) resolves the
//! caller once per request; handlers take an [`Identity`] and call [`Identity::require`] with
//! the least role the endpoint needs (Airflow's FAB roles: Viewer < User < Op < Admin).

pub mod limiter;
pub mod password;
pub mod token;

use std::collections::HashMap;
use std::future::{ready, Ready};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::api::ApiError;
use crate::config::AuthSettings;
use crate::secrets::Secrets;
use crate::server::AppState;
use crate::store::{users, Db};

/// Airflow's FAB roles, least to most powerful; each has every permission of the ones before.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Role {
    /// Reads DAGs, runs, task instances, logs, XComs, import errors and the audit log.
    Viewer,
    /// Also pauses DAGs, triggers, clears and marks runs and task instances, backfills.
    User,
    /// Also manages variables, connections, pools and XComs.
    Op,
    /// Also manages users and uploads DAG files.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::User, Role::Op, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "Viewer",
            Role::User => "User",
            Role::Op => "Op",
            Role::Admin => "Admin",
        }
    }

    /// Case-insensitive, so `--role admin` works.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// The caller of a request, resolved by [`authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub username: String,
    pub role: Role,
}

impl Identity {
    /// 403 unless the caller's role is at least `least`.
    pub fn require(&self, least: Role) -> Result<(), ApiError> {
        if self.role >= least {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "Forbidden: this needs the {} role or higher; user {} has {}",
                least.as_str(),
                self.username,
                self.role.as_str()
            )))
        }
    }
}

impl FromRequest for Identity {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Identity>()
                .cloned()
                .ok_or_else(|| ApiError::Unauthorized("Not authenticated".into())),
        )
    }
}

/// Paths under `/api/v2` anyone may call.
pub fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/api/v2/version" | "/api/v2/monitor/health" | "/api/v2/openapi.json"
    )
}

/// Middleware on `/api/v2`: resolves the caller from `Authorization` and refuses anonymous
/// requests to everything but the public paths.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .expect("AppState is registered on the App");
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|h| h.to_str().unwrap_or("").to_string());
    let public = is_public(req.path());
    match header {
        None if public => {}
        None => return Err(ApiError::Unauthorized("Not authenticated".into()).into()),
        Some(value) => {
            let addr = req.peer_addr().map(|a| a.ip());
            match state.auth.resolve(&state.db, &value, addr).await {
                Ok(identity) => {
                    // Defense in depth: Viewers only read, whatever a handler checks (and
                    // before a body is parsed). The batch lists are reads sent as POST.
                    let read = matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS")
                        || req.path().ends_with("/list");
                    if identity.role == Role::Viewer && !read && !public {
                        return Err(identity.require(Role::User).unwrap_err().into());
                    }
                    req.extensions_mut().insert(identity);
                }
                // A public path answers even with a stale token, as Airflow's do.
                Err(_) if public => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    next.call(req).await
}

/// Checks credentials: tokens, passwords (with a short cache, argon2 is slow on purpose) and
/// the failed-login limits.
pub struct Authenticator {
    tokens: token::TokenKeys,
    settings: AuthSettings,
    limiter: limiter::LoginLimiter,
    /// sha256(salt, user, password) → when it was verified; valid for [`BASIC_CACHE_TTL`].
    verified_passwords: Mutex<HashMap<[u8; 32], Instant>>,
    /// username → role (None: no such active user), checked at most every [`USER_CACHE_TTL`].
    users: Mutex<HashMap<String, (Option<Role>, Instant)>>,
    cache_salt: [u8; 16],
}

const BASIC_CACHE_TTL: Duration = Duration::from_secs(60);
/// How soon a deleted user or a changed role takes effect for tokens already issued.
const USER_CACHE_TTL: Duration = Duration::from_secs(5);

impl Authenticator {
    pub fn new(settings: &AuthSettings, secrets: &Secrets) -> Self {
        let key = secrets.jwt_key(settings.jwt_secret.as_ref().map(|s| s.expose()));
        Self {
            tokens: token::TokenKeys::new(&key, settings.jwt_expiration_time),
            settings: settings.clone(),
            limiter: limiter::LoginLimiter::new(
                settings.login_rate_limit,
                settings.login_rate_window,
            ),
            verified_passwords: Mutex::new(HashMap::new()),
            users: Mutex::new(HashMap::new()),
            cache_salt: rand::random(),
        }
    }

    pub fn tokens(&self) -> &token::TokenKeys {
        &self.tokens
    }

    /// Resolves an `Authorization` header value.
    pub async fn resolve(
        &self,
        db: &Db,
        header: &str,
        addr: Option<IpAddr>,
    ) -> Result<Identity, ApiError> {
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            let claims = self.tokens.verify(rest.trim()).map_err(|why| {
                ApiError::Forbidden(format!(
                    "Invalid JWT token: {why}; get a new one from POST /auth/token"
                ))
            })?;
            match self.current_role(db, &claims.sub).await? {
                Some(role) => Ok(Identity {
                    username: claims.sub,
                    role,
                }),
                None => Err(ApiError::Forbidden(
                    "Invalid JWT token: its user no longer exists".into(),
                )),
            }
        } else if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    ApiError::Unauthorized(
                        "Basic credentials are not base64 of `username:password`".into(),
                    )
                })?;
            let (username, password) = decoded.split_once(':').ok_or_else(|| {
                ApiError::Unauthorized("Basic credentials are not `username:password`".into())
            })?;
            self.login(db, username, password, addr).await
        } else {
            Err(ApiError::Unauthorized(
                "Unsupported Authorization scheme: use `Bearer <token from POST /auth/token>` or HTTP Basic".into(),
            ))
        }
    }

    /// Checks a username and password, within the failed-login limits.
    pub async fn login(
        &self,
        db: &Db,
        username: &str,
        password: &str,
        addr: Option<IpAddr>,
    ) -> Result<Identity, ApiError> {
        let fingerprint = self.fingerprint(username, password);
        let cached = {
            let map = self
                .verified_passwords
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            map.get(&fingerprint)
                .is_some_and(|at| at.elapsed() < BASIC_CACHE_TTL)
        };
        if cached {
            if let Some(role) = self.current_role(db, username).await? {
                return Ok(Identity {
                    username: username.to_string(),
                    role,
                });
            }
        }
        self.limiter.check(username, addr)?;
        let user = users::find(db, username)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?
            .filter(|u| u.active);
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let password_owned = password.to_string();
        // argon2 takes tens of milliseconds: off the async threads. An unknown user is checked
        // against a dummy hash so timing does not tell which users exist.
        let ok = tokio::task::spawn_blocking(move || {
            password::verify(
                &password_owned,
                hash.as_deref().unwrap_or(password::DUMMY_HASH),
            )
        })
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("password check failed: {e}")))?;
        match user {
            Some(user) if ok => {
                let role = Role::parse(&user.role).unwrap_or(Role::Viewer);
                self.limiter.success(username);
                self.verified_passwords
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(fingerprint, Instant::now());
                let _ = users::touch_login(db, username).await;
                Ok(Identity {
                    username: user.username,
                    role,
                })
            }
            _ => {
                self.limiter.failure(username, addr);
                Err(ApiError::Unauthorized(
                    "Invalid username or password".into(),
                ))
            }
        }
    }

    /// Drops cached facts about a user (after a role change, new password or deletion).
    pub fn forget(&self, username: &str) {
        self.users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(username);
        self.verified_passwords
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    async fn current_role(&self, db: &Db, username: &str) -> Result<Option<Role>, ApiError> {
        if let Some((role, at)) = self
            .users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(username)
        {
            if at.elapsed() < USER_CACHE_TTL {
                return Ok(*role);
            }
        }
        let role = users::find(db, username)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?
            .filter(|u| u.active)
            .map(|u| Role::parse(&u.role).unwrap_or(Role::Viewer));
        let mut map = self.users.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            map.clear();
        }
        map.insert(username.to_string(), (role, Instant::now()));
        Ok(role)
    }

    fn fingerprint(&self, username: &str, password: &str) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.cache_salt);
        h.update(username.as_bytes());
        h.update([0]);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }
}

/// Creates the admin from `auth.admin_password` (or resets its password) at start.
pub async fn ensure_admin(db: &Db, settings: &AuthSettings) -> anyhow::Result<()> {
    let Some(password) = &settings.admin_password else {
        return Ok(());
    };
    let password = password.expose().to_string();
    password::check_strength(&password).map_err(|why| {
        anyhow::anyhow!("auth.admin_password (UPDRAFT__AUTH__ADMIN_PASSWORD): {why}")
    })?;
    let hash = tokio::task::spawn_blocking(move || password::hash(&password)).await??;
    let name = settings.admin_username.trim();
    let txn = sea_orm::TransactionTrait::begin(db.conn()).await?;
    let audit = crate::store::audit::AuditEntry::new("admin_password_from_config", "system")
        .extra(serde_json::json!({"username": name}));
    crate::store::audit::record(&txn, audit).await?;
    if !users::update(&txn, name, Some(Role::Admin.as_str()), Some(hash.clone())).await? {
        users::insert(
            &txn,
            users::NewUser {
                username: name,
                password_hash: hash,
                role: Role::Admin.as_str(),
                first_name: "",
                last_name: "",
                email: "",
            },
        )
        .await?;
        tracing::info!(
            user = name,
            "created the admin user from auth.admin_password"
        );
    }
    txn.commit().await?;
    Ok(())
}
