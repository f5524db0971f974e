//! The `updraft` command line. Exit codes: 0 success, 1 the command ran and failed (unhealthy,
//! pending migrations), 2 bad usage or configuration (one line saying what to fix).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

mod admin;
mod dags;
mod ops;
mod roles;
mod runs;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config, ConfigError, Overrides};
use crate::server::{self, Application};
use crate::store::{Db, StoreError};

#[derive(Debug, Parser)]
#[command(
    name = "updraft",
    version = crate::VERSION,
    about = "Updraft: pipelines as DAGs of tasks, scheduled, watched and driven through an Airflow-compatible API",
    after_help = "Configuration: defaults < $UPDRAFT_HOME/updraft.toml < PORT, DATABASE_URL < UPDRAFT__SECTION__KEY < flags.\nSee docs/configuration.md."
)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct GlobalArgs {
    /// Updraft's home folder (config file, SQLite database, logs) [env: UPDRAFT_HOME] [default: ~/updraft]
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Metadata database: postgres://USER:PASSWORD@HOST/DB or sqlite:///PATH [env: DATABASE_URL]
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the web server (REST API and UI) on the metadata database; migrates it first
    Serve(ServeArgs),
    /// Run only the scheduler and DAG processor (PostgreSQL; several may run, one leads)
    Scheduler,
    /// Run only a worker: claims and runs task instances (PostgreSQL; any number)
    Worker(roles::WorkerArgs),
    /// Run only the REST API and UI (no scheduler, no worker)
    Api(ServeArgs),
    /// Manage the metadata database
    #[command(subcommand)]
    Db(DbCommand),
    /// Validate, list, show, trigger, pause and test DAGs
    #[command(subcommand)]
    Dags(dags::DagsCommand),
    /// Test a single task
    #[command(subcommand)]
    Tasks(runs::TasksCommand),
    /// Create, list, change and delete users of the API and UI
    #[command(subcommand)]
    Users(admin::UsersCommand),
    /// Re-encrypt stored secrets with the first key of core.fernet_key (after adding a new key in front)
    RotateFernetKey,
    /// Print the OpenAPI document of the REST API
    Openapi {
        /// Output format
        #[arg(long, value_enum, default_value_t = SpecFormat::Yaml)]
        format: SpecFormat,
    },
    /// Exit 0 when the server answers healthy (for container HEALTHCHECKs), 1 otherwise
    Healthcheck(HealthcheckArgs),
    /// Print the version
    Version,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to bind [default: 127.0.0.1, or 0.0.0.0 when PORT is set]
    #[arg(long)]
    host: Option<String>,
    /// Port to listen on [env: PORT] [default: 8080]
    #[arg(long)]
    port: Option<u16>,
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Apply pending migrations (for a PaaS release phase); safe to run from several processes
    Migrate,
    /// Exit 1 while migrations are pending, 0 when the schema is current
    Check,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SpecFormat {
    Yaml,
    Json,
}

#[derive(Debug, Args)]
struct HealthcheckArgs {
    /// Base URL of the server [default: from the configuration, e.g. http://127.0.0.1:8080]
    #[arg(long)]
    url: Option<String>,
    /// How long to wait for the answer
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// How a command failed, which decides the exit code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Failed(String),
    /// Bad arguments (exit 2).
    #[error("{0}")]
    Usage(String),
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Config(_) | Failure::Usage(_) => 2,
            Failure::Store(StoreError::Unreachable { .. } | StoreError::Rejected { .. }) => 2,
            _ => 1,
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let overrides = Overrides {
        home: cli.global.home.clone(),
        database_url: cli.global.database_url.clone(),
        ..Default::default()
    };
    match cli.command {
        Command::Version => {
            match crate::GIT_VERSION {
                Some(git) => println!("updraft {} ({git})", crate::VERSION),
                None => println!("updraft {}", crate::VERSION),
            }
            Ok(())
        }
        Command::Openapi { format } => {
            let text = match format {
                SpecFormat::Yaml => crate::api::openapi::spec_yaml(),
                SpecFormat::Json => crate::api::openapi::spec()
                    .to_pretty_json()
                    .map_err(|e| Failure::Failed(e.to_string()))?,
            };
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
            Ok(())
        }
        Command::Serve(args) => {
            let overrides = Overrides {
                host: args.host,
                port: args.port,
                ..overrides
            };
            let config = load_for_database(&overrides)?;
            runtime()?.block_on(serve(config))
        }
        Command::Scheduler => {
            let config = load_for_database(&overrides)?;
            runtime()?.block_on(roles::scheduler(config))
        }
        Command::Worker(args) => {
            let config = load_for_database(&overrides)?;
            runtime()?.block_on(roles::worker(config, args))
        }
        Command::Api(args) => {
            let overrides = Overrides {
                host: args.host,
                port: args.port,
                ..overrides
            };
            let config = load_for_database(&overrides)?;
            runtime()?.block_on(roles::api(config))
        }
        Command::Db(cmd) => {
            let config = load_for_database(&overrides)?;
            runtime()?.block_on(db_command(config, cmd))
        }
        Command::Dags(
            cmd @ (dags::DagsCommand::Trigger(_)
            | dags::DagsCommand::Pause { .. }
            | dags::DagsCommand::Unpause { .. }
            | dags::DagsCommand::Test(_)
            | dags::DagsCommand::Backfill(_)
            | dags::DagsCommand::MarkRun(_)
            | dags::DagsCommand::DeleteRun(_)),
        ) => {
            let config = load_for_database(&overrides)?;
            runtime()?.block_on(runs::dags(config, cmd))
        }
        Command::Users(cmd) => {
            let config = load_for_database(&overrides)?;
            runtime()?.block_on(admin::users_command(config, cmd))
        }
        Command::RotateFernetKey => {
            let config = load_for_database(&overrides)?;
            runtime()?.block_on(admin::rotate_fernet_key(config))
        }
        Command::Tasks(cmd) => {
            let config = load_for_database(&overrides)?;
            runtime()?.block_on(runs::tasks(config, cmd))
        }
        Command::Dags(cmd) => {
            // Validating and printing the schema need no configuration; list/show read the folder.
            let config = match cmd {
                dags::DagsCommand::Validate { .. } | dags::DagsCommand::Schema => {
                    config::load(&overrides, &config::process_env()).ok()
                }
                _ => Some(config::load(&overrides, &config::process_env())?),
            };
            dags::run(cmd, config.as_ref())
        }
        Command::Healthcheck(args) => {
            let base = match args.url {
                Some(url) => url,
                None => config::load(&overrides, &config::process_env())?.local_base_url(),
            };
            runtime()?.block_on(healthcheck(&base, args.timeout))
        }
    }
}

/// Loads the configuration for a command that opens the database, and starts logging.
fn load_for_database(overrides: &Overrides) -> Result<Config, Failure> {
    let env = config::process_env();
    let config = config::load(overrides, &env)?;
    let (_, home_source) = config::resolve_home(overrides, &env)?;
    config::ensure_home_writable(&config.home, home_source)?;
    crate::telemetry::init(&config.settings.logging);
    Ok(config)
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::Failed(format!("cannot start the async runtime: {e}")))
}

