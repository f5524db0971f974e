//! The API's changes from the command line: `dags backfill|mark-run|delete-run`,
//! `tasks clear|mark`, run as the real binary on SQLite and PostgreSQL.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use updraft::store::entities::{
    audit_log, backfill, dag_run, task_instance, task_instance_history,
};

use crate::db_test;
use crate::engine_helpers::write_dag_file;
use crate::helpers::*;

/// `first` fails, `second` follows it: a `dags test` leaves a failed run to change.
const DAG: &str = "dag_id: daily\nschedule: \"@daily\"\nstart_date: 2024-01-01\ntasks:\n  - id: first\n    operator: bash\n    with: {bash_command: \"exit 3\"}\n  - id: second\n    operator: bash\n    depends_on: [first]\n    with: {bash_command: \"echo second\"}\n";
const RUN: &str = "manual__2024-01-01T00:00:00+00:00";

/// A home with the DAG folder and a fresh metadata database of `backend`.
struct Cli {
    home: tempfile::TempDir,
    dags: PathBuf,
    db: TestDb,
    fernet_key: String,
}

impl Cli {
    async fn new(backend: Backend) -> Self {
        let home = tempfile::tempdir().unwrap();
        let dags = home.path().join("dag_files");
        write_dag_file(&dags, "daily.yaml", DAG);
        Self {
            home,
            dags,
            db: TestDb::new(backend).await,
            fernet_key: fernet_key(),
        }
    }

    /// Runs `updraft ARGS` as user `tester`, `input` on its stdin.
    fn run_with(&self, args: &[&str], input: &str) -> Output {
        let mut cmd = updraft_cmd(self.home.path());
        cmd.env("UPDRAFT__CORE__DAGS_FOLDER", &self.dags)
            .env("DATABASE_URL", &self.db.url)
            .env("UPDRAFT__CORE__FERNET_KEY", &self.fernet_key)
            .env("USER", "tester")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn updraft");
        let mut stdin = child.stdin.take().expect("piped stdin");
        let _ = stdin.write_all(input.as_bytes());
        drop(stdin);
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(out) => out.expect("wait for updraft"),
            Err(_) => {
                // SAFETY: signalling a child process we spawned.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                panic!("updraft {args:?} did not finish within 120 s");
            }
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, "")
    }

    /// Runs and expects exit 0; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}\n{}", both(&out));
        stdout_of(&out)
    }

    async fn conn(&self) -> DatabaseConnection {
        sea_orm::Database::connect(&self.db.url).await.unwrap()
    }

    /// `dags test` of 2024-01-01: `first` failed, `second` upstream_failed, the run failed.
    async fn failed_run(&self) {
        let out = self.run(&["dags", "test", "daily", "2024-01-01"]);
        assert_eq!(out.status.code(), Some(1), "{}", both(&out));
        assert_eq!(self.run_state(RUN).await, "failed");
    }

    async fn run_state(&self, run_id: &str) -> String {
        dag_run::Entity::find()
            .filter(dag_run::Column::DagId.eq("daily"))
            .filter(dag_run::Column::RunId.eq(run_id))
            .one(&self.conn().await)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("run {run_id}"))
            .state
    }

    /// task id → state in the run.
    async fn ti_states(&self, run_id: &str) -> Vec<(String, Option<String>)> {
        let mut tis: Vec<_> = task_instance::Entity::find()
            .filter(task_instance::Column::DagId.eq("daily"))
            .filter(task_instance::Column::RunId.eq(run_id))
            .all(&self.conn().await)
            .await
            .unwrap()
            .into_iter()
            .map(|ti| (ti.task_id, ti.state))
            .collect();
        tis.sort();
        tis
    }

    /// (event, owner, run id) of the audit log, oldest first, of events starting `cli_`.
    async fn cli_events(&self) -> Vec<(String, Option<String>, Option<String>)> {
        let mut rows = audit_log::Entity::find()
            .all(&self.conn().await)
            .await
            .unwrap();
        rows.sort_by_key(|r| r.id);
        rows.into_iter()
            .filter(|r| r.event.starts_with("cli_"))
            .map(|r| (r.event, r.owner, r.run_id))
            .collect()
    }
}

fn both(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        stdout_of(out),
        stderr_of(out)
    )
}

