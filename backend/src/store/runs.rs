//! DAG runs, task instances, their tries, XComs and leases: the engine's queries. Every state
//! change that must survive a crash is one transaction.

use chrono::{DateTime, Utc};
use sea_orm::prelude::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseTransaction,
    EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Statement,
    TransactionTrait,
};
use updraft_shared::state::{DagRunState, DagRunType, TaskInstanceState};

use super::entities::{dag_run, task_instance, task_instance_history, xcom};
use super::{Db, StoreError};
use crate::config::DatabaseKind;
use crate::scheduler::loaded::LoadedDag;
use crate::scheduler::timetable::DataInterval;

/// Rows per multi-row statement (SQLite allows 32766 bound values per statement).
const CHUNK: usize = 500;

/// A run to create.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub run_id: String,
    pub run_type: DagRunType,
    pub logical_date: Option<DateTime<Utc>>,
    pub data_interval: Option<DataInterval>,
    pub run_after: DateTime<Utc>,
    pub conf: serde_json::Map<String, serde_json::Value>,
    pub note: Option<String>,
    /// Who asked: `scheduler`, `cli`, `rest_api`, `test`, …
    pub triggered_by: String,
    /// `queued` normally; `running` for `dags test`, which runs at once even when paused.
    pub state: DagRunState,
    /// Queue for every task instance instead of each task's own (`dags test` uses its own).
    pub queue_override: Option<String>,
    /// The backfill that creates this run.
    pub backfill_id: Option<i64>,
    /// Written in the run's transaction (run id, DAG and logical date filled in).
    pub audit: Option<super::audit::AuditEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateRunError {
    #[error("DAG {dag_id} already has a run with run id {run_id}")]
    Duplicate { dag_id: String, run_id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sea_orm::DbErr> for CreateRunError {
    fn from(e: sea_orm::DbErr) -> Self {
        CreateRunError::Store(e.into())
    }
}

/// Creates a run with a task instance (no state yet) for every task of `dag`, in one
/// transaction.
pub async fn create_run(
    db: &Db,
    dag: &LoadedDag,
    new: NewRun,
) -> Result<dag_run::Model, CreateRunError> {
    let txn = db.conn().begin().await?;
    let run = create_run_in(&txn, dag, new, Utc::now()).await?;
    txn.commit().await?;
    Ok(run)
}

/// `create_run` inside the caller's transaction (so a caller's own writes commit with it).
pub async fn create_run_in(
    txn: &DatabaseTransaction,
    dag: &LoadedDag,
    new: NewRun,
    now: DateTime<Utc>,
) -> Result<dag_run::Model, CreateRunError> {
    let dag_id = dag.dag.dag_id.clone();
    // Insert first (a unique violation means a duplicate): on SQLite a transaction that
    // writes first waits for the write lock instead of failing with SQLITE_BUSY.
    let conf = serde_json::Value::Object(new.conf).to_string();
    let running = new.state == DagRunState::Running;
    let row = dag_run::ActiveModel {
        dag_id: Set(dag_id.clone()),
        run_id: Set(new.run_id.clone()),
        run_type: Set(new.run_type.as_str().into()),
        state: Set(new.state.as_str().into()),
        logical_date: Set(new.logical_date),
        data_interval_start: Set(new.data_interval.map(|i| i.start)),
        data_interval_end: Set(new.data_interval.map(|i| i.end)),
        run_after: Set(new.run_after),
        queued_at: Set(Some(now)),
        start_date: Set(running.then_some(now)),
        end_date: Set(None),
        conf: Set(conf),
        note: Set(new.note),
        triggered_by: Set(Some(new.triggered_by)),
        dag_version_id: Set(dag.version_id),
        backfill_id: Set(new.backfill_id),
        clear_number: Set(0),
        last_scheduling_decision: Set(None),
        updated_at: Set(now),
        ..Default::default()
    };
    let inserted = match dag_run::Entity::insert(row).exec(txn).await {
        Ok(r) => r.last_insert_id,
        Err(e) if is_unique_violation(&e) => {
            return Err(CreateRunError::Duplicate {
                dag_id,
                run_id: new.run_id,
            })
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(mut entry) = new.audit {
        entry.dag_id = Some(dag_id.clone());
        entry.run_id = Some(new.run_id.clone());
        entry.logical_date = new.logical_date;
        super::audit::record(txn, entry).await?;
    }
    let tis: Vec<task_instance::ActiveModel> = dag
        .dag
        .tasks
        .iter()
        .enumerate()
        .map(|(i, task)| task_instance::ActiveModel {
            dag_run_id: Set(inserted),
            dag_id: Set(dag_id.clone()),
            run_id: Set(new.run_id.clone()),
            task_id: Set(task.id.clone()),
            map_index: Set(-1),
            state: Set(None),
            try_number: Set(0),
            max_tries: Set(dag.retries(i) as i32),
            operator: Set(task.operator.name().into()),
            pool: Set(dag.pool(i).into()),
            pool_slots: Set(dag.pool_slots(i) as i32),
            queue: Set(new
                .queue_override
                .clone()
                .unwrap_or_else(|| dag.queue(i).into())),
            priority_weight: Set(dag.weights[i].clamp(i32::MIN as i64, i32::MAX as i64) as i32),
            hostname: Set(String::new()),
            dag_version_id: Set(dag.version_id),
            updated_at: Set(now),
            ..Default::default()
        })
        .collect();
    for chunk in tis.chunks(CHUNK) {
        task_instance::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    let run = dag_run::Entity::find_by_id(inserted)
        .one(txn)
        .await?
        .ok_or_else(|| StoreError::Db(sea_orm::DbErr::RecordNotFound("new run".into())))?;
    Ok(run)
}

fn is_unique_violation(e: &sea_orm::DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// The data interval of the newest scheduled run of `dag_id`: where its timetable goes on.
pub async fn latest_automated_interval(
    db: &Db,
    dag_id: &str,
) -> Result<Option<DataInterval>, StoreError> {
    let run = dag_run::Entity::find()
        .filter(dag_run::Column::DagId.eq(dag_id))
        .filter(dag_run::Column::RunType.eq(DagRunType::Scheduled.as_str()))
        .order_by_desc(dag_run::Column::LogicalDate)
        .one(db.conn())
        .await?;
    Ok(run.and_then(|r| {
        Some(DataInterval {
            start: r.data_interval_start?,
            end: r.data_interval_end?,
        })
    }))
}

/// Runs that are queued or running, oldest first.
pub async fn active_runs(db: &Db) -> Result<Vec<dag_run::Model>, StoreError> {
    Ok(dag_run::Entity::find()
        .filter(
            dag_run::Column::State
                .is_in([DagRunState::Queued.as_str(), DagRunState::Running.as_str()]),
        )
        .order_by_asc(dag_run::Column::RunAfter)
        .order_by_asc(dag_run::Column::Id)
        .all(db.conn())
        .await?)
}

/// What the scheduler reads of a task instance.
#[derive(Debug, Clone, FromQueryResult)]
pub struct TiRow {
    pub id: i64,
    pub dag_run_id: i64,
    pub task_id: String,
    pub state: Option<String>,
    pub try_number: i32,
    pub max_tries: i32,
    pub pool: String,
    pub pool_slots: i32,
    pub priority_weight: i32,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub lease_owner: Option<i64>,
    pub updated_at: DateTime<Utc>,
    pub reclaims: i32,
}

impl TiRow {
    pub fn state(&self) -> Option<TaskInstanceState> {
        self.state.as_deref().and_then(TaskInstanceState::parse)
    }
}

/// The task instances of the given runs.
pub async fn task_instances_of(db: &Db, run_ids: &[i64]) -> Result<Vec<TiRow>, StoreError> {
    use task_instance::Column as C;
    let mut rows = Vec::new();
    for chunk in run_ids.chunks(CHUNK) {
        let part = task_instance::Entity::find()
            .select_only()
            .columns([
                C::Id,
                C::DagRunId,
                C::TaskId,
                C::State,
                C::TryNumber,
                C::MaxTries,
                C::Pool,
                C::PoolSlots,
                C::PriorityWeight,
                C::NextRetryAt,
                C::LeaseExpiresAt,
                C::LeaseOwner,
                C::UpdatedAt,
                C::Reclaims,
            ])
            .filter(C::DagRunId.is_in(chunk.iter().copied()))
            .into_model::<TiRow>()
            .all(db.conn())
            .await?;
        rows.extend(part);
    }
    Ok(rows)
}

/// A try whose worker died (its lease expired) goes back to the queue as the same try, without
/// costing one of the task's retries: the worker's death is not the task's failure. Guarded by
/// state, owner and try, like [`finish_try`]. False when the row moved on meanwhile.
pub async fn reclaim(
    db: &Db,
    ti_id: i64,
    owner: Option<i64>,
    try_number: i32,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    use task_instance::Column as C;
    let mut update = task_instance::Entity::update_many()
        .col_expr(C::State, Expr::value(TaskInstanceState::Queued.as_str()))
        .col_expr(C::LeaseOwner, Expr::value(Option::<i64>::None))
        .col_expr(
            C::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(C::QueuedDttm, Expr::value(now))
        .col_expr(C::Reclaims, Expr::col(C::Reclaims).add(1))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Id.eq(ti_id))
        .filter(C::State.eq(TaskInstanceState::Running.as_str()))
        .filter(C::TryNumber.eq(try_number));
    if let Some(owner) = owner {
        update = update.filter(C::LeaseOwner.eq(owner));
    }
    Ok(update.exec(db.conn()).await?.rows_affected > 0)
}

/// Marks these backfills completed when none of their runs is queued or running any more.
pub async fn complete_backfills(
    db: &Db,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    use super::entities::backfill;
    use sea_orm::sea_query::Query;
    let unfinished = Query::select()
        .expr(Expr::val(1))
        .from(dag_run::Entity)
        .and_where(
            Expr::col((dag_run::Entity, dag_run::Column::BackfillId))
                .equals((backfill::Entity, backfill::Column::Id)),
        )
        .and_where(
            Expr::col((dag_run::Entity, dag_run::Column::State))
                .is_in([DagRunState::Queued.as_str(), DagRunState::Running.as_str()]),
        )
        .to_owned();
    backfill::Entity::update_many()
        .col_expr(backfill::Column::CompletedAt, Expr::value(now))
        .col_expr(backfill::Column::UpdatedAt, Expr::value(now))
        .filter(backfill::Column::Id.is_in(ids.iter().copied()))
        .filter(backfill::Column::CompletedAt.is_null())
        .filter(Expr::exists(unfinished).not())
        .exec(db.conn())
        .await?;
    Ok(())
}

/// Task instances left `restarting` (cleared while running) since before `before`: their old
/// try has stopped by now (it cannot renew a lease the clear took away), so they go to no
/// state and run again. Normally the API process releases them itself at once; this covers
/// a crash in between.
pub async fn release_stale_restarting(
    db: &Db,
    ids: &[i64],
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    use task_instance::Column as C;
    task_instance::Entity::update_many()
        .col_expr(C::State, Expr::value(Option::<String>::None))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Id.is_in(ids.iter().copied()))
        .filter(C::State.eq(TaskInstanceState::Restarting.as_str()))
        .filter(C::UpdatedAt.lt(before))
        .exec(db.conn())
        .await?;
    Ok(())
}

/// The state of `task_id` in the run of `dag_id` just before `logical_date` (for
/// `depends_on_past`): None when there is no earlier run, Some(None) when the task had no
/// state there.
pub async fn previous_ti_state(
    db: &Db,
    dag_id: &str,
    task_id: &str,
    logical_date: DateTime<Utc>,
) -> Result<Option<Option<String>>, StoreError> {
    let Some(prev) = dag_run::Entity::find()
        .filter(dag_run::Column::DagId.eq(dag_id))
        .filter(dag_run::Column::LogicalDate.lt(logical_date))
        .order_by_desc(dag_run::Column::LogicalDate)
        .one(db.conn())
        .await?
    else {
        return Ok(None);
    };
    let ti = task_instance::Entity::find()
        .filter(task_instance::Column::DagRunId.eq(prev.id))
        .filter(task_instance::Column::TaskId.eq(task_id))
        .one(db.conn())
        .await?;
    // A task that did not exist in the earlier run does not hold this one back.
    Ok(Some(match ti {
        Some(ti) => ti.state,
        None => Some(TaskInstanceState::Success.as_str().into()),
    }))
}

/// The newest successful run of `dag_id` before `logical_date` (for `prev_*_success`).
pub async fn previous_success(
    db: &Db,
    dag_id: &str,
    logical_date: DateTime<Utc>,
) -> Result<Option<dag_run::Model>, StoreError> {
    Ok(dag_run::Entity::find()
        .filter(dag_run::Column::DagId.eq(dag_id))
        .filter(dag_run::Column::State.eq(DagRunState::Success.as_str()))
        .filter(dag_run::Column::LogicalDate.lt(logical_date))
        .order_by_desc(dag_run::Column::LogicalDate)
        .one(db.conn())
        .await?)
}

/// A batch of scheduling decisions, written in one transaction.
#[derive(Debug, Default)]
pub struct Decisions {
    /// Queued runs that start now.
    pub start_runs: Vec<i64>,
    /// Runs that finished, with their final state.
    pub finish_runs: Vec<(i64, DagRunState)>,
    /// Task instances (no state or up_for_retry) that start a new try and are queued.
    pub queue_new_try: Vec<i64>,
    /// Task instances that start a new try but wait for pool or concurrency slots.
    pub schedule_new_try: Vec<i64>,
    /// Scheduled task instances that got their slots.
    pub queue_scheduled: Vec<i64>,
    /// Task instances (no state yet) whose trigger rule can no longer hold.
    pub skip: Vec<i64>,
    pub upstream_failed: Vec<i64>,
    /// Unfinished task instances of runs that timed out or failed: they end `skipped`.
    pub skip_unfinished: Vec<i64>,
    /// Ready `empty` tasks: they succeed at once, without a worker (as Airflow 3 does for
    /// EmptyOperator), each with its try recorded.
    pub succeed_empty: Vec<i64>,
}

impl Decisions {
    pub fn is_empty(&self) -> bool {
        self.start_runs.is_empty()
            && self.finish_runs.is_empty()
            && self.queue_new_try.is_empty()
            && self.schedule_new_try.is_empty()
            && self.queue_scheduled.is_empty()
            && self.skip.is_empty()
            && self.upstream_failed.is_empty()
            && self.skip_unfinished.is_empty()
            && self.succeed_empty.is_empty()
    }
}

/// Writes the decisions. Each update is guarded by the state it expects, so a change made
/// meanwhile (a task marked by hand) is not overwritten.
pub async fn apply(db: &Db, d: &Decisions, now: DateTime<Utc>) -> Result<(), StoreError> {
    use task_instance::Column as C;
    use TaskInstanceState as S;
    let txn = db.conn().begin().await?;
    for chunk in d.start_runs.chunks(CHUNK) {
        dag_run::Entity::update_many()
            .col_expr(
                dag_run::Column::State,
                Expr::value(DagRunState::Running.as_str()),
            )
            .col_expr(dag_run::Column::StartDate, Expr::value(now))
            .col_expr(dag_run::Column::UpdatedAt, Expr::value(now))
            .filter(dag_run::Column::Id.is_in(chunk.iter().copied()))
            .filter(dag_run::Column::State.eq(DagRunState::Queued.as_str()))
            .exec(&txn)
            .await?;
    }
    let new_try = [None, Some(S::UpForRetry)];
    for (ids, to) in [
        (&d.queue_new_try, S::Queued),
        (&d.schedule_new_try, S::Scheduled),
    ] {
        for chunk in ids.chunks(CHUNK) {
            let mut update = task_instance::Entity::update_many()
                .col_expr(C::State, Expr::value(to.as_str()))
                .col_expr(C::TryNumber, Expr::col(C::TryNumber).add(1))
                .col_expr(C::ScheduledDttm, Expr::value(now))
                .col_expr(C::NextRetryAt, Expr::value(Option::<DateTime<Utc>>::None))
                .col_expr(C::StartDate, Expr::value(Option::<DateTime<Utc>>::None))
                .col_expr(C::EndDate, Expr::value(Option::<DateTime<Utc>>::None))
                .col_expr(C::Duration, Expr::value(Option::<f64>::None))
                .col_expr(C::UpdatedAt, Expr::value(now));
            if to == S::Queued {
                update = update.col_expr(C::QueuedDttm, Expr::value(now));
            }
            update
                .filter(C::Id.is_in(chunk.iter().copied()))
                .filter(state_in(&new_try))
                .exec(&txn)
                .await?;
        }
    }
    for chunk in d.succeed_empty.chunks(CHUNK) {
        let ids: Vec<String> = chunk.iter().map(i64::to_string).collect();
        let ids = ids.join(", ");
        let updated = task_instance::Entity::update_many()
            .col_expr(C::State, Expr::value(S::Success.as_str()))
            .col_expr(C::TryNumber, Expr::col(C::TryNumber).add(1))
            .col_expr(C::StartDate, Expr::value(now))
            .col_expr(C::EndDate, Expr::value(now))
            .col_expr(C::Duration, Expr::value(0.0))
            .col_expr(C::QueuedDttm, Expr::value(now))
            .col_expr(C::ScheduledDttm, Expr::value(now))
            .col_expr(C::UpdatedAt, Expr::value(now))
            .filter(C::Id.is_in(chunk.iter().copied()))
            .filter(C::State.is_null())
            .exec(&txn)
            .await?;
        if updated.rows_affected > 0 {
            // The try, as a worker would have recorded it (ids are numbers: no injection).
            txn.execute_unprepared(&format!(
                "INSERT INTO task_instance_history (task_instance_id, dag_run_id, dag_id, run_id, \
                 task_id, map_index, try_number, max_tries, state, start_date, end_date, duration, \
                 operator, pool, pool_slots, queue, priority_weight, hostname, rendered_fields, \
                 dag_version_id, updated_at) \
                 SELECT id, dag_run_id, dag_id, run_id, task_id, map_index, try_number, max_tries, \
                 state, start_date, end_date, duration, operator, pool, pool_slots, queue, \
                 priority_weight, hostname, rendered_fields, dag_version_id, updated_at \
                 FROM task_instance WHERE id IN ({ids}) AND state = 'success' AND end_date = start_date \
                 AND NOT EXISTS (SELECT 1 FROM task_instance_history h WHERE h.task_instance_id = task_instance.id \
                 AND h.try_number = task_instance.try_number)"
            ))
            .await?;
        }
    }
    for chunk in d.queue_scheduled.chunks(CHUNK) {
        task_instance::Entity::update_many()
            .col_expr(C::State, Expr::value(S::Queued.as_str()))
            .col_expr(C::QueuedDttm, Expr::value(now))
            .col_expr(C::UpdatedAt, Expr::value(now))
            .filter(C::Id.is_in(chunk.iter().copied()))
            .filter(C::State.eq(S::Scheduled.as_str()))
            .exec(&txn)
            .await?;
    }
    for (ids, to, from) in [
        (&d.skip, S::Skipped, &[None][..]),
        (&d.upstream_failed, S::UpstreamFailed, &[None][..]),
        (
            &d.skip_unfinished,
            S::Skipped,
            &[
                None,
                Some(S::Scheduled),
                Some(S::Queued),
                Some(S::Running),
                Some(S::UpForRetry),
                Some(S::UpForReschedule),
            ][..],
        ),
    ] {
        for chunk in ids.chunks(CHUNK) {
            task_instance::Entity::update_many()
                .col_expr(C::State, Expr::value(to.as_str()))
                .col_expr(C::EndDate, Expr::value(now))
                .col_expr(C::LeaseOwner, Expr::value(Option::<i64>::None))
                .col_expr(
                    C::LeaseExpiresAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .col_expr(C::UpdatedAt, Expr::value(now))
                .filter(C::Id.is_in(chunk.iter().copied()))
                .filter(state_in(from))
                .exec(&txn)
                .await?;
        }
    }
    for (id, state) in &d.finish_runs {
        dag_run::Entity::update_many()
            .col_expr(dag_run::Column::State, Expr::value(state.as_str()))
            .col_expr(dag_run::Column::EndDate, Expr::value(now))
            .col_expr(dag_run::Column::UpdatedAt, Expr::value(now))
            .filter(dag_run::Column::Id.eq(*id))
            .filter(dag_run::Column::State.eq(DagRunState::Running.as_str()))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// A condition matching task instances in any of `states` (None = no state).
fn state_in(states: &[Option<TaskInstanceState>]) -> sea_orm::Condition {
    let mut cond = sea_orm::Condition::any();
    let named: Vec<&str> = states.iter().flatten().map(|s| s.as_str()).collect();
    if !named.is_empty() {
        cond = cond.add(task_instance::Column::State.is_in(named));
    }
    if states.contains(&None) {
        cond = cond.add(task_instance::Column::State.is_null());
    }
    cond
}

/// Which queued task instances a worker takes.
#[derive(Debug, Clone)]
pub enum QueueFilter {
    /// Every queue but this one (reserved for `dags test`).
    AllExcept(String),
    Only(Vec<String>),
}

/// Claims up to `limit` queued task instances for worker `owner`, highest priority first:
/// they become `running` with a lease until `lease_until`. On PostgreSQL concurrent workers
/// skip each other's rows (`FOR UPDATE SKIP LOCKED`).
pub async fn claim(
    db: &Db,
    owner: i64,
    hostname: &str,
    limit: usize,
    filter: &QueueFilter,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Vec<task_instance::Model>, StoreError> {
    if matches!(filter, QueueFilter::Only(queues) if queues.is_empty()) {
        return Ok(Vec::new());
    }
    // The start time is the database's clock when the claim happens: a claim that waited for
    // a lock must not start before the upstream task it waited for ended.
    let (backend, lock, clock) = match db.kind() {
        DatabaseKind::Postgres => (
            DatabaseBackend::Postgres,
            " FOR UPDATE SKIP LOCKED",
            "clock_timestamp()",
        ),
        DatabaseKind::Sqlite => (
            DatabaseBackend::Sqlite,
            "",
            "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')",
        ),
    };
    let mut values: Vec<sea_orm::Value> = vec![
        now.into(),
        hostname.to_string().into(),
        owner.into(),
        lease_until.into(),
        (limit as i64).into(),
    ];
    let queue_cond = match filter {
        QueueFilter::AllExcept(queue) => {
            values.push(queue.clone().into());
            "queue <> $6".to_string()
        }
        QueueFilter::Only(queues) => {
            let first = values.len() + 1;
            values.extend(queues.iter().map(|q| q.clone().into()));
            let marks: Vec<String> = (first..first + queues.len())
                .map(|n| format!("${n}"))
                .collect();
            format!("queue IN ({})", marks.join(", "))
        }
    };
    let sql = format!(
        "UPDATE task_instance SET state = 'running', start_date = {clock}, end_date = NULL, \
         duration = NULL, hostname = $2, lease_owner = $3, lease_expires_at = $4, updated_at = $1 \
         WHERE id IN (SELECT id FROM task_instance WHERE state = 'queued' AND {queue_cond} \
         ORDER BY priority_weight DESC, queued_dttm, id LIMIT $5{lock}) AND state = 'queued' \
         RETURNING *"
    );
    let rows = task_instance::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(backend, sql, values))
        .all(db.conn())
        .await?;
    Ok(rows)
}

/// Extends the leases of `running` (this worker's tries in progress); returns the ids the
/// worker still holds.
pub async fn renew_leases(
    db: &Db,
    owner: i64,
    running: &[i64],
    lease_until: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    use task_instance::Column as C;
    // Only tries still running here: a try whose end could not be recorded must not keep
    // its lease, so that it expires and the scheduler retries the task.
    for chunk in running.chunks(CHUNK) {
        task_instance::Entity::update_many()
            .col_expr(C::LeaseExpiresAt, Expr::value(lease_until))
            .filter(C::Id.is_in(chunk.iter().copied()))
            .filter(C::LeaseOwner.eq(owner))
            .filter(C::State.eq(TaskInstanceState::Running.as_str()))
            .exec(db.conn())
            .await?;
    }
    let held: Vec<i64> = task_instance::Entity::find()
        .select_only()
        .column(C::Id)
        .filter(C::LeaseOwner.eq(owner))
        .filter(C::State.eq(TaskInstanceState::Running.as_str()))
        .into_tuple()
        .all(db.conn())
        .await?;
    Ok(held)
}

/// How a try ended, to record it.
#[derive(Debug, Clone)]
pub struct FinishTry {
    pub ti_id: i64,
    /// The try being recorded: a stale try never records over a newer one.
    pub try_number: Option<i32>,
    /// The lease holder the row must still have (a worker that lost its lease records nothing).
    pub owner: Option<i64>,
    pub state: TaskInstanceState,
    pub end_date: DateTime<Utc>,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub rendered_fields: Option<String>,
    /// The `return_value` XCom (JSON text), already checked against the size limit.
    pub xcom: Option<String>,
}

/// Writes a try of `ti` into `task_instance_history` as ending `state` at `end` (kept when the
/// try is there already: each try is recorded once).
pub async fn record_history(
    conn: &impl ConnectionTrait,
    ti: &task_instance::Model,
    state: TaskInstanceState,
    end: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    use task_instance_history::Column as H;
    let row = task_instance_history::ActiveModel {
        task_instance_id: Set(ti.id),
        dag_run_id: Set(ti.dag_run_id),
        dag_id: Set(ti.dag_id.clone()),
        run_id: Set(ti.run_id.clone()),
        task_id: Set(ti.task_id.clone()),
        map_index: Set(ti.map_index),
        try_number: Set(ti.try_number),
        max_tries: Set(ti.max_tries),
        state: Set(Some(state.as_str().into())),
        start_date: Set(ti.start_date),
        end_date: Set(end),
        duration: Set(match (ti.start_date, end) {
            (Some(s), Some(e)) => Some(crate::timefmt::seconds_between(s, e)),
            _ => None,
        }),
        operator: Set(ti.operator.clone()),
        pool: Set(ti.pool.clone()),
        pool_slots: Set(ti.pool_slots),
        queue: Set(ti.queue.clone()),
        priority_weight: Set(ti.priority_weight),
        hostname: Set(ti.hostname.clone()),
        rendered_fields: Set(ti.rendered_fields.clone()),
        dag_version_id: Set(ti.dag_version_id),
        updated_at: Set(now),
        ..Default::default()
    };
    task_instance_history::Entity::insert(row)
        .on_conflict(
            sea_orm::sea_query::OnConflict::columns([
                H::DagRunId,
                H::TaskId,
                H::MapIndex,
                H::TryNumber,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Records the end of a running try: the task instance's new state, a history row for the
/// try and its XCom, in one transaction. False when the task instance was no longer this
/// owner's running try (its lease expired or someone changed its state): nothing is written.
pub async fn finish_try(db: &Db, f: &FinishTry) -> Result<bool, StoreError> {
    use task_instance::Column as C;
    let txn = db.conn().begin().await?;
    // The guarded write comes first: on SQLite a transaction that reads before it writes
    // cannot wait for the write lock (SQLITE_BUSY at once), one that writes first can.
    let mut update = task_instance::Entity::update_many()
        .col_expr(C::State, Expr::value(f.state.as_str()))
        .col_expr(C::EndDate, Expr::value(f.end_date))
        .col_expr(C::NextRetryAt, Expr::value(f.next_retry_at))
        .col_expr(C::LeaseOwner, Expr::value(Option::<i64>::None))
        .col_expr(
            C::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(C::UpdatedAt, Expr::value(f.end_date));
    if f.rendered_fields.is_some() {
        update = update.col_expr(C::RenderedFields, Expr::value(f.rendered_fields.clone()));
    }
    let mut update = update
        .filter(C::Id.eq(f.ti_id))
        .filter(C::State.eq(TaskInstanceState::Running.as_str()));
    if let Some(owner) = f.owner {
        update = update.filter(C::LeaseOwner.eq(owner));
    }
    if let Some(try_number) = f.try_number {
        update = update.filter(C::TryNumber.eq(try_number));
    }
    if update.exec(&txn).await?.rows_affected == 0 {
        // Not this owner's running try any more (lease expired, state changed by hand).
        return Ok(false);
    }
    let Some(ti) = task_instance::Entity::find_by_id(f.ti_id).one(&txn).await? else {
        return Ok(false);
    };
    let duration = ti
        .start_date
        .map(|s| crate::timefmt::seconds_between(s, f.end_date));
    task_instance::Entity::update_many()
        .col_expr(C::Duration, Expr::value(duration))
        .filter(C::Id.eq(f.ti_id))
        .exec(&txn)
        .await?;
    // As Airflow's history: a try that will be retried is recorded as failed.
    let recorded = if f.state.is_finished() {
        f.state
    } else {
        TaskInstanceState::Failed
    };
    record_history(&txn, &ti, recorded, Some(f.end_date), f.end_date).await?;
    xcom::Entity::delete_many()
        .filter(xcom::Column::DagRunId.eq(ti.dag_run_id))
        .filter(xcom::Column::TaskId.eq(&ti.task_id))
        .filter(xcom::Column::MapIndex.eq(ti.map_index))
        .exec(&txn)
        .await?;
    if let Some(value) = &f.xcom {
        xcom::Entity::insert(xcom::ActiveModel {
            dag_run_id: Set(ti.dag_run_id),
            task_id: Set(ti.task_id.clone()),
            map_index: Set(ti.map_index),
            key: Set("return_value".into()),
            dag_id: Set(ti.dag_id.clone()),
            run_id: Set(ti.run_id.clone()),
            value: Set(value.clone()),
            timestamp: Set(f.end_date),
        })
        .exec_without_returning(&txn)
        .await?;
    }
    txn.commit().await?;
    Ok(true)
}

/// The XComs of a run: (task_id, key, JSON text).
pub async fn run_xcoms(db: &Db, dag_run_id: i64) -> Result<Vec<xcom::Model>, StoreError> {
    Ok(xcom::Entity::find()
        .filter(xcom::Column::DagRunId.eq(dag_run_id))
        .all(db.conn())
        .await?)
}

/// Task instances that are running under a lease that ran out before `now` (their worker
/// died or lost the database): (id, dag_run_id, task_id, try_number, max_tries, owner).
pub async fn expired_leases(
    db: &Db,
    now: DateTime<Utc>,
) -> Result<Vec<task_instance::Model>, StoreError> {
    use task_instance::Column as C;
    Ok(task_instance::Entity::find()
        .filter(C::State.eq(TaskInstanceState::Running.as_str()))
        .filter(C::LeaseExpiresAt.lt(now))
        .all(db.conn())
        .await?)
}

/// Task instances left `running` by an earlier process on this single-process database:
/// nobody else can hold them.
pub async fn orphaned_running(db: &Db) -> Result<Vec<task_instance::Model>, StoreError> {
    use task_instance::Column as C;
    Ok(task_instance::Entity::find()
        .filter(C::State.eq(TaskInstanceState::Running.as_str()))
        .all(db.conn())
        .await?)
}

/// Sets `dag.next_dagrun*` for the API; None clears them (no further scheduled run).
pub async fn set_next_dagrun(
    db: &Db,
    dag_id: &str,
    next: Option<crate::scheduler::timetable::DagRunInfo>,
) -> Result<(), StoreError> {
    use super::dags::dag::{Column as D, Entity};
    Entity::update_many()
        .col_expr(D::NextDagrun, Expr::value(next.map(|n| n.logical_date())))
        .col_expr(
            D::NextDagrunDataIntervalStart,
            Expr::value(next.map(|n| n.data_interval.start)),
        )
        .col_expr(
            D::NextDagrunDataIntervalEnd,
            Expr::value(next.map(|n| n.data_interval.end)),
        )
        .col_expr(
            D::NextDagrunCreateAfter,
            Expr::value(next.map(|n| n.run_after)),
        )
        .filter(D::DagId.eq(dag_id))
        .exec(db.conn())
        .await?;
    Ok(())
}

/// Pauses or unpauses a DAG; false when there is no such DAG.
pub async fn set_paused(db: &Db, dag_id: &str, paused: bool) -> Result<bool, StoreError> {
    use super::dags::dag::{Column as D, Entity};
    let result = Entity::update_many()
        .col_expr(D::IsPaused, Expr::value(paused))
        .filter(D::DagId.eq(dag_id))
        .exec(db.conn())
        .await?;
    Ok(result.rows_affected > 0)
}