async fn serve(config: Config) -> Result<(), Failure> {
    let config = Arc::new(config);
    tracing::info!(
        version = crate::VERSION,
        home = %config.home.display(),
        dags_folder = %config.dags_folder.display(),
        database = %config.database_url,
        "starting updraft"
    );
    // Before anything starts: a PostgreSQL deployment without a Fernet key stops here.
    let secrets = crate::secrets::Secrets::load(&config)?;
    let db = Db::connect(&config.database_url, &config.settings.database).await?;
    db.migrate().await?;
    crate::auth::ensure_admin(&db, &config.settings.auth)
        .await
        .map_err(|e| Failure::Failed(format!("{e:#}")))?;
    let shutdown = CancellationToken::new();
    let engine = crate::engine::Engine::start(
        &db,
        &config,
        crate::scheduler::engine::Scope::All,
        false,
        secrets.clone(),
        shutdown.clone(),
    )
    .await?;
    let link = server::EngineLink {
        signals: engine.signals.clone(),
        cache: engine.cache.clone(),
    };
    let app = Application::build(config.clone(), db.clone(), link, secrets)?;
    tracing::info!(
        "listening on http://{} (web UI {})",
        app.addr(),
        if crate::ui::is_embedded() {
            "embedded"
        } else {
            "not built: run scripts/build-ui.sh"
        }
    );
    let processor = tokio::spawn(crate::dag_processor::run(
        db.clone(),
        config.clone(),
        shutdown.clone(),
    ));
    let handle = app.handle();
    let stopping = shutdown.clone();
    tokio::spawn(async move {
        server::shutdown_signal().await;
        stopping.cancel();
        handle.stop(true).await;
    });
    let served = app.run_until_stopped().await;
    shutdown.cancel();
    // A scan stuck on a hung file system must not keep the process from exiting.
    if tokio::time::timeout(std::time::Duration::from_secs(10), processor)
        .await
        .is_err()
    {
        tracing::warn!("the DAG processor did not stop within 10 s; exiting anyway");
    }
    engine.join().await;
    db.close().await;
    served.map_err(|e| Failure::Failed(format!("the HTTP server failed: {e}")))?;
    tracing::info!("updraft stopped");
    Ok(())
}

