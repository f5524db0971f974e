//! How several processes share one database: which scheduler leads, and how a change in one
//! process wakes the others.
//!
//! **Schedulers** elect one leader with a PostgreSQL session-level advisory lock held on a
//! dedicated connection. Only the leader ticks; standbys retry the lock every second. The lock
//! goes with its session, so a leader that dies (even `kill -9`: its socket closes) or loses
//! its connection hands over within about a second, and there is never a second writer of
//! scheduling decisions in normal operation. Why not several schedulers sharing work with
//! SKIP LOCKED batches: one tick decides a whole run at a time (trigger rules, pools,
//! `max_active_*` across runs), which does not split into independent rows, and one leader
//! already keeps up with thousands of task instances a second; the guarded updates
//! (`WHERE state = expected`) keep even a brief overlap harmless.
//!
//! On SQLite (the single-machine mode) an `flock` next to the database file makes sure only
//! one process schedules.
//!
//! **Wake-ups** use `LISTEN/NOTIFY` on PostgreSQL: channel `updraft_scheduler` when a try ended
//! or a run was triggered/changed, `updraft_worker` when task instances were queued. Polling
//! (`scheduler.poll_interval`) remains the fallback.

use std::time::{Duration, Instant};

use sea_orm::sqlx::postgres::{PgConnection, PgListener};
use sea_orm::sqlx::{self, Connection as _};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Db, StoreError};
use crate::config::DatabaseKind;

/// Key of the scheduler's advisory lock ("updraft" + 1).
const SCHEDULER_LOCK_KEY: i64 = 0x75_70_64_72_61_66_75;
pub const SCHEDULER_CHANNEL: &str = "updraft_scheduler";
pub const WORKER_CHANNEL: &str = "updraft_worker";
/// How often a leader checks that its lock session still lives.
const LEADER_CHECK: Duration = Duration::from_millis(500);

/// Whether this process may run the scheduler's decisions now.
pub enum Leadership {
    /// SQLite: the flock taken at start is the leadership, for the process's life.
    Sole,
    /// PostgreSQL: the advisory lock's session, when held.
    Postgres {
        db: Db,
        session: Option<PgConnection>,
        checked: Instant,
        announced: bool,
    },
}

impl Leadership {
    pub fn new(db: &Db) -> Self {
        match db.kind() {
            DatabaseKind::Sqlite => Leadership::Sole,
            DatabaseKind::Postgres => Leadership::Postgres {
                db: db.clone(),
                session: None,
                checked: Instant::now(),
                announced: false,
            },
        }
    }

    /// True while this process leads; takes the lead when it is free.
    pub async fn is_leader(&mut self) -> bool {
        let Leadership::Postgres {
            db,
            session,
            checked,
            announced,
        } = self
        else {
            return true;
        };
        if let Some(conn) = session.as_mut() {
            if checked.elapsed() < LEADER_CHECK {
                return true;
            }
            *checked = Instant::now();
            if sqlx::query("SELECT 1").execute(&mut *conn).await.is_ok() {
                return true;
            }
            tracing::warn!("lost the scheduler lock's database session: no longer the leader");
            *session = None;
            *announced = false;
        }
        match try_lock(db).await {
            Ok(Some(conn)) => {
                tracing::info!("this scheduler leads (advisory lock {SCHEDULER_LOCK_KEY:#x})");
                *session = Some(conn);
                *checked = Instant::now();
                true
            }
            Ok(None) => {
                if !*announced {
                    tracing::info!("another scheduler leads; standing by");
                    *announced = true;
                }
                false
            }
            Err(e) => {
                tracing::warn!("cannot reach the database for the scheduler lock: {e}");
                false
            }
        }
    }
}

/// A dedicated session holding the lock, or None when another session has it.
async fn try_lock(db: &Db) -> Result<Option<PgConnection>, sqlx::Error> {
    let options = db
        .url_ref()
        .expose()
        .parse::<sqlx::postgres::PgConnectOptions>()?;
    let mut conn = PgConnection::connect_with(&options).await?;
    let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
        .bind(SCHEDULER_LOCK_KEY)
        .fetch_one(&mut conn)
        .await?;
    if got {
        Ok(Some(conn))
    } else {
        let _ = conn.close().await;
        Ok(None)
    }
}

