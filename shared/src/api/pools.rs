//! Pools (Airflow's `Pool*` models).

use serde::{Deserialize, Serialize};

use super::variables::nullable_field;

/// `POST /api/v2/pools` and bulk entities (Airflow's `PoolBody`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PoolBody {
    /// 1 to 256 characters.
    pub name: String,
    /// Number of slots; -1 for unlimited.
    pub slots: i32,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub include_deferred: bool,
    /// Only with `core.multi_team`, which Updraft does not have: must be absent or null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_name: Option<String>,
}

/// `PATCH /api/v2/pools/{pool_name}` (Airflow's `PoolPatchBody`): absent fields stay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PoolPatchBody {
    /// The pool's name; must match the path (pools are not renamed).
    #[serde(default)]
    pub pool: Option<String>,
    /// Number of slots; -1 for unlimited.
    #[serde(default)]
    pub slots: Option<i32>,
    #[serde(
        default,
        deserialize_with = "nullable_field",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub description: Option<Option<String>>,
    #[serde(default)]
    pub include_deferred: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_name: Option<String>,
}

/// A pool with its slot counts (Airflow's `PoolResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolResponse {
    pub name: String,
    /// -1 for unlimited.
    pub slots: i32,
    pub description: Option<String>,
    /// Whether deferred task instances count against the pool.
    pub include_deferred: bool,
    /// Running and queued (and deferred, with `include_deferred`) task instances' slots.
    pub occupied_slots: i64,
    pub running_slots: i64,
    pub queued_slots: i64,
    pub scheduled_slots: i64,
    /// `slots - occupied_slots`; -1 for an unlimited pool.
    pub open_slots: i64,
    pub deferred_slots: i64,
    pub team_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolCollectionResponse {
    pub pools: Vec<PoolResponse>,
    pub total_entries: u64,
}
