//! The processes of a scaled-out deployment: `updraft scheduler`, `updraft worker` and
//! `updraft api`, any number of each against one PostgreSQL (`serve` runs all three in one
//! process). SQLite is the single-machine mode: there, only `serve` schedules and runs tasks.

use std::sync::Arc;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::Failure;
use crate::config::{Config, DatabaseKind};
use crate::engine::{Engine, Parts, WorkerPart};
use crate::scheduler::engine::Scope;
use crate::server::{self, Application};
use crate::store::Db;

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Only task instances of these queues (a task's `queue`; comma-separated) [default: every queue]
    #[arg(long, value_delimiter = ',', value_name = "Q1,Q2")]
    pub queues: Option<Vec<String>>,
    /// Task instances run at the same time [default: worker.concurrency]
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
}

fn postgres_only(config: &Config, what: &str) -> Result<(), Failure> {
    if config.database_url.kind() == DatabaseKind::Sqlite {
        return Err(Failure::Usage(format!(
            "`updraft {what}` needs PostgreSQL (set DATABASE_URL): SQLite is the single-machine mode, where `updraft serve` runs the API, the scheduler and the worker in one process"
        )));
    }
    Ok(())
}

async fn open(config: &Config) -> Result<(crate::secrets::Secrets, Db), Failure> {
    let secrets = crate::secrets::Secrets::load(config)?;
    let db = Db::connect(&config.database_url, &config.settings.database).await?;
    db.migrate().await?;
    Ok((secrets, db))
}

/// A token cancelled by SIGTERM/SIGINT, listening from the very start: a signal that comes
/// while the process is still starting stops it cleanly too.
fn on_signal() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        server::shutdown_signal().await;
        token.cancel();
    });
    shutdown
}

/// Runs until the signal; then stops the engine part gracefully (running tries get
/// `server.shutdown_timeout` to finish, the rest are stopped and retried by their leases).
async fn until_signal(engine: Engine, shutdown: CancellationToken) {
    shutdown.cancelled().await;
    engine.join().await;
}

/// `updraft scheduler`: the scheduler (one leads, the others stand by) and the DAG processor.
pub async fn scheduler(config: Config) -> Result<(), Failure> {
    postgres_only(&config, "scheduler")?;
    let config = Arc::new(config);
    let shutdown = on_signal();
    let (secrets, db) = open(&config).await?;
    let parts = Parts {
        scheduler: true,
        worker: None,
    };
    let engine = Engine::start_parts(
        &db,
        &config,
        Scope::All,
        parts,
        false,
        secrets,
        shutdown.clone(),
    )
    .await?;
    let processor = tokio::spawn(crate::dag_processor::run(
        db.clone(),
        config.clone(),
        shutdown.clone(),
    ));
    tracing::info!("scheduler started");
    until_signal(engine, shutdown).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), processor).await;
    db.close().await;
    tracing::info!("scheduler stopped");
    Ok(())
}

/// `updraft worker`: claims and runs task instances of its queues.
pub async fn worker(config: Config, args: WorkerArgs) -> Result<(), Failure> {
    postgres_only(&config, "worker")?;
    if args.concurrency == Some(0) {
        return Err(Failure::Usage("--concurrency must be at least 1".into()));
    }
    let queues = args.queues.map(|q| {
        q.into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
    });
    if queues.as_ref().is_some_and(Vec::is_empty) {
        return Err(Failure::Usage("--queues names no queue".into()));
    }
    let shutdown = on_signal();
    let (secrets, db) = open(&config).await?;
    let parts = Parts {
        scheduler: false,
        worker: Some(WorkerPart {
            queues: queues.clone(),
            concurrency: args.concurrency,
        }),
    };
    let engine = Engine::start_parts(
        &db,
        &config,
        Scope::All,
        parts,
        false,
        secrets,
        shutdown.clone(),
    )
    .await?;
    tracing::info!(queues = ?queues, "worker started");
    until_signal(engine, shutdown).await;
    db.close().await;
    tracing::info!("worker stopped");
    Ok(())
}

/// `updraft api`: the REST API and UI only.
pub async fn api(config: Config) -> Result<(), Failure> {
    let config = Arc::new(config);
    let (secrets, db) = open(&config).await?;
    crate::auth::ensure_admin(&db, &config.settings.auth)
        .await
        .map_err(|e| Failure::Failed(format!("{e:#}")))?;
    let shutdown = CancellationToken::new();
    let link = server::EngineLink {
        signals: crate::engine::connected_signals(&db, &shutdown),
        cache: Arc::new(crate::scheduler::loaded::DagCache::default()),
    };
    let app = Application::build(config.clone(), db.clone(), link, secrets)?;
    tracing::info!("listening on http://{} (API only)", app.addr());
    let handle = app.handle();
    let stopping = shutdown.clone();
    tokio::spawn(async move {
        server::shutdown_signal().await;
        stopping.cancel();
        handle.stop(true).await;
    });
    let served = app.run_until_stopped().await;
    shutdown.cancel();
    db.close().await;
    served.map_err(|e| Failure::Failed(format!("the HTTP server failed: {e}")))
}
