//! Bad configuration: one line that names the setting and says what to fix, exit code 2,
//! never a panic or a backtrace.

use std::time::Duration;

use crate::helpers::*;

/// Runs `updraft serve` in a fresh home with extra environment; returns (exit code, stderr).
fn serve_with(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let home = tempfile::tempdir().unwrap();
    serve_in(home.path(), env)
}

/// Runs `updraft serve` with `home` as UPDRAFT_HOME (a test may put an updraft.toml there).
fn serve_in(home: &std::path::Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = updraft_cmd(home);
    cmd.arg("serve").env("UPDRAFT__SERVER__PORT", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_with_timeout(cmd, Duration::from_secs(30));
    (out.status.code(), stderr_of(&out))
}

fn assert_one_line_error(stderr: &str, must_contain: &[&str]) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected exactly one line, got:\n{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    for needle in must_contain {
        assert!(
            lines[0].contains(needle),
            "{needle:?} missing from: {stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
}

#[test]
fn port_that_is_not_a_number() {
    let (code, err) = serve_with(&[("PORT", "abc")]);
    assert_eq!(code, Some(2));
    assert_one_line_error(&err, &["PORT=\"abc\"", "whole number from 1 to 65535"]);
}

#[test]
fn port_out_of_range_in_updraft_variable() {
    let (code, err) = serve_with(&[("UPDRAFT__SERVER__PORT", "70000")]);
    assert_eq!(code, Some(2));
    assert_one_line_error(&err, &["UPDRAFT__SERVER__PORT"]);
}

#[test]
fn port_flag_is_checked_by_clap() {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = updraft_cmd(home.path());
    cmd.args(["serve", "--port", "abc"]);
    let out = run_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("invalid value 'abc' for '--port"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn malformed_database_url() {
    for (url, hint) in [
        ("mysql://root:pw@localhost/db", "`mysql` is not supported"),
        ("postgres://", "names no host"),
        ("localhost:5432", "not supported"),
    ] {
        let (code, err) = serve_with(&[("DATABASE_URL", url)]);
        assert_eq!(code, Some(2), "{url}");
        assert_one_line_error(
            &err,
            &["DATABASE_URL", hint, "postgres://USER:PASSWORD@HOST"],
        );
        assert!(
            !err.contains(":pw@"),
            "the URL's password must not be echoed: {err}"
        );
    }
}

#[test]
fn unreachable_database_is_retried_then_reported() {
    let port = free_port();
    let url = format!("postgres://updraft:hunter2@127.0.0.1:{port}/updraft");
    let (code, err) = serve_with(&[
        ("DATABASE_URL", &url),
        ("UPDRAFT__DATABASE__CONNECT_RETRY_TIMEOUT", "1500ms"),
        ("UPDRAFT__CORE__FERNET_KEY", &fernet_key()),
    ]);
    assert_eq!(code, Some(2), "{err}");
    let retries = err
        .lines()
        .filter(|l| l.contains("metadata database not reachable"))
        .count();
    assert!(retries >= 2, "a log line per attempt expected:\n{err}");
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with(
            "error: could not connect to the metadata database at postgres://updraft:***@127.0.0.1"
        ),
        "{err}"
    );
    assert!(last.contains("database.connect_retry_timeout"), "{err}");
    assert!(!err.contains("hunter2"), "password leaked:\n{err}");
}

#[test]
fn unwritable_home() {
    let (code, err) = serve_with(&[("UPDRAFT_HOME", "/proc/updraft-home")]);
    assert_eq!(code, Some(2));
    assert_one_line_error(
        &err,
        &[
            "UPDRAFT_HOME=/proc/updraft-home is not a writable directory",
            "point UPDRAFT_HOME at",
        ],
    );
}

#[test]
fn unknown_key_in_environment_suggests_the_right_one() {
    let (code, err) = serve_with(&[("UPDRAFT__SERVER__PROT", "9000")]);
    assert_eq!(code, Some(2));
    assert_one_line_error(
        &err,
        &[
            "UPDRAFT__SERVER__PROT",
            "unknown setting `server.prot`",
            "did you mean `port`",
        ],
    );
}

#[test]
fn unknown_key_in_config_file_names_the_file() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("updraft.toml");
    std::fs::write(&file, "[core]\ndag_folder = \"/srv/dags\"\n").unwrap();
    let (code, err) = serve_in(home.path(), &[]);
    assert_eq!(code, Some(2));
    assert_one_line_error(
        &err,
        &[
            &format!("`core.dag_folder` in {}", file.display()),
            "did you mean `dags_folder`",
        ],
    );
}

#[test]
fn invalid_toml_names_the_line() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("updraft.toml"), "[server]\nport = \n").unwrap();
    let mut cmd = updraft_cmd(home.path());
    cmd.arg("serve");
    let out = run_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2));
    assert_one_line_error(
        &stderr_of(&out),
        &["updraft.toml at line 2: not valid TOML"],
    );
}

#[test]
fn bad_duration_and_enum_values() {
    let (code, err) = serve_with(&[("UPDRAFT__SERVER__SHUTDOWN_TIMEOUT", "a while")]);
    assert_eq!(code, Some(2));
    assert_one_line_error(
        &err,
        &[
            "UPDRAFT__SERVER__SHUTDOWN_TIMEOUT",
            "write it like 30s, 5m or 1h 30m",
        ],
    );
    let (code, err) = serve_with(&[("UPDRAFT__LOGGING__FORMAT", "xml")]);
    assert_eq!(code, Some(2));
    assert_one_line_error(
        &err,
        &["UPDRAFT__LOGGING__FORMAT", "expected one of: text, json"],
    );
}

#[test]
fn unreadable_secret_file() {
    let (code, err) = serve_with(&[("DATABASE_URL_FILE", "/nonexistent/db-url")]);
    assert_eq!(code, Some(2));
    assert_one_line_error(
        &err,
        &["DATABASE_URL_FILE=/nonexistent/db-url: cannot read the file"],
    );
}

#[test]
fn port_already_in_use_is_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, err) = serve_with(&[("UPDRAFT__SERVER__PORT", &port)]);
    assert_ne!(code, Some(0));
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with("error: cannot listen on 127.0.0.1:"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
