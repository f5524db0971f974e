//! Heroku-style deployment: only PORT, DATABASE_URL and the Fernet key set, release-phase
//! migrate, SIGTERM.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_only_port_and_database_url_is_healthy_and_stops_on_sigterm() {
    let test_db = TestDb::new(Backend::Postgres).await;
    let home = tempfile::tempdir().unwrap();
    let port = free_port();

    // Without a Fernet key, PostgreSQL is refused with what to set.
    let mut cmd = updraft_cmd(home.path());
    cmd.env_remove("UPDRAFT_HOME")
        .env("PORT", port.to_string())
        .env("DATABASE_URL", &test_db.url)
        .arg("serve");
    let out = run_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(
        err.contains("core.fernet_key is not set") && err.contains("UPDRAFT__CORE__FERNET_KEY"),
        "{err}"
    );

    let key = fernet_key();
    let mut cmd = updraft_cmd(home.path());
    // A dyno has HOME but no UPDRAFT_* beyond the config vars it was given.
    cmd.env_remove("UPDRAFT_HOME")
        .env("PORT", port.to_string())
        .env("DATABASE_URL", &test_db.url)
        .env("UPDRAFT__CORE__FERNET_KEY", &key)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn updraft serve");
    let client = reqwest::Client::new();
    let health = format!("http://127.0.0.1:{port}/api/v2/monitor/health");
    let ok = wait_until_healthy(&client, &health, Duration::from_secs(30)).await;
    if !ok {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!("no healthy answer:\n{}", stderr_of(&out));
    }
    let body: serde_json::Value = client
        .get(&health)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["metadatabase"]["status"], "healthy");

    // SIGTERM: graceful stop, exit code 0.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    let log = stderr_of(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!("listening on http://0.0.0.0:{port}")),
        "PORT binds all interfaces:\n{log}"
    );
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(log.contains("updraft stopped"), "{log}");
    // The password of DATABASE_URL never reaches the log.
    let password = url::Url::parse(&test_db.url)
        .unwrap()
        .password()
        .unwrap()
        .to_string();
    assert!(!log.contains(&password), "{log}");
    assert!(!log.contains(&key), "{log}");
    // The default home on a dyno is $HOME/updraft.
    assert!(home.path().join("updraft").is_dir());
}

#[test]
fn procfile_and_app_json_describe_the_release_phase() {
    let procfile = std::fs::read_to_string(repo_root().join("Procfile")).unwrap();
    assert!(
        procfile.lines().any(|l| l == "release: updraft db migrate"),
        "{procfile}"
    );
    assert!(
        procfile.lines().any(|l| l == "web: updraft serve"),
        "{procfile}"
    );
    let app: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join("app.json")).unwrap())
            .unwrap();
    assert_eq!(app["name"], "updraft");
    assert!(app["addons"].to_string().contains("heroku-postgresql"));
    assert!(app["formation"]["web"].is_object(), "{app}");
}
