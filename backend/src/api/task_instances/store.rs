//! The writes behind marking and clearing task instances (Airflow's `set_state` and
//! `clear_task_instances`). Each runs inside the caller's transaction, which has already
//! written its audit entry; every update is guarded by the state and try it was decided on,
//! so a try that ended meanwhile is left as it ended.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sea_orm::prelude::Expr;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
};
use updraft_shared::state::{DagRunState, TaskInstanceState as S};

use crate::store::entities::{dag_run, task_instance, task_instance_history};
use crate::store::StoreError;

/// The row still is as it was read: same try, same state (null-safe).
fn unchanged(ti: &task_instance::Model) -> Condition {
    use task_instance::Column as C;
    let state = match &ti.state {
        Some(s) => C::State.eq(s.clone()),
        None => C::State.is_null(),
    };
    Condition::all()
        .add(C::Id.eq(ti.id))
        .add(C::TryNumber.eq(ti.try_number))
        .add(state)
}

/// Sets `state` on the task instances (Airflow's `TaskInstance.set_state`): start and end
/// default to now, the duration follows, the lease is dropped (the worker running it stops).
/// Returns the ids changed.
pub async fn mark(
    conn: &impl ConnectionTrait,
    tis: &[task_instance::Model],
    state: S,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    use task_instance::Column as C;
    let mut changed = Vec::new();
    for ti in tis {
        let start = ti.start_date.unwrap_or(now);
        let end = ti.end_date.unwrap_or(now);
        let duration = crate::timefmt::seconds_between(start, end);
        let done = task_instance::Entity::update_many()
            .col_expr(C::State, Expr::value(state.as_str()))
            .col_expr(C::StartDate, Expr::value(start))
            .col_expr(C::EndDate, Expr::value(end))
            .col_expr(C::Duration, Expr::value(duration))
            .col_expr(C::NextRetryAt, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(C::LeaseOwner, Expr::value(Option::<i64>::None))
            .col_expr(
                C::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(C::UpdatedAt, Expr::value(now))
            .filter(unchanged(ti))
            .exec(conn)
            .await?;
        if done.rows_affected > 0 {
            changed.push(ti.id);
        }
    }
    Ok(changed)
}

/// Sets the note of task instances (None removes it).
pub async fn set_note(
    conn: &impl ConnectionTrait,
    ids: &[i64],
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    use task_instance::Column as C;
    task_instance::Entity::update_many()
        .col_expr(C::Note, Expr::value(note.map(str::to_string)))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Id.is_in(ids.iter().copied()))
        .exec(conn)
        .await?;
    Ok(())
}

/// What clearing did.
#[derive(Debug, Default)]
pub struct Cleared {
    /// Task instances cleared.
    pub ids: Vec<i64>,
    /// Those that were running: `restarting` until their worker has stopped them, then
    /// [`release_restarting`] takes them to no state.
    pub restarting: Vec<i64>,
}

/// Clears task instances (Airflow's `clear_task_instances`): each loses its state so the
/// scheduler runs it again with the next try number; its current try is kept in the history;
/// `max_tries` grows by the task's `retries` (`retries_of`), so it gets a fresh set of retries.
/// A running one becomes `restarting` (its worker stops it). With `reset_runs`, finished runs
/// of cleared task instances are queued again.
pub async fn clear(
    conn: &impl ConnectionTrait,
    tis: &[task_instance::Model],
    retries_of: impl Fn(&task_instance::Model) -> Option<u32>,
    reset_runs: bool,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Cleared, StoreError> {
    use task_instance::Column as C;
    let mut cleared = Cleared::default();
    let mut runs = BTreeSet::new();
    for ti in tis {
        let state = ti.state.as_deref().and_then(S::parse);
        let running = state == Some(S::Running);
        if ti.try_number >= 1 && state.is_some() {
            record_try(conn, ti, state, now).await?;
        }
        let max_tries = match retries_of(ti) {
            Some(retries) => ti.try_number + retries as i32,
            None => ti.max_tries.max(ti.try_number),
        };
        let mut update = task_instance::Entity::update_many()
            .col_expr(
                C::State,
                Expr::value(running.then(|| S::Restarting.as_str().to_string())),
            )
            .col_expr(C::MaxTries, Expr::value(max_tries))
            .col_expr(C::EndDate, Expr::value(running.then_some(now)))
            .col_expr(C::Duration, Expr::value(Option::<f64>::None))
            .col_expr(C::NextRetryAt, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(C::LeaseOwner, Expr::value(Option::<i64>::None))
            .col_expr(
                C::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(C::UpdatedAt, Expr::value(now));
        if let Some(note) = note {
            update = update.col_expr(C::Note, Expr::value(note));
        }
        if update.filter(unchanged(ti)).exec(conn).await?.rows_affected == 0 {
            continue;
        }
        cleared.ids.push(ti.id);
        if running {
            cleared.restarting.push(ti.id);
        }
        runs.insert(ti.dag_run_id);
    }
    if reset_runs && !runs.is_empty() {
        use dag_run::Column as R;
        dag_run::Entity::update_many()
            .col_expr(R::State, Expr::value(DagRunState::Queued.as_str()))
            .col_expr(R::StartDate, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(R::EndDate, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(R::QueuedAt, Expr::value(now))
            .col_expr(
                R::LastSchedulingDecision,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(R::ClearNumber, Expr::col(R::ClearNumber).add(1))
            .col_expr(R::UpdatedAt, Expr::value(now))
            .filter(R::Id.is_in(runs))
            .filter(R::State.is_in([DagRunState::Success.as_str(), DagRunState::Failed.as_str()]))
            .exec(conn)
            .await?;
    }
    Ok(cleared)
}

/// Keeps the current try in the history before the task instance starts over (a try the
/// worker recorded is there already). A try that had not finished is recorded as failed, as
/// Airflow does.
async fn record_try(
    conn: &impl ConnectionTrait,
    ti: &task_instance::Model,
    state: Option<S>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let finished = state.is_some_and(S::is_finished);
    let end = if finished { ti.end_date } else { Some(now) };
    let duration = match (ti.start_date, end) {
        (Some(s), Some(e)) => Some(crate::timefmt::seconds_between(s, e)),
        _ => None,
    };
    let row = task_instance_history::ActiveModel {
        task_instance_id: Set(ti.id),
        dag_run_id: Set(ti.dag_run_id),
        dag_id: Set(ti.dag_id.clone()),
        run_id: Set(ti.run_id.clone()),
        task_id: Set(ti.task_id.clone()),
        map_index: Set(ti.map_index),
        try_number: Set(ti.try_number),
        max_tries: Set(ti.max_tries),
        state: Set(Some(
            if finished {
                state.unwrap_or(S::Failed)
            } else {
                S::Failed
            }
            .as_str()
            .into(),
        )),
        start_date: Set(ti.start_date),
        end_date: Set(end),
        duration: Set(duration),
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
    use task_instance_history::Column as H;
    task_instance_history::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([H::DagRunId, H::TaskId, H::MapIndex, H::TryNumber])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Takes `restarting` task instances (whose worker has stopped them) to no state, so the
/// scheduler starts their next try.
pub async fn release_restarting(
    conn: &impl ConnectionTrait,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    use task_instance::Column as C;
    if ids.is_empty() {
        return Ok(());
    }
    task_instance::Entity::update_many()
        .col_expr(C::State, Expr::value(Option::<String>::None))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Id.is_in(ids.iter().copied()))
        .filter(C::State.eq(S::Restarting.as_str()))
        .exec(conn)
        .await?;
    Ok(())
}
