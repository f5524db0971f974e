//! The bulk-request models that every `PATCH /api/v2/<collection>` shares (Airflow's
//! `BulkBody[T]` and `BulkResponse`).

use serde::{Deserialize, Serialize};

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
    use crate::api::VariableBody;
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
