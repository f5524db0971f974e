//! Layered configuration: defaults → `$UPDRAFT_HOME/updraft.toml` → PaaS variables (`PORT`,
//! `DATABASE_URL`) → `UPDRAFT__SECTION__KEY` variables → command-line flags.
//!
//! figment does the layering and the typing (it turns `"8080"` from the environment into a
//! number); this module adds what it lacks: `*_FILE` variants, the PaaS conventions, and one
//! error line that names the exact variable, file or flag to fix.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::value::Value;
use figment::Figment;
use sea_orm::sqlx::postgres::PgConnectOptions;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Prefix of the environment variables that set any key: `UPDRAFT__SERVER__PORT=9000`.
pub const ENV_PREFIX: &str = "UPDRAFT__";
/// Name of the optional config file inside `UPDRAFT_HOME`.
pub const CONFIG_FILE: &str = "updraft.toml";
/// Keys whose values are never printed, not even in error messages.
const SECRET_KEYS: &[&str] = &[
    "database.url",
    "core.fernet_key",
    "auth.jwt_secret",
    "auth.admin_password",
];

/// Everything a user can set. Each field's doc is its reference documentation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub core: CoreSettings,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub logging: LoggingSettings,
    pub scheduler: SchedulerSettings,
    pub worker: WorkerSettings,
    pub auth: AuthSettings,
    pub api: ApiSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoreSettings {
    /// Folder of DAG files; default `$UPDRAFT_HOME/dags`.
    pub dags_folder: Option<PathBuf>,
    /// Full rescan of the DAG folder this often (changes are also seen at once by a watcher).
    #[serde(with = "humantime_serde")]
    pub dag_dir_list_interval: Duration,
    /// Whether a newly seen DAG starts paused when its file does not say (Airflow's default: yes).
    pub dags_are_paused_at_creation: bool,
    /// DAG files larger than this are import errors.
    pub dag_file_max_bytes: usize,
    /// Largest XCom value (JSON bytes) a task may push; larger values fail the task. Large
    /// data belongs in object storage, with its path in the XCom.
    pub xcom_max_size: usize,
    /// Fernet key(s) that encrypt variable values and connection passwords/extras at rest, in
    /// Airflow's format (url-safe base64 of 32 bytes), so an Airflow `[core] fernet_key`
    /// carries over. Several keys separated by commas rotate: the first encrypts, any
    /// decrypts. Unset on SQLite: one is generated into `$UPDRAFT_HOME/fernet.key`.
    pub fernet_key: Option<Secret>,
    /// Whether values whose key names look sensitive are shown as `***` (Airflow's
    /// `hide_sensitive_var_conn_fields`).
    pub hide_sensitive_var_conn_fields: bool,
    /// Extra key-name fragments treated as sensitive, beside Airflow's list (comma-separated
    /// in the environment).
    #[serde(deserialize_with = "comma_list")]
    pub sensitive_var_conn_names: Vec<String>,
}

