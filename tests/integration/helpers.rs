//! `spawn_app()` and friends: a server on 127.0.0.1:0 with a fresh database per test.

#![allow(dead_code)] // each test module uses a different part

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;
use updraft::config::{self, Config, Overrides};
use updraft::server::Application;
use updraft::store::Db;

/// Which metadata database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Declares a test that runs once per backend: `mod NAME { sqlite, postgres }`.
#[macro_export]
macro_rules! db_test {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)($crate::helpers::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)($crate::helpers::Backend::Postgres).await
            }
        }
    };
}

/// The admin URL of the test PostgreSQL server that `scripts/test.sh` starts.
pub fn pg_admin_url() -> String {
    std::env::var("UPDRAFT_TEST_PG_URL").unwrap_or_else(|_| {
        panic!(
            "UPDRAFT_TEST_PG_URL is not set: run the suite with scripts/test.sh, or start a server with \
             `eval \"$(scripts/pg-test-server.sh start)\"` first"
        )
    })
}

/// A fresh, empty database for one test, with the URL to reach it.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    // Keeps the SQLite file alive for the test's duration.
    _dir: Option<TempDir>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("meta.db").display());
                Self {
                    url,
                    backend,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let admin = pg_admin_url();
                let name = format!("updraft_test_{}", uuid::Uuid::new_v4().simple());
                use sea_orm::sqlx::{Connection, Executor};
                let mut conn = sea_orm::sqlx::PgConnection::connect(&admin)
                    .await
                    .expect("connect to the test PostgreSQL server");
                conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
                    .await
                    .expect("create the test database");
                let base = admin.rsplit_once('/').expect("URL has a path").0;
                Self {
                    url: format!("{base}/{name}"),
                    backend,
                    _dir: None,
                }
            }
        }
    }
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub base_url: String,
    pub engine: updraft::server::EngineLink,
    /// Sends the admin's token with every request.
    pub client: reqwest::Client,
    /// Sends no credentials.
    pub anon: reqwest::Client,
    pub secrets: updraft::secrets::Secrets,
    pub db: Db,
    pub config: Arc<Config>,
    pub home: TempDir,
    pub test_db: TestDb,
}

/// Starts a server on 127.0.0.1:0 with a fresh home and database, migrated.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn(backend, &[], true).await
}

/// `spawn_app` with extra settings (`UPDRAFT__SECTION__KEY`, value).
pub async fn spawn_app_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    spawn(backend, extra, true).await
}

/// A server whose scheduler and worker do not run (for tests of heartbeats and health).
pub async fn spawn_app_without_engine(backend: Backend) -> TestApp {
    spawn(backend, &[], false).await
}

