//! `updraft dags …`: validate files, list and show the DAG folder, print the JSON Schema.
//! These read files only (no database), so they work in CI and in editors' pre-commit hooks.
//! The commands on the database (trigger, backfill, mark-run, …) are in `runs` and `ops`.

use std::path::{Path, PathBuf};

use chrono::Utc;
use clap::Subcommand;
use updraft_shared::dag::{parse_dag_with, Dag, Operator, ParseOptions};

use super::Failure;
use crate::config::Config;
use crate::scheduler::timetable::{Restriction, Timetable};

#[derive(Debug, Subcommand)]
pub enum DagsCommand {
    /// Check DAG files; prints every problem as FILE:LINE:COLUMN: message (exit 1 if any)
    Validate {
        /// DAG files (YAML)
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// List the DAGs in the DAG folder, and the files that do not parse
    List,
    /// Show a DAG: schedule, next run, tasks and their dependencies
    Show {
        dag_id: String,
        /// Print the task graph in Graphviz's dot language instead
        #[arg(long)]
        dot: bool,
    },
    /// Print the JSON Schema of DAG files (docs/dag.schema.json is this output)
    Schema,
    /// Create a manual run (a running `updraft serve` executes it); with --wait, exit 0 when
    /// it succeeds and 1 when it fails
    Trigger(super::runs::TriggerArgs),
    /// Pause a DAG: no new scheduled runs, and queued runs wait
    Pause { dag_id: String },
    /// Unpause a DAG
    Unpause { dag_id: String },
    /// Run the whole DAG once in this process, with task logs on the terminal (paused or not);
    /// exit 0 when the run succeeds
    Test(super::runs::TestArgs),
    /// Create a backfill (Airflow's `backfill create`): runs for the past logical dates of a
    /// scheduled DAG in a range, queued at once for a running `updraft serve`; with
    /// --dry-run, print the dates and create nothing
    Backfill(super::ops::BackfillArgs),
    /// Mark a run success, failed or queued, with Airflow's effects on its task instances
    /// (the API's PATCH of a DAG run)
    MarkRun(super::ops::MarkRunArgs),
    /// Delete a run with its task instances, their tries and XComs (asks first, unless --yes)
    DeleteRun(super::ops::DeleteRunArgs),
}

pub fn run(cmd: DagsCommand, config: Option<&Config>) -> Result<(), Failure> {
    let options = ParseOptions {
        max_bytes: config.map_or(updraft_shared::dag::parse::DEFAULT_MAX_BYTES, |c| {
            c.settings.core.dag_file_max_bytes
        }),
    };
    match cmd {
        DagsCommand::Schema => {
            print!("{}", updraft_shared::dag::schema::dag_schema_pretty());
            Ok(())
        }
        DagsCommand::Validate { files } => {
            let mut bad = 0;
            for file in &files {
                match std::fs::read(file) {
                    Err(e) => {
                        println!("{}: cannot read the file: {e}", file.display());
                        bad += 1;
                    }
                    Ok(bytes) => match parse_dag_with(&bytes, &options) {
                        Ok(dag) => println!(
                            "{}: ok: DAG `{}` with {} task(s)",
                            file.display(),
                            dag.dag_id,
                            dag.tasks.len()
                        ),
                        Err(diags) => {
                            bad += 1;
                            for d in diags {
                                println!("{}:{d}", file.display());
                            }
                        }
                    },
                }
            }
            if bad > 0 {
                return Err(Failure::Failed(format!(
                    "{bad} of {} file(s) have problems",
                    files.len()
                )));
            }
            Ok(())
        }
        DagsCommand::List => {
            let config = config.expect("dags list loads the configuration");
            let (dags, broken) = read_folder(&config.dags_folder, &options)?;
            println!(
                "{:<32} {:<36} {:<16} {:>5}",
                "dag_id", "file", "schedule", "tasks"
            );
            for (file, dag) in &dags {
                println!(
                    "{:<32} {:<36} {:<16} {:>5}",
                    dag.dag_id,
                    file,
                    dag.schedule.as_deref().unwrap_or("None"),
                    dag.tasks.len()
                );
            }
            if !broken.is_empty() {
                println!();
                println!(
                    "{} file(s) do not parse (see `updraft dags validate FILE`):",
                    broken.len()
                );
                for (file, first) in &broken {
                    println!("  {file}:{first}");
                }
            }
            Ok(())
        }
        DagsCommand::Trigger(_)
        | DagsCommand::Pause { .. }
        | DagsCommand::Unpause { .. }
        | DagsCommand::Test(_)
        | DagsCommand::Backfill(_)
        | DagsCommand::MarkRun(_)
        | DagsCommand::DeleteRun(_) => {
            unreachable!("database commands are dispatched by cli::run")
        }
        DagsCommand::Show { dag_id, dot } => {
            let config = config.expect("dags show loads the configuration");
            let (dags, _) = read_folder(&config.dags_folder, &options)?;
            let Some((file, dag)) = dags.into_iter().find(|(_, d)| d.dag_id == dag_id) else {
                return Err(Failure::Failed(format!(
                    "no DAG `{dag_id}` in {}; `updraft dags list` shows the DAGs there",
                    config.dags_folder.display()
                )));
            };
            if dot {
                print!("{}", to_dot(&dag));
            } else {
                print!("{}", describe(&file, &dag));
            }
            Ok(())
        }
    }
}

type FolderContents = (Vec<(String, Dag)>, Vec<(String, String)>);

fn read_folder(root: &Path, options: &ParseOptions) -> Result<FolderContents, Failure> {
    let folder = crate::dag_processor::DagFolder::new(root.to_path_buf(), options.max_bytes);
    let scan = folder.scan().map_err(|e| {
        Failure::Failed(format!(
            "cannot list the DAG folder {}: {e}",
            root.display()
        ))
    })?;
    let mut dags = Vec::new();
    let mut broken = Vec::new();
    for file in scan.changed {
        match file.parsed {
            crate::store::dags::Parsed::Dag(dag) => dags.push((file.fileloc, *dag)),
            crate::store::dags::Parsed::Errors(diags) => broken.push((
                file.fileloc,
                diags.first().map(|d| d.to_string()).unwrap_or_default(),
            )),
        }
    }
    dags.sort_by(|a, b| a.1.dag_id.cmp(&b.1.dag_id));
    Ok((dags, broken))
}

/// The first scheduled run, as the scheduler will create it when the DAG has no runs yet.
fn next_run(dag: &Dag) -> Option<String> {
    let timetable = Timetable::of(dag).ok()?;
    let info = timetable.next_dagrun_info(None, Restriction::of(dag), Utc::now())?;
    let tz: chrono_tz::Tz = dag.timezone.parse().ok()?;
    let local = |t: chrono::DateTime<Utc>| t.with_timezone(&tz).to_rfc3339();
    Some(format!(
        "logical date {} (data interval {} to {}), due at {}",
        local(info.logical_date()),
        local(info.data_interval.start),
        local(info.data_interval.end),
        local(info.run_after)
    ))
}

fn describe(file: &str, dag: &Dag) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "dag_id:      {}", dag.dag_id);
    let _ = writeln!(out, "file:        {file}");
    if let Some(d) = &dag.description {
        let _ = writeln!(out, "description: {d}");
    }
    let schedule = dag.schedule.as_deref().unwrap_or("None (manual runs only)");
    let _ = writeln!(out, "schedule:    {schedule} ({})", dag.timezone);
    if let Some(start) = dag.start_date {
        let _ = writeln!(out, "start_date:  {}", start.0.to_rfc3339());
    }
    if let Some(end) = dag.end_date {
        let _ = writeln!(out, "end_date:    {}", end.0.to_rfc3339());
    }
    let _ = writeln!(out, "catchup:     {}", dag.catchup);
    match next_run(dag) {
        Some(next) => {
            let _ = writeln!(out, "next run:    {next} (if no run exists yet)");
        }
        None if dag.schedule.is_none() => {
            let _ = writeln!(out, "next run:    none: manual runs only");
        }
        None => {
            let _ = writeln!(out, "next run:    none: the schedule has ended");
        }
    }
    let _ = writeln!(out, "tasks ({}):", dag.tasks.len());
    for task in &dag.tasks {
        let upstream = if task.depends_on.is_empty() {
            String::new()
        } else {
            format!("  ← {}", task.depends_on.join(", "))
        };
        let rule = task
            .args
            .trigger_rule
            .or(dag.default_args.trigger_rule)
            .map(|r| format!(" [{}]", r.name()))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<28} {:<7}{rule}{upstream}",
            task.id,
            task.operator.name()
        );
    }
    let edges: Vec<String> = dag
        .tasks
        .iter()
        .flat_map(|t| t.depends_on.iter().map(move |u| format!("{u} → {}", t.id)))
        .collect();
    if !edges.is_empty() {
        let _ = writeln!(out, "edges:");
        for e in edges {
            let _ = writeln!(out, "  {e}");
        }
    }
    out
}

fn to_dot(dag: &Dag) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = format!(
        "digraph {} {{\n  rankdir=LR;\n  node [shape=box, style=rounded];\n",
        quote(&dag.dag_id)
    );
    for task in &dag.tasks {
        let label = match &task.operator {
            Operator::Empty => task.id.clone(),
            op => format!("{}\\n({})", task.id, op.name()),
        };
        out.push_str(&format!(
            "  {} [label={}];\n",
            quote(&task.id),
            quote(&label).replace("\\\\n", "\\n")
        ));
    }
    for task in &dag.tasks {
        for up in &task.depends_on {
            out.push_str(&format!("  {} -> {};\n", quote(up), quote(&task.id)));
        }
    }
    out.push_str("}\n");
    out
}