impl Default for CoreSettings {
    fn default() -> Self {
        Self {
            dags_folder: None,
            dag_dir_list_interval: Duration::from_secs(30),
            dags_are_paused_at_creation: true,
            dag_file_max_bytes: 1024 * 1024,
            xcom_max_size: 1024 * 1024,
            fernet_key: None,
            hide_sensitive_var_conn_fields: true,
            sensitive_var_conn_names: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to bind; `PORT` alone switches it to all interfaces (`0.0.0.0`).
    pub host: String,
    pub port: u16,
    /// HTTP worker threads; 0 picks one per core (at most 8).
    pub workers: usize,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            workers: 0,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `postgres://…`, `postgresql://…` or `sqlite://…`; default SQLite `$UPDRAFT_HOME/updraft.db`.
    pub url: Option<String>,
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long to keep retrying an unreachable database at start-up before giving up.
    #[serde(with = "humantime_serde")]
    pub connect_retry_timeout: Duration,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 10,
            connect_retry_timeout: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &self.url.as_ref().map(|_| "[redacted]"))
            .field("max_connections", &self.max_connections)
            .field("connect_retry_timeout", &self.connect_retry_timeout)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingSettings {
    /// A tracing filter: `info`, `debug`, `updraft=debug,info`. `RUST_LOG` wins when set.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LoggingSettings {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerSettings {
    /// A component whose last heartbeat is older than this is reported unhealthy.
    #[serde(with = "humantime_serde")]
    pub health_check_threshold: Duration,
    /// How often the scheduler looks for changes made by other processes (a run triggered
    /// from the CLI, a DAG paused there). Changes made in this process wake it at once.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            health_check_threshold: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// Task instances one worker runs at the same time (Airflow's `core.parallelism`).
    pub concurrency: usize,
    /// A running task's lease lasts this long and is renewed at a third of it; a task whose
    /// lease expired (its worker died) is failed or retried by its `retries`.
    #[serde(with = "humantime_serde")]
    pub lease_timeout: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: 32,
            lease_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Key that signs API tokens (HS512). Unset: derived from the first Fernet key, so every
    /// process sharing the database accepts the others' tokens.
    pub jwt_secret: Option<Secret>,
    /// How long a token from `POST /auth/token` is valid (Airflow's `jwt_expiration_time`).
    #[serde(with = "humantime_serde")]
    pub jwt_expiration_time: Duration,
    /// Name of the admin user that `admin_password` creates or updates at start.
    pub admin_username: String,
    /// When set (use `UPDRAFT__AUTH__ADMIN_PASSWORD_FILE` in production), the admin user is
    /// created with this password at start, or its password reset to it. There is no default.
    pub admin_password: Option<Secret>,
    /// Failed logins allowed per user and per client address within `login_rate_window`;
    /// more are refused with 429 until the window passes.
    pub login_rate_limit: u32,
    #[serde(with = "humantime_serde")]
    pub login_rate_window: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            jwt_expiration_time: Duration::from_secs(24 * 3600),
            admin_username: "admin".into(),
            admin_password: None,
            login_rate_limit: 5,
            login_rate_window: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    /// Largest page a list endpoint returns; a larger `limit` is cut to it (Airflow's
    /// `[api] maximum_page_limit`).
    pub maximum_page_limit: u64,
    /// Page size when a request gives no `limit` (Airflow's default: 50).
    pub fallback_page_limit: u64,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            maximum_page_limit: 100,
            fallback_page_limit: 50,
        }
    }
}

/// A secret setting: `Debug` shows `***`, and only [`Secret::expose`] gives the value.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A list given as TOML array or as one comma-separated string (as environment variables are).
fn comma_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    let items = match Raw::deserialize(d)? {
        Raw::One(s) => s.split(',').map(str::to_string).collect(),
        Raw::Many(v) => v,
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

/// Values given as command-line flags: the top layer.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub home: Option<PathBuf>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database_url: Option<String>,
}

/// The resolved configuration a process runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub home: PathBuf,
    pub dags_folder: PathBuf,
    pub database_url: DatabaseUrl,
    pub settings: Settings,
}

impl Config {
    /// The address a local client (such as `updraft healthcheck`) should dial.
    pub fn local_base_url(&self) -> String {
        let host = match self.settings.server.host.parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
            Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => self.settings.server.host.clone(),
        };
        format!("http://{host}:{}", self.settings.server.port)
    }
}

/// A configuration problem: one line that names the setting and says what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The process environment as a map, so tests can pass their own without touching globals.
pub type Env = BTreeMap<String, String>;

pub fn process_env() -> Env {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Where one key's value came from, for error messages.
struct Sources<'a> {
    overrides: &'a Overrides,
    env_keys: BTreeMap<String, String>,
    paas_keys: BTreeMap<String, String>,
    file: Option<(PathBuf, toml::Table)>,
}

impl Sources<'_> {
    fn describe(&self, key: &str) -> String {
        let flag = match key {
            "server.host" if self.overrides.host.is_some() => Some("--host"),
            "server.port" if self.overrides.port.is_some() => Some("--port"),
            "database.url" if self.overrides.database_url.is_some() => Some("--database-url"),
            _ => None,
        };
        if let Some(flag) = flag {
            return format!("the flag {flag}");
        }
        if let Some(var) = self.env_keys.get(key).or_else(|| self.paas_keys.get(key)) {
            return format!("the environment variable {var}");
        }
        if let Some((path, table)) = &self.file {
            if lookup(table, key) {
                return format!("`{key}` in {}", path.display());
            }
        }
        format!("the setting `{key}`")
    }
}

