//! Triggering a run by hand (API, CLI, `dags test`): checks the request like Airflow does and
//! creates the run.

use chrono::{DateTime, Utc};
use sea_orm::EntityTrait;
use updraft_shared::dag::Param;
use updraft_shared::state::{DagRunState, DagRunType};

use super::graph::run_id;
use std::sync::Arc;

use super::loaded::{DagCache, LoadedDag};
use super::timetable::DataInterval;
use crate::store::dags::dag;
use crate::store::entities::dag_run;
use crate::store::runs::{self, CreateRunError, NewRun};
use crate::store::{Db, StoreError};

/// What the caller asks for.
#[derive(Debug, Clone, Default)]
pub struct TriggerRequest {
    pub run_id: Option<String>,
    pub logical_date: Option<DateTime<Utc>>,
    pub data_interval: Option<DataInterval>,
    pub conf: Option<serde_json::Value>,
    pub note: Option<String>,
    pub triggered_by: String,
    /// Start at once, paused or not, on this queue (`dags test`).
    pub test_queue: Option<String>,
    /// The audit entry written with the run (API triggers).
    pub audit: Option<crate::store::audit::AuditEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("DAG {0} not found")]
    NotFound(String),
    #[error("DAG {0} cannot run: its file has import errors and no earlier version parsed (`updraft dags validate` shows them)")]
    NoVersion(String),
    #[error("{0}")]
    Invalid(String),
    #[error("DAG {dag_id} already has a run with run id {run_id}")]
    Duplicate { dag_id: String, run_id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sea_orm::DbErr> for TriggerError {
    fn from(e: sea_orm::DbErr) -> Self {
        TriggerError::Store(e.into())
    }
}

/// The current version of a DAG that exists (not stale) and has parsed at least once.
pub async fn runnable_dag(
    db: &Db,
    cache: &DagCache,
    dag_id: &str,
) -> Result<Arc<LoadedDag>, TriggerError> {
    let row = dag::Entity::find_by_id(dag_id.to_string())
        .one(db.conn())
        .await?
        .filter(|d| !d.is_stale)
        .ok_or_else(|| TriggerError::NotFound(dag_id.to_string()))?;
    let version = row
        .current_version_id
        .ok_or_else(|| TriggerError::NoVersion(dag_id.to_string()))?;
    Ok(cache.get(db, version).await?)
}

/// Creates a manual run of `dag_id` (queued; it starts when the DAG is unpaused and below
/// `max_active_runs`).
pub async fn trigger(
    db: &Db,
    cache: &DagCache,
    dag_id: &str,
    req: TriggerRequest,
) -> Result<dag_run::Model, TriggerError> {
    let loaded = runnable_dag(db, cache, dag_id).await?;
    let conf = match req.conf {
        None | Some(serde_json::Value::Null) => serde_json::Map::new(),
        Some(serde_json::Value::Object(map)) => map,
        Some(other) => {
            return Err(TriggerError::Invalid(format!(
                "conf must be a JSON object like {{\"key\": \"value\"}}, not {}",
                json_kind(&other)
            )))
        }
    };
    check_params(&loaded.dag.params, &conf)?;
    let run_after = req.logical_date.unwrap_or_else(crate::timefmt::now);
    let interval = req
        .data_interval
        .unwrap_or_else(|| loaded.manual_interval(run_after));
    if interval.end < interval.start {
        return Err(TriggerError::Invalid(
            "data_interval_end is before data_interval_start".into(),
        ));
    }
    let run_id = match req.run_id {
        Some(id) => {
            let id = id.trim().to_string();
            if id.is_empty() || id.len() > 250 {
                return Err(TriggerError::Invalid(
                    "dag_run_id must have 1 to 250 characters".into(),
                ));
            }
            id
        }
        None => run_id(DagRunType::Manual, run_after),
    };
    let test = req.test_queue.is_some();
    let new = NewRun {
        run_id,
        run_type: DagRunType::Manual,
        logical_date: Some(run_after),
        data_interval: Some(interval),
        run_after,
        conf,
        note: req.note,
        triggered_by: req.triggered_by,
        state: if test {
            DagRunState::Running
        } else {
            DagRunState::Queued
        },
        queue_override: req.test_queue,
        backfill_id: None,
        audit: req.audit,
    };
    match runs::create_run(db, &loaded, new).await {
        Ok(run) => Ok(run),
        Err(CreateRunError::Duplicate { dag_id, run_id }) => {
            Err(TriggerError::Duplicate { dag_id, run_id })
        }
        Err(CreateRunError::Store(e)) => Err(e.into()),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Checks conf values against the DAG's params (type, enum, bounds, lengths, pattern), as
/// Airflow validates params when a run is triggered. Keys without a param are allowed.
pub fn check_params(
    params: &indexmap::IndexMap<String, Param>,
    conf: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), TriggerError> {
    use serde_json::Value;
    for (name, param) in params {
        let value = match conf.get(name) {
            Some(v) => v,
            None => continue,
        };
        let bad = |why: String| {
            Err(TriggerError::Invalid(format!(
                "param {name}: {why} (got {value})"
            )))
        };
        if let Some(t) = &param.type_ {
            let ok = match t.as_str() {
                "string" => value.is_string(),
                "number" => value.is_number(),
                "integer" => value.is_i64() || value.is_u64(),
                "boolean" => value.is_boolean(),
                "array" => value.is_array(),
                "object" => value.is_object(),
                "null" => value.is_null(),
                _ => true,
            };
            if !ok {
                return bad(format!("must be of type {t}"));
            }
        }
        if let Some(allowed) = &param.enum_ {
            if !allowed.contains(value) {
                let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
                return bad(format!("must be one of {}", list.join(", ")));
            }
        }
        if let Some(n) = value.as_f64() {
            if param.minimum.is_some_and(|m| n < m) {
                return bad(format!(
                    "must be at least {}",
                    param.minimum.unwrap_or_default()
                ));
            }
            if param.maximum.is_some_and(|m| n > m) {
                return bad(format!(
                    "must be at most {}",
                    param.maximum.unwrap_or_default()
                ));
            }
        }
        if let Some(s) = value.as_str() {
            let len = s.chars().count() as u64;
            if param.min_length.is_some_and(|m| len < m) {
                return bad(format!(
                    "must have at least {} characters",
                    param.min_length.unwrap_or_default()
                ));
            }
            if param.max_length.is_some_and(|m| len > m) {
                return bad(format!(
                    "must have at most {} characters",
                    param.max_length.unwrap_or_default()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use updraft_shared::dag::parse_dag;

    #[test]
    fn conf_is_checked_against_params() {
        let dag = parse_dag(
            b"dag_id: d\nparams:\n  n: {default: 1, type: integer, minimum: 0, maximum: 10}\n  mode: {default: a, enum: [a, b]}\n  name: {default: x, type: string, maxLength: 3}\ntasks:\n  - {id: a, operator: empty}\n",
        )
        .unwrap();
        let check = |conf: serde_json::Value| {
            check_params(&dag.params, conf.as_object().unwrap()).map_err(|e| e.to_string())
        };
        assert!(check(serde_json::json!({"n": 3, "mode": "b", "other": [1]})).is_ok());
        let err = check(serde_json::json!({"n": "3"})).unwrap_err();
        assert!(err.contains("param n: must be of type integer"), "{err}");
        assert!(check(serde_json::json!({"n": 11}))
            .unwrap_err()
            .contains("at most 10"));
        assert!(check(serde_json::json!({"mode": "c"}))
            .unwrap_err()
            .contains("one of"));
        assert!(check(serde_json::json!({"name": "long"}))
            .unwrap_err()
            .contains("at most 3"));
    }
}
