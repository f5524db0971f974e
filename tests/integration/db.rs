//! The metadata database: WAL on SQLite, bounded retries, migrations that cannot race.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Statement};
use updraft::config::{DatabaseSettings, DatabaseUrl};
use updraft::store::{Db, StoreError};

use crate::db_test;
use crate::helpers::*;

fn settings(retry: Duration) -> DatabaseSettings {
    DatabaseSettings {
        connect_retry_timeout: retry,
        max_connections: 4,
        ..Default::default()
    }
}

async fn migration_rows(db: &Db) -> i64 {
    let row = db
        .conn()
        .query_one(Statement::from_string(
            db.conn().get_database_backend(),
            "SELECT COUNT(*) AS n FROM seaql_migrations",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

db_test!(
    concurrent_migrations_apply_each_migration_once,
    |backend| async move {
        let test_db = TestDb::new(backend).await;
        let url = DatabaseUrl::parse(&test_db.url).unwrap();
        let mut handles = Vec::new();
        for _ in 0..4 {
            let url = url.clone();
            handles.push(tokio::spawn(async move {
                let db = Db::connect(&url, &settings(Duration::from_secs(5)))
                    .await
                    .unwrap();
                db.migrate().await
            }));
        }
        let mut applied = Vec::new();
        for handle in handles {
            applied.extend(handle.await.unwrap().expect("every migrator succeeds"));
        }
        let db = Db::connect(&url, &settings(Duration::from_secs(5)))
            .await
            .unwrap();
        let pending = db.pending_migrations().await.unwrap();
        assert!(pending.is_empty(), "{pending:?}");
        // Each migration was applied by exactly one of the four.
        assert_eq!(
            applied.len() as i64,
            migration_rows(&db).await,
            "{applied:?}"
        );
    }
);

db_test!(
    concurrent_db_migrate_processes_both_succeed,
    |backend| async move {
        let test_db = TestDb::new(backend).await;
        let spawn = || {
            let home = tempfile::tempdir().unwrap();
            let mut cmd = updraft_cmd(home.path());
            cmd.args(["db", "migrate"])
                .env("DATABASE_URL", &test_db.url);
            (
                home,
                std::thread::spawn(move || run_with_timeout(cmd, Duration::from_secs(60))),
            )
        };
        let (_h1, a) = spawn();
        let (_h2, b) = spawn();
        for out in [a.join().unwrap(), b.join().unwrap()] {
            assert!(out.status.success(), "{}", stderr_of(&out));
        }
    }
);

#[tokio::test]
async fn sqlite_runs_in_wal_mode() {
    let test_db = TestDb::new(Backend::Sqlite).await;
    let db = Db::connect(
        &DatabaseUrl::parse(&test_db.url).unwrap(),
        &settings(Duration::from_secs(1)),
    )
    .await
    .unwrap();
    let row = db
        .conn()
        .query_one(Statement::from_string(
            db.conn().get_database_backend(),
            "PRAGMA journal_mode",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<String>("", "journal_mode").unwrap(), "wal");
}

#[tokio::test]
async fn unreachable_server_is_retried_for_a_bounded_time() {
    let url = DatabaseUrl::parse(&format!(
        "postgres://u:secretpw@127.0.0.1:{}/x",
        free_port()
    ))
    .unwrap();
    let started = Instant::now();
    let err = Db::connect(&url, &settings(Duration::from_millis(1200)))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "gave up too soon: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(5),
        "retried too long: {waited:?}"
    );
    match &err {
        StoreError::Unreachable { attempts, .. } => assert!(*attempts >= 2, "{err}"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(!err.to_string().contains("secretpw"), "{err}");
}

#[tokio::test]
async fn wrong_password_fails_at_once() {
    let admin = pg_admin_url();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_password(Some("definitely-wrong")).unwrap();
    let url = DatabaseUrl::parse(url.as_str()).unwrap();
    let started = Instant::now();
    let err = Db::connect(&url, &settings(Duration::from_secs(30)))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a wrong password is not worth retrying"
    );
    assert!(matches!(err, StoreError::Rejected { .. }), "{err:?}");
    assert!(!err.to_string().contains("definitely-wrong"), "{err}");
}
