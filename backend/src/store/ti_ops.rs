//! Marking and clearing task instances by hand (Airflow's `set_state`, `DAG.clear` and
//! `clear_task_instances`), for the API and the CLI alike: which task instances a request
//! takes, and the writes, each committed with its audit entry. Every update is guarded by the
//! state and try it was decided on, so a try that ended meanwhile is left as it ended.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::prelude::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use updraft_shared::api::{ClearTaskId, ClearTaskInstancesBody};
use updraft_shared::state::{DagRunState, TaskInstanceState as S};

use crate::scheduler::graph::TaskGraph;
use crate::scheduler::loaded::{DagCache, LoadedDag};
use crate::store::audit::{self, AuditEntry};
use crate::store::dags::dag;
use crate::store::entities::{dag_run, task_instance};
use crate::store::run_ops::{find_run_in, OpError};
use crate::store::{Db, StoreError};

/// The DAG `dag_id`, or NotFound with Airflow's detail.
pub async fn find_dag(conn: &impl ConnectionTrait, dag_id: &str) -> Result<dag::Model, OpError> {
    dag::Entity::find_by_id(dag_id.to_string())
        .one(conn)
        .await?
        .ok_or_else(|| OpError::NotFound(format!("The Dag with ID: `{dag_id}` was not found")))
}

/// The task instances of `task_id` in the run (one per map index, or the one asked for), or
/// NotFound naming what was looked for.
pub async fn find_task_instances(
    conn: &impl ConnectionTrait,
    run: &dag_run::Model,
    task_id: &str,
    map_index: Option<i32>,
) -> Result<Vec<task_instance::Model>, OpError> {
    let mut query = task_instance::Entity::find()
        .filter(task_instance::Column::DagRunId.eq(run.id))
        .filter(task_instance::Column::TaskId.eq(task_id));
    if let Some(m) = map_index {
        query = query.filter(task_instance::Column::MapIndex.eq(m));
    }
    let tis = query
        .order_by_asc(task_instance::Column::MapIndex)
        .all(conn)
        .await?;
    if tis.is_empty() {
        return Err(OpError::NotFound(format!(
            "The Task Instance with dag_id: `{}`, run_id: `{}`, task_id: `{task_id}` and map_index: `{}` was not found",
            run.dag_id,
            run.run_id,
            map_index.unwrap_or(-1)
        )));
    }
    Ok(tis)
}

