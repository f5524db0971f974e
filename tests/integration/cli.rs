//! The `updraft` command line: help everywhere, version, db check/migrate, healthcheck.

use crate::db_test;
use crate::helpers::*;

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["db", "--help"],
        vec!["db", "migrate", "--help"],
        vec!["db", "check", "--help"],
        vec!["openapi", "--help"],
        vec!["healthcheck", "--help"],
        vec!["version", "--help"],
    ] {
        let out = run_updraft(&args, &[]);
        assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
        assert!(stdout_of(&out).contains("Usage: updraft"), "{args:?}");
    }
}

#[test]
fn version_prints_the_version() {
    let out = run_updraft(&["version"], &[]);
    assert!(out.status.success());
    assert!(stdout_of(&out).starts_with(&format!("updraft {}", env!("CARGO_PKG_VERSION"))));
    let out = run_updraft(&["--version"], &[]);
    assert!(stdout_of(&out).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn unknown_command_is_a_usage_error() {
    let out = run_updraft(&["srve"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("similar subcommand exists: 'serve'"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn openapi_json_is_valid_json() {
    let out = run_updraft(&["openapi", "--format", "json"], &[]);
    assert!(out.status.success());
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(spec["paths"]["/api/v2/version"].is_object());
}

db_test!(db_check_fails_until_db_migrate_runs, |backend| async move {
    let db = TestDb::new(backend).await;
    let env = [("DATABASE_URL", db.url.as_str())];
    let out = run_updraft(&["db", "check"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("migration(s) pending: m20261121_000001_create_job"),
        "{err}"
    );
    assert!(err.contains("run `updraft db migrate`"), "{err}");

    let out = run_updraft(&["db", "migrate"], &env);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let applied = stdout_of(&out);
    assert!(applied.starts_with("applied "), "{applied}");
    assert!(applied.contains("m20261121_000001_create_job"), "{applied}");

    let out = run_updraft(&["db", "check"], &env);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = run_updraft(&["db", "migrate"], &env);
    assert_eq!(
        stdout_of(&out).trim(),
        "the metadata database is up to date"
    );
});

db_test!(
    healthcheck_exits_0_against_a_healthy_server,
    |backend| async move {
        let app = spawn_app(backend).await;
        let out = run_updraft(&["healthcheck", "--url", &app.base_url], &[]);
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert_eq!(stdout_of(&out).trim(), "healthy");
        // Without --url it dials the configured port.
        let port = app.base_url.rsplit(':').next().unwrap();
        let out = run_updraft(&["healthcheck"], &[("UPDRAFT__SERVER__PORT", port)]);
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
);

#[test]
fn healthcheck_exits_1_when_nothing_answers() {
    let port = free_port().to_string();
    let out = run_updraft(&["healthcheck", "--timeout", "2s"], &[("PORT", &port)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(
        err.starts_with(&format!(
            "error: http://127.0.0.1:{port}/api/v2/monitor/health: no answer"
        )),
        "{err}"
    );
}

#[test]
fn healthcheck_with_a_malformed_url_is_a_usage_error() {
    let out = run_updraft(&["healthcheck", "--url", "not a url"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("is not an http(s) URL"),
        "{}",
        stderr_of(&out)
    );
}
