//! Contract tests: a real `updraft serve` driven by the official `apache-airflow-client`, a
//! client generated from `openapi.yaml`, and schemathesis (zero 5xx), on SQLite and PostgreSQL.
//! The Python side lives in tests/contract/ and its venv is made by scripts/setup.sh.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::*;

fn contract_python() -> PathBuf {
    if let Ok(p) = std::env::var("UPDRAFT_CONTRACT_PYTHON") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").expect("HOME is set");
    let tools = std::env::var("UPDRAFT_TOOLS_DIR")
        .unwrap_or_else(|_| format!("{home}/.cache/updraft-tools"));
    let py = PathBuf::from(tools).join("contract-venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run scripts/setup.sh (it makes the contract-test venv)",
        py.display()
    );
    py
}

/// `updraft serve` on a free port with the contract DAG; killed when dropped.
struct Server {
    child: Child,
    url: String,
    _home: tempfile::TempDir,
    _db: TestDb,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_server(backend: Backend) -> Server {
    let db = TestDb::new(backend).await;
    let home = tempfile::tempdir().unwrap();
    let dags = home.path().join("dags");
    std::fs::create_dir_all(&dags).unwrap();
    std::fs::copy(
        repo_root().join("tests/contract/dags/contract_demo.yaml"),
        dags.join("contract_demo.yaml"),
    )
    .unwrap();
    let port = free_port();
    let mut cmd = updraft_cmd(home.path());
    cmd.arg("serve")
        .env("UPDRAFT__SERVER__PORT", port.to_string())
        .env("DATABASE_URL", &db.url)
        .env("UPDRAFT__CORE__FERNET_KEY", fernet_key())
        .env("UPDRAFT__AUTH__ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("UPDRAFT__LOGGING__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let child = cmd.spawn().expect("spawn updraft serve");
    let url = format!("http://127.0.0.1:{port}");
    let server = Server {
        child,
        url,
        _home: home,
        _db: db,
    };
    let healthy = wait_until_healthy(
        &reqwest::Client::new(),
        &format!("{}/api/v2/monitor/health", server.url),
        Duration::from_secs(30),
    )
    .await;
    assert!(healthy, "updraft serve did not answer");
    server
}

async fn token(url: &str) -> String {
    let res: serde_json::Value = reqwest::Client::new()
        .post(format!("{url}/auth/token"))
        .json(&serde_json::json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    res["access_token"].as_str().unwrap().to_string()
}

/// Runs a contract script with a time limit; prints its output and fails on a non-zero exit.
fn run_script(mut cmd: Command, what: &str, limit: Duration) -> String {
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
    let out = run_with_timeout(cmd, limit);
    let text = format!("{}{}", stdout_of(&out), stderr_of(&out));
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

async fn airflow_client_and_fuzzing(backend: Backend, fuzz_examples: &str) {
    let py = contract_python();
    let server = start_server(backend).await;
    let contract = repo_root().join("tests/contract");

    let mut cmd = Command::new(&py);
    cmd.arg(contract.join("airflow_client_test.py")).args([
        "--base-url",
        &server.url,
        "--username",
        ADMIN_USER,
        "--password",
        ADMIN_PASSWORD,
    ]);
    let out = run_script(cmd, "the official Airflow client", Duration::from_secs(180));
    println!("{out}");

    let token = token(&server.url).await;
    let mut cmd = Command::new("bash");
    cmd.arg(contract.join("generated_client.sh"))
        .args([&server.url, &token])
        .env("UPDRAFT_CONTRACT_PYTHON", &py);
    let out = run_script(
        cmd,
        "the client generated from openapi.yaml",
        Duration::from_secs(180),
    );
    println!("{out}");

    let mut cmd = Command::new("bash");
    cmd.arg(contract.join("schemathesis.sh"))
        .args([&server.url, &token])
        .env("UPDRAFT_CONTRACT_PYTHON", &py)
        .env("SCHEMATHESIS_MAX_EXAMPLES", fuzz_examples);
    let out = run_script(cmd, "schemathesis (no 5xx)", Duration::from_secs(600));
    println!("{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_generated_client_and_fuzzing_on_sqlite() {
    airflow_client_and_fuzzing(Backend::Sqlite, "25").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_generated_client_and_fuzzing_on_postgres() {
    airflow_client_and_fuzzing(Backend::Postgres, "10").await;
}
