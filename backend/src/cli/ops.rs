//! `updraft dags backfill|mark-run|delete-run` and `updraft tasks clear|mark`: the REST API's
//! changes to runs and task instances from the command line, through the same store
//! functions (`store::backfills`, `store::run_ops`, `store::ti_ops`). Each change commits
//! with its audit entry: owner `$USER`, event `cli_` + the API's event. The CLI is another
//! process than the scheduler, so nothing is woken: a running scheduler sees the change at
//! its next poll.

use std::io::{BufRead, Write};

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use updraft_shared::api::{
    BackfillPostBody, ClearTaskId, ClearTaskInstancesBody, ReprocessBehavior,
};
use updraft_shared::state::{DagRunState, TaskInstanceState};

use super::runs::{open, parse_conf, parse_date};
use crate::cli::Failure;
use crate::config::Config;
use crate::scheduler::loaded::DagCache;
use crate::store::audit::AuditEntry;
use crate::store::entities::task_instance;
use crate::store::job::{self, JobType};
use crate::store::run_ops::{self, OpError};
use crate::store::ti_ops::{self, MarkRequest};
use crate::store::{backfills, Db};
use crate::timefmt::iso;

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// The DAG (it needs a cron or preset schedule such as @daily)
    dag_id: String,
    /// First logical date: 2024-01-01 (midnight UTC, not the DAG's timezone),
    /// 2024-01-01T06:00:00 (UTC) or 2024-01-01T06:00:00+02:00
    #[arg(long, short = 's', visible_alias = "from-date", value_name = "DATE", value_parser = parse_date)]
    start: DateTime<Utc>,
    /// Last logical date (included), in the same forms
    #[arg(long, short = 'e', visible_alias = "to-date", value_name = "DATE", value_parser = parse_date)]
    end: DateTime<Utc>,
    /// Print the logical dates it would run, one a line, and create nothing
    #[arg(long)]
    dry_run: bool,
    /// Dates that already have a run: skip them (none), run failed ones again (failed), or
    /// failed and successful ones (completed)
    #[arg(long, visible_alias = "reprocess-behavior", value_enum, default_value_t = Reprocess::None)]
    reprocess: Reprocess,
    /// At most this many of the backfill's runs at once
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    max_active_runs: i32,
    /// Run the latest date first
    #[arg(long)]
    run_backwards: bool,
    /// The runs' conf: a JSON object (overrides params)
    #[arg(long, visible_alias = "dag-run-conf", value_name = "JSON")]
    conf: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Reprocess {
    None,
    Failed,
    Completed,
}

