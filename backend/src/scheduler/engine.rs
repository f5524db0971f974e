//! The scheduler loop: creates scheduled runs when their interval ends, starts queued runs
//! within `max_active_runs`, moves task instances along by their trigger rules, retries and
//! pools, and finishes runs. It is woken at once by anything that changes what it would
//! decide (a task finishing, a run triggered in this process) and otherwise sleeps until the
//! next timed event (a cron tick, a retry delay, a run timeout, a lease expiry), checking
//! for changes made by other processes every `scheduler.poll_interval`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use updraft_shared::state::{DagRunState, DagRunType, TaskInstanceState as S};

use super::graph::run_id;
use super::loaded::{DagCache, LoadedDag};
use super::timetable::{DagRunInfo, DataInterval};
use super::trigger_rule::{evaluate, Decision, UpstreamStates};
use crate::store::coordination::Leadership;
use crate::store::dags::dag;
use crate::store::entities::{dag_run, slot_pool};
use crate::store::runs::{self, Decisions, FinishTry, NewRun, TiRow};
use crate::store::{Db, StoreError};

/// How the scheduler, the workers and whoever triggers runs wake each other up.
#[derive(Debug, Default)]
pub struct Signals {
    /// Something changed that the scheduler should look at.
    pub scheduler: Notify,
    /// Task instances were queued.
    pub worker: Notify,
    /// Running task instances of this process, by id, so the scheduler can stop them.
    running: Mutex<HashMap<(i64, i32), CancellationToken>>,
    /// Where wake-ups for other processes go (PostgreSQL NOTIFY), once connected.
    remote: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<&'static str>>,
}

impl Signals {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Sends wake-ups to the other processes on this database too.
    pub fn connect_remote(&self, tx: tokio::sync::mpsc::UnboundedSender<&'static str>) {
        let _ = self.remote.set(tx);
    }

    /// Wakes this process's scheduler and, through the database, the others'.
    pub fn wake_scheduler(&self) {
        self.scheduler.notify_one();
        if let Some(tx) = self.remote.get() {
            let _ = tx.send(crate::store::coordination::SCHEDULER_CHANNEL);
        }
    }

    /// Wakes this process's worker and, through the database, the others'.
    pub fn wake_workers(&self) {
        self.worker.notify_one();
        if let Some(tx) = self.remote.get() {
            let _ = tx.send(crate::store::coordination::WORKER_CHANNEL);
        }
    }

    /// A try starts: its stop token. Keyed by try, so a cleared task instance's new try and
    /// its old one, still ending, never remove each other's token.
    pub fn register(&self, ti_id: i64, try_number: i32) -> CancellationToken {
        let token = CancellationToken::new();
        self.running
            .lock()
            .expect("signals lock")
            .insert((ti_id, try_number), token.clone());
        token
    }

    pub fn unregister(&self, ti_id: i64, try_number: i32) {
        self.running
            .lock()
            .expect("signals lock")
            .remove(&(ti_id, try_number));
    }

    /// Task instances with a try running in this process.
    pub fn running_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .running
            .lock()
            .expect("signals lock")
            .keys()
            .map(|(id, _)| *id)
            .collect();
        ids.dedup();
        ids
    }

    pub fn stop_all(&self) {
        for token in self.running.lock().expect("signals lock").values() {
            token.cancel();
        }
    }

    /// Stops a task instance if it runs in this process.
    /// Stops every running try of the task instance.
    pub fn stop(&self, ti_id: i64) {
        for ((id, _), token) in self.running.lock().expect("signals lock").iter() {
            if *id == ti_id {
                token.cancel();
            }
        }
    }
}

/// Which runs a scheduler looks after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything: scheduled runs, queued runs, all running runs (except `dags test` ones).
    All,
    /// One run only (`dags test`).
    Run(i64),
}