fn lookup(table: &toml::Table, dotted: &str) -> bool {
    let mut parts = dotted.split('.');
    let Some(first) = parts.next() else {
        return false;
    };
    let mut current = table.get(first);
    for part in parts {
        current = current.and_then(|v| v.as_table()).and_then(|t| t.get(part));
    }
    current.is_some()
}

fn read_secret_file(var: &str, path: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
        .map_err(|e| {
            ConfigError(format!(
                "{var}={path}: cannot read the file ({e}); point {var} at a readable file or unset it"
            ))
        })
}

/// Resolves `UPDRAFT_HOME`: the flag, else the variable, else `~/updraft` (as Airflow's `~/airflow`).
pub fn resolve_home(
    overrides: &Overrides,
    env: &Env,
) -> Result<(PathBuf, &'static str), ConfigError> {
    if let Some(home) = &overrides.home {
        return Ok((home.clone(), "--home"));
    }
    if let Some(home) = env.get("UPDRAFT_HOME").filter(|h| !h.is_empty()) {
        return Ok((PathBuf::from(home), "UPDRAFT_HOME"));
    }
    let user_home = env.get("HOME").filter(|h| !h.is_empty()).ok_or_else(|| {
        ConfigError(
            "UPDRAFT_HOME is not set and neither is HOME: set UPDRAFT_HOME to a writable directory"
                .into(),
        )
    })?;
    Ok((Path::new(user_home).join("updraft"), "UPDRAFT_HOME"))
}

/// Loads the configuration without touching the disk beyond reading `updraft.toml`.
pub fn load(overrides: &Overrides, env: &Env) -> Result<Config, ConfigError> {
    let (home, _) = resolve_home(overrides, env)?;
    let mut figment = Figment::from(Serialized::defaults(Settings::default()));

    // Layer 2: the config file.
    let file_path = home.join(CONFIG_FILE);
    let mut file = None;
    if file_path.is_file() {
        let text = std::fs::read_to_string(&file_path).map_err(|e| {
            ConfigError(format!(
                "{}: cannot read the file ({e})",
                file_path.display()
            ))
        })?;
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start].lines().count().max(1);
                    format!(" at line {line}")
                })
                .unwrap_or_default();
            ConfigError(format!(
                "{}{at}: not valid TOML: {}",
                file_path.display(),
                e.message().split_whitespace().collect::<Vec<_>>().join(" ")
            ))
        })?;
        figment = figment.merge(Toml::file(&file_path));
        file = Some((file_path, table));
    }

    // Layer 3: PaaS conventions.
    let mut paas_keys = BTreeMap::new();
    if let Some(raw) = env.get("PORT") {
        let port = raw.trim().parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
            ConfigError(format!(
                "PORT={raw:?} is not a port number: set PORT to a whole number from 1 to 65535, or unset it"
            ))
        })?;
        figment = figment
            .merge(Serialized::default("server.port", port))
            .merge(Serialized::default("server.host", "0.0.0.0"));
        paas_keys.insert("server.port".to_string(), "PORT".to_string());
        paas_keys.insert("server.host".to_string(), "PORT".to_string());
    }
    for var in ["DATABASE_URL", "DATABASE_URL_FILE"] {
        if let Some(raw) = env.get(var) {
            let url = if var.ends_with("_FILE") {
                read_secret_file(var, raw)?
            } else {
                raw.clone()
            };
            figment = figment.merge(Serialized::default("database.url", url));
            paas_keys.insert("database.url".to_string(), var.to_string());
        }
    }

    // Layer 4: UPDRAFT__SECTION__KEY (and UPDRAFT__SECTION__KEY_FILE).
    let mut env_keys = BTreeMap::new();
    for (var, raw) in env.iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)) {
        let rest = &var[ENV_PREFIX.len()..];
        let (rest, from_file) = match rest.strip_suffix("_FILE") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        let key = rest.to_ascii_lowercase().replace("__", ".");
        let value = if from_file {
            Value::from(read_secret_file(var, raw)?)
        } else {
            // figment's parsing turns "8080" into a number and "true" into a bool.
            Value::from_str(raw).unwrap_or_else(|never| match never {})
        };
        figment = figment.merge(Serialized::default(&key, value));
        env_keys.insert(key, var.clone());
    }

    // Layer 5: flags.
    if let Some(host) = &overrides.host {
        figment = figment.merge(Serialized::default("server.host", host));
    }
    if let Some(port) = overrides.port {
        figment = figment.merge(Serialized::default("server.port", port));
    }
    if let Some(url) = &overrides.database_url {
        figment = figment.merge(Serialized::default("database.url", url));
    }

    let sources = Sources {
        overrides,
        env_keys,
        paas_keys,
        file,
    };
    let settings: Settings = figment.extract().map_err(|e| explain(e, &sources))?;
    validate(&settings, &sources)?;

    let database_url = match &settings.database.url {
        Some(url) => DatabaseUrl::parse(url).map_err(|why| {
            ConfigError(format!(
                "{} is not a usable database URL: {why}; expected postgres://USER:PASSWORD@HOST:5432/DBNAME or sqlite:///path/to/updraft.db",
                sources.describe("database.url")
            ))
        })?,
        None => DatabaseUrl::sqlite_file(&home.join("updraft.db")),
    };
    let dags_folder = settings
        .core
        .dags_folder
        .clone()
        .unwrap_or_else(|| home.join("dags"));
    Ok(Config {
        home,
        dags_folder,
        database_url,
        settings,
    })
}

