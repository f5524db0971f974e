//! Commands that run things: `dags trigger|pause|unpause|test` and `tasks test`, and (in
//! `ops`) the changes the API makes: `dags backfill|mark-run|delete-run`, `tasks clear|mark`.
//! They read the DAG folder into the database first, so they work before `serve` ever ran.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use clap::{Args, Subcommand};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use tokio_util::sync::CancellationToken;
use updraft_shared::state::{DagRunState, TaskInstanceState};

// In this folder beside `runs.rs`; a child of `runs` for its `open` and argument parsers.
use super::ops;

use super::dags::DagsCommand;
use super::Failure;
use crate::config::Config;
use crate::dag_processor::{scan_and_sync, DagFolder};
use crate::engine::{Engine, TEST_QUEUE};
use crate::scheduler::engine::{Scope, TEST_TRIGGER};
use crate::scheduler::loaded::DagCache;
use crate::scheduler::trigger::{self, TriggerError, TriggerRequest};
use crate::store::entities::{dag_run, task_instance};
use crate::store::job::{self, JobType};
use crate::store::{runs, Db};
use crate::timefmt::iso;

#[derive(Debug, Args)]
pub struct TriggerArgs {
    dag_id: String,
    /// The run's conf: a JSON object (overrides params; `dag_run.conf` in templates)
    #[arg(long, value_name = "JSON")]
    conf: Option<String>,
    /// Run id [default: manual__<logical date>]
    #[arg(long)]
    run_id: Option<String>,
    /// Logical date: 2024-01-31 or 2024-01-31T06:00:00[+00:00] (UTC unless an offset is given) [default: now]
    #[arg(long, value_parser = parse_date)]
    logical_date: Option<DateTime<Utc>>,
    /// Wait until the run finishes; exit 0 if it succeeded, 1 if it failed
    #[arg(long)]
    wait: bool,
    /// With --wait, give up (exit 1) after this long, e.g. 10m
    #[arg(long, value_parser = humantime::parse_duration, requires = "wait")]
    timeout: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    dag_id: String,
    /// Logical date: 2024-01-31 or 2024-01-31T06:00:00[+00:00] [default: now]
    #[arg(value_parser = parse_date)]
    logical_date: Option<DateTime<Utc>>,
    /// The run's conf: a JSON object
    #[arg(long, value_name = "JSON")]
    conf: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Run one task once in this process, its log on the terminal, without checking its
    /// dependencies or recording anything (Airflow's `tasks test`); exit 0 when it succeeds
    Test {
        dag_id: String,
        task_id: String,
        /// Logical date: 2024-01-31 or 2024-01-31T06:00:00[+00:00] [default: now]
        #[arg(value_parser = parse_date)]
        logical_date: Option<DateTime<Utc>>,
    },
    /// Clear task instances so the scheduler runs them again, their runs queued again
    /// (Airflow's `tasks clear`); lists them and asks first, unless --yes
    Clear(ops::ClearArgs),
    /// Mark a task instance (and, as asked, its relatives) success, failed or skipped; failed
    /// downstream tasks are then cleared (the API's PATCH of a task instance)
    Mark(ops::MarkArgs),
}

/// A date or date-time on the command line (UTC unless it carries an offset).
pub(super) fn parse_date(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    Err(format!(
        "`{text}` is not a date: use 2024-01-31, 2024-01-31T06:00:00 or 2024-01-31T06:00:00+02:00"
    ))
}

pub(super) fn parse_conf(conf: Option<&str>) -> Result<Option<serde_json::Value>, Failure> {
    let Some(text) = conf else { return Ok(None) };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        Failure::Config(crate::config::ConfigError(format!(
            "--conf is not valid JSON ({e}): give an object like '{{\"key\": \"value\"}}'"
        )))
    })?;
    if !value.is_object() {
        return Err(Failure::Config(crate::config::ConfigError(
            "--conf must be a JSON object like '{\"key\": \"value\"}'".into(),
        )));
    }
    Ok(Some(value))
}

/// Opens and migrates the database and brings the DAG folder into it.
pub(super) async fn open(config: &Config) -> Result<Db, Failure> {
    let db = Db::connect(&config.database_url, &config.settings.database).await?;
    db.migrate().await?;
    let folder = Arc::new(Mutex::new(DagFolder::new(
        config.dags_folder.clone(),
        config.settings.core.dag_file_max_bytes,
    )));
    scan_and_sync(
        &folder,
        &db,
        config.settings.core.dags_are_paused_at_creation,
    )
    .await?;
    Ok(db)
}