fn states(pairs: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
    pairs
        .iter()
        .map(|(t, s)| (t.to_string(), s.map(str::to_string)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_dry_run_lists_the_daily_dates_and_creates_nothing() {
    let cli = Cli::new(Backend::Sqlite).await;
    let stdout = cli.ok(&[
        "dags",
        "backfill",
        "daily",
        "--start",
        "2024-01-01",
        "--end",
        "2024-01-04T00:00:00Z",
        "--dry-run",
    ]);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "2024-01-01T00:00:00+00:00",
            "2024-01-02T00:00:00+00:00",
            "2024-01-03T00:00:00+00:00",
            "2024-01-04T00:00:00+00:00",
        ]
    );
    // Airflow's names, backwards.
    let stdout = cli.ok(&[
        "dags",
        "backfill",
        "daily",
        "--from-date",
        "2024-01-01",
        "--to-date",
        "2024-01-02",
        "--run-backwards",
        "--dry-run",
    ]);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["2024-01-02T00:00:00+00:00", "2024-01-01T00:00:00+00:00"]
    );
    let conn = cli.conn().await;
    assert_eq!(dag_run::Entity::find().count(&conn).await.unwrap(), 0);
    assert_eq!(backfill::Entity::find().count(&conn).await.unwrap(), 0);
    assert!(cli.cli_events().await.is_empty());
}

db_test!(
    backfill_creates_queued_backfill_runs_with_its_audit_entry,
    |backend| async move {
        let cli = Cli::new(backend).await;
        let stdout = cli.ok(&[
            "dags",
            "backfill",
            "daily",
            "-s",
            "2024-01-01",
            "-e",
            "2024-01-03",
            "--max-active-runs",
            "2",
            "--conf",
            r#"{"source": "cli"}"#,
        ]);
        assert!(stdout.starts_with("Created backfill "), "{stdout}");
        let conn = cli.conn().await;
        let backfills = backfill::Entity::find().all(&conn).await.unwrap();
        assert_eq!(backfills.len(), 1);
        assert_eq!(backfills[0].max_active_runs, 2);
        assert_eq!(backfills[0].triggering_user.as_deref(), Some("tester"));
        let mut runs = dag_run::Entity::find().all(&conn).await.unwrap();
        runs.sort_by_key(|r| r.logical_date);
        let ids: Vec<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "backfill__2024-01-01T00:00:00+00:00",
                "backfill__2024-01-02T00:00:00+00:00",
                "backfill__2024-01-03T00:00:00+00:00",
            ]
        );
        for run in &runs {
            assert_eq!(run.state, "queued");
            assert_eq!(run.run_type, "backfill");
            assert_eq!(run.backfill_id, Some(backfills[0].id));
            assert!(run.conf.contains("cli"), "{}", run.conf);
        }
        assert_eq!(
            cli.cli_events().await,
            [(
                "cli_create_backfill".to_string(),
                Some("tester".to_string()),
                None
            )]
        );
        // The same range again while it runs: refused, nothing more created.
        let out = cli.run(&[
            "dags",
            "backfill",
            "daily",
            "-s",
            "2024-01-01",
            "-e",
            "2024-01-03",
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", both(&out));
        assert!(
            stderr_of(&out).contains("already a running backfill"),
            "{}",
            both(&out)
        );
        assert_eq!(dag_run::Entity::find().count(&conn).await.unwrap(), 3);
    }
);