fn validate(settings: &Settings, sources: &Sources<'_>) -> Result<(), ConfigError> {
    if settings.server.host.parse::<IpAddr>().is_err()
        && (settings.server.host.is_empty() || settings.server.host.contains(['/', ' ', ':']))
    {
        return Err(ConfigError(format!(
            "{} = {:?} is not an address to bind: use an IP address such as 127.0.0.1 or 0.0.0.0",
            sources.describe("server.host"),
            settings.server.host
        )));
    }
    let day = Duration::from_secs(24 * 3600);
    for (key, value, min) in [
        (
            "core.dag_dir_list_interval",
            settings.core.dag_dir_list_interval,
            Duration::from_secs(1),
        ),
        (
            "database.connect_retry_timeout",
            settings.database.connect_retry_timeout,
            Duration::ZERO,
        ),
        (
            "server.shutdown_timeout",
            settings.server.shutdown_timeout,
            Duration::ZERO,
        ),
        (
            "scheduler.health_check_threshold",
            settings.scheduler.health_check_threshold,
            Duration::from_secs(1),
        ),
        (
            "scheduler.poll_interval",
            settings.scheduler.poll_interval,
            Duration::from_millis(10),
        ),
        (
            "worker.lease_timeout",
            settings.worker.lease_timeout,
            Duration::from_secs(3),
        ),
        (
            "auth.login_rate_window",
            settings.auth.login_rate_window,
            Duration::from_secs(1),
        ),
    ] {
        if value < min || value > day {
            return Err(ConfigError(format!(
                "{} = {} is out of range: use a duration from {} to 24h",
                sources.describe(key),
                humantime::format_duration(value),
                humantime::format_duration(min)
            )));
        }
    }
    if !(1024..=64 * 1024 * 1024).contains(&settings.core.dag_file_max_bytes) {
        return Err(ConfigError(format!(
            "{} = {} is out of range: use a size in bytes from 1024 to 67108864 (64 MiB)",
            sources.describe("core.dag_file_max_bytes"),
            settings.core.dag_file_max_bytes
        )));
    }
    if !(1..=100 * 1024 * 1024).contains(&settings.core.xcom_max_size) {
        return Err(ConfigError(format!(
            "{} = {} is out of range: use a size in bytes from 1 to 104857600 (100 MiB)",
            sources.describe("core.xcom_max_size"),
            settings.core.xcom_max_size
        )));
    }
    if !(1..=4096).contains(&settings.worker.concurrency) {
        return Err(ConfigError(format!(
            "{} = {} is out of range: use 1 to 4096 task instances at a time",
            sources.describe("worker.concurrency"),
            settings.worker.concurrency
        )));
    }
    if settings.server.workers > 256 {
        return Err(ConfigError(format!(
            "{} = {} is too many: use 0 (one per core) or at most 256",
            sources.describe("server.workers"),
            settings.server.workers
        )));
    }
    let jwt = settings.auth.jwt_expiration_time;
    if jwt < Duration::from_secs(60) || jwt > Duration::from_secs(366 * 24 * 3600) {
        return Err(ConfigError(format!(
            "{} = {} is out of range: use a duration from 1m to 366d",
            sources.describe("auth.jwt_expiration_time"),
            humantime::format_duration(jwt)
        )));
    }
    if settings.auth.admin_username.trim().is_empty() {
        return Err(ConfigError(format!(
            "{} is empty: give the admin user's name",
            sources.describe("auth.admin_username")
        )));
    }
    if settings.auth.login_rate_limit == 0 {
        return Err(ConfigError(format!(
            "{} must be at least 1",
            sources.describe("auth.login_rate_limit")
        )));
    }
    if let Some(secret) = &settings.auth.jwt_secret {
        if secret.expose().len() < 16 {
            return Err(ConfigError(format!(
                "{} is too short: use at least 16 characters (32 random bytes are best)",
                sources.describe("auth.jwt_secret")
            )));
        }
    }
    let api = &settings.api;
    if !(1..=10_000).contains(&api.maximum_page_limit)
        || !(1..=api.maximum_page_limit).contains(&api.fallback_page_limit)
    {
        return Err(ConfigError(format!(
            "{} = {} / {} = {} are out of range: use 1 ≤ fallback_page_limit ≤ maximum_page_limit ≤ 10000",
            sources.describe("api.fallback_page_limit"),
            api.fallback_page_limit,
            sources.describe("api.maximum_page_limit"),
            api.maximum_page_limit
        )));
    }
    if settings.database.max_connections == 0 {
        return Err(ConfigError(format!(
            "{} must be at least 1",
            sources.describe("database.max_connections")
        )));
    }
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&settings.logging.level) {
        return Err(ConfigError(format!(
            "{} = {:?} is not a log level or filter ({e}): use error, warn, info, debug or trace",
            sources.describe("logging.level"),
            settings.logging.level
        )));
    }
    Ok(())
}