#[derive(Debug, Args)]
pub struct MarkRunArgs {
    /// The DAG
    dag_id: String,
    /// The run, e.g. manual__2024-01-01T00:00:00+00:00 (the API's dag_run_id)
    run_id: String,
    /// success: every task instance succeeds; failed: running ones fail, unfinished ones are
    /// skipped; queued: the run is queued again
    #[arg(long, value_enum)]
    state: RunState,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RunState {
    Success,
    Failed,
    Queued,
}

#[derive(Debug, Args)]
pub struct DeleteRunArgs {
    /// The DAG
    dag_id: String,
    /// The run
    run_id: String,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    yes: bool,
}

#[derive(Debug, Args)]
pub struct ClearArgs {
    /// The DAG
    dag_id: String,
    /// Only tasks whose id matches this regular expression (anywhere in the id)
    #[arg(long, short = 't', value_name = "RE")]
    task_regex: Option<String>,
    /// Runs with a logical date from this one on: 2024-01-01 (midnight UTC) or RFC 3339
    #[arg(long, short = 's', value_name = "DATE", value_parser = parse_date)]
    start_date: Option<DateTime<Utc>>,
    /// Runs with a logical date up to this one (included)
    #[arg(long, short = 'e', value_name = "DATE", value_parser = parse_date)]
    end_date: Option<DateTime<Utc>>,
    /// Only failed and upstream_failed task instances
    #[arg(long, short = 'f')]
    only_failed: bool,
    /// Only running task instances
    #[arg(long, short = 'r')]
    only_running: bool,
    /// With the matching tasks' downstream tasks
    #[arg(long, short = 'd')]
    downstream: bool,
    /// With the matching tasks' upstream tasks
    #[arg(long, short = 'u')]
    upstream: bool,
    /// Only print what would be cleared
    #[arg(long)]
    dry_run: bool,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    yes: bool,
}

#[derive(Debug, Args)]
pub struct MarkArgs {
    /// The DAG
    dag_id: String,
    /// The run
    run_id: String,
    /// The task (all its map indexes)
    task_id: String,
    /// The new state
    #[arg(long, value_enum)]
    state: TaskState,
    /// With the task's downstream tasks
    #[arg(long, short = 'd')]
    downstream: bool,
    /// With the task's upstream tasks
    #[arg(long, short = 'u')]
    upstream: bool,
    /// The same tasks in the DAG's later runs too
    #[arg(long)]
    future: bool,
    /// The same tasks in the DAG's earlier runs too
    #[arg(long)]
    past: bool,
    /// Only print what would be marked
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TaskState {
    Success,
    Failed,
    Skipped,
}

/// Not found and conflicts: the command ran and failed (1); a request the store refuses as
/// given: bad arguments (2).
fn failure(e: OpError) -> Failure {
    match e {
        OpError::NotFound(m) | OpError::Conflict(m) => Failure::Failed(m),
        OpError::BadRequest(m) | OpError::Invalid(m) => Failure::Usage(m),
        OpError::Store(e) => Failure::Store(e),
    }
}

/// The audit owner: the user running the command.
fn owner() -> String {
    std::env::var("USER").unwrap_or_else(|_| "cli".into())
}

/// Asks on stderr; only `y` or `yes` on stdin answers yes (an empty or closed stdin is no).
fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => {
            // No answer (stdin closed): end the prompt's line.
            eprintln!();
            false
        }
        Ok(_) => matches!(line.trim().to_lowercase().as_str(), "y" | "yes"),
    }
}

/// Says who will carry the change out: the scheduler of a running `updraft serve`, at its
/// next poll.
async fn scheduler_note(db: &Db, config: &Config) -> Result<(), Failure> {
    let beat = job::latest_heartbeat(db, JobType::Scheduler).await?;
    let threshold = chrono::Duration::from_std(config.settings.scheduler.health_check_threshold)
        .unwrap_or_default();
    if beat.is_none_or(|b| Utc::now() - b > threshold) {
        eprintln!(
            "note: no scheduler is running on this database: start `updraft serve` to carry this out"
        );
    }
    Ok(())
}

fn print_task_instances(tis: &[task_instance::Model]) {
    for ti in tis {
        let map = if ti.map_index >= 0 {
            format!(" map_index={}", ti.map_index)
        } else {
            String::new()
        };
        println!(
            "<TaskInstance: {}.{} {}{map} [{}]>",
            ti.dag_id,
            ti.task_id,
            ti.run_id,
            ti.state.as_deref().unwrap_or("none")
        );
    }
}

