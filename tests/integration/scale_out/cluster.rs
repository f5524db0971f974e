//! A scaled-out deployment for tests: `updraft api`, `updraft scheduler` and `updraft worker`
//! as separate processes on one PostgreSQL database, sharing a DAG folder, plus the file the
//! tasks append their side effects to and the checks made on it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tempfile::TempDir;

use crate::engine_helpers::write_dag_file;
use crate::helpers::*;

/// Nanoseconds since the epoch: the clock of `date +%s%N` in the tasks.
pub fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Api,
    Scheduler,
    Worker,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::Scheduler => "scheduler",
            Role::Worker => "worker",
        }
    }
}

/// How a process is started beyond its role's defaults (all empty: the defaults).
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// The slot's name instead of `<role>-<n>`.
    pub name: Option<String>,
    /// A command that runs `updraft` (`ip netns exec NS`): `updraft` becomes its last argument.
    pub wrapper: Vec<String>,
    /// Arguments after the role's own (`--queues q`).
    pub args: Vec<String>,
    /// Environment over the cluster's (a `DATABASE_URL` of its own).
    pub env: Vec<(String, String)>,
}

/// One process of the deployment; a restart keeps its slot (home, stderr file) and bumps
/// the generation, so each process instance has its own name (`worker-2.3`).
struct Slot {
    role: Role,
    launch: Launch,
    base: String,
    generation: u32,
    instance: String,
    child: Option<Child>,
    home: PathBuf,
    stderr: PathBuf,
}

pub struct Cluster {
    pub dir: TempDir,
    pub database_url: String,
    pub port: u16,
    key: String,
    extra_env: Vec<(String, String)>,
    slots: Vec<Slot>,
    /// Process instances killed with SIGKILL, and when (ns since the epoch).
    pub killed: BTreeMap<String, u128>,
    pub client: reqwest::Client,
}

impl Cluster {
    pub fn new(database_url: &str, extra_env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("dags")).expect("create the DAG folder");
        std::fs::write(dir.path().join("effects.log"), "").expect("create the effects file");
        Cluster {
            dir,
            database_url: database_url.to_string(),
            port: free_port(),
            key: fernet_key(),
            extra_env: extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            slots: Vec::new(),
            killed: BTreeMap::new(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("HTTP client"),
        }
    }

    pub fn dags_folder(&self) -> PathBuf {
        self.dir.path().join("dags")
    }

    pub fn effects_path(&self) -> PathBuf {
        self.dir.path().join("effects.log")
    }

    pub fn write_dag(&self, dag_id: &str, yaml: &str) {
        write_dag_file(&self.dags_folder(), &format!("{dag_id}.yaml"), yaml);
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Adds and starts `n` processes of `role`.
    pub fn add(&mut self, role: Role, n: usize) {
        for _ in 0..n {
            self.add_with(role, Launch::default());
        }
    }

    /// Adds and starts one process of `role`, started as `launch` says; returns its slot.
    pub fn add_with(&mut self, role: Role, launch: Launch) -> usize {
        let index = self.slots.iter().filter(|s| s.role == role).count() + 1;
        let base = launch
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{index}", role.name()));
        let home = self.dir.path().join(format!("home-{base}"));
        std::fs::create_dir_all(&home).expect("create a process home");
        let stderr = self.dir.path().join(format!("{base}.stderr"));
        self.slots.push(Slot {
            role,
            launch,
            base,
            generation: 0,
            instance: String::new(),
            child: None,
            home,
            stderr,
        });
        let i = self.slots.len() - 1;
        self.spawn(i);
        i
    }

    fn spawn(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        slot.generation += 1;
        slot.instance = format!("{}.{}", slot.base, slot.generation);
        let mut log = File::options()
            .create(true)
            .append(true)
            .open(&slot.stderr)
            .expect("open the process's stderr file");
        writeln!(log, "===== {} started at {} ns", slot.instance, now_ns()).expect("write");
        let mut cmd = match slot.launch.wrapper.split_first() {
            None => updraft_cmd(&slot.home),
            Some((program, args)) => {
                // What `updraft_cmd` sets, for a wrapper that passes its environment on.
                let mut c = std::process::Command::new(program);
                c.args(args)
                    .arg(updraft_bin())
                    .env_clear()
                    .env("PATH", std::env::var("PATH").unwrap_or_default())
                    .env("HOME", &slot.home)
                    .env("UPDRAFT_HOME", &slot.home)
                    .env("NO_COLOR", "1")
                    .stdin(Stdio::null());
                c
            }
        };
        match slot.role {
            Role::Api => {
                cmd.arg("api")
                    .env("UPDRAFT__SERVER__PORT", self.port.to_string())
                    .env("UPDRAFT__AUTH__ADMIN_PASSWORD", ADMIN_PASSWORD);
            }
            Role::Scheduler => {
                cmd.arg("scheduler");
            }
            Role::Worker => {
                cmd.args(["worker", "--concurrency", "16"]);
            }
        }
        cmd.env("DATABASE_URL", &self.database_url)
            .env("UPDRAFT__CORE__FERNET_KEY", &self.key)
            .env("UPDRAFT__CORE__DAGS_FOLDER", self.dir.path().join("dags"))
            // Tasks inherit the worker's environment: they name the process that ran them.
            .env("UPDRAFT_TEST_PROCESS", &slot.instance)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .args(&slot.launch.args)
            .envs(slot.launch.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log.try_clone().expect("clone a file handle")))
            .stderr(Stdio::from(log));
        slot.child = Some(cmd.spawn().expect("spawn updraft"));
    }

