//! DAG folder benchmark: 1,000 DAG files of 20 tasks each.
//!
//!   cargo bench -p updraft --bench dag_folder            # SQLite
//!   UPDRAFT_BENCH_PG_URL=postgres://… cargo bench -p updraft --bench dag_folder   # also PostgreSQL
//!
//! Reports: parsing alone; a full scan + sync into an empty database; a rescan of the
//! unchanged folder; a rescan after a restart (every file re-read, hashed and parsed, nothing
//! to write); and the time from saving an edited file to its new version in the database with
//! the processor running (watcher path). Figures go to docs/benchmarks.md.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use updraft::config::{self, DatabaseSettings, DatabaseUrl, Overrides};
use updraft::dag_processor::{scan_and_sync, DagFolder};
use updraft::store::{dags, Db};

const FILES: usize = 1000;
const TASKS: usize = 20;

fn dag_file(i: usize, revision: usize) -> String {
    let mut text = format!(
        "# yaml-language-server: $schema=../../docs/dag.schema.json\ndag_id: bench_{i:04}\ndescription: benchmark DAG {i} (revision {revision})\ntags: [bench, team_{}]\nschedule: \"{} 6 * * *\"\ntimezone: Europe/Paris\nstart_date: 2024-01-01\ncatchup: false\ndefault_args:\n  retries: 2\n  retry_delay: 5m\nparams:\n  table: {{type: string, default: t_{i}}}\ntasks:\n",
        i % 10,
        i % 60
    );
    for t in 0..TASKS {
        text.push_str(&format!("  - id: task_{t:02}\n    operator: bash\n"));
        if t > 0 {
            text.push_str(&format!("    depends_on: [task_{:02}]\n", t - 1));
        }
        text.push_str(&format!(
            "    with:\n      bash_command: echo \"{{{{ ds }}}} {{{{ params.table }}}} step {t}\"\n"
        ));
    }
    text
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

async fn fresh_db(url: &str) -> Db {
    let url = DatabaseUrl::parse(url).expect("database URL");
    let db = Db::connect(&url, &DatabaseSettings::default())
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    db
}

async fn bench(name: &str, url: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    for i in 0..FILES {
        std::fs::write(
            dir.path().join(format!("bench_{i:04}.yaml")),
            dag_file(i, 1),
        )
        .expect("write");
    }
    let db = fresh_db(url).await;
    let max = 1 << 20;

    // Parsing alone (no database), median of 5.
    let parse = median(
        (0..5)
            .map(|_| {
                let folder = DagFolder::new(dir.path().to_path_buf(), max);
                let t = Instant::now();
                let scan = folder.scan().expect("list the folder");
                assert_eq!(scan.changed.len(), FILES);
                t.elapsed()
            })
            .collect(),
    );

    let folder = Arc::new(Mutex::new(DagFolder::new(dir.path().to_path_buf(), max)));
    let t = Instant::now();
    let report = scan_and_sync(&folder, &db, true).await.expect("sync");
    let full = t.elapsed();
    assert_eq!(report.new_dags.len(), FILES);

    let mut rescans = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let report = scan_and_sync(&folder, &db, true).await.expect("rescan");
        rescans.push(t.elapsed());
        assert!(report.is_empty());
    }
    let rescan = median(rescans);

    let restarted = Arc::new(Mutex::new(DagFolder::new(dir.path().to_path_buf(), max)));
    let t = Instant::now();
    let report = scan_and_sync(&restarted, &db, true)
        .await
        .expect("restart sync");
    let restart = t.elapsed();
    assert!(report.new_versions.is_empty());

    // Edit-to-live with the processor running (the watcher path), median of 5 edits.
    let home = tempfile::tempdir().expect("temp dir");
    let env: config::Env = [
        (
            "UPDRAFT_HOME".to_string(),
            home.path().display().to_string(),
        ),
        (
            "UPDRAFT__CORE__DAGS_FOLDER".to_string(),
            dir.path().display().to_string(),
        ),
    ]
    .into_iter()
    .collect();
    let config = Arc::new(config::load(&Overrides::default(), &env).expect("config"));
    let stop = tokio_util::sync::CancellationToken::new();
    let processor = tokio::spawn(updraft::dag_processor::run(
        db.clone(),
        config,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await; // its first (full) scan
    let mut lives = Vec::new();
    for revision in 2..7 {
        let t = Instant::now();
        std::fs::write(dir.path().join("bench_0007.yaml"), dag_file(7, revision)).expect("edit");
        loop {
            let versions = dags::versions(&db, "bench_0007").await.expect("versions");
            if versions.len() >= revision {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        lives.push(t.elapsed());
    }
    stop.cancel();
    let _ = processor.await;
    let live = median(lives);

    println!(
        "{name:<10} parse only {:>7.1} ms | full scan+sync {:>7.1} ms | rescan unchanged {:>6.2} ms | rescan after restart {:>7.1} ms | edit live after {:>6.1} ms",
        ms(parse),
        ms(full),
        ms(rescan),
        ms(restart),
        ms(live)
    );
    db.close().await;
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        println!("{FILES} DAG files x {TASKS} tasks");
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        );
        bench("sqlite", &sqlite).await;
        if let Ok(pg) = std::env::var("UPDRAFT_BENCH_PG_URL") {
            bench("postgres", &pg).await;
        }
    });
}
