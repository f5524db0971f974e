//! Changing runs by hand, for the API and the CLI alike: marking a run (Airflow's
//! `set_dag_run_state_to_*`), clearing it (`clear_task_instances`), deleting it. Each change
//! commits with its audit entry. Creating a run is `store::runs::create_run_in`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::prelude::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, TransactionTrait, UpdateMany,
};
use updraft_shared::state::{DagRunState, TaskInstanceState as S};

use crate::scheduler::loaded::LoadedDag;
use crate::store::audit::{self, AuditEntry};
use crate::store::entities::{dag_run, task_instance, task_instance_history, xcom};
use crate::store::{Db, StoreError};

const CHUNK: usize = 500;

/// Why a change to runs, task instances or backfills was refused. The API answers these as
/// 404, 400, 422 and 409; the CLI exits 1 (not found, conflict) or 2 (bad arguments).
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{0}")]
    NotFound(String),
    /// The request cannot be carried out as given.
    #[error("{0}")]
    BadRequest(String),
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
    /// The current state does not allow it (already in that state, a backfill running).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sea_orm::DbErr> for OpError {
    fn from(e: sea_orm::DbErr) -> Self {
        OpError::Store(e.into())
    }
}

impl OpError {
    /// PostgreSQL gave up this transaction to break a deadlock with the scheduler (which
    /// updates the same run and task instances): running it again is safe.
    fn is_deadlock(&self) -> bool {
        matches!(self, OpError::Store(e) if e.is_deadlock())
    }
}

/// The run `run_id` of `dag_id`, with the caller's connection or transaction.
pub async fn find_run_in(
    conn: &impl ConnectionTrait,
    dag_id: &str,
    run_id: &str,
) -> Result<dag_run::Model, OpError> {
    dag_run::Entity::find()
        .filter(dag_run::Column::DagId.eq(dag_id))
        .filter(dag_run::Column::RunId.eq(run_id))
        .one(conn)
        .await?
        .ok_or_else(|| {
            OpError::NotFound(format!(
                "The DagRun with dag_id: `{dag_id}` and run_id: `{run_id}` was not found"
            ))
        })
}

/// Marks the run `to` (see [`mark`]) and/or sets its note (`Some(None)` removes it), with
/// `entry` in the same transaction. Returns the ids of tries taken from their workers.
pub async fn patch(
    db: &Db,
    dag_id: &str,
    run_id: &str,
    to: Option<DagRunState>,
    note: Option<Option<String>>,
    entry: AuditEntry,
) -> Result<Vec<i64>, OpError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match patch_once(db, dag_id, run_id, to, note.clone(), entry.clone()).await {
            Err(e) if e.is_deadlock() && attempt < 3 => {
                tracing::debug!("patching run {run_id} met a deadlock; again");
            }
            other => return other,
        }
    }
}