/// Turns figment's error into one line naming where the bad value came from.
fn explain(error: figment::Error, sources: &Sources<'_>) -> ConfigError {
    use figment::error::Kind;
    let path: Vec<&str> = error.path.iter().map(String::as_str).collect();
    match &error.kind {
        Kind::UnknownField(field, expected) => {
            // figment's path already ends with the unknown field.
            let mut parts = path.clone();
            if parts.last() != Some(&field.as_str()) {
                parts.push(field);
            }
            let key = parts.join(".");
            let what = if parts.len() <= 1 {
                "section"
            } else {
                "setting"
            };
            let suggestion = expected
                .iter()
                .map(|k| (strsim::jaro_winkler(field, k), *k))
                .filter(|(score, _)| *score > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, k)| format!("did you mean `{k}`? "))
                .unwrap_or_default();
            ConfigError(format!(
                "{}: unknown {what} `{key}`; {suggestion}known ones here: {}",
                sources.describe(&key),
                expected.join(", ")
            ))
        }
        kind => {
            let key = path.join(".");
            let detail = if is_duration_key(&key) {
                // humantime's own words, e.g. `expected a duration` or `unknown time unit "x"`.
                let why = match kind {
                    Kind::Message(m) => m.clone(),
                    other => other.to_string(),
                };
                format!("is not a duration ({why}): write it like 30s, 5m or 1h 30m")
            } else if SECRET_KEYS
                .iter()
                .any(|secret| key.is_empty() || secret.starts_with(key.as_str()))
            {
                "has the wrong type: expected a string".to_string()
            } else {
                match kind {
                    Kind::InvalidType(actual, expected) => {
                        format!("is {actual}, expected {expected}")
                    }
                    Kind::InvalidValue(actual, expected) => {
                        format!("is {actual}, expected {expected}")
                    }
                    Kind::UnknownVariant(v, expected) => {
                        format!("is {v:?}, expected one of: {}", expected.join(", "))
                    }
                    other => other.to_string(),
                }
            };
            let name = if key.is_empty() {
                "the configuration".to_string()
            } else {
                sources.describe(&key)
            };
            ConfigError(format!("{name} {detail}"))
        }
    }
}

