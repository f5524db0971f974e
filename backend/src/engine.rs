//! The engine in one process: a scheduler and a worker sharing a DAG cache and wake-up
//! signals (what `updraft serve` runs, and `dags test` for one run).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::logs::SecretMasker;
use crate::scheduler::engine::{Scheduler, Scope, Signals};
use crate::scheduler::loaded::DagCache;
use crate::store::job::{self, JobType};
use crate::store::runs::QueueFilter;
use crate::store::{Db, StoreError};
use crate::worker::{Worker, WorkerOptions};

/// The queue of `dags test` task instances: no other worker takes them.
pub const TEST_QUEUE: &str = "updraft-dags-test";

/// How often the scheduler's job heartbeat is written (the health endpoint reads it).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

pub struct Engine {
    pub signals: Arc<Signals>,
    pub cache: Arc<DagCache>,
    handles: Vec<JoinHandle<()>>,
    /// SQLite: the scheduler's lock file, held while the process runs.
    _scheduler_lock: Option<std::fs::File>,
}

/// Which parts of the engine a process runs (`serve` runs both).
#[derive(Debug, Clone)]
pub struct Parts {
    pub scheduler: bool,
    /// The worker, with the queues it serves (None: every queue) and its concurrency.
    pub worker: Option<WorkerPart>,
}

#[derive(Debug, Clone, Default)]
pub struct WorkerPart {
    pub queues: Option<Vec<String>>,
    pub concurrency: Option<usize>,
}

impl Parts {
    pub fn all() -> Self {
        Self {
            scheduler: true,
            worker: Some(WorkerPart::default()),
        }
    }
}

/// Signals for this process, connected to the others' through the database (PostgreSQL
/// LISTEN/NOTIFY): what `updraft api` uses on its own, and every engine.
pub fn connected_signals(db: &Db, shutdown: &CancellationToken) -> Arc<Signals> {
    let signals = Signals::new();
    if let Some(tx) = crate::store::coordination::spawn_notifier(db, shutdown.clone()) {
        signals.connect_remote(tx);
    }
    let (s, w) = (signals.clone(), signals.clone());
    crate::store::coordination::spawn_listener(
        db,
        shutdown.clone(),
        move || s.scheduler.notify_one(),
        move || w.worker.notify_one(),
    );
    signals
}

impl Engine {
    /// Starts a scheduler (for `scope`) and a worker.
    pub async fn start(
        db: &Db,
        config: &Config,
        scope: Scope,
        echo_logs: bool,
        secrets: crate::secrets::Secrets,
        shutdown: CancellationToken,
    ) -> Result<Self, StoreError> {
        Self::start_parts(
            db,
            config,
            scope,
            Parts::all(),
            echo_logs,
            secrets,
            shutdown,
        )
        .await
    }

    /// Starts the chosen parts: `updraft scheduler`, `updraft worker`, or both.
    pub async fn start_parts(
        db: &Db,
        config: &Config,
        scope: Scope,
        parts: Parts,
        echo_logs: bool,
        secrets: crate::secrets::Secrets,
        shutdown: CancellationToken,
    ) -> Result<Self, StoreError> {
        let scheduler_lock = if parts.scheduler && scope == Scope::All {
            crate::store::coordination::sqlite_scheduler_lock(db)?
        } else {
            None
        };
        let signals = match scope {
            Scope::All => connected_signals(db, &shutdown),
            Scope::Run(_) => Signals::new(),
        };
        let cache = Arc::new(DagCache::default());
        let settings = &config.settings;
        let worker_part = parts.worker.clone().unwrap_or_default();
        let filter = match (scope, &worker_part.queues) {
            (Scope::Run(_), _) => QueueFilter::Only(vec![TEST_QUEUE.into()]),
            (Scope::All, Some(queues)) => QueueFilter::Only(queues.clone()),
            (Scope::All, None) => QueueFilter::AllExcept(TEST_QUEUE.into()),
        };
        let options = WorkerOptions {
            concurrency: worker_part
                .concurrency
                .unwrap_or(settings.worker.concurrency),
            lease_timeout: settings.worker.lease_timeout,
            poll_interval: settings.scheduler.poll_interval,
            filter,
            xcom_max_size: settings.core.xcom_max_size,
            logs_folder: config.home.join("logs"),
            dags_folder: config.dags_folder.clone(),
            echo_logs,
            secrets,
        };
        let mut handles = Vec::new();
        if parts.worker.is_some() {
            let worker = Worker::start(
                db.clone(),
                cache.clone(),
                signals.clone(),
                options,
                SecretMasker::new(),
            )
            .await?;
            handles.push(tokio::spawn(
                worker.run(shutdown.clone(), settings.server.shutdown_timeout),
            ));
        }
        if parts.scheduler {
            let scheduler = Scheduler::new(
                db.clone(),
                cache.clone(),
                signals.clone(),
                scope,
                settings.scheduler.poll_interval,
                settings.worker.lease_timeout,
            );
            handles.push(tokio::spawn(scheduler.run(shutdown.clone())));
        }
        if scope == Scope::All && parts.scheduler {
            let job_id =
                job::start(db, JobType::Scheduler, &crate::dag_processor::hostname()).await?;
            let db = db.clone();
            handles.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(HEARTBEAT_EVERY) => {}
                    }
                    if let Err(e) = job::heartbeat(&db, job_id, chrono::Utc::now()).await {
                        tracing::warn!("scheduler heartbeat failed: {e}");
                    }
                }
            }));
        }
        Ok(Self {
            signals,
            cache,
            handles,
            _scheduler_lock: scheduler_lock,
        })
    }

    /// Waits for the scheduler and worker to stop (after the shutdown token fired).
    pub async fn join(self) {
        for handle in self.handles {
            let _ = handle.await;
        }
    }
}