async fn db_command(config: Config, cmd: DbCommand) -> Result<(), Failure> {
    let db = Db::connect(&config.database_url, &config.settings.database).await?;
    let result = match cmd {
        DbCommand::Migrate => {
            let applied = db.migrate().await?;
            if applied.is_empty() {
                println!("the metadata database is up to date");
            } else {
                println!(
                    "applied {} migration(s): {}",
                    applied.len(),
                    applied.join(", ")
                );
            }
            Ok(())
        }
        DbCommand::Check => {
            let pending = db.pending_migrations().await?;
            if pending.is_empty() {
                println!("the metadata database is up to date");
                Ok(())
            } else {
                Err(Failure::Failed(format!(
                    "{} migration(s) pending: {}; run `updraft db migrate`",
                    pending.len(),
                    pending.join(", ")
                )))
            }
        }
    };
    db.close().await;
    result
}

async fn healthcheck(base: &str, timeout: Duration) -> Result<(), Failure> {
    let url = format!("{}/api/v2/monitor/health", base.trim_end_matches('/'));
    if !matches!(
        reqwest::Url::parse(&url)
            .map(|u| u.scheme().to_string())
            .as_deref(),
        Ok("http" | "https")
    ) {
        return Err(Failure::Config(ConfigError(format!(
            "--url {base:?} is not an http(s) URL: write it like http://127.0.0.1:8080"
        ))));
    }
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| Failure::Failed(format!("cannot build an HTTP client: {e}")))?;
    let res = client
        .get(&url)
        .send()
        .await
        .map_err(|e| Failure::Failed(format!("{url}: no answer: {e}")))?;
    let status = res.status();
    if !status.is_success() {
        return Err(Failure::Failed(format!("{url}: HTTP {status}")));
    }
    let health: updraft_shared::api::HealthInfoResponse = res
        .json()
        .await
        .map_err(|e| Failure::Failed(format!("{url}: not a health answer: {e}")))?;
    if !health.metadatabase_healthy() {
        return Err(Failure::Failed(format!(
            "{url}: the metadata database is {}",
            health.metadatabase.status.as_deref().unwrap_or("unknown")
        )));
    }
    println!("healthy");
    Ok(())
}
