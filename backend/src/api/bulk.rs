//! Bulk requests (`PATCH /api/v2/<collection>`, Airflow's `BulkBody[T]`): create, update and
//! delete many entities in one transaction, the same way for variables, connections and
//! pools. Each collection says how to find, write and check its rows ([`BulkResource`]);
//! [`run`] does the rest: validation, the audit entry, `action_on_existence` /
//! `action_on_non_existence`, and the `errors` entries Airflow's clients expect.

use std::collections::{BTreeSet, HashMap};

use sea_orm::{DatabaseConnection, DatabaseTransaction};
use serde_json::{json, Value};
use updraft_shared::api::{
    BulkAction, BulkActionNotOnExistence, BulkActionOnExistence, BulkActionResponse, BulkBody,
    BulkDeleteEntity, BulkResponse,
};

use super::variables::{audited_txn, update_mask, Mask};
use super::ApiError;
use crate::auth::Identity;

/// Why a bulk action is refused: its `errors` entry's text and status code.
pub(crate) type Refusal = (String, u16);

/// A collection that takes bulk requests.
pub(crate) trait BulkResource {
    /// An entity as the request gives it (Airflow's `<Name>Body`).
    type Body;
    /// A stored row.
    type Row;

    /// The audit log's event, e.g. `bulk_variables`.
    const EVENT: &'static str;
    /// How errors name a set of entities, e.g. `variables with these keys`.
    const WHAT: &'static str;
    /// The field names an `update_mask` may hold.
    const MASK_FIELDS: &'static [&'static str];

    /// An entity's key (`key`, `connection_id`, `name`).
    fn key(body: &Self::Body) -> &str;
    fn row_key(row: &Self::Row) -> &str;
    /// The body as it will be written, or a 4xx saying what to fix.
    fn checked(&self, body: Self::Body) -> Result<Self::Body, ApiError>;
    /// What the audit log keeps of the (checked) actions.
    fn audit(&self, actions: &[BulkAction<Self::Body>]) -> Value;

    /// The stored rows among `keys`.
    async fn existing(
        &self,
        txn: &DatabaseTransaction,
        keys: &[String],
    ) -> Result<Vec<Self::Row>, ApiError>;
    async fn insert(
        &self,
        txn: &DatabaseTransaction,
        body: &Self::Body,
    ) -> Result<Self::Row, ApiError>;
    /// `create` with `action_on_existence: overwrite`.
    async fn overwrite(
        &self,
        txn: &DatabaseTransaction,
        row: Self::Row,
        body: &Self::Body,
    ) -> Result<Self::Row, ApiError>;
    /// `update`: the body's fields that `mask` allows.
    async fn update(
        &self,
        txn: &DatabaseTransaction,
        row: Self::Row,
        body: &Self::Body,
        mask: &Mask,
    ) -> Result<Self::Row, ApiError>;
    async fn delete(&self, txn: &DatabaseTransaction, key: &str) -> Result<(), ApiError>;

    /// A reason to refuse a whole `update` action of existing `keys`.
    fn refuse_update(&self, _keys: &[String], _mask: &Mask) -> Option<Refusal> {
        None
    }
    /// A reason to refuse a whole `delete` action, before looking the keys up.
    fn refuse_delete(&self, _keys: &[String]) -> Option<Refusal> {
        None
    }
    /// A reason the existing row `key` cannot be deleted (refusing the whole action).
    async fn check_deletable(&self, _txn: &DatabaseTransaction, _key: &str) -> Result<(), Refusal> {
        Ok(())
    }
}