pub struct Scheduler {
    db: Db,
    cache: Arc<DagCache>,
    signals: Arc<Signals>,
    scope: Scope,
    poll_interval: Duration,
    /// A task instance cleared while running stays `restarting` at most this long.
    lease_timeout: Duration,
    /// Newest scheduled interval per DAG, so the timetable need not ask the database.
    last_scheduled: HashMap<String, Option<DataInterval>>,
    /// The `next_dagrun*` values last written per DAG.
    next_written: HashMap<String, Option<DagRunInfo>>,
    /// Task instances already reported as waiting for a pool that does not exist.
    warned_pool: HashSet<i64>,
    /// Only the leading scheduler ticks (several may run against one PostgreSQL).
    leadership: Leadership,
}

/// How often one try may go back to the queue after its worker died, before the death counts
/// as a failed try (and the task's retries decide).
pub const MAX_RECLAIMS: i32 = 5;

/// Runs a scheduler shares with `dags test` are marked so the main scheduler leaves them.
pub const TEST_TRIGGER: &str = "test";

impl Scheduler {
    pub fn new(
        db: Db,
        cache: Arc<DagCache>,
        signals: Arc<Signals>,
        scope: Scope,
        poll_interval: Duration,
        lease_timeout: Duration,
    ) -> Self {
        let leader_db = db.clone();
        Self {
            db,
            cache,
            signals,
            scope,
            poll_interval,
            lease_timeout,
            leadership: match scope {
                Scope::All => Leadership::new(&leader_db),
                // `dags test` drives its own run, whoever leads.
                Scope::Run(_) => Leadership::Sole,
            },
            last_scheduled: HashMap::new(),
            next_written: HashMap::new(),
            warned_pool: HashSet::new(),
        }
    }

