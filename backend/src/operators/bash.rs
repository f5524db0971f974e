//! The `bash` operator: `bash -c <rendered command>` with the task's environment and working
//! directory; the process machinery (process group, log streaming, timeout, cancellation) is
//! in [`super::process`]. The last stdout line is the `return_value` XCom and an exit code in
//! `skip_on_exit_code` skips the task.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::process::{self, Ended};
use super::Outcome;
use crate::logs::TaskLog;

/// What to run, with templates already rendered.
#[derive(Debug, Clone)]
pub struct BashTask {
    pub command: String,
    /// Added to the environment (Airflow-style context variables included by the caller).
    pub env: BTreeMap<String, String>,
    /// Keep the worker's environment (true) or start from `env` alone (false).
    pub append_env: bool,
    pub cwd: Option<PathBuf>,
    pub skip_on_exit_code: Vec<i32>,
    pub do_xcom_push: bool,
    pub execution_timeout: Option<Duration>,
}

/// Runs the command to completion, its timeout or `cancel`, writing output to `log`.
pub async fn run(
    task: &BashTask,
    log: Arc<Mutex<TaskLog>>,
    cancel: CancellationToken,
) -> std::io::Result<Outcome> {
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(&task.command);
    if !task.append_env {
        cmd.env_clear();
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
    }
    cmd.envs(&task.env);
    let _tmp = process::in_dir(&mut cmd, task.cwd.as_deref())?;
    let (status, last_line) = match process::run(cmd, task.execution_timeout, log, &cancel).await? {
        Ended::Stopped(outcome) => return Ok(outcome),
        Ended::Exited {
            status,
            last_stdout_line,
        } => (status, last_stdout_line),
    };
    Ok(match status.code() {
        Some(0) => Outcome::Success {
            // Airflow pushes the last line right-stripped, and "" when there was no output.
            return_value: task.do_xcom_push.then(|| {
                serde_json::Value::String(
                    last_line
                        .as_deref()
                        .unwrap_or_default()
                        .trim_end()
                        .to_string(),
                )
            }),
        },
        Some(code) if task.skip_on_exit_code.contains(&code) => {
            Outcome::Skipped { exit_code: code }
        }
        _ => process::exit_failure("bash", status),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::process::testing::{alive, pid_in, TestLog};

    fn task(command: &str) -> BashTask {
        BashTask {
            command: command.into(),
            env: BTreeMap::new(),
            append_env: true,
            cwd: None,
            skip_on_exit_code: vec![99],
            do_xcom_push: true,
            execution_timeout: None,
        }
    }

    async fn run_logged(t: &BashTask) -> (Outcome, String) {
        let log = TestLog::new();
        let outcome = run(t, log.log.clone(), CancellationToken::new())
            .await
            .unwrap();
        (outcome, log.text())
    }

    #[tokio::test]
    async fn last_stdout_line_is_the_return_value_and_output_is_logged_masked() {
        let mut t = task("echo one; echo oops >&2; echo \"token=$TOKEN\"; echo last");
        t.env.insert("TOKEN".into(), "very-secret-token".into());
        let (outcome, log) = run_logged(&t).await;
        assert_eq!(
            outcome,
            Outcome::Success {
                return_value: Some("last".into())
            }
        );
        assert!(log.contains("] one\n") && log.contains("] oops\n"), "{log}");
        assert!(log.contains("token=***"), "{log}");
        assert!(!log.contains("very-secret-token"), "{log}");
        t.do_xcom_push = false;
        assert_eq!(
            run_logged(&t).await.0,
            Outcome::Success { return_value: None }
        );
    }

    #[tokio::test]
    async fn exit_codes_map_to_skipped_and_failed() {
        assert_eq!(
            run_logged(&task("exit 99")).await.0,
            Outcome::Skipped { exit_code: 99 }
        );
        assert_eq!(
            run_logged(&task("exit 3")).await.0,
            Outcome::Failed {
                reason: "bash exited with code 3".into()
            }
        );
    }

    #[tokio::test]
    async fn environment_and_working_directory() {
        let mut t = task("echo \"$GREETING from $(pwd)\"; echo ${HOME:-no-home}");
        t.env.insert("GREETING".into(), "hello".into());
        let dir = tempfile::tempdir().unwrap();
        t.cwd = Some(dir.path().to_path_buf());
        t.append_env = false;
        let (outcome, log) = run_logged(&t).await;
        assert!(
            log.contains(&format!("hello from {}", dir.path().display())),
            "{log}"
        );
        assert_eq!(
            outcome,
            Outcome::Success {
                return_value: Some("no-home".into())
            }
        );
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_process_tree() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("grandchild.pid");
        let mut t = task(&format!(
            "(sleep 300 & echo $! > {}; wait) & sleep 300",
            marker.display()
        ));
        t.execution_timeout = Some(Duration::from_millis(500));
        let started = std::time::Instant::now();
        let (outcome, log) = run_logged(&t).await;
        assert_eq!(
            outcome,
            Outcome::TimedOut {
                after: Duration::from_millis(500)
            }
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(log.contains("execution_timeout of 500ms reached"), "{log}");
        let pid: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(!alive(pid).await, "grandchild {pid} survived the timeout");
    }

    #[tokio::test]
    async fn background_processes_do_not_outlive_a_finished_task() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("bg.pid");
        let t = task(&format!(
            "sleep 300 & echo $! > {}; echo done",
            marker.display()
        ));
        let started = std::time::Instant::now();
        let (outcome, _) = run_logged(&t).await;
        // Left alive, the background `sleep` would hold stdout open and the task with it.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            outcome,
            Outcome::Success {
                return_value: Some("done".into())
            }
        );
        let pid: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(!alive(pid).await, "background process {pid} survived");
    }

    #[tokio::test]
    async fn cancellation_kills_the_whole_process_tree() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("grandchild.pid");
        let t = task(&format!(
            "(sleep 300 & echo $! > {}; wait) & sleep 300",
            marker.display()
        ));
        let log = TestLog::new();
        let cancel = CancellationToken::new();
        let running = tokio::spawn({
            let (log, cancel) = (log.log.clone(), cancel.clone());
            async move { run(&t, log, cancel).await }
        });
        let pid = pid_in(&marker).await;
        let started = std::time::Instant::now();
        cancel.cancel();
        let outcome = running.await.unwrap().unwrap();
        assert_eq!(
            outcome,
            Outcome::Failed {
                reason: "the task was stopped externally".into()
            }
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(
            !alive(pid).await,
            "grandchild {pid} survived the cancellation"
        );
        let text = log.text();
        assert!(
            text.contains(
                "Updraft: the task was stopped externally; the task's processes were killed"
            ),
            "{text}"
        );
    }
}