fn trigger_failure(e: TriggerError) -> Failure {
    match e {
        TriggerError::Invalid(_) => Failure::Config(crate::config::ConfigError(e.to_string())),
        TriggerError::Store(e) => Failure::Store(e),
        other => Failure::Failed(other.to_string()),
    }
}

pub async fn dags(config: Config, cmd: DagsCommand) -> Result<(), Failure> {
    match cmd {
        DagsCommand::Pause { dag_id } => pause(&config, &dag_id, true).await,
        DagsCommand::Unpause { dag_id } => pause(&config, &dag_id, false).await,
        DagsCommand::Trigger(args) => trigger_cmd(&config, args).await,
        DagsCommand::Test(args) => test_dag(&config, args).await,
        DagsCommand::Backfill(args) => ops::backfill(&config, args).await,
        DagsCommand::MarkRun(args) => ops::mark_run(&config, args).await,
        DagsCommand::DeleteRun(args) => ops::delete_run(&config, args).await,
        _ => unreachable!("only database commands are dispatched here"),
    }
}

async fn pause(config: &Config, dag_id: &str, paused: bool) -> Result<(), Failure> {
    let db = open(config).await?;
    if !runs::set_paused(&db, dag_id, paused).await? {
        return Err(Failure::Failed(format!(
            "DAG {dag_id} not found; `updraft dags list` shows the DAGs in {}",
            config.dags_folder.display()
        )));
    }
    println!(
        "Dag: {dag_id}, paused: {}",
        if paused { "True" } else { "False" }
    );
    Ok(())
}

async fn trigger_cmd(config: &Config, args: TriggerArgs) -> Result<(), Failure> {
    let conf = parse_conf(args.conf.as_deref())?;
    let db = open(config).await?;
    let cache = DagCache::default();
    let req = TriggerRequest {
        run_id: args.run_id,
        logical_date: args.logical_date,
        conf,
        triggered_by: "cli".into(),
        audit: Some(crate::store::audit::AuditEntry::new(
            "cli_trigger_dag_run",
            &std::env::var("USER").unwrap_or_else(|_| "cli".into()),
        )),
        ..Default::default()
    };
    let run = trigger::trigger(&db, &cache, &args.dag_id, req)
        .await
        .map_err(trigger_failure)?;
    println!(
        "Created <DagRun {} @ {}: {}, state:{}, queued_at: {}>",
        run.dag_id,
        run.logical_date.map(iso).unwrap_or_default(),
        run.run_id,
        run.state,
        run.queued_at.map(iso).unwrap_or_default()
    );
    if !args.wait {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let beat = job::latest_heartbeat(&db, JobType::Scheduler).await?;
    let threshold = chrono::Duration::from_std(config.settings.scheduler.health_check_threshold)
        .unwrap_or_default();
    if beat.is_none_or(|b| Utc::now() - b > threshold) {
        eprintln!("warning: no scheduler is running on this database: start `updraft serve` to run the DAG");
    }
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = dag_run::Entity::find_by_id(run.id)
            .one(db.conn())
            .await
            .map_err(|e| Failure::Store(e.into()))?
            .ok_or_else(|| Failure::Failed(format!("run {} was deleted", run.run_id)))?;
        let state = DagRunState::parse(&now.state);
        if state.is_some_and(DagRunState::is_finished) {
            print_task_states(&db, run.id).await?;
            println!(
                "DAG run {} of {} finished: {}",
                run.run_id, run.dag_id, now.state
            );
            return if state == Some(DagRunState::Success) {
                Ok(())
            } else {
                Err(Failure::Failed(format!("the run ended {}", now.state)))
            };
        }
        if args.timeout.is_some_and(|t| started.elapsed() > t) {
            return Err(Failure::Failed(format!(
                "the run is still {} after {}",
                now.state,
                humantime::format_duration(args.timeout.unwrap_or_default())
            )));
        }
    }
}