/// `task` and, as asked, every task before it (upstream) and after it (downstream), however
/// far, by task index.
pub fn relatives(
    graph: &TaskGraph,
    task: usize,
    upstream: bool,
    downstream: bool,
) -> BTreeSet<usize> {
    let mut found = BTreeSet::from([task]);
    for (wanted, edges) in [(upstream, &graph.upstream), (downstream, &graph.downstream)] {
        if !wanted {
            continue;
        }
        let mut todo = vec![task];
        while let Some(t) = todo.pop() {
            for &next in &edges[t] {
                if found.insert(next) {
                    todo.push(next);
                }
            }
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Clearing (`POST /dags/{dag_id}/clearTaskInstances`, `updraft tasks clear`)

/// The task instances a clear takes, with the DAG versions that gave their relatives.
pub struct ClearSelection {
    pub tis: Vec<task_instance::Model>,
    versions: HashMap<i64, Arc<LoadedDag>>,
}

/// Which task instances of `dag_id` the clear `body` takes (Airflow's `DAG.clear`): the runs
/// by run id or logical-date range, the tasks with their relatives in each run's own graph,
/// the states asked for. `body.dry_run` and `body.note` are not looked at.
pub async fn select_for_clear(
    db: &Db,
    cache: &DagCache,
    dag_id: &str,
    body: &ClearTaskInstancesBody,
) -> Result<ClearSelection, OpError> {
    let dag = find_dag(db.conn(), dag_id).await?;

    // Which runs.
    let mut runs = dag_run::Entity::find().filter(dag_run::Column::DagId.eq(dag_id));
    let (mut start, mut end) = (body.start_date, body.end_date);
    if let Some(run_id) = &body.dag_run_id {
        let run = dag_run::Entity::find()
            .filter(dag_run::Column::DagId.eq(dag_id))
            .filter(dag_run::Column::RunId.eq(run_id.as_str()))
            .one(db.conn())
            .await?
            .ok_or_else(|| {
                OpError::NotFound(format!("Dag Run id {run_id} not found in dag {dag_id}"))
            })?;
        if body.include_past || body.include_future {
            let logical = run.logical_date.ok_or_else(|| {
                OpError::BadRequest(format!(
                    "Cannot use include_past or include_future with run {run_id}: it has no logical_date (a manual or asset-triggered run)"
                ))
            })?;
            start = (!body.include_past).then_some(logical);
            end = (!body.include_future).then_some(logical);
        } else {
            runs = runs.filter(dag_run::Column::Id.eq(run.id));
        }
    }
    if let (Some(s), Some(e)) = (start, end) {
        if s > e {
            return Err(OpError::BadRequest(format!(
                "start_date ({s}) is after end_date ({e}): nothing lies between"
            )));
        }
    }
    if let Some(s) = start {
        runs = runs.filter(dag_run::Column::LogicalDate.gte(s));
    }
    if let Some(e) = end {
        runs = runs.filter(dag_run::Column::LogicalDate.lte(e));
    }
    let runs = runs.all(db.conn()).await?;

    // The DAG versions those runs execute, and the current one (to check task ids).
    let mut versions: HashMap<i64, Arc<LoadedDag>> = HashMap::new();
    let wanted: BTreeSet<i64> = runs
        .iter()
        .map(|r| r.dag_version_id)
        .chain(dag.current_version_id)
        .collect();
    for id in wanted {
        versions.insert(id, cache.get(db, id).await?);
    }
    if let Some(ids) = &body.task_ids {
        for t in ids {
            let known = versions
                .values()
                .any(|v| v.graph.index_of(t.task_id()).is_some());
            if !known {
                return Err(OpError::BadRequest(format!(
                    "task_ids: DAG {dag_id} has no task {:?}",
                    t.task_id()
                )));
            }
        }
    }

    // Which task instances, run by run (each run's own graph gives the relatives).
    let mut states: Vec<&str> = Vec::new();
    if body.only_failed {
        states.extend([S::Failed.as_str(), S::UpstreamFailed.as_str()]);
    }
    if body.only_running {
        states.push(S::Running.as_str());
    }
    let mut by_version: HashMap<i64, Vec<i64>> = HashMap::new();
    for r in &runs {
        by_version.entry(r.dag_version_id).or_default().push(r.id);
    }
    let mut selected = Vec::new();
    for (version_id, run_ids) in by_version {
        let Some(loaded) = versions.get(&version_id) else {
            continue;
        };
        let mut select = task_instance::Entity::find()
            .filter(task_instance::Column::DagRunId.is_in(run_ids))
            .order_by_asc(task_instance::Column::DagRunId)
            .order_by_asc(task_instance::Column::Id);
        if !states.is_empty() {
            select = select.filter(task_instance::Column::State.is_in(states.clone()));
        }
        let Some(ids) = &body.task_ids else {
            selected.extend(select.all(db.conn()).await?);
            continue;
        };
        // Whole tasks (with their relatives), and single map indexes of tasks.
        let mut whole: BTreeSet<String> = BTreeSet::new();
        let mut mapped: BTreeSet<(String, i32)> = BTreeSet::new();
        for t in ids {
            let Some(idx) = loaded.graph.index_of(t.task_id()) else {
                continue;
            };
            if let ClearTaskId::Mapped(task, m) = t {
                mapped.insert((task.clone(), *m));
            } else {
                whole.insert(t.task_id().to_string());
            }
            let others = relatives(
                &loaded.graph,
                idx,
                body.include_upstream,
                body.include_downstream,
            );
            whole.extend(
                others
                    .into_iter()
                    .filter(|&i| i != idx)
                    .map(|i| loaded.dag.tasks[i].id.clone()),
            );
        }
        let mut names: Vec<String> = whole.iter().cloned().collect();
        names.extend(mapped.iter().map(|(t, _)| t.clone()));
        let found = select
            .filter(task_instance::Column::TaskId.is_in(names))
            .all(db.conn())
            .await?;
        selected.extend(found.into_iter().filter(|ti| {
            whole.contains(&ti.task_id) || mapped.contains(&(ti.task_id.clone(), ti.map_index))
        }));
    }
    selected.sort_by_key(|ti| (ti.dag_run_id, ti.id));
    Ok(ClearSelection {
        tis: selected,
        versions,
    })
}

/// Clears the selected task instances as `body` asks (reset runs, note, refuse running ones
/// with `prevent_running_task`), with `entry` (event and owner; the DAG, run and request are
/// added) in the same transaction. Running ones are left `restarting`: the caller stops
/// them and calls [`release_restarting`], or the scheduler releases them after the lease
/// timeout.
pub async fn clear_selected(
    db: &Db,
    cache: &DagCache,
    dag_id: &str,
    body: &ClearTaskInstancesBody,
    selection: ClearSelection,
    entry: AuditEntry,
) -> Result<Cleared, OpError> {
    let ClearSelection {
        tis: selected,
        mut versions,
    } = selection;
    if body.prevent_running_task {
        if let Some(ti) = selected
            .iter()
            .find(|t| t.state.as_deref() == Some(S::Running.as_str()))
        {
            return Err(OpError::BadRequest(format!(
                "Task instance {} of run {} is running and prevent_running_task is set: wait for it to end, or clear without prevent_running_task",
                ti.task_id, ti.run_id
            )));
        }
    }
    // The versions of the task instances themselves give their retries.
    for id in selected
        .iter()
        .map(|t| t.dag_version_id)
        .collect::<BTreeSet<_>>()
    {
        if let std::collections::hash_map::Entry::Vacant(e) = versions.entry(id) {
            e.insert(cache.get(db, id).await?);
        }
    }
    let retries = |ti: &task_instance::Model| {
        let loaded = versions.get(&ti.dag_version_id)?;
        loaded
            .graph
            .index_of(&ti.task_id)
            .map(|i| loaded.retries(i))
    };
    let now = Utc::now();
    let txn = db.conn().begin().await?;
    let mut entry = entry
        .dag(dag_id)
        .extra(serde_json::to_value(body).unwrap_or_default());
    entry.run_id = body.dag_run_id.clone();
    audit::record(&txn, entry).await?;
    let cleared = clear(
        &txn,
        &selected,
        retries,
        body.reset_dag_runs,
        body.note.as_deref(),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(cleared)
}

// ---------------------------------------------------------------------------------------------
// Marking (`PATCH .../taskInstances/{task_id}`, `updraft tasks mark`)

/// A task instance to mark, and how far the mark reaches.
pub struct MarkRequest {
    pub dag_id: String,
    pub run_id: String,
    pub task_id: String,
    /// One map index, or all of the task's task instances.
    pub map_index: Option<i32>,
    pub new_state: S,
    pub upstream: bool,
    pub downstream: bool,
    /// The same tasks in the DAG's later runs…
    pub future: bool,
    /// …and in its earlier ones.
    pub past: bool,
}

/// What a mark takes: the task instances not in the new state yet.
pub struct MarkPlan {
    pub run: dag_run::Model,
    pub affected: Vec<task_instance::Model>,
    /// The task instances the request names (where a note goes).
    pub target_ids: Vec<i64>,
    loaded: Arc<LoadedDag>,
    idx: usize,
    run_ids: Vec<i64>,
}

/// Works out which task instances `req` marks (the dry run's answer).
pub async fn plan_mark(db: &Db, cache: &DagCache, req: &MarkRequest) -> Result<MarkPlan, OpError> {
    find_dag(db.conn(), &req.dag_id).await?;
    let run = find_run_in(db.conn(), &req.dag_id, &req.run_id).await?;
    let targets = find_task_instances(db.conn(), &run, &req.task_id, req.map_index).await?;
    let target_ids: Vec<i64> = targets.iter().map(|t| t.id).collect();
    let loaded = cache.get(db, run.dag_version_id).await?;
    let idx = loaded.graph.index_of(&req.task_id).ok_or_else(|| {
        OpError::NotFound(format!(
            "Task '{}' not found in DAG '{}'",
            req.task_id, req.dag_id
        ))
    })?;
    let marked_tasks = task_names(
        &loaded,
        relatives(&loaded.graph, idx, req.upstream, req.downstream),
    );
    let run_ids = related_runs(db.conn(), &run, req.future, req.past).await?;
    let mut select = task_instance::Entity::find()
        .filter(task_instance::Column::DagRunId.is_in(run_ids.clone()))
        .filter(task_instance::Column::TaskId.is_in(marked_tasks))
        .filter(
            Condition::any()
                .add(task_instance::Column::State.is_null())
                .add(task_instance::Column::State.ne(req.new_state.as_str())),
        );
    if let Some(m) = req.map_index {
        // The map index names the task instance itself; relatives are taken whole.
        select = select.filter(
            Condition::any()
                .add(task_instance::Column::TaskId.ne(req.task_id.as_str()))
                .add(task_instance::Column::MapIndex.eq(m)),
        );
    }
    let affected = select
        .order_by_asc(task_instance::Column::DagRunId)
        .order_by_asc(task_instance::Column::Id)
        .all(db.conn())
        .await?;
    Ok(MarkPlan {
        run,
        affected,
        target_ids,
        loaded,
        idx,
        run_ids,
    })
}

fn task_names(loaded: &LoadedDag, set: BTreeSet<usize>) -> Vec<String> {
    set.into_iter()
        .map(|i| loaded.dag.tasks[i].id.clone())
        .collect()
}

/// The audit entry of a change to task instances of `task_id` in `run`.
pub fn task_entry(entry: AuditEntry, run: &dag_run::Model, task_id: &str) -> AuditEntry {
    let mut entry = entry.dag(&run.dag_id).run(&run.run_id).task(task_id);
    entry.logical_date = run.logical_date;
    entry
}

/// What a mark did.
pub struct Marked {
    /// Task instances that took the new state.
    pub changed: Vec<i64>,
    /// Those that were running (to stop them).
    pub was_running: Vec<i64>,
}

/// Marks the planned task instances, then clears the failed downstream tasks so they run
/// again (as Airflow does after a mark), and sets `note` on the named task instances; with
/// `entry` (event, owner, and what the caller adds to `extra`) in the same transaction.
/// Conflict when nothing is left to mark.
pub async fn apply_mark(
    db: &Db,
    req: &MarkRequest,
    plan: MarkPlan,
    note: Option<Option<String>>,
    entry: AuditEntry,
) -> Result<Marked, OpError> {
    if plan.affected.is_empty() {
        return Err(OpError::Conflict(format!(
            "Task id {} is already in {} state",
            req.task_id, req.new_state
        )));
    }
    let was_running: Vec<i64> = plan
        .affected
        .iter()
        .filter(|t| t.state.as_deref() == Some(S::Running.as_str()))
        .map(|t| t.id)
        .collect();
    let now = Utc::now();
    let txn = db.conn().begin().await?;
    audit::record(&txn, task_entry(entry, &plan.run, &req.task_id)).await?;
    let changed = mark(&txn, &plan.affected, req.new_state, now).await?;
    let loaded = &plan.loaded;
    let mut downstream = task_names(loaded, relatives(&loaded.graph, plan.idx, false, true));
    downstream.retain(|t| *t != req.task_id);
    let failed = task_instance::Entity::find()
        .filter(task_instance::Column::DagRunId.is_in(plan.run_ids))
        .filter(task_instance::Column::TaskId.is_in(downstream))
        .filter(
            task_instance::Column::State.is_in([S::Failed.as_str(), S::UpstreamFailed.as_str()]),
        )
        .all(&txn)
        .await?;
    let retries = |ti: &task_instance::Model| {
        (ti.dag_version_id == loaded.version_id)
            .then(|| loaded.graph.index_of(&ti.task_id))
            .flatten()
            .map(|i| loaded.retries(i))
    };
    clear(&txn, &failed, retries, true, None, now).await?;
    if let Some(note) = &note {
        set_note(&txn, &plan.target_ids, note.as_deref(), now).await?;
    }
    txn.commit().await?;
    Ok(Marked {
        changed,
        was_running,
    })
}

/// The run and, as asked, the DAG's later (`future`) and earlier (`past`) runs, by
/// `run_after` (always set, unlike the logical date).
async fn related_runs(
    conn: &impl ConnectionTrait,
    run: &dag_run::Model,
    future: bool,
    past: bool,
) -> Result<Vec<i64>, OpError> {
    if !future && !past {
        return Ok(vec![run.id]);
    }
    let mut select = dag_run::Entity::find().filter(dag_run::Column::DagId.eq(run.dag_id.as_str()));
    if !past {
        select = select.filter(dag_run::Column::RunAfter.gte(run.run_after));
    }
    if !future {
        select = select.filter(dag_run::Column::RunAfter.lte(run.run_after));
    }
    let mut ids: Vec<i64> = select.all(conn).await?.into_iter().map(|r| r.id).collect();
    if !ids.contains(&run.id) {
        ids.push(run.id);
    }
    Ok(ids)
}

// ---------------------------------------------------------------------------------------------
// The writes, inside the caller's transaction

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
    let (recorded, end) = match state {
        Some(state) if finished => (state, ti.end_date),
        _ => (S::Failed, Some(now)),
    };
    super::runs::record_history(conn, ti, recorded, end, now).await?;
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
