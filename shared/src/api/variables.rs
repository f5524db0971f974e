//! Variables (Airflow's `Variable*` models), and `nullable_field` for PATCH bodies.

use serde::{Deserialize, Deserializer, Serialize};

/// `POST /api/v2/variables`, `PATCH /api/v2/variables/{key}` and bulk entities (Airflow's
/// `VariableBody`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VariableBody {
    /// 1 to 250 characters.
    pub key: String,
    /// Any JSON value: a string is stored as is, anything else as its JSON text.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub value: serde_json::Value,
    /// Absent: unchanged on update; null: none.
    #[serde(
        default,
        deserialize_with = "nullable_field",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub description: Option<Option<String>>,
    /// Only with `core.multi_team`, which Updraft does not have: must be absent or null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_name: Option<String>,
}

/// A variable as shown: secrets masked as `***` (Airflow's `VariableResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VariableResponse {
    pub key: String,
    /// `***` when the key names a secret; sensitive keys of a JSON object masked inside it.
    pub value: Option<String>,
    pub description: Option<String>,
    /// Whether the value is encrypted at rest (always, for values Updraft wrote).
    pub is_encrypted: bool,
    pub team_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VariableCollectionResponse {
    pub variables: Vec<VariableResponse>,
    pub total_entries: u64,
}

/// `Option<Option<T>>` for PATCH bodies: a key that is present (even null) is `Some`.
pub fn nullable_field<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