pub async fn backfill(config: &Config, args: BackfillArgs) -> Result<(), Failure> {
    let conf = parse_conf(args.conf.as_deref())?;
    let db = open(config).await?;
    let cache = DagCache::default();
    let body = BackfillPostBody {
        dag_id: args.dag_id,
        from_date: args.start,
        to_date: args.end,
        run_backwards: args.run_backwards,
        dag_run_conf: conf,
        reprocess_behavior: Some(match args.reprocess {
            Reprocess::None => ReprocessBehavior::None,
            Reprocess::Failed => ReprocessBehavior::Failed,
            Reprocess::Completed => ReprocessBehavior::Completed,
        }),
        max_active_runs: args.max_active_runs,
        run_on_latest_version: None,
    };
    let plan = backfills::plan(&db, &cache, &body).await.map_err(failure)?;
    if args.dry_run {
        for (info, _) in &plan.items {
            println!("{}", iso(info.logical_date()));
        }
        if plan.items.is_empty() {
            eprintln!("no dates to run: the range holds no run of the schedule, or all have runs (see --reprocess)");
        }
        return Ok(());
    }
    let dates: Vec<(DateTime<Utc>, bool)> = plan
        .items
        .iter()
        .map(|(info, existing)| (info.logical_date(), existing.is_some()))
        .collect();
    let names = crate::secrets::SensitiveNames::from_settings(&config.settings.core);
    let shown_conf = names.redact_json(&serde_json::Value::Object(plan.conf.clone()));
    let created = backfills::create(
        &db,
        &body,
        plan,
        AuditEntry::new("cli_create_backfill", &owner()),
        shown_conf,
    )
    .await
    .map_err(failure)?;
    println!(
        "Created backfill {} of {}: {} run(s)",
        created.id,
        body.dag_id,
        dates.len()
    );
    for (date, again) in dates {
        println!("  {}{}", iso(date), if again { " (run again)" } else { "" });
    }
    scheduler_note(&db, config).await
}

pub async fn mark_run(config: &Config, args: MarkRunArgs) -> Result<(), Failure> {
    let db = open(config).await?;
    let to = match args.state {
        RunState::Success => DagRunState::Success,
        RunState::Failed => DagRunState::Failed,
        RunState::Queued => DagRunState::Queued,
    };
    let entry = AuditEntry::new("cli_patch_dag_run", &owner())
        .extra(serde_json::json!({ "state": to.as_str() }));
    run_ops::patch(&db, &args.dag_id, &args.run_id, Some(to), None, entry)
        .await
        .map_err(failure)?;
    println!(
        "Dag run {} of {} marked {}",
        args.run_id,
        args.dag_id,
        to.as_str()
    );
    if to == DagRunState::Queued {
        scheduler_note(&db, config).await?;
    }
    Ok(())
}

pub async fn delete_run(config: &Config, args: DeleteRunArgs) -> Result<(), Failure> {
    let db = open(config).await?;
    let run = run_ops::find_run_in(db.conn(), &args.dag_id, &args.run_id)
        .await
        .map_err(failure)?;
    if !args.yes
        && !confirm(&format!(
            "Delete run {} of {} ({}) with its task instances, their tries and XComs?",
            run.run_id, run.dag_id, run.state
        ))
    {
        println!("Cancelled, nothing was deleted.");
        return Ok(());
    }
    run_ops::delete(
        &db,
        &args.dag_id,
        &args.run_id,
        AuditEntry::new("cli_delete_dag_run", &owner()),
    )
    .await
    .map_err(failure)?;
    println!("Deleted run {} of {}", args.run_id, args.dag_id);
    Ok(())
}

