//! The `bash` operator: `bash -c <rendered command>` in its own process group, output streamed
//! line by line into the task log (masked), the last stdout line as the `return_value` XCom,
//! `skip_on_exit_code` → skipped, and `execution_timeout` killing the whole process tree.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exit code 0; the last stdout line when XCom push is on.
    Success {
        return_value: Option<String>,
    },
    /// An exit code in `skip_on_exit_code`.
    Skipped {
        exit_code: i32,
    },
    Failed {
        reason: String,
    },
    TimedOut {
        after: Duration,
    },
}

/// How long a process group gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Runs the command to completion (or its timeout), writing output to `log`.
pub async fn run(task: &BashTask, log: Arc<Mutex<TaskLog>>) -> std::io::Result<Outcome> {
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(&task.command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a timeout or a kill reaches everything it started.
        .process_group(0)
        .kill_on_drop(true);
    if !task.append_env {
        cmd.env_clear();
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
    }
    cmd.envs(&task.env);
    let _tmp;
    match &task.cwd {
        Some(dir) => {
            cmd.current_dir(dir);
        }
        None => {
            // Airflow runs bash in a fresh temporary directory.
            let dir = tempfile::tempdir()?;
            cmd.current_dir(dir.path());
            _tmp = dir;
        }
    }
    let mut child = cmd.spawn()?;
    let pgid = child.id().map(|id| id as i32);
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");

    let out_log = log.clone();
    let out_task = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut last = None;
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(mut log) = out_log.lock() {
                let _ = log.line(&line);
            }
            last = Some(line);
        }
        last
    });
    let err_log = log.clone();
    let err_task = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(mut log) = err_log.lock() {
                let _ = log.line(&line);
            }
        }
    });

    let status = match task.execution_timeout {
        None => child.wait().await?,
        Some(limit) => match tokio::time::timeout(limit, child.wait()).await {
            Ok(status) => status?,
            Err(_) => {
                if let Some(pgid) = pgid {
                    kill_group(pgid, &mut child).await;
                }
                out_task.abort();
                err_task.abort();
                if let Ok(mut log) = log.lock() {
                    let _ = log.line(&format!(
                        "Updraft: execution_timeout of {} reached; the task's processes were killed",
                        humantime::format_duration(limit)
                    ));
                }
                return Ok(Outcome::TimedOut { after: limit });
            }
        },
    };
    // Processes the command left in the background must not outlive the task either.
    if let Some(pgid) = pgid {
        // SAFETY: signalling a process group we created; ESRCH (already gone) is fine.
        unsafe { libc::killpg(pgid, libc::SIGKILL) };
    }
    let last = out_task.await.ok().flatten();
    let _ = err_task.await;

    use std::os::unix::process::ExitStatusExt;
    let outcome = match status.code() {
        Some(0) => Outcome::Success {
            return_value: if task.do_xcom_push { last } else { None },
        },
        Some(code) if task.skip_on_exit_code.contains(&code) => {
            Outcome::Skipped { exit_code: code }
        }
        Some(code) => Outcome::Failed {
            reason: format!("bash exited with code {code}"),
        },
        None => Outcome::Failed {
            reason: format!(
                "bash was killed by signal {}",
                status.signal().unwrap_or_default()
            ),
        },
    };
    Ok(outcome)
}

/// SIGTERM to the group, then SIGKILL after a grace period if it is still there.
async fn kill_group(pgid: i32, child: &mut tokio::process::Child) {
    // SAFETY: signalling the process group we created.
    unsafe { libc::killpg(pgid, libc::SIGTERM) };
    if tokio::time::timeout(KILL_GRACE, child.wait())
        .await
        .is_err()
    {
        // SAFETY: as above.
        unsafe { libc::killpg(pgid, libc::SIGKILL) };
        let _ = child.wait().await;
    }
    // Children that ignored SIGTERM while the leader exited.
    // SAFETY: as above; ESRCH when nothing is left.
    unsafe { libc::killpg(pgid, libc::SIGKILL) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::SecretMasker;

    /// Whether `pid` is still a live process (a killed one may linger as a zombie until its
    /// new parent reaps it: that counts as gone). Polls for up to 2 s.
    async fn alive(pid: i32) -> bool {
        for _ in 0..40 {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit(')')
                        .next()
                        .and_then(|r| r.split_whitespace().next())
                        .map(str::to_string)
                });
            match state.as_deref() {
                None | Some("Z") | Some("X") => return false,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        true
    }

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
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("attempt=1.log");
        let masker = SecretMasker::new();
        masker.add("very-secret-token");
        let log = Arc::new(Mutex::new(TaskLog::create(&path, masker).unwrap()));
        let outcome = run(t, log).await.unwrap();
        (outcome, std::fs::read_to_string(&path).unwrap())
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
}
