//! The worker: claims queued task instances as leases (renewed by heartbeats), runs each
//! try, and records how it ended. It wakes when the scheduler queues work; a finished try
//! wakes the scheduler, so the next task starts within milliseconds.

mod execute;

pub use execute::TryEnd;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::logs::SecretMasker;
use crate::scheduler::engine::Signals;
use crate::scheduler::loaded::DagCache;
use crate::store::job::{self, JobType};
use crate::store::runs::{self, QueueFilter};
use crate::store::Db;

/// What a worker needs to know besides the database.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub concurrency: usize,
    pub lease_timeout: Duration,
    pub poll_interval: Duration,
    pub filter: QueueFilter,
    pub xcom_max_size: usize,
    pub logs_folder: PathBuf,
    pub dags_folder: PathBuf,
    /// Print task logs on stdout too (`dags test`).
    pub echo_logs: bool,
    /// Decrypts the variables and connections tasks read.
    pub secrets: crate::secrets::Secrets,
}

pub struct Worker {
    db: Db,
    cache: Arc<DagCache>,
    signals: Arc<Signals>,
    options: WorkerOptions,
    masker: Arc<SecretMasker>,
    job_id: i64,
    hostname: String,
    /// Set when shutting down past the grace period: tries stopped then go back to the queue
    /// at once (same try) instead of being recorded as failed.
    handing_back: std::sync::atomic::AtomicBool,
    /// Set while leases cannot be renewed: tries stopped then are handed back, not failed.
    leases_lost: std::sync::atomic::AtomicBool,
}