pub async fn clear(config: &Config, args: ClearArgs) -> Result<(), Failure> {
    let regex = args
        .task_regex
        .as_deref()
        .map(|re| {
            regex::Regex::new(re).map_err(|e| {
                Failure::Usage(format!(
                    "--task-regex {re:?} is not a regular expression: {e}"
                ))
            })
        })
        .transpose()?;
    let db = open(config).await?;
    let cache = DagCache::default();
    let dag = ti_ops::find_dag(db.conn(), &args.dag_id)
        .await
        .map_err(failure)?;
    // As Airflow: the regex picks tasks of the DAG as it is now.
    let task_ids = match (&regex, dag.current_version_id) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(Failure::Failed(format!(
                "DAG {} has never parsed: `updraft dags validate` shows why",
                args.dag_id
            )))
        }
        (Some(re), Some(version)) => {
            let loaded = cache.get(&db, version).await?;
            let ids: Vec<ClearTaskId> = loaded
                .dag
                .tasks
                .iter()
                .filter(|t| re.is_match(&t.id))
                .map(|t| ClearTaskId::Task(t.id.clone()))
                .collect();
            if ids.is_empty() {
                return Err(Failure::Failed(format!(
                    "no task of DAG {} matches --task-regex {:?}; `updraft dags show {}` lists its tasks",
                    args.dag_id,
                    re.as_str(),
                    args.dag_id
                )));
            }
            Some(ids)
        }
    };
    let body = ClearTaskInstancesBody {
        dry_run: args.dry_run,
        task_ids,
        dag_run_id: None,
        start_date: args.start_date,
        end_date: args.end_date,
        only_failed: args.only_failed,
        only_running: args.only_running,
        // Airflow's `tasks clear` queues the runs again.
        reset_dag_runs: true,
        include_upstream: args.upstream,
        include_downstream: args.downstream,
        include_future: false,
        include_past: false,
        prevent_running_task: false,
        run_on_latest_version: None,
        note: None,
    };
    let selection = ti_ops::select_for_clear(&db, &cache, &args.dag_id, &body)
        .await
        .map_err(failure)?;
    if selection.tis.is_empty() {
        println!("No task instances to clear");
        return Ok(());
    }
    print_task_instances(&selection.tis);
    if args.dry_run {
        return Ok(());
    }
    let count = selection.tis.len();
    if !args.yes && !confirm(&format!("Clear these {count} task instance(s)?")) {
        println!("Cancelled, nothing was cleared.");
        return Ok(());
    }
    let cleared = ti_ops::clear_selected(
        &db,
        &cache,
        &args.dag_id,
        &body,
        selection,
        AuditEntry::new("cli_post_clear_task_instances", &owner()),
    )
    .await
    .map_err(failure)?;
    println!("Cleared {} task instance(s)", cleared.ids.len());
    if !cleared.restarting.is_empty() {
        println!(
            "{} were running: their workers stop them, and the next try starts after the lease timeout",
            cleared.restarting.len()
        );
    }
    scheduler_note(&db, config).await
}

pub async fn mark(config: &Config, args: MarkArgs) -> Result<(), Failure> {
    let db = open(config).await?;
    let cache = DagCache::default();
    let new_state = match args.state {
        TaskState::Success => TaskInstanceState::Success,
        TaskState::Failed => TaskInstanceState::Failed,
        TaskState::Skipped => TaskInstanceState::Skipped,
    };
    let req = MarkRequest {
        dag_id: args.dag_id,
        run_id: args.run_id,
        task_id: args.task_id,
        map_index: None,
        new_state,
        upstream: args.upstream,
        downstream: args.downstream,
        future: args.future,
        past: args.past,
    };
    let plan = ti_ops::plan_mark(&db, &cache, &req)
        .await
        .map_err(failure)?;
    if args.dry_run {
        print_task_instances(&plan.affected);
        return Ok(());
    }
    let affected = plan.affected.clone();
    let entry = AuditEntry::new("cli_patch_task_instance", &owner()).extra(serde_json::json!({
        "new_state": new_state.as_str(),
        "note": null,
        "map_index": null,
        "include_upstream": req.upstream,
        "include_downstream": req.downstream,
        "include_future": req.future,
        "include_past": req.past,
    }));
    let marked = ti_ops::apply_mark(&db, &req, plan, None, entry)
        .await
        .map_err(failure)?;
    println!(
        "Marked {} task instance(s) {}:",
        marked.changed.len(),
        new_state.as_str()
    );
    let changed: Vec<task_instance::Model> = affected
        .into_iter()
        .filter(|ti| marked.changed.contains(&ti.id))
        .map(|ti| task_instance::Model {
            state: Some(new_state.as_str().into()),
            ..ti
        })
        .collect();
    print_task_instances(&changed);
    Ok(())
}
