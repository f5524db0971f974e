//! Connections (Airflow's `Connection*` models).

use serde::{Deserialize, Serialize};

use super::variables::nullable_field;

/// `POST /api/v2/connections`, `PATCH /api/v2/connections/{id}` and bulk entities (Airflow's
/// `ConnectionBody`). On PATCH an absent field is left as it is and null clears it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConnectionBody {
    /// Letters, digits, `_`, `.` and `-`; at most 200 characters.
    pub connection_id: String,
    pub conn_type: String,
    #[serde(
        default,
        deserialize_with = "nullable_field",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub description: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "nullable_field",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub host: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "nullable_field",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub login: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "nullable_field",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub schema: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "nullable_field",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i32>))]
    pub port: Option<Option<i32>>,
    /// `***` (what a read shows) keeps the stored password.
    #[serde(
        default,
        deserialize_with = "nullable_field",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub password: Option<Option<String>>,
    /// A JSON object as a string; `***` under a sensitive key keeps the stored value.
    #[serde(
        default,
        deserialize_with = "nullable_field",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub extra: Option<Option<String>>,
    /// Only with `core.multi_team`, which Updraft does not have: must be absent or null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_name: Option<String>,
}

/// A connection as shown: the password as `***`, sensitive keys of `extra` masked (Airflow's
/// `ConnectionResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectionResponse {
    pub connection_id: String,
    pub conn_type: String,
    pub description: Option<String>,
    pub host: Option<String>,
    pub login: Option<String>,
    pub schema: Option<String>,
    pub port: Option<i32>,
    /// `***` when set, null when not.
    pub password: Option<String>,
    pub extra: Option<String>,
    pub team_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectionCollectionResponse {
    pub connections: Vec<ConnectionResponse>,
    pub total_entries: u64,
}

/// `POST /api/v2/connections/test` (Airflow's `ConnectionTestResponse`; testing is disabled,
/// as by default in Airflow, so the endpoint answers 403).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectionTestResponse {
    pub status: bool,
    pub message: String,
}