/// Checks every action, records the audit entry, then runs the actions in order in one
/// transaction. An action refused as a whole leaves an `errors` entry and changes nothing;
/// the others still run.
pub(crate) async fn run<R: BulkResource>(
    resource: &R,
    db: &DatabaseConnection,
    user: &Identity,
    body: BulkBody<R::Body>,
) -> Result<BulkResponse, ApiError> {
    let actions = body
        .actions
        .into_iter()
        .map(|action| checked(resource, action))
        .collect::<Result<Vec<_>, _>>()?;
    for action in &actions {
        if let BulkAction::Update { update_mask: m, .. } = action {
            update_mask(m.as_deref().unwrap_or_default(), R::MASK_FIELDS)?;
        }
    }
    let txn = audited_txn(db, user, R::EVENT, resource.audit(&actions)).await?;
    let mut out = BulkResponse::default();
    for action in actions {
        match action {
            BulkAction::Create {
                entities,
                action_on_existence,
            } => {
                let results = out.create.get_or_insert_with(Default::default);
                create(resource, &txn, entities, action_on_existence, results).await?;
            }
            BulkAction::Update {
                entities,
                update_mask: mask,
                action_on_non_existence,
            } => {
                let results = out.update.get_or_insert_with(Default::default);
                let mask = update_mask(&mask.unwrap_or_default(), R::MASK_FIELDS)?;
                update(
                    resource,
                    &txn,
                    entities,
                    &mask,
                    action_on_non_existence,
                    results,
                )
                .await?;
            }
            BulkAction::Delete {
                entities,
                action_on_non_existence,
            } => {
                let results = out.delete.get_or_insert_with(Default::default);
                let keys = delete_keys::<R>(&entities);
                delete(resource, &txn, keys, action_on_non_existence, results).await?;
            }
        }
    }
    txn.commit().await?;
    Ok(out)
}

fn checked<R: BulkResource>(
    resource: &R,
    action: BulkAction<R::Body>,
) -> Result<BulkAction<R::Body>, ApiError> {
    let check = |entities: Vec<R::Body>| {
        entities
            .into_iter()
            .map(|e| resource.checked(e))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match action {
        BulkAction::Create {
            entities,
            action_on_existence,
        } => BulkAction::Create {
            entities: check(entities)?,
            action_on_existence,
        },
        BulkAction::Update {
            entities,
            update_mask,
            action_on_non_existence,
        } => BulkAction::Update {
            entities: check(entities)?,
            update_mask,
            action_on_non_existence,
        },
        delete => delete,
    })
}

/// The audit summary variables and connections keep: each entity as `shown` (secrets
/// masked), and the keys a delete names under `delete_field`.
pub(crate) fn audit_summary<R: BulkResource>(
    actions: &[BulkAction<R::Body>],
    delete_field: &str,
    shown: impl Fn(&R::Body) -> Value,
) -> Value {
    let summary: Vec<Value> = actions
        .iter()
        .map(|action| match action {
            BulkAction::Create { entities, .. } | BulkAction::Update { entities, .. } => json!({
                "action": if matches!(action, BulkAction::Create { .. }) { "create" } else { "update" },
                "entities": entities.iter().map(&shown).collect::<Vec<_>>(),
            }),
            BulkAction::Delete { entities, .. } => {
                json!({"action": "delete", delete_field: delete_keys::<R>(entities)})
            }
        })
        .collect();
    json!({ "actions": summary })
}

/// The keys a delete names, each once, in the order given.
fn delete_keys<R: BulkResource>(entities: &[BulkDeleteEntity<R::Body>]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for e in entities {
        let key = match e {
            BulkDeleteEntity::Key(k) => k.as_str(),
            BulkDeleteEntity::Entity(body) => R::key(body),
        };
        if !keys.iter().any(|k| k == key) {
            keys.push(key.to_string());
        }
    }
    keys
}

async fn existing_by_key<R: BulkResource>(
    resource: &R,
    txn: &DatabaseTransaction,
    keys: &[String],
) -> Result<HashMap<String, R::Row>, ApiError> {
    Ok(resource
        .existing(txn, keys)
        .await?
        .into_iter()
        .map(|r| (R::row_key(&r).to_string(), r))
        .collect())
}

/// The 404 entry when `on_non_existence` is `fail` and some of `keys` are not stored.
fn missing_refusal<R: BulkResource, V>(
    keys: &[String],
    rows: &HashMap<String, V>,
    on_non_existence: BulkActionNotOnExistence,
) -> Option<Refusal> {
    let missing: Vec<&String> = keys.iter().filter(|k| !rows.contains_key(*k)).collect();
    if on_non_existence == BulkActionNotOnExistence::Fail && !missing.is_empty() {
        let detail = format!("The {}: {} were not found.", R::WHAT, py_set(missing));
        return Some((detail, 404));
    }
    None
}

