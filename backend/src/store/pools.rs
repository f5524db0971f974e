//! Pools (`slot_pool`) and how many slots their task instances take, by state.

use std::collections::HashMap;

use sea_orm::sea_query::{Alias, Expr, Func};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr,
    EntityTrait, Order, QueryFilter, QuerySelect,
};

use crate::store::entities::{slot_pool, task_instance};
use crate::store::variables::{delete_named, existing_named, find_named, page_of};

pub use slot_pool::{Column, Model};

/// Airflow's name of the pool tasks use when they name none; it cannot be deleted.
pub const DEFAULT_POOL: &str = "default_pool";

/// Slots taken in one pool, by task instance state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotCounts {
    pub running: i64,
    pub queued: i64,
    pub scheduled: i64,
    pub deferred: i64,
}

impl SlotCounts {
    /// Airflow's `occupied_slots`: running and queued, and deferred when the pool counts them.
    pub fn occupied(&self, include_deferred: bool) -> i64 {
        self.running + self.queued + if include_deferred { self.deferred } else { 0 }
    }

    /// Airflow's `open_slots`: -1 for an unlimited pool (`slots` = -1).
    pub fn open(&self, slots: i32, include_deferred: bool) -> i64 {
        if slots == -1 {
            -1
        } else {
            i64::from(slots) - self.occupied(include_deferred)
        }
    }
}

pub async fn find(conn: &impl ConnectionTrait, name: &str) -> Result<Option<Model>, DbErr> {
    find_named::<slot_pool::Entity>(conn, Column::Pool, name).await
}

/// The rows whose names are among `names`.
pub async fn existing(conn: &impl ConnectionTrait, names: &[String]) -> Result<Vec<Model>, DbErr> {
    existing_named::<slot_pool::Entity>(conn, Column::Pool, names).await
}

/// One page of pools matching `filter`, and how many match in all.
pub async fn page(
    conn: &impl ConnectionTrait,
    filter: Option<Condition>,
    order: &[(Column, Order)],
    limit: u64,
    offset: u64,
) -> Result<(Vec<Model>, u64), DbErr> {
    page_of::<slot_pool::Entity>(conn, filter, order, Column::Id, limit, offset).await
}

/// What a pool is made of, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolFields {
    pub name: String,
    pub slots: i32,
    pub description: Option<String>,
    pub include_deferred: bool,
}

pub async fn insert(conn: &impl ConnectionTrait, p: &PoolFields) -> Result<Model, DbErr> {
    slot_pool::ActiveModel {
        pool: Set(p.name.clone()),
        slots: Set(p.slots),
        description: Set(p.description.clone()),
        include_deferred: Set(p.include_deferred),
        ..Default::default()
    }
    .insert(conn)
    .await
}

/// Writes `p` over the row `id` (the name stays).
pub async fn replace(
    conn: &impl ConnectionTrait,
    row: Model,
    p: &PoolFields,
) -> Result<Model, DbErr> {
    let mut active: slot_pool::ActiveModel = row.into();
    active.slots = Set(p.slots);
    active.description = Set(p.description.clone());
    active.include_deferred = Set(p.include_deferred);
    active.update(conn).await
}

pub async fn delete(conn: &impl ConnectionTrait, name: &str) -> Result<u64, DbErr> {
    delete_named::<slot_pool::Entity>(conn, Column::Pool, name).await
}

/// Slots taken per pool (of `names`, or of all pools when `None`), from the task instances
/// that are running, queued, scheduled or deferred.
pub async fn slot_counts(
    conn: &impl ConnectionTrait,
    names: Option<&[String]>,
) -> Result<HashMap<String, SlotCounts>, DbErr> {
    let sum = Expr::expr(Func::sum(Expr::col(task_instance::Column::PoolSlots)))
        .cast_as(Alias::new("BIGINT"));
    let mut query = task_instance::Entity::find()
        .select_only()
        .column(task_instance::Column::Pool)
        .column(task_instance::Column::State)
        .column_as(sum, "slots")
        .filter(task_instance::Column::State.is_in(["running", "queued", "scheduled", "deferred"]))
        .group_by(task_instance::Column::Pool)
        .group_by(task_instance::Column::State);
    if let Some(names) = names {
        query = query.filter(task_instance::Column::Pool.is_in(names.iter().cloned()));
    }
    let rows: Vec<(String, Option<String>, Option<i64>)> = query.into_tuple().all(conn).await?;
    let mut out: HashMap<String, SlotCounts> = HashMap::new();
    for (pool, state, slots) in rows {
        let counts = out.entry(pool).or_default();
        let slots = slots.unwrap_or(0);
        match state.as_deref() {
            Some("running") => counts.running += slots,
            Some("queued") => counts.queued += slots,
            Some("scheduled") => counts.scheduled += slots,
            Some("deferred") => counts.deferred += slots,
            _ => {}
        }
    }
    Ok(out)
}