async fn patch_once(
    db: &Db,
    dag_id: &str,
    run_id: &str,
    to: Option<DagRunState>,
    note: Option<Option<String>>,
    entry: AuditEntry,
) -> Result<Vec<i64>, OpError> {
    let now = crate::timefmt::now();
    let txn = db.conn().begin().await?;
    audit::record(&txn, entry.dag(dag_id).run(run_id)).await?;
    let run = find_run_in(&txn, dag_id, run_id).await?;
    let mut taken = Vec::new();
    if let Some(to) = to {
        taken = mark(&txn, &run, to, now).await?;
    }
    if let Some(note) = note {
        dag_run::Entity::update_many()
            .col_expr(dag_run::Column::Note, Expr::value(note))
            .col_expr(dag_run::Column::UpdatedAt, Expr::value(now))
            .filter(dag_run::Column::Id.eq(run.id))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(taken)
}

/// Deletes a run with its task instances, their tries and XComs, with `entry` in the same
/// transaction. Returns the ids of task instances that were running (to stop them).
pub async fn delete(
    db: &Db,
    dag_id: &str,
    run_id: &str,
    entry: AuditEntry,
) -> Result<Vec<i64>, OpError> {
    let txn = db.conn().begin().await?;
    audit::record(&txn, entry.dag(dag_id).run(run_id)).await?;
    let run = find_run_in(&txn, dag_id, run_id).await?;
    let running: Vec<i64> = task_instance::Entity::find()
        .filter(task_instance::Column::DagRunId.eq(run.id))
        .filter(task_instance::Column::State.eq(S::Running.as_str()))
        .all(&txn)
        .await?
        .into_iter()
        .map(|ti| ti.id)
        .collect();
    xcom::Entity::delete_many()
        .filter(xcom::Column::DagRunId.eq(run.id))
        .exec(&txn)
        .await?;
    task_instance_history::Entity::delete_many()
        .filter(task_instance_history::Column::DagRunId.eq(run.id))
        .exec(&txn)
        .await?;
    task_instance::Entity::delete_many()
        .filter(task_instance::Column::DagRunId.eq(run.id))
        .exec(&txn)
        .await?;
    dag_run::Entity::delete_by_id(run.id).exec(&txn).await?;
    txn.commit().await?;
    Ok(running)
}

/// The task instances a clear of the run takes: all of them, or only the failed and
/// upstream-failed ones.
pub async fn clearable(
    conn: &impl ConnectionTrait,
    run_pk: i64,
    only_failed: bool,
    only_new: bool,
) -> Result<Vec<task_instance::Model>, StoreError> {
    let mut q = task_instance::Entity::find().filter(task_instance::Column::DagRunId.eq(run_pk));
    if only_new {
        // Never tried yet.
        q = q.filter(task_instance::Column::TryNumber.eq(0));
    }
    if only_failed {
        q = q.filter(
            task_instance::Column::State.is_in([S::Failed.as_str(), S::UpstreamFailed.as_str()]),
        );
    }
    Ok(q.order_by_asc(task_instance::Column::Id).all(conn).await?)
}

/// Clears task instances of `run` (Airflow's `clear_task_instances` with the run queued again):
/// they lose their state so the scheduler runs them again, each with a new try and its task's
/// `retries` on top of the tries made. Returns the ids that were running (to stop them).
pub async fn clear(
    txn: &DatabaseTransaction,
    run: &dag_run::Model,
    tis: &[task_instance::Model],
    dag: Option<&LoadedDag>,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    use task_instance::Column as C;
    if tis.is_empty() {
        return Ok(Vec::new());
    }
    // Grouped by the retries to add, so one statement serves each group.
    let mut by_retries: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let mut keep_max = Vec::new();
    for ti in tis {
        match dag.and_then(|d| d.graph.index_of(&ti.task_id).map(|i| d.retries(i))) {
            Some(r) => by_retries.entry(r as i32).or_default().push(ti.id),
            // A task gone from the DAG keeps at least the tries it made.
            None => keep_max.push(ti.id),
        }
    }
    let base = || {
        task_instance::Entity::update_many()
            .col_expr(C::State, Expr::value(Option::<String>::None))
            .col_expr(C::EndDate, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(C::NextRetryAt, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(C::LeaseOwner, Expr::value(Option::<i64>::None))
            .col_expr(
                C::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(C::UpdatedAt, Expr::value(now))
    };
    for (retries, ids) in &by_retries {
        for chunk in ids.chunks(CHUNK) {
            base()
                .col_expr(C::MaxTries, Expr::col(C::TryNumber).add(*retries))
                .filter(C::Id.is_in(chunk.iter().copied()))
                .exec(txn)
                .await?;
        }
    }
    for chunk in keep_max.chunks(CHUNK) {
        base()
            .filter(C::Id.is_in(chunk.iter().copied()))
            .exec(txn)
            .await?;
    }
    requeued(dag_run::Entity::update_many(), now)
        .col_expr(
            dag_run::Column::State,
            Expr::value(DagRunState::Queued.as_str()),
        )
        .col_expr(
            dag_run::Column::ClearNumber,
            Expr::col(dag_run::Column::ClearNumber).add(1),
        )
        .col_expr(dag_run::Column::UpdatedAt, Expr::value(now))
        .filter(dag_run::Column::Id.eq(run.id))
        .exec(txn)
        .await?;
    Ok(tis
        .iter()
        .filter(|ti| ti.state.as_deref() == Some(S::Running.as_str()))
        .map(|ti| ti.id)
        .collect())
}

/// A run's update that queues it again: queued now, not started, not ended, no scheduling
/// decision yet.
fn requeued(
    update: UpdateMany<dag_run::Entity>,
    now: DateTime<Utc>,
) -> UpdateMany<dag_run::Entity> {
    update
        .col_expr(dag_run::Column::QueuedAt, Expr::value(now))
        .col_expr(
            dag_run::Column::StartDate,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            dag_run::Column::EndDate,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            dag_run::Column::LastSchedulingDecision,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
}

/// Sets a run's state by hand with Airflow's effects on its task instances: `success` makes
/// every task instance successful; `failed` fails the running ones and skips the unfinished
/// rest; `queued` only queues the run again. Returns the ids of tries that were running (to
/// stop them).
pub async fn mark(
    txn: &DatabaseTransaction,
    run: &dag_run::Model,
    to: DagRunState,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    use task_instance::Column as C;
    let running_states = [S::Running, S::Deferred, S::UpForReschedule];
    let finished = [
        S::Success,
        S::Failed,
        S::Skipped,
        S::UpstreamFailed,
        S::Removed,
    ];
    let names = |states: &[S]| states.iter().map(|s| s.as_str()).collect::<Vec<_>>();
    let of_run = || Condition::all().add(C::DagRunId.eq(run.id));
    // (which task instances, their new state)
    let changes: Vec<(Condition, S)> = match to {
        DagRunState::Success => vec![(
            of_run().add(
                Condition::any()
                    .add(C::State.is_null())
                    .add(C::State.ne(S::Success.as_str())),
            ),
            S::Success,
        )],
        DagRunState::Failed => vec![
            (
                of_run().add(C::State.is_in(names(&running_states))),
                S::Failed,
            ),
            (
                of_run().add(
                    Condition::any().add(C::State.is_null()).add(
                        Condition::all()
                            .add(C::State.is_not_in(names(&finished)))
                            .add(C::State.is_not_in(names(&running_states))),
                    ),
                ),
                S::Skipped,
            ),
        ],
        DagRunState::Queued | DagRunState::Running => Vec::new(),
    };
    let running: Vec<i64> = if changes.is_empty() {
        Vec::new()
    } else {
        task_instance::Entity::find()
            .filter(C::DagRunId.eq(run.id))
            .filter(C::State.eq(S::Running.as_str()))
            .all(txn)
            .await?
            .into_iter()
            .map(|ti| ti.id)
            .collect()
    };
    for (which, state) in changes {
        // Airflow's `TaskInstance.set_state`: start and end dates kept when known.
        task_instance::Entity::update_many()
            .col_expr(C::StartDate, Expr::value(now))
            .filter(which.clone().add(C::StartDate.is_null()))
            .exec(txn)
            .await?;
        task_instance::Entity::update_many()
            .col_expr(C::EndDate, Expr::value(now))
            .filter(which.clone().add(C::EndDate.is_null()))
            .exec(txn)
            .await?;
        task_instance::Entity::update_many()
            .col_expr(C::State, Expr::value(state.as_str()))
            .col_expr(C::NextRetryAt, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(C::LeaseOwner, Expr::value(Option::<i64>::None))
            .col_expr(
                C::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(C::UpdatedAt, Expr::value(now))
            .filter(which)
            .exec(txn)
            .await?;
    }
    let mut update = dag_run::Entity::update_many()
        .col_expr(dag_run::Column::State, Expr::value(to.as_str()))
        .col_expr(dag_run::Column::UpdatedAt, Expr::value(now));
    if to.is_finished() {
        update = update.col_expr(dag_run::Column::EndDate, Expr::value(now));
    } else if run.state != to.as_str() {
        update = requeued(update, now);
    }
    update
        .filter(dag_run::Column::Id.eq(run.id))
        .exec(txn)
        .await?;
    Ok(running)
}