    /// Starts the API and waits until it answers its health check.
    pub async fn start_api(&mut self) {
        self.add(Role::Api, 1);
        let health = format!("{}/api/v2/monitor/health", self.base_url());
        if !wait_until_healthy(&self.client, &health, Duration::from_secs(30)).await {
            self.fail("`updraft api` did not answer its health check within 30 s")
                .await;
        }
    }

    /// The slots a chaos monkey may kill: schedulers and workers.
    pub fn killable(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| self.slots[i].role != Role::Api)
            .collect()
    }

    pub fn instance(&self, i: usize) -> &str {
        &self.slots[i].instance
    }

    /// `kill -9` the process of slot `i`, then starts a new one in its place.
    pub fn kill_and_restart(&mut self, i: usize) {
        if let Some(mut child) = self.slots[i].child.take() {
            // SAFETY: signalling a child process we spawned and have not reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            self.killed.insert(self.slots[i].instance.clone(), now_ns());
            let _ = child.wait();
        }
        self.spawn(i);
    }

    /// SIGTERM to the process of slot `i`; waits for it to exit and returns its status.
    pub fn terminate(&mut self, i: usize) -> Option<ExitStatus> {
        let mut child = self.slots[i].child.take()?;
        // SAFETY: signalling a child process we spawned and have not reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().ok()
    }

    /// Processes that exited although nobody stopped them: (instance, status).
    pub fn exited(&mut self) -> Vec<(String, ExitStatus)> {
        let mut out = Vec::new();
        for slot in &mut self.slots {
            if let Some(child) = slot.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    out.push((slot.instance.clone(), status));
                }
            }
        }
        out
    }

    /// Waits until slot `i`'s current instance has logged that it is up; fails after `limit`.
    pub async fn wait_up(&self, i: usize, limit: Duration) {
        let started = Instant::now();
        while !self.is_up(i) {
            if started.elapsed() > limit {
                self.fail(&format!(
                    "{} did not finish starting within {limit:?}",
                    self.slots[i].instance
                ))
                .await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether slot `i`'s current instance has logged that it is up (after its header).
    fn is_up(&self, i: usize) -> bool {
        let slot = &self.slots[i];
        let text = std::fs::read_to_string(&slot.stderr).unwrap_or_default();
        let header = format!("===== {} started", slot.instance);
        let Some(at) = text.find(&header) else {
            return false;
        };
        let ready = match slot.role {
            Role::Api => "listening on",
            Role::Scheduler => "scheduler started",
            Role::Worker => "worker started",
        };
        text[at..].contains(ready)
    }

    /// SIGTERM to every process at once; each must exit 0 within 30 s. A process is first
    /// given up to 15 s to finish starting: until then SIGTERM's default action still
    /// applies (its handler is installed once the process is up), and a chaos restart
    /// may have happened just before the end.
    pub async fn stop_gracefully(&mut self) {
        let waited = Instant::now();
        while !(0..self.slots.len()).all(|i| self.is_up(i)) {
            if waited.elapsed() > Duration::from_secs(15) {
                self.fail("a process did not finish starting within 15 s")
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let started = Instant::now();
        let mut children = Vec::new();
        for slot in &mut self.slots {
            if let Some(child) = slot.child.take() {
                // SAFETY: signalling a child process we spawned and have not reaped.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                children.push((slot.instance.clone(), child));
            }
        }
        let waited = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut out = Vec::new();
            for (name, mut child) in children {
                loop {
                    match child.try_wait() {
                        Ok(Some(status)) => {
                            out.push((name, Some(status)));
                            break;
                        }
                        _ if Instant::now() > deadline => {
                            let _ = child.kill();
                            let _ = child.wait();
                            out.push((name, None));
                            break;
                        }
                        _ => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            }
            out
        })
        .await
        .expect("wait for the processes");
        let bad: Vec<String> = waited
            .iter()
            .filter(|(_, s)| !s.is_some_and(|s| s.success()))
            .map(|(name, s)| match s {
                Some(s) => format!("{name} exited with {s}"),
                None => format!("{name} did not stop within 30 s of SIGTERM"),
            })
            .collect();
        println!(
            "SIGTERM: {} processes stopped in {:?}",
            waited.len(),
            started.elapsed()
        );
        if !bad.is_empty() {
            self.fail(&format!("graceful stop failed: {}", bad.join("; ")))
                .await;
        }
    }

    /// The last lines of every process's stderr.
    pub fn stderr_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for slot in &self.slots {
            let text = std::fs::read_to_string(&slot.stderr).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let from = all.len().saturating_sub(lines);
            out.push_str(&format!(
                "----- {} ({} lines, last {}):\n{}\n",
                slot.stderr.display(),
                all.len(),
                all.len() - from,
                all[from..].join("\n")
            ));
        }
        out
    }

    /// Lines of the processes' stderr that contain `needle`, with the file they came from.
    pub fn grep_stderr(&self, needle: &str) -> Vec<String> {
        let mut out = Vec::new();
        for slot in &self.slots {
            let text = std::fs::read_to_string(&slot.stderr).unwrap_or_default();
            out.extend(
                text.lines()
                    .filter(|l| l.contains(needle))
                    .map(|l| format!("{}: {l}", slot.base)),
            );
        }
        out
    }

    /// Panics with `what`, the database's view of runs and task instances, and the logs.
    pub async fn fail(&self, what: &str) -> ! {
        let state = db_state(&self.database_url).await;
        let failed = failed_keys(&self.database_url).await;
        let effects = std::fs::read_to_string(self.effects_path()).unwrap_or_default();
        let lines: Vec<&str> = effects
            .lines()
            .filter(|l| {
                failed
                    .iter()
                    .any(|(d, r, t)| l.contains(&format!(" {d} {r} {t} ")))
            })
            .take(60)
            .collect();
        let mut killed: Vec<(&u128, &String)> = self.killed.iter().map(|(k, v)| (v, k)).collect();
        killed.sort();
        let lost = self.lost_tries().await;
        panic!(
            "{what}\n\n===== database\n{state}\n===== tries lost to kills\n{lost}\n\
             ===== effects of failed tasks\n{}\n\
             ===== kills (ns, instance)\n{killed:?}\n===== processes' stderr\n{}",
            lines.join("\n"),
            self.stderr_tails(60)
        );
    }

    /// The tries that failed (in these tests only an expired lease fails a try), told
    /// apart by what the effects file shows of them: the command never started, was cut
    /// short, or ended but its worker died before recording it.
    pub async fn lost_tries(&self) -> String {
        use sea_orm::sqlx::{Connection, PgConnection};
        let Ok(mut conn) = PgConnection::connect(&self.database_url).await else {
            return "(cannot connect)".into();
        };
        let failed: Vec<(String, String, String, i32)> = sea_orm::sqlx::query_as(
            "SELECT dag_id, run_id, task_id, try_number FROM task_instance_history \
             WHERE state = 'failed'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
        let effects = read_effects(&self.effects_path());
        let (mut never, mut cut, mut ended) = (0, 0, 0);
        for (d, r, t, try_number) in &failed {
            let key = (d.clone(), r.clone(), t.clone());
            let exec = effects
                .get(&key)
                .and_then(|e| e.iter().find(|x| x.try_number as i32 == *try_number));
            match exec {
                None => never += 1,
                Some(e) if e.end.is_none() => cut += 1,
                Some(_) => ended += 1,
            }
        }
        let executions: usize = effects.values().map(Vec::len).sum();
        format!(
            "{} failed tries (expired leases): the command never started in {never}, was cut \
             short in {cut}, ended but was not recorded in {ended}; {executions} executions of \
             {} tasks; {} processes killed",
            failed.len(),
            effects.len(),
            self.killed.len()
        )
    }

    /// Triggers a run with an explicit run id and logical date, retrying while the DAG is
    /// not registered yet (404) or the API cannot be reached.
    pub async fn trigger(&self, dag_id: &str, run_id: &str, logical_date: &str) {
        let started = Instant::now();
        let body = serde_json::json!({"dag_run_id": run_id, "logical_date": logical_date});
        loop {
            let res = self
                .client
                .post(format!("{}/api/v2/dags/{dag_id}/dagRuns", self.base_url()))
                .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
                .json(&body)
                .send()
                .await;
            let why = match res {
                Ok(res) if res.status().is_success() => return,
                Ok(res) if res.status().as_u16() == 404 => "404".to_string(),
                Ok(res) => {
                    let status = res.status();
                    let text = res.text().await.unwrap_or_default();
                    self.fail(&format!("triggering {dag_id} {run_id}: {status}: {text}"))
                        .await
                }
                Err(e) => e.to_string(),
            };
            if started.elapsed() > Duration::from_secs(60) {
                self.fail(&format!(
                    "triggering {dag_id} {run_id}: still {why} after 60 s"
                ))
                .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every run's state, by (dag_id, run_id); an error when the API did not answer.
    pub async fn run_states(&self) -> Result<BTreeMap<(String, String), String>, String> {
        let res = self
            .client
            .get(format!(
                "{}/api/v2/dags/~/dagRuns?limit=100",
                self.base_url()
            ))
            .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = res.status();
        let body: Value = res.json().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{status}: {body}"));
        }
        let runs = body["dag_runs"]
            .as_array()
            .ok_or_else(|| format!("no dag_runs in {body}"))?;
        Ok(runs
            .iter()
            .map(|r| {
                (
                    (
                        r["dag_id"].as_str().unwrap_or_default().to_string(),
                        r["dag_run_id"].as_str().unwrap_or_default().to_string(),
                    ),
                    r["state"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for slot in &mut self.slots {
            if let Some(mut child) = slot.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The database's view, for failure messages: runs by state, unfinished task instances.
pub async fn db_state(url: &str) -> String {
    use sea_orm::sqlx::{Connection, PgConnection};
    let mut conn = match PgConnection::connect(url).await {
        Ok(c) => c,
        Err(e) => return format!("(cannot connect: {e})"),
    };
    let mut out = String::new();
    for (title, sql) in [
        (
            "runs by state",
            "SELECT json_build_object('dag', dag_id, 'state', state, 'n', count(*))::text \
             FROM dag_run GROUP BY dag_id, state ORDER BY dag_id, state",
        ),
        (
            "task instances by state",
            "SELECT json_build_object('dag', dag_id, 'state', state, 'n', count(*))::text \
             FROM task_instance GROUP BY dag_id, state ORDER BY dag_id, state",
        ),
        (
            "task instances failed, then the others not success (first 40)",
            "SELECT row_to_json(t)::text FROM (SELECT dag_id, run_id, task_id, state, try_number, \
             max_tries, lease_owner, lease_expires_at, start_date, end_date, next_retry_at \
             FROM task_instance WHERE state IS DISTINCT FROM 'success' \
             ORDER BY state IS DISTINCT FROM 'failed', state IS NULL, dag_id, run_id, task_id \
             LIMIT 40) t",
        ),
        (
            "tries of the failed task instances (first 40)",
            "SELECT row_to_json(t)::text FROM (SELECT h.dag_id, h.run_id, h.task_id, h.try_number, \
             h.state, h.start_date, h.end_date FROM task_instance_history h \
             JOIN task_instance i ON i.dag_run_id = h.dag_run_id AND i.task_id = h.task_id \
             AND i.map_index = h.map_index WHERE i.state = 'failed' \
             ORDER BY h.dag_id, h.run_id, h.task_id, h.try_number LIMIT 40) t",
        ),
        (
            "jobs",
            "SELECT row_to_json(t)::text FROM (SELECT id, job_type, state, pid, start_date, \
             end_date, latest_heartbeat FROM job ORDER BY id) t",
        ),
        ("now", "SELECT now()::text"),
    ] {
        out.push_str(&format!("-- {title}\n"));
        match sea_orm::sqlx::query_scalar::<_, String>(sql)
            .fetch_all(&mut conn)
            .await
        {
            Ok(rows) => rows.iter().for_each(|r| out.push_str(&format!("{r}\n"))),
            Err(e) => out.push_str(&format!("(query failed: {e})\n")),
        }
    }
    out
}

/// The failed task instances (first 20).
async fn failed_keys(url: &str) -> Vec<TaskKey> {
    use sea_orm::sqlx::{Connection, PgConnection};
    let Ok(mut conn) = PgConnection::connect(url).await else {
        return Vec::new();
    };
    sea_orm::sqlx::query_as::<_, TaskKey>(
        "SELECT dag_id, run_id, task_id FROM task_instance WHERE state = 'failed' \
         ORDER BY 1, 2, 3 LIMIT 20",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap_or_default()
}

/// The bash command of every test task: a `start` line, an optional sleep, an `end` line,
/// each one short `>>` append (O_APPEND keeps it whole among concurrent writers).
pub fn task_command(effects: &Path, sleep: Option<&str>) -> String {
    let fields = "$AIRFLOW_CTX_DAG_ID $AIRFLOW_CTX_DAG_RUN_ID $AIRFLOW_CTX_TASK_ID \
                  $AIRFLOW_CTX_TRY_NUMBER $UPDRAFT_TEST_PROCESS $$";
    let file = effects.display();
    let pause = sleep.map(|s| format!("sleep {s}; ")).unwrap_or_default();
    format!(
        "echo \"start {fields} $(date +%s%N)\" >> {file}; {pause}echo \"end {fields} $(date +%s%N)\" >> {file}"
    )
}

fn task_yaml(id: &str, depends_on: &[String], command: &str) -> String {
    let deps = if depends_on.is_empty() {
        String::new()
    } else {
        format!("    depends_on: [{}]\n", depends_on.join(", "))
    };
    // Single-quoted YAML: the command holds double quotes and `$`, never a single quote.
    format!(
        "  - id: {id}\n    operator: bash\n{deps}    with:\n      bash_command: '{command}'\n      do_xcom_push: false\n"
    )
}

fn dag_header(dag_id: &str, default_args: &str) -> String {
    format!(
        "dag_id: {dag_id}\nis_paused_upon_creation: false\nmax_active_tasks: 64\n\
         max_active_runs: 16\ndefault_args: {default_args}\ntasks:\n"
    )
}

/// `fan100`: start → t000…t099 in parallel → end.
pub fn fan100(command: &str, default_args: &str) -> String {
    let mut yaml = dag_header("fan100", default_args);
    yaml.push_str(&task_yaml("start", &[], command));
    let middle: Vec<String> = (0..100).map(|i| format!("t{i:03}")).collect();
    for id in &middle {
        yaml.push_str(&task_yaml(id, &["start".to_string()], command));
    }
    yaml.push_str(&task_yaml("end", &middle, command));
    yaml
}

pub const FAN100_TASKS: usize = 102;

/// `chain40`: c00 → c01 → … → c39.
pub fn chain40(command: &str, default_args: &str) -> String {
    let mut yaml = dag_header("chain40", default_args);
    for i in 0..40 {
        let deps: Vec<String> = if i == 0 {
            vec![]
        } else {
            vec![format!("c{:02}", i - 1)]
        };
        yaml.push_str(&task_yaml(&format!("c{i:02}"), &deps, command));
    }
    yaml
}

pub const CHAIN40_TASKS: usize = 40;

/// One execution of a task's command, from its `start` and `end` lines.
#[derive(Debug, Clone)]
pub struct Execution {
    pub try_number: u32,
    pub process: String,
    pub pid: u32,
    pub start: Option<u128>,
    pub end: Option<u128>,
}

/// (dag_id, run_id, task_id)
pub type TaskKey = (String, String, String);

/// Reads the effects file: every execution of every task, by task key. Panics on a line
/// that is not whole (a torn append).
pub fn read_effects(path: &Path) -> BTreeMap<TaskKey, Vec<Execution>> {
    let text = std::fs::read_to_string(path).expect("read the effects file");
    let mut out: BTreeMap<TaskKey, Vec<Execution>> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        assert!(
            f.len() == 8 && matches!(f[0], "start" | "end"),
            "a malformed effects line: {line:?}"
        );
        let key = (f[1].to_string(), f[2].to_string(), f[3].to_string());
        let try_number: u32 = f[4].parse().unwrap_or_else(|_| panic!("{line:?}"));
        let pid: u32 = f[6].parse().unwrap_or_else(|_| panic!("{line:?}"));
        let ts: u128 = f[7].parse().unwrap_or_else(|_| panic!("{line:?}"));
        let execs = out.entry(key).or_default();
        let pos = execs
            .iter()
            .position(|e| e.try_number == try_number && e.process == f[5] && e.pid == pid);
        let exec = match pos {
            Some(p) => &mut execs[p],
            None => {
                execs.push(Execution {
                    try_number,
                    process: f[5].to_string(),
                    pid,
                    start: None,
                    end: None,
                });
                execs.last_mut().expect("just pushed")
            }
        };
        let slot = if f[0] == "start" {
            &mut exec.start
        } else {
            &mut exec.end
        };
        assert!(
            slot.is_none(),
            "a line written twice by one execution: {line:?}"
        );
        *slot = Some(ts);
    }
    out
}

/// Every (dag_id, run_id, task_id) the runs must have executed.
pub fn expected_keys(runs: &[(&str, String)]) -> BTreeSet<TaskKey> {
    let mut keys = BTreeSet::new();
    for (dag, run) in runs {
        let tasks: Vec<String> = match *dag {
            "fan100" => std::iter::once("start".to_string())
                .chain((0..100).map(|i| format!("t{i:03}")))
                .chain(std::iter::once("end".to_string()))
                .collect(),
            "chain40" => (0..40).map(|i| format!("c{i:02}")).collect(),
            other => panic!("unknown test DAG {other}"),
        };
        for t in tasks {
            keys.insert((dag.to_string(), run.clone(), t));
        }
    }
    keys
}

/// Pairs of executions of one task whose intervals overlap. An execution without an `end`
/// line was cut short: it lasted at most until its worker was killed (`killed`), or, if its
/// worker never was, it is taken as never ending (so anything after it overlaps).
pub fn overlaps(
    effects: &BTreeMap<TaskKey, Vec<Execution>>,
    killed: &BTreeMap<String, u128>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (key, execs) in effects {
        let spans: Vec<(u128, u128, &Execution)> = execs
            .iter()
            .map(|e| {
                let start = e.start.or(e.end).unwrap_or(0);
                let end = e
                    .end
                    .or_else(|| killed.get(&e.process).copied())
                    .unwrap_or(u128::MAX);
                (start, end, e)
            })
            .collect();
        for (i, a) in spans.iter().enumerate() {
            for b in &spans[i + 1..] {
                if a.0 < b.1 && b.0 < a.1 {
                    out.push(format!("{key:?}: {:?} overlaps {:?}", a.2, b.2));
                }
            }
        }
    }
    out
}