db_test!(
    clear_mark_and_delete_change_a_failed_run,
    |backend| async move {
        let cli = Cli::new(backend).await;
        cli.failed_run().await;
        assert_eq!(
            cli.ti_states(RUN).await,
            states(&[
                ("first", Some("failed")),
                ("second", Some("upstream_failed"))
            ])
        );

        // Dry run and an unanswered question change nothing.
        let stdout = cli.ok(&["tasks", "clear", "daily", "-t", "^fir", "--dry-run"]);
        assert_eq!(
            stdout.trim(),
            format!("<TaskInstance: daily.first {RUN} [failed]>")
        );
        let stdout = cli.ok(&["tasks", "clear", "daily", "-t", "^fir", "--downstream"]);
        assert!(
            stdout.contains("Cancelled, nothing was cleared."),
            "{stdout}"
        );
        assert_eq!(cli.run_state(RUN).await, "failed");

        // --yes clears the failed task and its downstream task; the run is queued again.
        let stdout = cli.ok(&[
            "tasks",
            "clear",
            "daily",
            "-t",
            "^fir",
            "-d",
            "--only-failed",
            "--yes",
        ]);
        assert!(stdout.contains("Cleared 2 task instance(s)"), "{stdout}");
        assert_eq!(cli.run_state(RUN).await, "queued");
        assert_eq!(
            cli.ti_states(RUN).await,
            states(&[("first", None), ("second", None)])
        );
        let tries = task_instance_history::Entity::find()
            .filter(task_instance_history::Column::TaskId.eq("first"))
            .count(&cli.conn().await)
            .await
            .unwrap();
        assert_eq!(tries, 1, "the failed try is kept in the history");

        // Mark one task with its downstream task; again: already in that state.
        let stdout = cli.ok(&[
            "tasks",
            "mark",
            "daily",
            RUN,
            "first",
            "--state",
            "skipped",
            "--downstream",
        ]);
        assert!(
            stdout.contains("Marked 2 task instance(s) skipped"),
            "{stdout}"
        );
        assert_eq!(
            cli.ti_states(RUN).await,
            states(&[("first", Some("skipped")), ("second", Some("skipped"))])
        );
        let out = cli.run(&["tasks", "mark", "daily", RUN, "first", "--state", "skipped"]);
        assert_eq!(out.status.code(), Some(1), "{}", both(&out));
        assert!(
            stderr_of(&out).contains("already in skipped state"),
            "{}",
            both(&out)
        );

        // The whole run: success.
        cli.ok(&["dags", "mark-run", "daily", RUN, "--state", "success"]);
        assert_eq!(cli.run_state(RUN).await, "success");
        assert_eq!(
            cli.ti_states(RUN).await,
            states(&[("first", Some("success")), ("second", Some("success"))])
        );

        // Delete: `n` keeps it, `y` deletes it with its task instances and tries.
        let out = cli.run_with(&["dags", "delete-run", "daily", RUN], "n\n");
        assert_eq!(out.status.code(), Some(0), "{}", both(&out));
        assert_eq!(cli.run_state(RUN).await, "success");
        let out = cli.run_with(&["dags", "delete-run", "daily", RUN], "y\n");
        assert_eq!(out.status.code(), Some(0), "{}", both(&out));
        let conn = cli.conn().await;
        assert_eq!(dag_run::Entity::find().count(&conn).await.unwrap(), 0);
        assert_eq!(task_instance::Entity::find().count(&conn).await.unwrap(), 0);
        assert_eq!(
            task_instance_history::Entity::find()
                .count(&conn)
                .await
                .unwrap(),
            0
        );

        let run = Some(RUN.to_string());
        let tester = Some("tester".to_string());
        assert_eq!(
            cli.cli_events().await,
            [
                (
                    "cli_post_clear_task_instances".to_string(),
                    tester.clone(),
                    None
                ),
                (
                    "cli_patch_task_instance".to_string(),
                    tester.clone(),
                    run.clone()
                ),
                ("cli_patch_dag_run".to_string(), tester.clone(), run.clone()),
                (
                    "cli_delete_dag_run".to_string(),
                    tester.clone(),
                    run.clone()
                ),
            ]
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_exit_2_and_unknown_names_exit_1_saying_what_is_wrong() {
    let cli = Cli::new(Backend::Sqlite).await;
    let cases: [(&[&str], i32, &str); 11] = [
        (
            &[
                "dags",
                "backfill",
                "daily",
                "-s",
                "2024-13-01",
                "-e",
                "2024-01-02",
            ],
            2,
            "`2024-13-01` is not a date",
        ),
        (
            &[
                "dags",
                "backfill",
                "daily",
                "-s",
                "2024-01-05",
                "-e",
                "2024-01-02",
            ],
            2,
            "is after to_date",
        ),
        (
            &[
                "dags",
                "backfill",
                "daily",
                "-s",
                "2024-01-01",
                "-e",
                "2024-01-02",
                "--max-active-runs",
                "0",
            ],
            2,
            "--max-active-runs",
        ),
        (
            &[
                "dags",
                "backfill",
                "daily",
                "-s",
                "2024-01-01",
                "-e",
                "2024-01-02",
                "--reprocess",
                "all",
            ],
            2,
            "possible values: none, failed, completed",
        ),
        (
            &[
                "dags",
                "backfill",
                "daily",
                "-s",
                "2024-01-01",
                "-e",
                "2024-01-02",
                "--conf",
                "[1]",
            ],
            2,
            "JSON object",
        ),
        (
            &[
                "dags",
                "backfill",
                "nope",
                "-s",
                "2024-01-01",
                "-e",
                "2024-01-02",
            ],
            1,
            "Could not find dag nope",
        ),
        (
            &["dags", "mark-run", "daily", RUN, "--state", "running"],
            2,
            "possible values: success, failed, queued",
        ),
        (
            &[
                "dags",
                "mark-run",
                "daily",
                "no_such_run",
                "--state",
                "success",
            ],
            1,
            "run_id: `no_such_run` was not found",
        ),
        (
            &[
                "tasks",
                "mark",
                "daily",
                RUN,
                "first",
                "--state",
                "up_for_retry",
            ],
            2,
            "possible values: success, failed, skipped",
        ),
        (
            &["tasks", "clear", "daily", "-t", "(unclosed", "--yes"],
            2,
            "is not a regular expression",
        ),
        (
            &["tasks", "clear", "nope", "--yes"],
            1,
            "The Dag with ID: `nope` was not found",
        ),
    ];
    for (args, code, message) in cases {
        let out = cli.run(args);
        assert_eq!(out.status.code(), Some(code), "{args:?}\n{}", both(&out));
        assert!(
            stderr_of(&out).contains(message),
            "{args:?}: wanted {message:?}\n{}",
            both(&out)
        );
    }
    let conn = cli.conn().await;
    assert_eq!(dag_run::Entity::find().count(&conn).await.unwrap(), 0);
}
