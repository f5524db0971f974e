//! The metadata database: connecting (with a bounded retry), migrating (one process at a
//! time), and the queries other modules need.

pub mod audit;
pub mod backfills;
pub mod connections;
pub mod coordination;
pub mod dags;
pub mod entities;
pub mod job;
pub mod pools;
pub mod run_ops;
pub mod runs;
pub mod ti_ops;
pub mod users;
pub mod variables;

use std::str::FromStr;
use std::time::{Duration, Instant};

use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sea_orm::sqlx::{self, ConnectOptions as _, Connection as _};
use sea_orm::{DatabaseConnection, SqlxPostgresConnector, SqlxSqliteConnector};
use updraft_migrations::{Migrator, MigratorTrait};

use crate::config::{DatabaseKind, DatabaseSettings, DatabaseUrl};

/// Key of the PostgreSQL advisory lock held while migrating ("updraft" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x75_70_64_72_61_66_74;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("could not connect to the metadata database at {url} within {waited:?} ({attempts} attempts): {cause}; check that the server is running and that the URL is right (retry time: database.connect_retry_timeout)")]
    Unreachable {
        url: String,
        waited: Duration,
        attempts: u32,
        cause: String,
    },
    #[error("the metadata database at {url} refused the connection: {cause}")]
    Rejected { url: String, cause: String },
    #[error("migrating the metadata database failed: {0}")]
    Migration(String),
    #[error("DAG folder: {0}")]
    DagFolder(String),
    #[error("metadata database error: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("metadata database error: {0}")]
    Sql(sqlx::Error),
    #[error("{0}")]
    Coordination(String),
}

/// A handle on the metadata database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    conn: DatabaseConnection,
    kind: DatabaseKind,
    url: DatabaseUrl,
}

impl StoreError {
    /// A PostgreSQL deadlock (40P01) or serialization failure (40001): the transaction was
    /// rolled back and may simply run again.
    pub fn is_deadlock(&self) -> bool {
        let text = match self {
            StoreError::Db(e) => e.to_string(),
            StoreError::Sql(e) => e.to_string(),
            _ => return false,
        };
        text.contains("40P01")
            || text.contains("deadlock detected")
            || text.contains("40001")
            || text.contains("could not serialize")
    }
}

