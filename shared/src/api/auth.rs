//! `POST /auth/token`.

use serde::{Deserialize, Serialize};

/// `POST /auth/token` body, as JSON or as a form (`username=…&password=…`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for LoginBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginBody")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// `POST /auth/token` answer (Airflow's `LoginResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResponse {
    /// A JWT to send as `Authorization: Bearer <token>`.
    pub access_token: String,
}
