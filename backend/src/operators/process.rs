//! A task's child process, whatever the operator: started in its own process group, stdout and
//! stderr streamed line by line into the task log (masked there), the last stdout line kept,
//! and the whole group killed on `execution_timeout`, on cancellation, when the future is
//! dropped, and when the leader exits (background processes do not outlive their task).

use std::io;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Outcome;
use crate::logs::TaskLog;

/// How long a process group gets between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// The failure reason when the cancellation token stops a task.
pub const STOPPED_REASON: &str = "the task was stopped externally";

/// A longer line is cut into pieces, so memory stays bounded (as in `TaskLog::write_output`).
const MAX_LINE: usize = 64 * 1024;

/// How long we keep reading output once the task's process group is gone. Only a process that
/// left the group (`setsid`, a daemon) can hold the pipes open longer; we stop waiting for it.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// How the process ended.
#[derive(Debug)]
pub enum Ended {
    /// The leader exited by itself (what is left of its group has been killed).
    Exited {
        status: ExitStatus,
        last_stdout_line: Option<String>,
    },
    /// Updraft killed the group (`execution_timeout` or cancellation); the outcome is final.
    Stopped(Outcome),
}

/// Runs `cmd` to completion, its timeout or `cancel`, writing its output to `log`. Standard
/// input, output, the process group and kill-on-drop are set here.
pub async fn run(
    mut cmd: Command,
    execution_timeout: Option<Duration>,
    log: Arc<Mutex<TaskLog>>,
    cancel: &CancellationToken,
) -> io::Result<Ended> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a timeout or a kill reaches everything it started.
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe and touches only the child being started.
    unsafe {
        cmd.pre_exec(|| {
            // A worker killed with SIGKILL takes its task with it: otherwise the task would
            // go on running while its lease expires and another worker retries it.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    // Declared after `child`, so dropped before it: the group is killed while the leader
    // still holds its id.
    let mut group = Group(child.id().map(|id| id as i32));
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut out_task = tokio::spawn(stream(stdout, log.clone()));
    let mut err_task = tokio::spawn(stream(stderr, log.clone()));

    let deadline = async {
        match execution_timeout {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    let stop = tokio::select! {
        // A process that has finished counts as finished, even if it was stopped just then.
        biased;
        status = child.wait() => Ok(status?),
        () = deadline => Err(Outcome::TimedOut {
            after: execution_timeout.expect("the deadline only passes with a timeout"),
        }),
        () = cancel.cancelled() => Err(Outcome::Failed { reason: STOPPED_REASON.into() }),
    };
    let ended = match stop {
        Ok(status) => {
            // Processes it left in the background must not outlive the task (nor hold its
            // output open).
            group.signal(libc::SIGKILL);
            let last_stdout_line = drain(&mut out_task, &mut err_task, &log).await;
            Ended::Exited {
                status,
                last_stdout_line,
            }
        }
        Err(outcome) => {
            group.terminate(&mut child).await;
            drain(&mut out_task, &mut err_task, &log).await;
            let why = match &outcome {
                Outcome::TimedOut { after } => format!(
                    "execution_timeout of {} reached",
                    humantime::format_duration(*after)
                ),
                _ => STOPPED_REASON.to_string(),
            };
            log_line(
                &log,
                &format!("Updraft: {why}; the task's processes were killed"),
            );
            Ended::Stopped(outcome)
        }
    };
    // The leader is reaped: its id may be reused, so the guard must not signal it any more.
    group.0 = None;
    Ok(ended)
}

/// Runs `cmd` in `cwd`, or (like Airflow) in a fresh temporary directory, returned so the
/// caller keeps it until the process has ended.
pub fn in_dir(cmd: &mut Command, cwd: Option<&Path>) -> io::Result<Option<tempfile::TempDir>> {
    match cwd {
        Some(dir) => {
            cmd.current_dir(dir);
            Ok(None)
        }
        None => {
            let dir = tempfile::tempdir()?;
            cmd.current_dir(dir.path());
            Ok(Some(dir))
        }
    }
}

/// The failure for an exit status that is neither success nor a skip: "bash exited with code
/// 3", "python was killed by signal 9".
pub fn exit_failure(program: &str, status: ExitStatus) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    let reason = match status.code() {
        Some(code) => format!("{program} exited with code {code}"),
        None => format!(
            "{program} was killed by signal {}",
            status.signal().unwrap_or_default()
        ),
    };
    Outcome::Failed { reason }
}

/// The child's process group. Dropping it kills what is left, so a task whose future is
/// dropped mid-run (worker shutdown) leaves nothing behind.
struct Group(Option<i32>);

impl Group {
    fn signal(&self, signal: libc::c_int) {
        if let Some(pgid) = self.0 {
            // SAFETY: signalling the process group we created; ESRCH (already gone) is fine.
            unsafe { libc::killpg(pgid, signal) };
        }
    }

    /// SIGTERM, then SIGKILL after the grace period if the leader is still there; then
    /// SIGKILL for children that ignored SIGTERM while the leader exited.
    async fn terminate(&self, child: &mut Child) {
        self.signal(libc::SIGTERM);
        if tokio::time::timeout(KILL_GRACE, child.wait())
            .await
            .is_err()
        {
            self.signal(libc::SIGKILL);
            let _ = child.wait().await;
        }
        self.signal(libc::SIGKILL);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

fn log_line(log: &Mutex<TaskLog>, line: &str) {
    // A write error must not fail the task: the process's outcome matters more than its log.
    let _ = log.lock().unwrap_or_else(|e| e.into_inner()).line(line);
}

/// Copies a pipe into the log line by line (invalid UTF-8 replaced, never a reason to stop
/// reading: a child blocked on a full pipe would hang); returns the last line.
async fn stream(pipe: impl AsyncRead + Unpin, log: Arc<Mutex<TaskLog>>) -> Option<String> {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    let mut last = None;
    while let Ok(true) = read_line(&mut reader, &mut buf).await {
        let line = String::from_utf8_lossy(&buf);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        // `::add-mask::` lines register a secret; they are neither logged nor the last line.
        let written = log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .output_line(line)
            .unwrap_or(true);
        if written {
            last = Some(line.to_string());
        }
    }
    last
}

/// Reads one line into `buf` without its newline, cut at `MAX_LINE` bytes. False at the end.
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(!buf.is_empty());
        }
        let chunk = &available[..available.len().min(MAX_LINE - buf.len())];
        if let Some(pos) = chunk.iter().position(|b| *b == b'\n') {
            buf.extend_from_slice(&chunk[..pos]);
            reader.consume(pos + 1);
            return Ok(true);
        }
        let taken = chunk.len();
        buf.extend_from_slice(chunk);
        reader.consume(taken);
        if buf.len() >= MAX_LINE {
            return Ok(true);
        }
    }
}

/// Waits for the readers to reach the end of output; returns the last stdout line.
async fn drain(
    out_task: &mut JoinHandle<Option<String>>,
    err_task: &mut JoinHandle<Option<String>>,
    log: &Mutex<TaskLog>,
) -> Option<String> {
    let until = tokio::time::Instant::now() + DRAIN_LIMIT;
    let last = tokio::time::timeout_at(until, &mut *out_task).await;
    let err_done = tokio::time::timeout_at(until, &mut *err_task).await;
    if last.is_err() || err_done.is_err() {
        out_task.abort();
        err_task.abort();
        log_line(
            log,
            "Updraft: a process that left the task's process group still holds its output open; \
             its further output is not logged",
        );
    }
    last.ok().and_then(Result::ok).flatten()
}

/// Helpers for the operators' tests.
#[cfg(test)]
pub(super) mod testing {
    use super::*;
    use crate::logs::SecretMasker;

    /// Whether `pid` is still a live process (a killed one may linger as a zombie until its
    /// new parent reaps it: that counts as gone). Polls for up to 2 s.
    pub async fn alive(pid: i32) -> bool {
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

    /// Waits up to 5 s for a test process to write its child's pid to `marker`.
    pub async fn pid_in(marker: &Path) -> i32 {
        for _ in 0..100 {
            if let Some(pid) = std::fs::read_to_string(marker)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return pid;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} was not written", marker.display());
    }

    /// A task log in a temporary folder; `very-secret-token` is a registered secret.
    pub struct TestLog {
        _dir: tempfile::TempDir,
        pub path: std::path::PathBuf,
        pub log: Arc<Mutex<TaskLog>>,
    }

    impl TestLog {
        pub fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("attempt=1.log");
            let masker = SecretMasker::new();
            masker.add("very-secret-token");
            let log = Arc::new(Mutex::new(TaskLog::create(&path, masker).unwrap()));
            Self {
                _dir: dir,
                path,
                log,
            }
        }

        pub fn text(&self) -> String {
            std::fs::read_to_string(&self.path).unwrap()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    fn bash(script: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(script);
        cmd
    }

    #[tokio::test]
    async fn invalid_utf8_and_long_lines_do_not_stop_the_output() {
        let log = TestLog::new();
        // 200 KiB without a newline, then bytes that are not UTF-8, then more lines.
        let script = "head -c 204800 /dev/zero | tr '\\0' x; printf '\\n\\xff\\xfe bad\\n'; \
                      seq 1 20000; echo end";
        let ended = run(
            bash(script),
            None,
            log.log.clone(),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        match ended {
            Ended::Exited {
                status,
                last_stdout_line,
            } => {
                assert!(status.success());
                assert_eq!(last_stdout_line.as_deref(), Some("end"));
            }
            other => panic!("{other:?}"),
        }
        let text = log.text();
        assert!(
            text.contains("] \u{fffd}\u{fffd} bad\n"),
            "invalid UTF-8 line"
        );
        assert!(text.contains("] 20000\n") && text.ends_with("] end\n"));
        let longest = text.lines().map(str::len).max().unwrap();
        assert!(longest < MAX_LINE + 64, "a line of {longest} bytes");
    }

    #[tokio::test]
    async fn dropping_the_run_kills_the_process_group() {
        let log = TestLog::new();
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("child.pid");
        let script = format!("sleep 300 & echo $! > {}; wait", marker.display());
        let cancel = CancellationToken::new();
        let running = run(bash(&script), None, log.log.clone(), &cancel);
        // Dropped as soon as the background child exists, as a worker shutting down would.
        let pid = tokio::select! {
            _ = running => panic!("the script ended by itself"),
            pid = pid_in(&marker) => pid,
        };
        assert!(!alive(pid).await, "child {pid} survived its dropped task");
    }
}
