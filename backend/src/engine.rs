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
        let signals = Signals::new();
        let cache = Arc::new(DagCache::default());
        let settings = &config.settings;
        let filter = match scope {
            Scope::All => QueueFilter::AllExcept(TEST_QUEUE.into()),
            Scope::Run(_) => QueueFilter::Only(vec![TEST_QUEUE.into()]),
        };
        let options = WorkerOptions {
            concurrency: settings.worker.concurrency,
            lease_timeout: settings.worker.lease_timeout,
            poll_interval: settings.scheduler.poll_interval,
            filter,
            xcom_max_size: settings.core.xcom_max_size,
            logs_folder: config.home.join("logs"),
            dags_folder: config.dags_folder.clone(),
            echo_logs,
            secrets,
        };
        let worker = Worker::start(
            db.clone(),
            cache.clone(),
            signals.clone(),
            options,
            SecretMasker::new(),
        )
        .await?;
        let scheduler = Scheduler::new(
            db.clone(),
            cache.clone(),
            signals.clone(),
            scope,
            settings.scheduler.poll_interval,
            settings.worker.lease_timeout,
        );
        let mut handles = vec![
            tokio::spawn(scheduler.run(shutdown.clone())),
            tokio::spawn(worker.run(shutdown.clone(), settings.server.shutdown_timeout)),
        ];
        if scope == Scope::All {
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
        })
    }

    /// Waits for the scheduler and worker to stop (after the shutdown token fired).
    pub async fn join(self) {
        for handle in self.handles {
            let _ = handle.await;
        }
    }
}