    /// Loops until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            if !self.leadership.is_leader().await {
                // A standby: try for the lead again shortly (fail-over within about a second).
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(self.poll_interval.min(Duration::from_secs(1))) => {}
                }
                continue;
            }
            let now = Utc::now();
            let wake_at = match self.tick(now).await {
                Ok(next) => next,
                // Another writer (an API change to the same run) won a deadlock: again at once.
                Err(e) if e.is_deadlock() => {
                    tracing::debug!("scheduler pass met a deadlock (again at once): {e}");
                    Some(now)
                }
                Err(e) => {
                    tracing::warn!("scheduler loop failed (retrying): {e}");
                    Some(now + chrono::Duration::seconds(1))
                }
            };
            let mut sleep = self.poll_interval;
            if let Some(at) = wake_at {
                let until = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                sleep = sleep.min(until);
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.signals.scheduler.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// One pass. Returns when the next timed event is due.
    pub async fn tick(&mut self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut wake = Wake::default();
        let dags: HashMap<String, dag::Model> = if self.scope == Scope::All {
            dag::Entity::find()
                .filter(dag::Column::IsStale.eq(false))
                .all(self.db.conn())
                .await?
                .into_iter()
                .map(|d| (d.dag_id.clone(), d))
                .collect()
        } else {
            HashMap::new()
        };
        if self.scope == Scope::All {
            self.create_scheduled_runs(&dags, now, &mut wake).await?;
        }

        let mut runs = match self.scope {
            Scope::All => runs::active_runs(&self.db)
                .await?
                .into_iter()
                .filter(|r| r.triggered_by.as_deref() != Some(TEST_TRIGGER))
                .collect(),
            Scope::Run(id) => dag_run::Entity::find_by_id(id)
                .one(self.db.conn())
                .await?
                .into_iter()
                .filter(|r| r.state == DagRunState::Running.as_str())
                .collect::<Vec<_>>(),
        };
        let mut decisions = Decisions::default();
        // Backfills still going: their pause flag and their own max_active_runs.
        use crate::store::entities::backfill;
        let backfills: HashMap<i64, backfill::Model> = backfill::Entity::find()
            .filter(backfill::Column::CompletedAt.is_null())
            .all(self.db.conn())
            .await?
            .into_iter()
            .map(|b| (b.id, b))
            .collect();
        self.start_queued_runs(&mut runs, &dags, &backfills, now, &mut decisions);

        let running: Vec<&dag_run::Model> = runs
            .iter()
            .filter(|r| {
                r.state == DagRunState::Running.as_str() || decisions.start_runs.contains(&r.id)
            })
            .collect();
        let run_ids: Vec<i64> = running.iter().map(|r| r.id).collect();
        let tis = runs::task_instances_of(&self.db, &run_ids).await?;
        let mut by_run: HashMap<i64, Vec<TiRow>> = HashMap::new();
        for ti in tis {
            by_run.entry(ti.dag_run_id).or_default().push(ti);
        }

        let mut expired = Vec::new();
        let mut ready: Vec<Ready> = Vec::new();
        let mut occupancy = Occupancy::default();
        let mut stale_restarting = Vec::new();
        let restart_grace = chrono::Duration::from_std(self.lease_timeout).unwrap_or_default();
        for run in &running {
            let Some(tis) = by_run.get_mut(&run.id) else {
                continue;
            };
            let loaded = self.cache.get(&self.db, run.dag_version_id).await?;
            for ti in tis.iter() {
                if matches!(ti.state(), Some(S::Queued | S::Running)) {
                    occupancy.take(&ti.pool, ti.pool_slots, run.id);
                }
                if ti.state() == Some(S::Running) {
                    match ti.lease_expires_at {
                        Some(at) if at < now => expired.push(ti.clone()),
                        Some(at) => wake.at(at),
                        None => {}
                    }
                }
                if ti.state() == Some(S::Restarting) {
                    let due = ti.updated_at + restart_grace;
                    if due < now {
                        stale_restarting.push(ti.id);
                    } else {
                        wake.at(due);
                    }
                }
            }
            self.examine_run(
                run,
                &loaded,
                tis,
                now,
                &mut decisions,
                &mut ready,
                &mut wake,
            )
            .await?;
        }

        let pools: HashMap<String, i32> = slot_pool::Entity::find()
            .all(self.db.conn())
            .await?
            .into_iter()
            .map(|p| (p.pool, p.slots))
            .collect();
        self.queue_ready(ready, &pools, &running, &dags, occupancy, &mut decisions);

        if !decisions.is_empty() {
            runs::apply(&self.db, &decisions, now).await?;
            for id in &decisions.skip_unfinished {
                self.signals.stop(*id);
            }
            if !decisions.queue_new_try.is_empty() || !decisions.queue_scheduled.is_empty() {
                self.signals.wake_workers();
            }
            let mut backfills_touched = Vec::new();
            for (id, state) in &decisions.finish_runs {
                if let Some(run) = running.iter().find(|r| r.id == *id) {
                    tracing::info!(dag_id = run.dag_id, run_id = run.run_id, state = %state, "DAG run finished");
                    backfills_touched.extend(run.backfill_id);
                }
            }
            if !backfills_touched.is_empty() {
                runs::complete_backfills(&self.db, &backfills_touched, now).await?;
            }
        }
        if !expired.is_empty() {
            self.fail_expired(expired, &running, now).await?;
            // The new states may make more work schedulable at once.
            wake.at(now);
        }
        if !stale_restarting.is_empty() {
            runs::release_stale_restarting(&self.db, &stale_restarting, now - restart_grace, now)
                .await?;
            wake.at(now);
        }
        // Skips and failures propagated within this pass, and started runs were examined in
        // it; a run that finished frees a `max_active_runs` slot for a queued run.
        if !decisions.finish_runs.is_empty() {
            wake.at(now);
        }
        Ok(wake.0)
    }

    /// Creates the runs whose interval has ended for every unpaused scheduled DAG, and keeps
    /// each DAG's `next_dagrun*` fields current.
    async fn create_scheduled_runs(
        &mut self,
        dags: &HashMap<String, dag::Model>,
        now: DateTime<Utc>,
        wake: &mut Wake,
    ) -> Result<(), StoreError> {
        for d in dags.values() {
            let (Some(_), Some(version)) = (&d.schedule, d.current_version_id) else {
                continue;
            };
            let loaded = self.cache.get(&self.db, version).await?;
            let Ok(timetable) = &loaded.timetable else {
                continue;
            };
            if !self.last_scheduled.contains_key(&d.dag_id) {
                let last = runs::latest_automated_interval(&self.db, &d.dag_id).await?;
                self.last_scheduled.insert(d.dag_id.clone(), last);
            }
            let restriction = loaded.restriction();
            let mut next =
                timetable.next_dagrun_info(self.last_scheduled[&d.dag_id], restriction, now);
            // Runs are created in batches so one tick stays short; the rest come next tick.
            let mut budget = 100;
            while let Some(info) = next {
                if d.is_paused || info.run_after > now || budget == 0 {
                    break;
                }
                budget -= 1;
                let new = NewRun {
                    run_id: run_id(DagRunType::Scheduled, info.logical_date()),
                    run_type: DagRunType::Scheduled,
                    logical_date: Some(info.logical_date()),
                    data_interval: Some(info.data_interval),
                    run_after: info.run_after,
                    conf: serde_json::Map::new(),
                    note: None,
                    triggered_by: "timetable".into(),
                    state: DagRunState::Queued,
                    queue_override: None,
                    backfill_id: None,
                    audit: None,
                };
                match runs::create_run(&self.db, &loaded, new).await {
                    Ok(run) => {
                        tracing::info!(
                            dag_id = d.dag_id,
                            run_id = run.run_id,
                            "created scheduled run"
                        )
                    }
                    // Another scheduler (or an earlier life of this one) made it already.
                    Err(runs::CreateRunError::Duplicate { .. }) => {}
                    Err(runs::CreateRunError::Store(e)) => return Err(e),
                }
                self.last_scheduled
                    .insert(d.dag_id.clone(), Some(info.data_interval));
                next = timetable.next_dagrun_info(Some(info.data_interval), restriction, now);
            }
            if let Some(info) = next {
                if !d.is_paused {
                    wake.at(if budget == 0 { now } else { info.run_after });
                }
            }
            if self.next_written.get(&d.dag_id) != Some(&next) {
                runs::set_next_dagrun(&self.db, &d.dag_id, next).await?;
                self.next_written.insert(d.dag_id.clone(), next);
            }
        }
        Ok(())
    }

    /// Queued runs start, oldest first, while their DAG is unpaused and below
    /// `max_active_runs`.
    fn start_queued_runs(
        &self,
        runs: &mut [dag_run::Model],
        dags: &HashMap<String, dag::Model>,
        backfills: &HashMap<i64, crate::store::entities::backfill::Model>,
        now: DateTime<Utc>,
        decisions: &mut Decisions,
    ) {
        if self.scope != Scope::All {
            return;
        }
        let mut active: HashMap<&str, i32> = HashMap::new();
        let mut backfill_active: HashMap<i64, i32> = HashMap::new();
        for run in runs.iter() {
            if run.state == DagRunState::Running.as_str() {
                *active.entry(run.dag_id.as_str()).or_default() += 1;
                if let Some(b) = run.backfill_id {
                    *backfill_active.entry(b).or_default() += 1;
                }
            }
        }
        let mut starting = Vec::new();
        // Backfill runs yield: scheduled and manual runs take free slots first; a backfill's
        // runs start in its order (latest first when it runs backwards).
        let mut backfill_runs: Vec<&dag_run::Model> =
            runs.iter().filter(|r| r.backfill_id.is_some()).collect();
        backfill_runs.sort_by_key(|r| {
            let backwards = r
                .backfill_id
                .and_then(|b| backfills.get(&b))
                .is_some_and(|b| b.run_backwards);
            let at = r.logical_date.unwrap_or(r.run_after).timestamp_micros();
            (r.backfill_id, if backwards { -at } else { at }, r.id)
        });
        let candidates = runs
            .iter()
            .filter(|r| r.backfill_id.is_none())
            .chain(backfill_runs);
        for run in candidates {
            if run.state != DagRunState::Queued.as_str() || run.run_after > now {
                continue;
            }
            let Some(d) = dags.get(&run.dag_id) else {
                continue;
            };
            if d.is_paused {
                continue;
            }
            // A backfill's runs: not while it is paused, at most its max_active_runs at once.
            let backfill = run.backfill_id.and_then(|id| backfills.get(&id));
            if let Some(b) = backfill {
                let running = backfill_active.get(&b.id).copied().unwrap_or(0);
                if b.is_paused || running >= b.max_active_runs.max(1) {
                    continue;
                }
            }
            let count = active.entry(run.dag_id.as_str()).or_default();
            if *count >= d.max_active_runs.max(1) {
                continue;
            }
            *count += 1;
            if let Some(b) = backfill {
                *backfill_active.entry(b.id).or_default() += 1;
            }
            starting.push(run.id);
        }
        decisions.start_runs = starting;
    }

    /// Moves one running run along: due retries, trigger rules (with skips and failures
    /// propagating within this pass), a timeout, and the run's end.
    #[allow(clippy::too_many_arguments)]
    async fn examine_run(
        &mut self,
        run: &dag_run::Model,
        loaded: &LoadedDag,
        tis: &mut [TiRow],
        now: DateTime<Utc>,
        decisions: &mut Decisions,
        ready: &mut Vec<Ready>,
        wake: &mut Wake,
    ) -> Result<(), StoreError> {
        let index: HashMap<&str, usize> = tis
            .iter()
            .enumerate()
            .map(|(i, ti)| (ti.task_id.as_str(), i))
            .collect();
        // TI position per task index of the DAG.
        let by_task: Vec<Option<usize>> = loaded
            .dag
            .tasks
            .iter()
            .map(|t| index.get(t.id.as_str()).copied())
            .collect();
        let mut states: Vec<Option<S>> = tis.iter().map(TiRow::state).collect();

        if let (Some(limit), Some(started)) = (loaded.dag.dagrun_timeout, run.start_date) {
            let deadline = started + chrono::Duration::milliseconds(limit.as_millis() as i64);
            if now >= deadline {
                tracing::warn!(
                    dag_id = run.dag_id,
                    run_id = run.run_id,
                    "DAG run timed out (dagrun_timeout)"
                );
                for (ti, state) in tis.iter().zip(&states) {
                    if !state.is_some_and(S::is_finished) {
                        decisions.skip_unfinished.push(ti.id);
                    }
                }
                decisions.finish_runs.push((run.id, DagRunState::Failed));
                return Ok(());
            }
            wake.at(deadline);
        }

        for task_idx in loaded.graph.topological_order() {
            let Some(pos) = by_task[task_idx] else {
                continue;
            };
            let ti = &tis[pos];
            match states[pos] {
                Some(S::UpForRetry) => {
                    match ti.next_retry_at {
                        Some(at) if at > now => wake.at(at),
                        _ => ready.push(Ready::new(ti, run, true)),
                    }
                    continue;
                }
                Some(S::Scheduled) => {
                    ready.push(Ready::new(ti, run, false));
                    continue;
                }
                None => {}
                Some(_) => continue,
            }
            let mut up = UpstreamStates::default();
            for &u in &loaded.graph.upstream[task_idx] {
                let Some(upos) = by_task[u] else { continue };
                match states[upos] {
                    Some(S::Removed) => continue,
                    Some(S::Success) => up.success += 1,
                    Some(S::Skipped) => up.skipped += 1,
                    Some(S::Failed) => up.failed += 1,
                    Some(S::UpstreamFailed) => up.upstream_failed += 1,
                    _ => {}
                }
                up.total += 1;
            }
            match evaluate(loaded.trigger_rule(task_idx), up) {
                Decision::Wait => {}
                Decision::Skip => {
                    states[pos] = Some(S::Skipped);
                    decisions.skip.push(ti.id);
                }
                Decision::UpstreamFailed => {
                    states[pos] = Some(S::UpstreamFailed);
                    decisions.upstream_failed.push(ti.id);
                }
                Decision::Run => {
                    if loaded.depends_on_past(task_idx)
                        && !self.past_allows(run, &ti.task_id).await?
                    {
                        // The previous run's task may finish later: looked at again then.
                        continue;
                    }
                    if matches!(
                        loaded.dag.tasks[task_idx].operator,
                        updraft_shared::dag::Operator::Empty
                    ) {
                        // Nothing to run: it succeeds now, and its downstream tasks are
                        // looked at in this same pass.
                        states[pos] = Some(S::Success);
                        decisions.succeed_empty.push(ti.id);
                    } else {
                        states[pos] = Some(S::Scheduled);
                        ready.push(Ready::new(ti, run, true));
                    }
                }
            }
        }

        if states.iter().all(|s| s.is_some_and(S::is_finished)) {
            let failed = loaded.leaves.iter().any(|&leaf| {
                by_task[leaf]
                    .is_some_and(|pos| matches!(states[pos], Some(S::Failed | S::UpstreamFailed)))
            });
            let state = if failed {
                DagRunState::Failed
            } else {
                DagRunState::Success
            };
            decisions.finish_runs.push((run.id, state));
        }
        Ok(())
    }

    /// `depends_on_past`: the same task in the previous run succeeded or was skipped (or
    /// there is no previous run).
    async fn past_allows(&self, run: &dag_run::Model, task_id: &str) -> Result<bool, StoreError> {
        let Some(logical_date) = run.logical_date else {
            return Ok(true);
        };
        Ok(
            match runs::previous_ti_state(&self.db, &run.dag_id, task_id, logical_date).await? {
                None => true,
                Some(state) => matches!(
                    state.as_deref().and_then(S::parse),
                    Some(S::Success | S::Skipped)
                ),
            },
        )
    }

    /// Queues ready task instances by priority while their pool has slots and their run is
    /// below its DAG's `max_active_tasks`; the others wait `scheduled`.
    fn queue_ready(
        &mut self,
        mut ready: Vec<Ready>,
        pools: &HashMap<String, i32>,
        running: &[&dag_run::Model],
        dags: &HashMap<String, dag::Model>,
        mut occupancy: Occupancy,
        decisions: &mut Decisions,
    ) {
        ready.sort_by(|a, b| {
            b.priority_weight
                .cmp(&a.priority_weight)
                .then(a.logical_date.cmp(&b.logical_date))
                .then(a.id.cmp(&b.id))
        });
        let max_tasks: HashMap<i64, i32> = running
            .iter()
            .map(|r| {
                let limit = dags.get(&r.dag_id).map_or(16, |d| d.max_active_tasks);
                (r.id, limit)
            })
            .collect();
        for r in ready {
            let fits = match pools.get(&r.pool) {
                None => {
                    if self.warned_pool.insert(r.id) {
                        tracing::warn!(
                            task_id = r.task_id,
                            pool = r.pool,
                            "task waits for pool {}, which does not exist: create it",
                            r.pool
                        );
                    }
                    false
                }
                Some(&slots) => {
                    let used = occupancy.pool.get(&r.pool).copied().unwrap_or(0);
                    let run_active = occupancy.run.get(&r.run_id).copied().unwrap_or(0);
                    let limit = max_tasks.get(&r.run_id).copied().unwrap_or(16).max(1);
                    // -1 slots: an unlimited pool (Airflow's meaning).
                    (slots == -1 || used + r.pool_slots <= slots) && run_active < limit
                }
            };
            match (fits, r.new_try) {
                (true, true) => decisions.queue_new_try.push(r.id),
                (true, false) => decisions.queue_scheduled.push(r.id),
                (false, true) => decisions.schedule_new_try.push(r.id),
                (false, false) => {}
            }
            if fits {
                occupancy.take(&r.pool, r.pool_slots, r.run_id);
            }
        }
    }

    /// Tries whose worker stopped renewing the lease fail (and retry by their `retries`),
    /// as Airflow treats zombie tasks.
    async fn fail_expired(
        &self,
        expired: Vec<TiRow>,
        running: &[&dag_run::Model],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for ti in expired {
            let Some(run) = running.iter().find(|r| r.id == ti.dag_run_id) else {
                continue;
            };
            // A dead worker is not a failed task: the same try runs again elsewhere, a few
            // times at most (a task that kills its worker must not loop forever).
            if ti.reclaims < MAX_RECLAIMS {
                if runs::reclaim(&self.db, ti.id, ti.lease_owner, ti.try_number, now).await? {
                    tracing::warn!(
                        dag_id = run.dag_id,
                        run_id = run.run_id,
                        task_id = ti.task_id,
                        try_number = ti.try_number,
                        reclaim = ti.reclaims + 1,
                        "the task's worker stopped renewing its lease: the try goes back to the queue"
                    );
                    self.signals.wake_workers();
                }
                continue;
            }
            let loaded = self.cache.get(&self.db, run.dag_version_id).await?;
            let retry = ti.try_number <= ti.max_tries;
            let next_retry_at = retry.then(|| {
                let idx = loaded.graph.index_of(&ti.task_id).unwrap_or(0);
                now + chrono::Duration::from_std(loaded.retry_delay(idx, ti.try_number as u32))
                    .unwrap_or_default()
            });
            let finish = FinishTry {
                ti_id: ti.id,
                try_number: Some(ti.try_number),
                owner: ti.lease_owner,
                state: if retry { S::UpForRetry } else { S::Failed },
                end_date: now,
                next_retry_at,
                rendered_fields: None,
                xcom: None,
            };
            if runs::finish_try(&self.db, &finish).await? {
                tracing::warn!(
                    dag_id = run.dag_id,
                    run_id = run.run_id,
                    task_id = ti.task_id,
                    try_number = ti.try_number,
                    "the task's worker stopped renewing its lease: the try is {}",
                    finish.state
                );
            }
        }
        Ok(())
    }
}