impl Worker {
    /// Registers the worker (its job id owns its leases).
    pub async fn start(
        db: Db,
        cache: Arc<DagCache>,
        signals: Arc<Signals>,
        options: WorkerOptions,
        masker: Arc<SecretMasker>,
    ) -> Result<Arc<Self>, crate::store::StoreError> {
        let hostname = crate::dag_processor::hostname();
        let job_id = job::start(&db, JobType::Worker, &hostname).await?;
        Ok(Arc::new(Self {
            db,
            cache,
            signals,
            options,
            masker,
            job_id,
            hostname,
            handing_back: std::sync::atomic::AtomicBool::new(false),
            leases_lost: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Claims and runs task instances until `shutdown`; then lets running tries finish for up
    /// to `grace` and stops the rest (their leases expire and the scheduler retries them).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken, grace: Duration) {
        let slots = Arc::new(Semaphore::new(self.options.concurrency));
        let tasks = tokio_util::task::TaskTracker::new();
        let heartbeat = tokio::spawn(self.clone().heartbeat(shutdown.clone()));
        loop {
            let free = slots.available_permits();
            if free > 0 {
                let now = Utc::now();
                let lease_until = now + lease(self.options.lease_timeout);
                match runs::claim(
                    &self.db,
                    self.job_id,
                    &self.hostname,
                    free,
                    &self.options.filter,
                    now,
                    lease_until,
                )
                .await
                {
                    Ok(claimed) => {
                        for ti in claimed {
                            let Ok(permit) = slots.clone().acquire_owned().await else {
                                break;
                            };
                            let me = self.clone();
                            let cancel = self.signals.register(ti.id, ti.try_number);
                            tasks.spawn(async move {
                                let (id, try_number) = (ti.id, ti.try_number);
                                me.execute(ti, cancel).await;
                                me.signals.unregister(id, try_number);
                                drop(permit);
                                me.signals.wake_scheduler();
                                me.signals.worker.notify_one();
                            });
                        }
                    }
                    Err(e) => tracing::warn!("claiming task instances failed (retrying): {e}"),
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.signals.worker.notified() => {}
                _ = tokio::time::sleep(self.options.poll_interval) => {}
            }
        }
        tasks.close();
        if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
            tracing::warn!(
                "stopping the tasks still running after {}",
                humantime::format_duration(grace)
            );
            // Handed back, not failed: another worker takes the same try at once.
            self.handing_back
                .store(true, std::sync::atomic::Ordering::SeqCst);
            self.signals.stop_all();
            let _ = tokio::time::timeout(Duration::from_secs(10), tasks.wait()).await;
        }
        heartbeat.abort();
    }

    /// Renews this worker's leases at a third of their length; stops tries whose task
    /// instance was taken away (marked by hand, its run timed out).
    async fn heartbeat(self: Arc<Self>, shutdown: CancellationToken) {
        use std::time::Instant;
        let every = self.options.lease_timeout / 3;
        // A cut network makes queries hang rather than fail: each gets half a round.
        let patience = every / 2;
        // Tries stop this long before their lease can expire when renewals keep failing, so
        // they have stopped before the scheduler can give them to another worker.
        let stop_after = self.options.lease_timeout.saturating_sub(patience);
        // When the last successful renewal was sent (the lease it set runs from then).
        let mut renewed = Instant::now();
        loop {
            // Wake at the next round, or earlier when the stop point comes first.
            let until_stop = (renewed + stop_after).saturating_duration_since(Instant::now());
            let wait = if until_stop.is_zero() {
                every
            } else {
                until_stop.min(every)
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            // Taken before renewing, so a try claimed meanwhile is not mistaken for a lost one.
            let mine = self.signals.running_ids();
            if renewed.elapsed() >= stop_after && !mine.is_empty() {
                // Cut off from the database: the scheduler will give these tries away once
                // their leases expire (another worker may then run them), so they stop now.
                tracing::error!(
                    tries = mine.len(),
                    "leases could not be renewed for {}: stopping this worker's tasks",
                    humantime::format_duration(stop_after)
                );
                self.leases_lost
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                self.signals.stop_all();
            }
            let sent = Instant::now();
            let now = Utc::now();
            let renewal = tokio::time::timeout(
                patience,
                runs::renew_leases(
                    &self.db,
                    self.job_id,
                    &mine,
                    now + lease(self.options.lease_timeout),
                ),
            )
            .await
            .unwrap_or_else(|_| {
                Err(crate::store::StoreError::Coordination(
                    "renewing leases timed out".into(),
                ))
            });
            match renewal {
                Ok(held) => {
                    renewed = sent;
                    self.leases_lost
                        .store(false, std::sync::atomic::Ordering::SeqCst);
                    for id in mine.iter().filter(|id| !held.contains(id)) {
                        self.signals.stop(*id);
                    }
                }
                Err(e) => tracing::warn!("renewing task leases failed: {e}"),
            }
            match tokio::time::timeout(patience, job::heartbeat(&self.db, self.job_id, now)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("worker heartbeat failed: {e}"),
                Err(_) => tracing::warn!("worker heartbeat timed out"),
            }
        }
    }
}

fn lease(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::seconds(30))
}

/// `updraft tasks test`: one try of one task in this process, its log on stdout, nothing
/// recorded in the database (Airflow's `tasks test`). Returns the try's state.
pub async fn test_task(
    db: &Db,
    config: &crate::config::Config,
    dag_id: &str,
    task_id: &str,
    logical_date: chrono::DateTime<Utc>,
) -> Result<updraft_shared::state::TaskInstanceState, String> {
    use crate::scheduler::trigger::{runnable_dag, TriggerError};
    use crate::store::entities::{dag_run, task_instance};

    let cache = Arc::new(DagCache::default());
    let loaded = runnable_dag(db, &cache, dag_id)
        .await
        .map_err(|e| match e {
            TriggerError::NotFound(_) => format!("DAG {dag_id} not found in the DAG folder"),
            other => other.to_string(),
        })?;
    let version = loaded.version_id;
    let idx = loaded.graph.index_of(task_id).ok_or_else(|| {
        let ids: Vec<&str> = loaded.dag.tasks.iter().map(|t| t.id.as_str()).collect();
        format!(
            "DAG {dag_id} has no task {task_id}; its tasks: {}",
            ids.join(", ")
        )
    })?;
    let interval = loaded.manual_interval(logical_date);
    let now = Utc::now();
    let run_id =
        crate::scheduler::graph::run_id(updraft_shared::state::DagRunType::Manual, logical_date);
    let run = dag_run::Model {
        id: 0,
        dag_id: dag_id.into(),
        run_id: run_id.clone(),
        run_type: "manual".into(),
        state: "running".into(),
        logical_date: Some(logical_date),
        data_interval_start: Some(interval.start),
        data_interval_end: Some(interval.end),
        run_after: logical_date,
        queued_at: Some(now),
        start_date: Some(now),
        end_date: None,
        conf: "{}".into(),
        note: None,
        triggered_by: Some("test".into()),
        dag_version_id: version,
        backfill_id: None,
        clear_number: 0,
        last_scheduling_decision: None,
        updated_at: now,
    };
    let ti = task_instance::Model {
        id: 0,
        dag_run_id: 0,
        dag_id: dag_id.into(),
        run_id,
        task_id: task_id.into(),
        map_index: -1,
        state: Some("running".into()),
        try_number: 1,
        max_tries: 0,
        start_date: Some(now),
        end_date: None,
        duration: None,
        operator: loaded.dag.tasks[idx].operator.name().into(),
        pool: loaded.pool(idx).into(),
        pool_slots: loaded.pool_slots(idx) as i32,
        queue: loaded.queue(idx).into(),
        priority_weight: loaded.weights[idx] as i32,
        hostname: crate::dag_processor::hostname(),
        queued_dttm: None,
        scheduled_dttm: None,
        next_retry_at: None,
        lease_owner: None,
        lease_expires_at: None,
        rendered_fields: None,
        dag_version_id: version,
        updated_at: now,
        note: None,
        reclaims: 0,
    };
    let logs = tempfile::tempdir().map_err(|e| format!("cannot create a temporary folder: {e}"))?;
    let settings = &config.settings;
    let worker = Worker {
        db: db.clone(),
        cache,
        signals: Signals::new(),
        options: WorkerOptions {
            concurrency: 1,
            lease_timeout: settings.worker.lease_timeout,
            poll_interval: settings.scheduler.poll_interval,
            filter: QueueFilter::Only(Vec::new()),
            xcom_max_size: settings.core.xcom_max_size,
            logs_folder: logs.path().to_path_buf(),
            dags_folder: config.dags_folder.clone(),
            echo_logs: true,
            secrets: crate::secrets::Secrets::load(config).map_err(|e| e.0)?,
        },
        masker: SecretMasker::new(),
        job_id: 0,
        hostname: crate::dag_processor::hostname(),
        handing_back: std::sync::atomic::AtomicBool::new(false),
        leases_lost: std::sync::atomic::AtomicBool::new(false),
    };
    let end = worker.run_logged(&ti, &run, CancellationToken::new()).await;
    Ok(end.state)
}
