//! Variables (Airflow's `Variable*` models), and the bulk-request models that every
//! `PATCH /api/v2/<collection>` shares (Airflow's `BulkBody[T]` and `BulkResponse`).

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

// ---------------------------------------------------------------------------------------
// Bulk requests (shared by variables, connections and pools)
// ---------------------------------------------------------------------------------------

/// What a bulk `create` does with an entity that exists already.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum BulkActionOnExistence {
    #[default]
    Fail,
    Skip,
    Overwrite,
}

/// What a bulk `update` or `delete` does with an entity that does not exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum BulkActionNotOnExistence {
    #[default]
    Fail,
    Skip,
}

/// One action of a bulk request, told apart by its `action` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum BulkAction<T> {
    Create {
        entities: Vec<T>,
        #[serde(default)]
        action_on_existence: BulkActionOnExistence,
    },
    Update {
        entities: Vec<T>,
        /// Only these fields are changed; all given ones when absent.
        #[serde(default)]
        update_mask: Option<Vec<String>>,
        #[serde(default)]
        action_on_non_existence: BulkActionNotOnExistence,
    },
    Delete {
        /// Keys, or entities whose key is used.
        entities: Vec<BulkDeleteEntity<T>>,
        #[serde(default)]
        action_on_non_existence: BulkActionNotOnExistence,
    },
}

/// What a bulk `delete` names: a key or a whole entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum BulkDeleteEntity<T> {
    Key(String),
    Entity(T),
}

/// `PATCH /api/v2/<collection>` (Airflow's `BulkBody[T]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BulkBody<T> {
    pub actions: Vec<BulkAction<T>>,
}

/// The outcome of the actions of one kind (Airflow's `BulkActionResponse`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BulkActionResponse {
    /// Keys of the entities changed.
    pub success: Vec<String>,
    /// `{"error": "...", "status_code": 409}` per failed action.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub errors: Vec<serde_json::Value>,
}

/// Airflow's `BulkResponse`: null for the kinds of action the request had none of.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BulkResponse {
    pub create: Option<BulkActionResponse>,
    pub update: Option<BulkActionResponse>,
    pub delete: Option<BulkActionResponse>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bulk_bodies_read_as_airflow_clients_send_them() {
        let body: BulkBody<VariableBody> = serde_json::from_value(json!({"actions": [
            {"action": "create", "entities": [{"key": "a", "value": "1"}], "action_on_existence": "skip"},
            {"action": "update", "entities": [{"key": "a", "value": 2, "description": null}]},
            {"action": "delete", "entities": ["a", {"key": "b", "value": null}]},
        ]}))
        .unwrap();
        assert!(matches!(
            &body.actions[0],
            BulkAction::Create {
                action_on_existence: BulkActionOnExistence::Skip,
                ..
            }
        ));
        let BulkAction::Update { entities, .. } = &body.actions[1] else {
            panic!("update");
        };
        assert_eq!(entities[0].description, Some(None));
        let BulkAction::Delete { entities, .. } = &body.actions[2] else {
            panic!("delete");
        };
        assert_eq!(entities[0], BulkDeleteEntity::Key("a".into()));
        assert!(matches!(&entities[1], BulkDeleteEntity::Entity(v) if v.key == "b"));
        let bad: Result<BulkBody<VariableBody>, _> =
            serde_json::from_value(json!({"actions": [{"action": "explode", "entities": []}]}));
        assert!(bad.is_err());
    }
}