async fn spawn(backend: Backend, extra: &[(&str, &str)], with_engine: bool) -> TestApp {
    let test_db = TestDb::new(backend).await;
    let home = tempfile::tempdir().expect("temp dir");
    let mut env: BTreeMap<String, String> = [
        ("UPDRAFT_HOME", home.path().display().to_string()),
        ("UPDRAFT__SERVER__PORT", "0".to_string()),
        ("UPDRAFT__SERVER__WORKERS", "1".to_string()),
        ("UPDRAFT__DATABASE__MAX_CONNECTIONS", "4".to_string()),
        ("DATABASE_URL", test_db.url.clone()),
        ("UPDRAFT__CORE__FERNET_KEY", fernet_key()),
        ("UPDRAFT__AUTH__ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Arc::new(config::load(&Overrides::default(), &env).expect("test config loads"));
    let db = Db::connect(&config.database_url, &config.settings.database)
        .await
        .expect("connect to the test database");
    db.migrate().await.expect("migrate the test database");
    updraft::auth::ensure_admin(&db, &config.settings.auth)
        .await
        .expect("create the admin user");
    let secrets = updraft::secrets::Secrets::load(&config).expect("test secrets load");
    // The scheduler and worker as `serve` runs them; the test process's end stops them.
    let stop = tokio_util::sync::CancellationToken::new();
    let engine = updraft::engine::Engine::start(
        &db,
        &config,
        updraft::scheduler::engine::Scope::All,
        false,
        secrets.clone(),
        stop.clone(),
    )
    .await
    .expect("start the engine");
    if !with_engine {
        stop.cancel();
        engine.signals.wake_scheduler();
        // The scheduler's heartbeat job is registered at start: forget it.
        use sea_orm::EntityTrait;
        updraft::store::job::Entity::delete_many()
            .exec(db.conn())
            .await
            .expect("clear jobs");
    }
    let link = updraft::server::EngineLink {
        signals: engine.signals.clone(),
        cache: engine.cache.clone(),
    };
    let app = Application::build(config.clone(), db.clone(), link.clone(), secrets.clone())
        .expect("bind the test server");
    let base_url = format!("http://{}", app.addr());
    tokio::spawn(app.run_until_stopped());
    // The DAG processor as `serve` runs it; the test process's end stops it.
    std::fs::create_dir_all(&config.dags_folder).expect("create the DAG folder");
    tokio::spawn(updraft::dag_processor::run(
        db.clone(),
        config.clone(),
        tokio_util::sync::CancellationToken::new(),
    ));
    let admin_token = token_for(&config, &secrets, ADMIN_USER, updraft::auth::Role::Admin);
    TestApp {
        base_url,
        engine: link,
        client: client_with_token(&admin_token),
        anon: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client"),
        secrets,
        db,
        config,
        home,
        test_db,
    }
}

/// The admin every test server has (`auth.admin_password`).
pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-test-password";

/// A fresh Fernet key (Airflow's format).
pub fn fernet_key() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

/// A token as `POST /auth/token` issues it (same signing key as the server).
pub fn token_for(
    config: &Config,
    secrets: &updraft::secrets::Secrets,
    username: &str,
    role: updraft::auth::Role,
) -> String {
    let auth = &config.settings.auth;
    let key = secrets.jwt_key(auth.jwt_secret.as_ref().map(|s| s.expose()));
    updraft::auth::token::TokenKeys::new(&key, auth.jwt_expiration_time).issue(username, role)
}

/// An HTTP client that sends `Authorization: Bearer <token>`.
pub fn client_with_token(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header value"),
    );
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .default_headers(headers)
        .build()
        .expect("HTTP client")
}

impl TestApp {
    /// A client acting as a user with `role` (created on first use, named after the role).
    pub async fn client_as(&self, role: updraft::auth::Role) -> reqwest::Client {
        let username = format!("{}_user", role.as_str().to_lowercase());
        if updraft::store::users::find(&self.db, &username)
            .await
            .expect("look up user")
            .is_none()
        {
            let hash = updraft::auth::password::hash("role-test-password").expect("hash");
            let new = updraft::store::users::NewUser {
                username: &username,
                password_hash: hash,
                role: role.as_str(),
                first_name: "",
                last_name: "",
                email: "",
            };
            // A parallel call may have created it first.
            let _ = updraft::store::users::insert(self.db.conn(), new).await;
        }
        client_with_token(&token_for(&self.config, &self.secrets, &username, role))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let res = self.get(path).await;
        let status = res.status().as_u16();
        (status, res.json().await.expect("JSON body"))
    }
}

/// The `updraft` binary under test.
pub fn updraft_bin() -> &'static str {
    env!("CARGO_BIN_EXE_updraft")
}

/// A command for the binary with a clean environment: only what the test sets, plus PATH
/// and a throwaway HOME, so the developer's own UPDRAFT__* variables never leak in.
pub fn updraft_cmd(home: &Path) -> Command {
    let mut cmd = Command::new(updraft_bin());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("UPDRAFT_HOME", home)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

/// Runs a command with a time limit and returns its output.
pub fn run_with_timeout(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn updraft");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait for updraft"),
        Err(_) => {
            // SAFETY: signalling a child process we spawned.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("updraft did not finish within {limit:?}");
        }
    }
}

/// Runs the binary with `args` and extra environment in a throwaway home (60 s at most).
pub fn run_updraft(args: &[&str], env: &[(&str, &str)]) -> Output {
    let home = tempfile::tempdir().expect("temp dir");
    let mut cmd = updraft_cmd(home.path());
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_timeout(cmd, Duration::from_secs(60))
}

pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A port nothing listens on (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The repository root (for files such as openapi.yaml).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("backend/ has a parent")
        .to_path_buf()
}

/// Polls `url` until it answers 200 or `limit` passes.
pub async fn wait_until_healthy(client: &reqwest::Client, url: &str, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if let Ok(res) = client.get(url).send().await {
            if res.status().is_success() {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