/// Sends NOTIFYs for [`crate::scheduler::engine::Signals`], coalescing bursts: a channel with
/// several pending wake-ups is notified once.
pub fn spawn_notifier(
    db: &Db,
    shutdown: CancellationToken,
) -> Option<mpsc::UnboundedSender<&'static str>> {
    if db.kind() != DatabaseKind::Postgres {
        return None;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<&'static str>();
    let pool = db.conn().get_postgres_connection_pool().clone();
    tokio::spawn(async move {
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => return,
                got = rx.recv() => match got { Some(c) => c, None => return },
            };
            let mut channels = vec![first];
            while let Ok(more) = rx.try_recv() {
                if !channels.contains(&more) {
                    channels.push(more);
                }
            }
            for channel in channels {
                if let Err(e) = sqlx::query("SELECT pg_notify($1, '')")
                    .bind(channel)
                    .execute(&pool)
                    .await
                {
                    tracing::debug!("NOTIFY {channel} failed (others poll): {e}");
                }
            }
        }
    });
    Some(tx)
}

/// LISTENs for the other processes' wake-ups and calls `on_scheduler` / `on_worker`;
/// reconnects with back-off when the database goes away.
pub fn spawn_listener(
    db: &Db,
    shutdown: CancellationToken,
    on_scheduler: impl Fn() + Send + 'static,
    on_worker: impl Fn() + Send + 'static,
) {
    if db.kind() != DatabaseKind::Postgres {
        return;
    }
    let pool = db.conn().get_postgres_connection_pool().clone();
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        loop {
            let listener = async {
                let mut l = PgListener::connect_with(&pool).await?;
                l.listen_all([SCHEDULER_CHANNEL, WORKER_CHANNEL]).await?;
                Ok::<_, sqlx::Error>(l)
            };
            let mut listener = tokio::select! {
                _ = shutdown.cancelled() => return,
                l = listener => match l {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::debug!("LISTEN failed (retrying in {backoff:?}): {e}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                },
            };
            backoff = Duration::from_millis(200);
            // After a reconnect something may have been missed: look once.
            on_scheduler();
            on_worker();
            loop {
                let got = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    got = listener.try_recv() => got,
                };
                match got {
                    Ok(Some(n)) if n.channel() == SCHEDULER_CHANNEL => on_scheduler(),
                    Ok(Some(_)) => on_worker(),
                    // The connection dropped (try_recv reconnects on the next call).
                    Ok(None) => {
                        on_scheduler();
                        on_worker();
                    }
                    Err(e) => {
                        tracing::debug!("LISTEN connection lost: {e}");
                        break;
                    }
                }
            }
        }
    });
}

/// On SQLite, the scheduler's exclusive lock next to the database file: a second process
/// that would schedule on the same file is refused at start.
pub fn sqlite_scheduler_lock(db: &Db) -> Result<Option<std::fs::File>, StoreError> {
    if db.kind() != DatabaseKind::Sqlite {
        return Ok(None);
    }
    let options = db
        .url_ref()
        .sqlite_options()
        .map_err(|e| StoreError::DagFolder(e.to_string()))?;
    let file = options.get_filename();
    if file.as_os_str().is_empty() || file.to_string_lossy().contains(":memory:") {
        return Ok(None);
    }
    let path = file.with_extension("scheduler.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::Coordination(format!("{}: {e}", path.display())))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we own; non-blocking.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(StoreError::Coordination(format!(
            "another updraft process already runs the scheduler on the SQLite database {} (lock {}): SQLite is the single-machine mode, one `updraft serve` per database; use PostgreSQL (DATABASE_URL) to run several schedulers and workers",
            file.display(),
            path.display()
        )));
    }
    Ok(Some(lock))
}