async fn create<R: BulkResource>(
    resource: &R,
    txn: &DatabaseTransaction,
    entities: Vec<R::Body>,
    on_existence: BulkActionOnExistence,
    results: &mut BulkActionResponse,
) -> Result<(), ApiError> {
    let keys: Vec<String> = entities.iter().map(|e| R::key(e).to_string()).collect();
    let mut rows = existing_by_key(resource, txn, &keys).await?;
    if on_existence == BulkActionOnExistence::Fail && !rows.is_empty() {
        let detail = format!("The {}: {} already exist.", R::WHAT, py_set(rows.keys()));
        bulk_error(results, (detail, 409));
        return Ok(());
    }
    for (body, key) in entities.into_iter().zip(keys) {
        let row = match rows.remove(&key) {
            Some(_) if on_existence == BulkActionOnExistence::Skip => continue,
            Some(row) => resource.overwrite(txn, row, &body).await?,
            None => resource.insert(txn, &body).await?,
        };
        results.success.push(key.clone());
        // A key given twice in one action: the second overwrites the first.
        rows.insert(key, row);
    }
    Ok(())
}

async fn update<R: BulkResource>(
    resource: &R,
    txn: &DatabaseTransaction,
    entities: Vec<R::Body>,
    mask: &Mask,
    on_non_existence: BulkActionNotOnExistence,
    results: &mut BulkActionResponse,
) -> Result<(), ApiError> {
    let keys: Vec<String> = entities.iter().map(|e| R::key(e).to_string()).collect();
    let mut rows = existing_by_key(resource, txn, &keys).await?;
    let refusal = missing_refusal::<R, _>(&keys, &rows, on_non_existence)
        .or_else(|| resource.refuse_update(&keys, mask));
    if let Some(refusal) = refusal {
        bulk_error(results, refusal);
        return Ok(());
    }
    for (body, key) in entities.into_iter().zip(keys) {
        let Some(row) = rows.remove(&key) else {
            continue;
        };
        let row = resource.update(txn, row, &body, mask).await?;
        results.success.push(key.clone());
        rows.insert(key, row);
    }
    Ok(())
}

async fn delete<R: BulkResource>(
    resource: &R,
    txn: &DatabaseTransaction,
    keys: Vec<String>,
    on_non_existence: BulkActionNotOnExistence,
    results: &mut BulkActionResponse,
) -> Result<(), ApiError> {
    if let Some(refusal) = resource.refuse_delete(&keys) {
        bulk_error(results, refusal);
        return Ok(());
    }
    let rows = existing_by_key(resource, txn, &keys).await?;
    if let Some(refusal) = missing_refusal::<R, _>(&keys, &rows, on_non_existence) {
        bulk_error(results, refusal);
        return Ok(());
    }
    let found: Vec<String> = keys.into_iter().filter(|k| rows.contains_key(k)).collect();
    for key in &found {
        if let Err(refusal) = resource.check_deletable(txn, key).await {
            bulk_error(results, refusal);
            return Ok(());
        }
    }
    for key in found {
        resource.delete(txn, &key).await?;
        results.success.push(key);
    }
    Ok(())
}

/// Names the way Airflow prints a set in its bulk errors: `{'a', 'b'}`.
fn py_set<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let sorted: BTreeSet<&String> = names.into_iter().collect();
    let inner: Vec<String> = sorted.iter().map(|n| format!("'{n}'")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// One entry of a bulk action's `errors`.
fn bulk_error(results: &mut BulkActionResponse, (detail, status): Refusal) {
    results
        .errors
        .push(json!({"error": detail, "status_code": status}));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_print_sorted_like_python() {
        let names = ["b".to_string(), "a".to_string(), "b".to_string()];
        assert_eq!(py_set(&names), "{'a', 'b'}");
    }
}
