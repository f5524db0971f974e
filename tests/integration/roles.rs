//! SQLite is the single-machine mode: `updraft scheduler` and `updraft worker` refuse it, and
//! a second `serve` on the same database file is refused while the first runs.

use std::process::Stdio;
use std::time::Duration;

use crate::helpers::*;

#[test]
fn scheduler_and_worker_refuse_sqlite_saying_why() {
    for role in ["scheduler", "worker"] {
        let home = tempfile::tempdir().unwrap();
        let mut cmd = updraft_cmd(home.path());
        cmd.arg(role);
        let out = run_with_timeout(cmd, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(2), "{role}");
        let err = stderr_of(&out);
        assert!(
            err.contains(&format!("`updraft {role}` needs PostgreSQL"))
                && err.contains("single-machine mode"),
            "{role}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_serve_on_the_same_sqlite_database_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut first = updraft_cmd(home.path());
    first
        .arg("serve")
        .env("UPDRAFT__SERVER__PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut first = first.spawn().expect("spawn the first serve");
    let healthy = wait_until_healthy(
        &reqwest::Client::new(),
        &format!("http://127.0.0.1:{port}/api/v2/monitor/health"),
        Duration::from_secs(30),
    )
    .await;
    assert!(healthy, "the first serve answers");

    let mut second = updraft_cmd(home.path());
    second
        .arg("serve")
        .env("UPDRAFT__SERVER__PORT", free_port().to_string());
    let out = run_with_timeout(second, Duration::from_secs(30));
    // SAFETY: signalling a child process we spawned.
    unsafe { libc::kill(first.id() as i32, libc::SIGTERM) };
    let _ = first.wait();
    assert_ne!(out.status.code(), Some(0));
    let err = stderr_of(&out);
    assert!(
        err.contains("another updraft process already runs the scheduler on the SQLite database"),
        "{err}"
    );
}