fn is_duration_key(key: &str) -> bool {
    matches!(
        key,
        "server.shutdown_timeout"
            | "core.dag_dir_list_interval"
            | "database.connect_retry_timeout"
            | "scheduler.health_check_threshold"
            | "scheduler.poll_interval"
            | "worker.lease_timeout"
            | "auth.jwt_expiration_time"
            | "auth.login_rate_window"
    )
}

/// Makes sure `UPDRAFT_HOME` exists and is writable (the SQLite database, logs and the
/// default DAG folder live there).
pub fn ensure_home_writable(home: &Path, source: &str) -> Result<(), ConfigError> {
    let fail = |e: std::io::Error| {
        ConfigError(format!(
            "{source}={} is not a writable directory ({e}); point {source} at a directory this user can write",
            home.display()
        ))
    };
    std::fs::create_dir_all(home).map_err(fail)?;
    let probe = home.join(format!(".updraft-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"ok").map_err(fail)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Which database engine a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

/// A validated database URL. `Debug` and `Display` show it with the password replaced by `***`.
#[derive(Clone)]
pub struct DatabaseUrl {
    kind: DatabaseKind,
    secret: SecretString,
    redacted: String,
    /// The default database: a file path, never parsed as a URL (a home may contain `%` or `?`).
    sqlite_path: Option<PathBuf>,
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let scheme = raw.split_once(':').map(|(s, _)| s).unwrap_or_default();
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => DatabaseKind::Postgres,
            "sqlite" => DatabaseKind::Sqlite,
            "" => return Err("it has no scheme".into()),
            other => {
                return Err(format!(
                    "the scheme `{other}` is not supported (use postgres, postgresql or sqlite)"
                ))
            }
        };
        let redacted = match kind {
            DatabaseKind::Postgres => {
                let mut url = url::Url::parse(raw).map_err(|e| format!("{e}"))?;
                let socket = url.query_pairs().any(|(k, _)| k == "host");
                if url.host_str().is_none_or(str::is_empty) && !socket {
                    return Err("it names no host".into());
                }
                PgConnectOptions::from_str(raw).map_err(|e| format!("{e}"))?;
                if url.password().is_some() {
                    let _ = url.set_password(Some("***"));
                }
                // libpq also takes secrets as query parameters (`?password=…`, `sslpassword`).
                let pairs: Vec<(String, String)> = url
                    .query_pairs()
                    .map(|(k, v)| {
                        let secret = ["pass", "secret", "token", "key"]
                            .iter()
                            .any(|s| k.to_ascii_lowercase().contains(s));
                        (
                            k.into_owned(),
                            if secret { "***".into() } else { v.into_owned() },
                        )
                    })
                    .collect();
                if !pairs.is_empty() {
                    url.query_pairs_mut().clear().extend_pairs(pairs);
                }
                url.to_string()
            }
            DatabaseKind::Sqlite => {
                sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(raw)
                    .map_err(|e| format!("{e}"))?;
                raw.to_string()
            }
        };
        Ok(Self {
            kind,
            secret: SecretString::from(raw.to_string()),
            redacted,
            sqlite_path: None,
        })
    }

    pub fn sqlite_file(path: &Path) -> Self {
        let shown = format!("sqlite://{}", path.display());
        Self {
            kind: DatabaseKind::Sqlite,
            redacted: shown.clone(),
            secret: SecretString::from(shown),
            sqlite_path: Some(path.to_path_buf()),
        }
    }

    /// Connection options of a SQLite database (file created if missing).
    pub fn sqlite_options(
        &self,
    ) -> Result<sea_orm::sqlx::sqlite::SqliteConnectOptions, sea_orm::sqlx::Error> {
        let options = match &self.sqlite_path {
            Some(path) => sea_orm::sqlx::sqlite::SqliteConnectOptions::new().filename(path),
            None => sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(self.expose())?,
        };
        Ok(options.create_if_missing(true))
    }

    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// The URL with its password: only for handing to the database driver.
    pub fn expose(&self) -> &str {
        self.secret.expose_secret()
    }

    pub fn redacted(&self) -> &str {
        &self.redacted
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        let home = tempfile::tempdir().unwrap().keep();
        let mut env: Env = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.entry("UPDRAFT_HOME".into())
            .or_insert(home.display().to_string());
        env
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        load(&Overrides::default(), &env(pairs)).unwrap_err().0
    }

    #[test]
    fn defaults_bind_loopback_and_use_sqlite_in_home() {
        let e = env(&[]);
        let config = load(&Overrides::default(), &e).unwrap();
        assert_eq!(config.settings.server.host, "127.0.0.1");
        assert_eq!(config.settings.server.port, 8080);
        assert_eq!(config.database_url.kind(), DatabaseKind::Sqlite);
        assert!(config.database_url.expose().contains(&e["UPDRAFT_HOME"]));
        assert_eq!(
            config.dags_folder,
            Path::new(&e["UPDRAFT_HOME"]).join("dags")
        );
    }

    #[test]
    fn port_binds_all_interfaces() {
        let config = load(&Overrides::default(), &env(&[("PORT", "5000")])).unwrap();
        assert_eq!(config.settings.server.host, "0.0.0.0");
        assert_eq!(config.settings.server.port, 5000);
        assert_eq!(config.local_base_url(), "http://127.0.0.1:5000");
    }

    #[test]
    fn layers_apply_in_order_file_env_flags() {
        let e = env(&[("UPDRAFT__SERVER__WORKERS", "3")]);
        let home = PathBuf::from(&e["UPDRAFT_HOME"]);
        std::fs::write(
            home.join(CONFIG_FILE),
            "[server]\nport = 9001\nworkers = 1\n[logging]\nlevel = \"debug\"\n",
        )
        .unwrap();
        let config = load(&Overrides::default(), &e).unwrap();
        assert_eq!(config.settings.server.port, 9001);
        assert_eq!(config.settings.server.workers, 3);
        assert_eq!(config.settings.logging.level, "debug");
        let flags = Overrides {
            port: Some(9002),
            ..Default::default()
        };
        assert_eq!(load(&flags, &e).unwrap().settings.server.port, 9002);
    }

    #[test]
    fn secret_file_variants_are_read_and_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("db");
        std::fs::write(&secret, "postgres://app:s3cret@db.internal:5432/updraft\n").unwrap();
        let e = env(&[("DATABASE_URL_FILE", secret.to_str().unwrap())]);
        let config = load(&Overrides::default(), &e).unwrap();
        assert_eq!(config.database_url.kind(), DatabaseKind::Postgres);
        assert!(config.database_url.expose().contains("s3cret"));
        let shown = format!("{config:?} {}", config.database_url);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("app:***@db.internal"), "{shown}");

        let e = env(&[("UPDRAFT__DATABASE__URL_FILE", secret.to_str().unwrap())]);
        assert!(load(&Overrides::default(), &e).is_ok());
    }

    #[test]
    fn bad_port_names_the_variable() {
        let msg = err(&[("PORT", "abc")]);
        assert!(
            msg.starts_with("PORT=\"abc\" is not a port number"),
            "{msg}"
        );
        let msg = err(&[("UPDRAFT__SERVER__PORT", "abc")]);
        assert!(msg.contains("UPDRAFT__SERVER__PORT"), "{msg}");
        assert!(msg.contains("u16"), "{msg}");
    }

    #[test]
    fn unknown_keys_suggest_the_right_one() {
        let msg = err(&[("UPDRAFT__CORE__DAG_FOLDER", "/x")]);
        assert!(msg.contains("UPDRAFT__CORE__DAG_FOLDER"), "{msg}");
        assert!(msg.contains("did you mean `dags_folder`"), "{msg}");
        let msg = err(&[("UPDRAFT__SERVR__PORT", "1")]);
        assert!(msg.contains("unknown section `servr`"), "{msg}");
        assert!(msg.contains("did you mean `server`"), "{msg}");
    }

    #[test]
    fn unknown_key_in_file_names_the_file() {
        let e = env(&[]);
        let path = Path::new(&e["UPDRAFT_HOME"]).join(CONFIG_FILE);
        std::fs::write(&path, "[server]\nprot = 1\n").unwrap();
        let msg = load(&Overrides::default(), &e).unwrap_err().0;
        assert!(
            msg.contains(&format!("`server.prot` in {}", path.display())),
            "{msg}"
        );
        std::fs::write(&path, "[server\n").unwrap();
        let msg = load(&Overrides::default(), &e).unwrap_err().0;
        assert!(msg.contains("line 1: not valid TOML"), "{msg}");
    }

    #[test]
    fn malformed_database_url_is_explained_without_echoing_it() {
        let msg = err(&[("DATABASE_URL", "mysql://u:hunter2@h/db")]);
        assert!(
            msg.starts_with("the environment variable DATABASE_URL is not a usable database URL"),
            "{msg}"
        );
        assert!(msg.contains("`mysql` is not supported"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        let msg = err(&[("DATABASE_URL", "not a url")]);
        assert!(msg.contains("DATABASE_URL"), "{msg}");
    }

    #[test]
    fn bad_durations_and_levels_say_how_to_write_them() {
        let msg = err(&[("UPDRAFT__DATABASE__CONNECT_RETRY_TIMEOUT", "soon")]);
        assert!(msg.contains("write it like 30s"), "{msg}");
        let msg = err(&[("UPDRAFT__LOGGING__FORMAT", "xml")]);
        assert!(msg.contains("expected one of: text, json"), "{msg}");
    }

    #[test]
    fn query_string_passwords_are_redacted_and_sockets_accepted() {
        let url =
            DatabaseUrl::parse("postgres://app@db/x?password=hunter2&sslmode=require").unwrap();
        let shown = format!("{url} {url:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("password=***") && shown.contains("sslmode=require"),
            "{shown}"
        );
        assert!(DatabaseUrl::parse("postgres:///db?host=/var/run/postgresql").is_ok());
    }

    #[test]
    fn a_string_where_a_section_belongs_is_not_echoed() {
        let msg = err(&[("UPDRAFT__DATABASE", "postgres://u:hunter2@h/db")]);
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn out_of_range_values_are_config_errors_not_panics() {
        for (key, value) in [
            ("UPDRAFT__CORE__DAG_DIR_LIST_INTERVAL", "0s"),
            (
                "UPDRAFT__DATABASE__CONNECT_RETRY_TIMEOUT",
                "18446744073709551615s",
            ),
            ("UPDRAFT__CORE__DAG_FILE_MAX_BYTES", "18446744073709551615"),
            ("UPDRAFT__SERVER__WORKERS", "100000"),
        ] {
            let msg = err(&[(key, value)]);
            assert!(msg.contains(key), "{key}: {msg}");
        }
    }

    #[test]
    fn a_home_with_percent_signs_stays_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("h%41b?x");
        let e = env(&[("UPDRAFT_HOME", home.to_str().unwrap())]);
        let config = load(&Overrides::default(), &e).unwrap();
        let options = config.database_url.sqlite_options().unwrap();
        assert_eq!(options.get_filename(), home.join("updraft.db"));
    }

    #[test]
    fn unwritable_home_is_reported() {
        let msg = ensure_home_writable(Path::new("/proc/updraft"), "UPDRAFT_HOME")
            .unwrap_err()
            .0;
        assert!(
            msg.starts_with("UPDRAFT_HOME=/proc/updraft is not a writable directory"),
            "{msg}"
        );
    }
}