async fn print_task_states(db: &Db, run_pk: i64) -> Result<(), Failure> {
    let tis = task_instance::Entity::find()
        .filter(task_instance::Column::DagRunId.eq(run_pk))
        .order_by_asc(task_instance::Column::Id)
        .all(db.conn())
        .await
        .map_err(|e| Failure::Store(e.into()))?;
    for ti in tis {
        println!(
            "  {:<40} {:<16} try {}",
            ti.task_id,
            ti.state.as_deref().unwrap_or("none"),
            ti.try_number
        );
    }
    Ok(())
}

async fn test_dag(config: &Config, args: TestArgs) -> Result<(), Failure> {
    let conf = parse_conf(args.conf.as_deref())?;
    let db = open(config).await?;
    let cache = DagCache::default();
    let logical_date = args.logical_date.unwrap_or_else(crate::timefmt::now);
    let req = || TriggerRequest {
        logical_date: Some(logical_date),
        conf: conf.clone(),
        triggered_by: TEST_TRIGGER.into(),
        test_queue: Some(TEST_QUEUE.into()),
        ..Default::default()
    };
    let run = match trigger::trigger(&db, &cache, &args.dag_id, req()).await {
        Err(TriggerError::Duplicate { run_id, .. }) => {
            // An earlier `dags test` of the same date is replaced, as Airflow does.
            let old = dag_run::Entity::find()
                .filter(dag_run::Column::DagId.eq(&args.dag_id))
                .filter(dag_run::Column::RunId.eq(&run_id))
                .one(db.conn())
                .await
                .map_err(|e| Failure::Store(e.into()))?;
            match old {
                Some(old) if old.triggered_by.as_deref() == Some(TEST_TRIGGER) => {
                    dag_run::Entity::delete_by_id(old.id)
                        .exec(db.conn())
                        .await
                        .map_err(|e| Failure::Store(e.into()))?;
                    trigger::trigger(&db, &cache, &args.dag_id, req())
                        .await
                        .map_err(trigger_failure)?
                }
                _ => {
                    return Err(Failure::Failed(format!(
                        "DAG {} already has a run {run_id} that `dags test` did not create; pick another date",
                        args.dag_id
                    )))
                }
            }
        }
        other => other.map_err(trigger_failure)?,
    };
    println!(
        "Testing DAG {} run {} (logical date {})",
        run.dag_id,
        run.run_id,
        iso(logical_date)
    );
    let shutdown = CancellationToken::new();
    let engine = Engine::start(
        &db,
        config,
        Scope::Run(run.id),
        true,
        crate::secrets::Secrets::load(config)?,
        shutdown.clone(),
    )
    .await?;
    engine.signals.wake_scheduler();
    let state = loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = crate::server::shutdown_signal() => {
                shutdown.cancel();
                engine.join().await;
                return Err(Failure::Failed("interrupted".into()));
            }
        }
        let now = dag_run::Entity::find_by_id(run.id)
            .one(db.conn())
            .await
            .map_err(|e| Failure::Store(e.into()))?;
        let Some(now) = now else {
            break "deleted".to_string();
        };
        if DagRunState::parse(&now.state).is_some_and(DagRunState::is_finished) {
            break now.state;
        }
    };
    shutdown.cancel();
    engine.join().await;
    print_task_states(&db, run.id).await?;
    println!("Dag run {} finished: {state}", run.run_id);
    if state == DagRunState::Success.as_str() {
        Ok(())
    } else {
        Err(Failure::Failed(format!("the run ended {state}")))
    }
}

pub async fn tasks(config: Config, cmd: TasksCommand) -> Result<(), Failure> {
    let (dag_id, task_id, logical_date) = match cmd {
        TasksCommand::Test {
            dag_id,
            task_id,
            logical_date,
        } => (dag_id, task_id, logical_date),
        TasksCommand::Clear(args) => return ops::clear(&config, args).await,
        TasksCommand::Mark(args) => return ops::mark(&config, args).await,
    };
    let db = open(&config).await?;
    let state = crate::worker::test_task(
        &db,
        &config,
        &dag_id,
        &task_id,
        logical_date.unwrap_or_else(crate::timefmt::now),
    )
    .await
    .map_err(Failure::Failed)?;
    println!("Task {task_id} of {dag_id}: {state}");
    match state {
        TaskInstanceState::Success | TaskInstanceState::Skipped => Ok(()),
        other => Err(Failure::Failed(format!("the task ended {other}"))),
    }
}
