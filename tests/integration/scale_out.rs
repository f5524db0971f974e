//! Scale-out on PostgreSQL: `updraft api`, several `updraft scheduler` and `updraft worker`
//! processes on one database run every task exactly once, lose nothing when schedulers and
//! workers are killed with `kill -9`, and survive a restart of PostgreSQL. Side effects are
//! counted on disk (each task appends to one file), not read from task states.

mod cluster;
mod netcut;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use crate::helpers::*;
use cluster::*;

/// Triggers `n` runs of each DAG at once (`r00`, `r01`, …, with distinct logical dates).
async fn trigger_all(
    cluster: &Cluster,
    dags: &[&'static str],
    n: usize,
) -> Vec<(&'static str, String)> {
    let mut runs = Vec::new();
    for dag in dags {
        for i in 0..n {
            runs.push((*dag, format!("r{i:02}")));
        }
    }
    let started = Instant::now();
    let logical: Vec<String> = (0..runs.len())
        .map(|i| format!("2024-01-01T00:{:02}:00Z", i % 60))
        .collect();
    let calls = runs
        .iter()
        .zip(&logical)
        .map(|((dag, run), date)| cluster.trigger(dag, run, date));
    futures_util::future::join_all(calls).await;
    println!("triggered {} runs in {:?}", runs.len(), started.elapsed());
    runs
}

/// Whether every run in `runs` is `success`; fails the test at once on a `failed` run.
async fn all_succeeded(
    cluster: &Cluster,
    runs: &[(&'static str, String)],
    states: &BTreeMap<(String, String), String>,
) -> bool {
    let mut done = true;
    for (dag, run) in runs {
        match states
            .get(&(dag.to_string(), run.clone()))
            .map(String::as_str)
        {
            Some("success") => {}
            Some("failed") => cluster.fail(&format!("run {dag} {run} failed")).await,
            _ => done = false,
        }
    }
    done
}

/// Polls the API until every run succeeded; fails after `limit` or when a process exited.
async fn wait_for_success(cluster: &mut Cluster, runs: &[(&'static str, String)], limit: Duration) {
    let started = Instant::now();
    let mut last_error = None;
    loop {
        let exited = cluster.exited();
        if !exited.is_empty() {
            cluster
                .fail(&format!("processes exited on their own: {exited:?}"))
                .await;
        }
        match cluster.run_states().await {
            Ok(states) => {
                if all_succeeded(cluster, runs, &states).await {
                    return;
                }
            }
            Err(e) => last_error = Some(e),
        }
        if started.elapsed() > limit {
            cluster
                .fail(&format!(
                    "the runs did not all succeed within {limit:?} (last API error: {last_error:?})"
                ))
                .await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Tasks' lines that name no expected task, and expected tasks with no `end` line.
fn missing_and_unexpected(
    effects: &BTreeMap<TaskKey, Vec<Execution>>,
    runs: &[(&'static str, String)],
) -> (Vec<TaskKey>, Vec<TaskKey>) {
    let expected = expected_keys(runs);
    let missing = expected
        .iter()
        .filter(|k| {
            !effects
                .get(*k)
                .is_some_and(|e| e.iter().any(|x| x.end.is_some()))
        })
        .cloned()
        .collect();
    let unexpected = effects
        .keys()
        .filter(|k| !expected.contains(*k))
        .cloned()
        .collect();
    (missing, unexpected)
}

/// How many executions each process instance made (per role family).
fn by_process(effects: &BTreeMap<TaskKey, Vec<Execution>>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in effects.values().flatten() {
        *out.entry(e.process.clone()).or_insert(0) += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_and_two_schedulers_run_every_task_exactly_once() {
    let test_db = TestDb::new(Backend::Postgres).await;
    let started = Instant::now();
    let mut cluster = Cluster::new(&test_db.url, &[]);
    let command = task_command(&cluster.effects_path(), None);
    cluster.write_dag("fan100", &fan100(&command, "{}"));
    cluster.write_dag("chain40", &chain40(&command, "{}"));
    cluster.start_api().await;
    cluster.add(Role::Scheduler, 2);
    cluster.add(Role::Worker, 3);

    let runs = trigger_all(&cluster, &["fan100", "chain40"], 10).await;
    let triggered = Instant::now();
    wait_for_success(&mut cluster, &runs, Duration::from_secs(75)).await;
    println!(
        "20 runs ({} tasks) succeeded in {:?} after the trigger ({:?} since the start)",
        10 * FAN100_TASKS + 10 * CHAIN40_TASKS,
        triggered.elapsed(),
        started.elapsed()
    );

    let effects = read_effects(&cluster.effects_path());
    let (missing, unexpected) = missing_and_unexpected(&effects, &runs);
    let twice: Vec<String> = effects
        .iter()
        .filter(|(_, e)| e.len() != 1)
        .map(|(k, e)| format!("{k:?}: {e:?}"))
        .collect();
    let executions: usize = effects.values().map(Vec::len).sum();
    let workers = by_process(&effects);
    println!("executions per worker: {workers:?}");
    let leads = cluster.grep_stderr("this scheduler leads");
    println!("leadership: {leads:?}");
    if !missing.is_empty() || !unexpected.is_empty() || !twice.is_empty() {
        cluster
            .fail(&format!(
                "every task must run exactly once: {} missing {:?}, {} unexpected {:?}, {} more than once {:?}",
                missing.len(),
                missing.iter().take(10).collect::<Vec<_>>(),
                unexpected.len(),
                unexpected.iter().take(10).collect::<Vec<_>>(),
                twice.len(),
                twice.iter().take(10).collect::<Vec<_>>()
            ))
            .await;
    }
    assert_eq!(executions, 10 * FAN100_TASKS + 10 * CHAIN40_TASKS);
    assert!(
        effects
            .values()
            .flatten()
            .all(|e| e.try_number == 1 && e.start.is_some() && e.end.is_some()),
        "every task ran one whole first try"
    );
    assert!(
        workers.len() > 1,
        "the work was shared among the 3 workers, not done by one: {workers:?}"
    );
    assert!(
        workers.keys().all(|p| p.starts_with("worker-")),
        "{workers:?}"
    );
    assert_eq!(leads.len(), 1, "one scheduler led all along: {leads:?}");

    cluster.stop_gracefully().await;
    println!("total {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_schedulers_and_workers_lose_nothing() {
    const RUNS: usize = 6;
    const CHAOS_LIMIT: Duration = Duration::from_secs(60);
    let test_db = TestDb::new(Backend::Postgres).await;
    let started = Instant::now();
    let mut cluster = Cluster::new(&test_db.url, &[("UPDRAFT__WORKER__LEASE_TIMEOUT", "5s")]);
    let command = task_command(&cluster.effects_path(), Some("0.05"));
    let default_args = "{retries: 3, retry_delay: 1s}";
    cluster.write_dag("fan100", &fan100(&command, default_args));
    cluster.write_dag("chain40", &chain40(&command, default_args));
    cluster.start_api().await;
    cluster.add(Role::Scheduler, 2);
    cluster.add(Role::Worker, 3);

    let runs = trigger_all(&cluster, &["fan100", "chain40"], RUNS).await;
    let seed: u64 = rand::random();
    println!("chaos seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let chaos_started = Instant::now();
    let mut kills: Vec<String> = Vec::new();
    let mut finished_in_chaos = false;
    while chaos_started.elapsed() < CHAOS_LIMIT {
        if let Ok(states) = cluster.run_states().await {
            if all_succeeded(&cluster, &runs, &states).await {
                finished_in_chaos = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(300..=600))).await;
        let targets = cluster.killable();
        let victim = targets[rng.gen_range(0..targets.len())];
        kills.push(cluster.instance(victim).to_string());
        cluster.kill_and_restart(victim);
    }
    let chaos_time = chaos_started.elapsed();
    println!(
        "{} kills in {chaos_time:?}; the runs {} under chaos",
        kills.len(),
        if finished_in_chaos {
            "finished"
        } else {
            "had not finished"
        }
    );
    // Without more kills, what is left must finish.
    wait_for_success(&mut cluster, &runs, Duration::from_secs(60)).await;
    println!(
        "{} runs succeeded {:?} after the trigger",
        runs.len(),
        chaos_started.elapsed()
    );

    let effects = read_effects(&cluster.effects_path());
    let (missing, unexpected) = missing_and_unexpected(&effects, &runs);
    let overlapping = overlaps(&effects, &cluster.killed);
    let executions: usize = effects.values().map(Vec::len).sum();
    let retried = effects.values().filter(|e| e.len() > 1).count();
    let max_try = effects
        .values()
        .flatten()
        .map(|e| e.try_number)
        .max()
        .unwrap_or(0);
    let cut_short = effects
        .values()
        .flatten()
        .filter(|e| e.end.is_none())
        .count();
    println!(
        "{executions} executions of {} tasks: {retried} tasks ran more than once, {cut_short} \
         executions cut short by a kill, highest try {max_try}",
        effects.len()
    );
    println!("{}", cluster.lost_tries().await);
    if !missing.is_empty() || !unexpected.is_empty() || !overlapping.is_empty() {
        cluster
            .fail(&format!(
                "{} tasks never ended {:?}; {} unexpected {:?}; {} ran twice at the same time {:#?}",
                missing.len(),
                missing.iter().take(10).collect::<Vec<_>>(),
                unexpected.len(),
                unexpected.iter().take(10).collect::<Vec<_>>(),
                overlapping.len(),
                overlapping.iter().take(10).collect::<Vec<_>>()
            ))
            .await;
    }
    cluster.stop_gracefully().await;
    println!("total {:?}", started.elapsed());
}

/// A PostgreSQL server of this test's own (`scripts/pg-test-server.sh`), stopped on drop.
struct PrivatePostgres {
    url: String,
    dir: String,
}

impl PrivatePostgres {
    fn start() -> Self {
        let mut cmd = Command::new("bash");
        cmd.arg(repo_root().join("scripts/pg-test-server.sh"))
            .arg("start");
        let out = run_with_timeout(cmd, Duration::from_secs(60));
        let text = stdout_of(&out);
        assert!(out.status.success(), "{text}{}", stderr_of(&out));
        let export = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}='")))
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or_else(|| panic!("no {name} in {text}"))
                .to_string()
        };
        PrivatePostgres {
            url: export("UPDRAFT_TEST_PG_URL"),
            dir: export("UPDRAFT_TEST_PG_DIR"),
        }
    }

    /// `pg_ctl restart -m fast`: every connection is closed, the server is back with the same
    /// port and settings (pg_ctl reuses the options it was started with).
    fn restart(dir: &str) -> Duration {
        let pg_ctl = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin/pg_ctl"))
            .find(|p| p.exists())
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "pg_ctl".to_string());
        let data = format!("{dir}/data");
        // `-l`: the new server's output goes to its log, not to pg_ctl's pipes (which
        // would stay open as long as the server runs).
        let log = format!("{dir}/server.log");
        let args = [
            "-D", &data, "-l", &log, "-m", "fast", "-w", "-t", "30", "restart",
        ];
        // initdb and the server run as `postgres` when the tests run as root.
        let mut cmd = if unsafe { libc::geteuid() } == 0 {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", &pg_ctl]).args(args);
            c
        } else {
            let mut c = Command::new(&pg_ctl);
            c.args(args);
            c
        };
        cmd.current_dir("/");
        let started = Instant::now();
        let out = run_with_timeout(cmd, Duration::from_secs(60));
        assert!(
            out.status.success(),
            "pg_ctl restart failed: {}{}",
            stdout_of(&out),
            stderr_of(&out)
        );
        started.elapsed()
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo_root().join("scripts/pg-test-server.sh"))
            .args(["stop", &self.dir])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_mid_run_is_survived() {
    let pg = PrivatePostgres::start();
    let started = Instant::now();
    let mut cluster = Cluster::new(&pg.url, &[("UPDRAFT__WORKER__LEASE_TIMEOUT", "5s")]);
    // Long enough a chain that the restart lands mid-run: 40 × 0.2 s.
    let command = task_command(&cluster.effects_path(), Some("0.2"));
    cluster.write_dag(
        "chain40",
        &chain40(&command, "{retries: 3, retry_delay: 1s}"),
    );
    cluster.start_api().await;
    cluster.add(Role::Scheduler, 1);
    cluster.add(Role::Worker, 1);
    let runs = trigger_all(&cluster, &["chain40"], 1).await;

    // Restart once a few tasks have ended.
    let waited = Instant::now();
    loop {
        let ended = std::fs::read_to_string(cluster.effects_path())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("end "))
            .count();
        if ended >= 8 {
            println!("{ended} tasks ended before the restart");
            break;
        }
        if waited.elapsed() > Duration::from_secs(30) {
            cluster.fail("the chain did not get going").await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dir = pg.dir.clone();
    let took = tokio::task::spawn_blocking(move || PrivatePostgres::restart(&dir))
        .await
        .expect("restart PostgreSQL");
    println!("PostgreSQL restarted in {took:?}");
    let restarted = Instant::now();
    wait_for_success(&mut cluster, &runs, Duration::from_secs(60)).await;
    println!(
        "the run succeeded {:?} after the restart",
        restarted.elapsed()
    );

    let effects = read_effects(&cluster.effects_path());
    let (missing, unexpected) = missing_and_unexpected(&effects, &runs);
    let overlapping = overlaps(&effects, &cluster.killed);
    let again: Vec<String> = effects
        .iter()
        .filter(|(_, e)| e.len() > 1)
        .map(|(k, e)| format!("{k:?}: {e:?}"))
        .collect();
    println!("tasks that ran more than once: {again:?}");
    println!(
        "warnings: {:#?}",
        cluster
            .grep_stderr("WARN")
            .into_iter()
            .take(20)
            .collect::<Vec<_>>()
    );
    if !missing.is_empty() || !unexpected.is_empty() || !overlapping.is_empty() {
        cluster
            .fail(&format!(
                "missing {missing:?}; unexpected {unexpected:?}; at the same time {overlapping:#?}"
            ))
            .await;
    }
    cluster.stop_gracefully().await;
    println!("total {:?}", started.elapsed());
}

/// SIGTERM to a worker whose try outlives `server.shutdown_timeout`: the try goes back to the
/// queue at once (not after its lease expires, and without costing a retry) and another worker
/// runs the same try.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_with_sigterm_hands_its_running_try_back() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut cluster = Cluster::new(
        &db.url,
        &[
            ("UPDRAFT__SERVER__SHUTDOWN_TIMEOUT", "1s"),
            // Long: a hand-back must not wait for the lease.
            ("UPDRAFT__WORKER__LEASE_TIMEOUT", "60s"),
        ],
    );
    let effects = cluster.effects_path();
    cluster.write_dag(
        "long",
        &format!(
            "dag_id: long\nis_paused_upon_creation: false\ntasks:\n  - id: t\n    operator: bash\n    with:\n      bash_command: 'echo \"start $UPDRAFT_TEST_PROCESS $AIRFLOW_CTX_TRY_NUMBER\" >> {f}; sleep 4; echo \"end $UPDRAFT_TEST_PROCESS $AIRFLOW_CTX_TRY_NUMBER\" >> {f}'\n",
            f = effects.display()
        ),
    );
    cluster.start_api().await;
    cluster.add(Role::Scheduler, 1);
    let first = cluster.add_with(Role::Worker, Launch::default());
    let runs = trigger_all(&cluster, &["long"], 1).await;
    let waited = Instant::now();
    while !std::fs::read_to_string(&effects)
        .unwrap_or_default()
        .contains("start")
    {
        if waited.elapsed() > Duration::from_secs(30) {
            cluster.fail("the task did not start").await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopping = Instant::now();
    let status = tokio::task::block_in_place(|| cluster.terminate(first));
    assert!(
        status.is_some_and(|s| s.success()),
        "the worker exits 0: {status:?}"
    );
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "{:?}",
        stopping.elapsed()
    );
    // Back in the queue as the same try, right away.
    let state = db_state(&db.url).await;
    assert!(state.contains("queued"), "{state}");
    cluster.add(Role::Worker, 1);
    wait_for_success(&mut cluster, &runs, Duration::from_secs(60)).await;
    let text = std::fs::read_to_string(&effects).unwrap();
    let ends: Vec<&str> = text.lines().filter(|l| l.starts_with("end")).collect();
    assert_eq!(ends.len(), 1, "{text}");
    assert!(
        ends[0].ends_with(" 1"),
        "the same try (1) ran to its end: {text}"
    );
    cluster.stop_gracefully().await;
}