/// A task instance that may start a try.
struct Ready {
    id: i64,
    run_id: i64,
    task_id: String,
    pool: String,
    pool_slots: i32,
    priority_weight: i32,
    logical_date: Option<DateTime<Utc>>,
    /// Starts a new try (no state or up_for_retry) rather than already `scheduled`.
    new_try: bool,
}

impl Ready {
    fn new(ti: &TiRow, run: &dag_run::Model, new_try: bool) -> Self {
        Self {
            id: ti.id,
            run_id: run.id,
            task_id: ti.task_id.clone(),
            pool: ti.pool.clone(),
            pool_slots: ti.pool_slots,
            priority_weight: ti.priority_weight,
            logical_date: run.logical_date,
            new_try,
        }
    }
}

/// Slots taken per pool and active task instances per run.
#[derive(Default)]
struct Occupancy {
    pool: HashMap<String, i32>,
    run: HashMap<i64, i32>,
}

impl Occupancy {
    fn take(&mut self, pool: &str, slots: i32, run_id: i64) {
        *self.pool.entry(pool.to_string()).or_default() += slots;
        *self.run.entry(run_id).or_default() += 1;
    }
}

/// The earliest time something timed is due.
#[derive(Default)]
struct Wake(Option<DateTime<Utc>>);

impl Wake {
    fn at(&mut self, t: DateTime<Utc>) {
        self.0 = Some(self.0.map_or(t, |c| c.min(t)));
    }
}
