//! The audit log (Airflow's `log` table, served as `/api/v2/eventLogs`): one row per mutation,
//! written in the same transaction as the change so neither exists without the other.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

use super::entities::audit_log;
use super::StoreError;

/// One audited event. `extra` must already have its secrets masked.
#[derive(Debug, Default, Clone)]
pub struct AuditEntry {
    pub event: String,
    pub owner: Option<String>,
    pub dag_id: Option<String>,
    pub task_id: Option<String>,
    pub run_id: Option<String>,
    pub map_index: Option<i32>,
    pub try_number: Option<i32>,
    pub logical_date: Option<DateTime<Utc>>,
    pub extra: Option<serde_json::Value>,
}

impl AuditEntry {
    pub fn new(event: &str, owner: &str) -> Self {
        Self {
            event: event.to_string(),
            owner: Some(owner.to_string()),
            ..Default::default()
        }
    }

    pub fn dag(mut self, dag_id: &str) -> Self {
        self.dag_id = Some(dag_id.to_string());
        self
    }

    pub fn run(mut self, run_id: &str) -> Self {
        self.run_id = Some(run_id.to_string());
        self
    }

    pub fn task(mut self, task_id: &str) -> Self {
        self.task_id = Some(task_id.to_string());
        self
    }

    pub fn extra(mut self, extra: serde_json::Value) -> Self {
        self.extra = Some(extra);
        self
    }
}

/// Writes the entry with the caller's connection or transaction.
pub async fn record(conn: &impl ConnectionTrait, entry: AuditEntry) -> Result<(), StoreError> {
    audit_log::Entity::insert(audit_log::ActiveModel {
        dttm: Set(Utc::now()),
        event: Set(entry.event),
        owner: Set(entry.owner),
        dag_id: Set(entry.dag_id),
        task_id: Set(entry.task_id),
        run_id: Set(entry.run_id),
        map_index: Set(entry.map_index),
        try_number: Set(entry.try_number),
        logical_date: Set(entry.logical_date),
        extra: Set(entry.extra.map(|e| e.to_string())),
        ..Default::default()
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}
