//! Users (Updraft's own).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A user as the API shows it (never its password hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserResponse {
    pub username: String,
    /// `Viewer`, `User`, `Op` or `Admin`.
    pub role: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub active: bool,
    pub created_on: DateTime<Utc>,
    pub changed_on: DateTime<Utc>,
    pub last_login: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserCollectionResponse {
    pub users: Vec<UserResponse>,
    pub total_entries: i64,
}

/// `POST /api/v2/users`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UserPostBody {
    pub username: String,
    /// At least 8 characters.
    pub password: String,
    /// `Viewer`, `User`, `Op` or `Admin` (any case).
    pub role: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub email: String,
}

/// `PATCH /api/v2/users/{username}`: only the fields given change.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UserPatchBody {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

macro_rules! redacted_debug {
    ($t:ty, $($field:ident),*) => {
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t))
                    $(.field(stringify!($field), &self.$field))*
                    .field("password", &"***")
                    .finish()
            }
        }
    };
}

redacted_debug!(UserPostBody, username, role);
redacted_debug!(UserPatchBody, role);