impl Db {
    /// Connects, retrying an unreachable server until `connect_retry_timeout` has passed, with a
    /// log line per failed attempt. Errors that waiting cannot fix (a wrong password, a missing
    /// database) fail at once.
    pub async fn connect(
        url: &DatabaseUrl,
        settings: &DatabaseSettings,
    ) -> Result<Self, StoreError> {
        let started = Instant::now();
        let deadline = started
            .checked_add(settings.connect_retry_timeout)
            .unwrap_or(started + Duration::from_secs(24 * 3600));
        let mut attempt = 0u32;
        let mut backoff = Duration::from_millis(250);
        loop {
            attempt += 1;
            // One attempt may not outlast the retry budget (at least 200 ms, at most 5 s).
            let remaining = deadline.saturating_duration_since(Instant::now());
            let attempt_limit = remaining.clamp(Duration::from_millis(200), Duration::from_secs(5));
            match Self::try_connect(url, settings, attempt_limit).await {
                Ok(db) => {
                    tracing::info!(database = %url, "connected to the metadata database");
                    return Ok(db);
                }
                Err(e) if is_permanent(url.kind(), &e) => {
                    return Err(StoreError::Rejected {
                        url: url.redacted().to_string(),
                        cause: e.to_string(),
                    });
                }
                Err(e) => {
                    let now = Instant::now();
                    if now + backoff > deadline {
                        return Err(StoreError::Unreachable {
                            url: url.redacted().to_string(),
                            waited: round(now - started),
                            attempts: attempt,
                            cause: e.to_string(),
                        });
                    }
                    tracing::warn!(
                        database = %url,
                        attempt,
                        retry_in_ms = backoff.as_millis() as u64,
                        gives_up_in_s = (deadline - now).as_secs(),
                        "metadata database not reachable: {e}"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// One connection attempt, then a lazily filled pool: sqlx's own pool start-up would retry
    /// silently until its acquire timeout, and we want a log line per attempt.
    async fn try_connect(
        url: &DatabaseUrl,
        settings: &DatabaseSettings,
        attempt_limit: Duration,
    ) -> Result<Self, sqlx::Error> {
        let timed_out = || {
            sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {attempt_limit:?}"),
            ))
        };
        let conn = match url.kind() {
            DatabaseKind::Sqlite => {
                let options = url
                    .sqlite_options()?
                    // WAL lets readers (the API) work while a writer commits; NORMAL sync is
                    // durable across process crashes in WAL mode.
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    .log_statements(log::LevelFilter::Trace);
                if let Some(parent) = options.get_filename().parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent)?;
                    }
                }
                let probe = tokio::time::timeout(attempt_limit, options.connect())
                    .await
                    .map_err(|_| timed_out())??;
                probe.close().await?;
                let pool = SqlitePoolOptions::new()
                    .max_connections(settings.max_connections)
                    .min_connections(0)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_lazy_with(options);
                SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)
            }
            DatabaseKind::Postgres => {
                let options = PgConnectOptions::from_str(url.expose())?
                    .application_name("updraft")
                    .log_statements(log::LevelFilter::Trace);
                let probe = tokio::time::timeout(attempt_limit, options.connect())
                    .await
                    .map_err(|_| timed_out())??;
                probe.close().await?;
                let pool = PgPoolOptions::new()
                    // Migrations hold an advisory lock on one connection while using another.
                    .max_connections(settings.max_connections.max(2))
                    .min_connections(0)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_lazy_with(options);
                SqlxPostgresConnector::from_sqlx_postgres_pool(pool)
            }
        };
        Ok(Self {
            conn,
            kind: url.kind(),
            url: url.clone(),
        })
    }

    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    pub fn url_ref(&self) -> &DatabaseUrl {
        &self.url
    }

    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// A round trip to the server; what the health endpoint reports.
    pub async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.conn.ping().await?)
    }

    /// Names of the migrations not applied yet.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, StoreError> {
        let pending = Migrator::get_pending_migrations(&self.conn).await?;
        Ok(pending.iter().map(|m| m.name().to_string()).collect())
    }

    /// Applies pending migrations. Processes starting together take turns: on PostgreSQL an
    /// advisory lock (released by the server if the holder dies), on SQLite a file lock.
    /// Returns the names of the migrations this call applied.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let migration_error = |e: sea_orm::DbErr| StoreError::Migration(e.to_string());
        match self.kind {
            DatabaseKind::Postgres => {
                let pool = self.conn.get_postgres_connection_pool();
                let mut lock_conn = pool.acquire().await.map_err(StoreError::Sql)?;
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(MIGRATION_LOCK_KEY)
                    .execute(&mut *lock_conn)
                    .await
                    .map_err(StoreError::Sql)?;
                let result = self.migrate_unlocked().await;
                let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(MIGRATION_LOCK_KEY)
                    .execute(&mut *lock_conn)
                    .await;
                if let Err(e) = unlocked {
                    // Closing the session releases the lock too.
                    tracing::warn!("releasing the migration lock failed: {e}");
                    lock_conn.close().await.ok();
                }
                result.map_err(migration_error)
            }
            DatabaseKind::Sqlite => {
                let _guard = self.sqlite_migration_lock().await?;
                self.migrate_unlocked().await.map_err(migration_error)
            }
        }
    }

    async fn migrate_unlocked(&self) -> Result<Vec<String>, sea_orm::DbErr> {
        let pending = Migrator::get_pending_migrations(&self.conn).await?;
        let names: Vec<String> = pending.iter().map(|m| m.name().to_string()).collect();
        if names.is_empty() {
            return Ok(names);
        }
        match self.kind {
            // sea-orm-migration runs each migration in a transaction on PostgreSQL only. SQLite's
            // DDL is transactional too: one transaction for all, so a crash leaves either the
            // old schema or the new one, never half of it.
            DatabaseKind::Sqlite => {
                use sea_orm::TransactionTrait;
                let txn = self.conn.begin().await?;
                Migrator::up(&txn, None).await?;
                txn.commit().await?;
            }
            DatabaseKind::Postgres => Migrator::up(&self.conn, None).await?,
        }
        tracing::info!(applied = ?names, "metadata database migrated");
        Ok(names)
    }

    async fn sqlite_migration_lock(&self) -> Result<Option<FileLock>, StoreError> {
        let options = self
            .url
            .sqlite_options()
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        let file = options.get_filename();
        if file.as_os_str().is_empty() || file.to_string_lossy().contains(":memory:") {
            return Ok(None);
        }
        let lock_path = file.with_extension("migrate.lock");
        tokio::task::spawn_blocking(move || FileLock::acquire(&lock_path))
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))?
            .map(Some)
            .map_err(|e| StoreError::Migration(format!("taking the migration lock: {e}")))
    }

    /// Closes the pool; in-flight queries finish first.
    pub async fn close(self) {
        if let Err(e) = self.conn.close().await {
            tracing::warn!("closing the metadata database: {e}");
        }
    }
}

fn round(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64 / 100 * 100)
}

/// Errors that retrying cannot fix.
fn is_permanent(kind: DatabaseKind, e: &sqlx::Error) -> bool {
    if kind == DatabaseKind::Sqlite {
        // A SQLite file either opens or it does not, except while another process holds a
        // lock on it (SQLITE_BUSY / SQLITE_LOCKED, e.g. switching a new file to WAL; the busy
        // handler is not consulted for that).
        let busy = matches!(e, sqlx::Error::Database(db) if db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6)));
        return !busy;
    }
    match e {
        sqlx::Error::Configuration(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 28xxx: authentication; 3D000: no such database; 42501: insufficient privilege.
            code.starts_with("28") || code == "3D000" || code == "42501"
        }),
        _ => false,
    }
}

/// An exclusive `flock` on a file, released on drop or when the process dies.
struct FileLock(std::fs::File);

impl FileLock {
    fn acquire(path: &std::path::Path) -> std::io::Result<Self> {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        // SAFETY: flock on a file descriptor we own; blocks until the lock is free.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self(file))
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: unlocking the descriptor we locked in `acquire`.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}
