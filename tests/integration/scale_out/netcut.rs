//! Test (d) of scale-out: a worker cut off from PostgreSQL by the network. The worker runs in
//! a network namespace of its own, joined to the host (where PostgreSQL, the API, the
//! scheduler and a second worker run) by a veth pair; the link is cut while its task runs.
//! Its lease expires, the same try goes back to the queue and runs on the other worker, and
//! the cut-off worker stops its copy first: the two executions never overlap.
//!
//! Needs root and `ip` (Debian iproute2; `scripts/setup.sh` installs it): without them the
//! test fails and says so, it does not skip.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::cluster::*;
use super::PrivatePostgres;
use crate::helpers::*;

/// `worker.lease_timeout` of every process.
const LEASE: Duration = Duration::from_secs(3);
/// How long after the cut the cut-off worker's task may still write (lease + slack).
const STOP_LIMIT: Duration = Duration::from_secs(5);
/// Ticks of the task, 0.1 s apart: about 20 s.
const TICKS: u32 = 200;

/// Runs `ip ARGS`; its output when it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip {}`: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A network namespace joined to the host by a veth pair on a /30 of 10/8; deleted on drop.
struct Netns {
    name: String,
    host_if: String,
    ns_if: String,
    host_addr: String,
    ns_addr: String,
}

impl Netns {
    fn create() -> Self {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert!(
            euid == 0,
            "this test needs root (it creates a network namespace and a veth pair with \
             `ip netns add` / `ip link add`); it runs as uid {euid}"
        );
        if let Err(e) = Command::new("ip").arg("-V").output() {
            panic!(
                "this test needs `ip` (Debian package iproute2; scripts/setup.sh installs it): {e}"
            );
        }
        let used = Command::new("ip")
            .args(["-4", "route", "show", "table", "all"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let (tag, net) = loop {
            let tag: u32 = rand::random::<u32>() & 0xff_ffff;
            let (b, c) = (100 + (tag >> 8) % 150, tag & 0xfc);
            let net = format!("10.{b}.{c}");
            if !used.contains(&format!("{net}.")) {
                break (tag, net);
            }
        };
        let netns = Netns {
            name: format!("updraft-{tag:06x}"),
            host_if: format!("udh{tag:06x}"),
            ns_if: format!("udn{tag:06x}"),
            host_addr: format!("{net}.1"),
            ns_addr: format!("{net}.2"),
        };
        // Built before the first command, so whatever was created is deleted on a panic.
        let (ns, host_if, ns_if) = (&netns.name, &netns.host_if, &netns.ns_if);
        let host_cidr = format!("{}/30", netns.host_addr);
        let ns_cidr = format!("{}/30", netns.ns_addr);
        let steps: [&[&str]; 7] = [
            &["netns", "add", ns],
            &[
                "link", "add", host_if, "type", "veth", "peer", "name", ns_if, "netns", ns,
            ],
            &["addr", "add", &host_cidr, "dev", host_if],
            &["link", "set", host_if, "up"],
            &["-n", ns, "addr", "add", &ns_cidr, "dev", ns_if],
            &["-n", ns, "link", "set", ns_if, "up"],
            &["-n", ns, "link", "set", "lo", "up"],
        ];
        for step in steps {
            if let Err(e) = ip(step) {
                panic!("cannot set up the network namespace and veth pair for this test: {e}");
            }
        }
        netns
    }

    /// The link goes down on the host's side: the namespace's end loses its carrier, its
    /// packets go nowhere, its open connections hang.
    fn cut(&self) {
        ip(&["link", "set", &self.host_if, "down"]).expect("cut the link");
    }

    fn restore(&self) {
        ip(&["link", "set", &self.host_if, "up"]).expect("restore the link");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting one end deletes the pair; the namespace goes once its processes are gone.
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// A private PostgreSQL that also listens on `listen` (ADDR/PREFIX) and lets that network in.
fn postgres_listening_on(listen: &str) -> PrivatePostgres {
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("scripts/pg-test-server.sh"))
        .args(["start", "--listen", listen]);
    let out = run_with_timeout(cmd, Duration::from_secs(60));
    let text = stdout_of(&out);
    assert!(
        out.status.success(),
        "scripts/pg-test-server.sh start --listen {listen}: {text}{}",
        stderr_of(&out)
    );
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

/// One task on queue `cut`: a `start` line, a `tick` line every 0.1 s for about 20 s, an
/// `end` line; each `KIND PROCESS TRY PID NS`.
fn netcut_dag(effects: &Path) -> String {
    let file = effects.display();
    let command = format!(
        "p=\"$UPDRAFT_TEST_PROCESS $AIRFLOW_CTX_TRY_NUMBER $$\"; \
         echo \"start $p $(date +%s%N)\" >> {file}; \
         for i in $(seq {TICKS}); do sleep 0.1; echo \"tick $p $(date +%s%N)\" >> {file}; done; \
         echo \"end $p $(date +%s%N)\" >> {file}"
    );
    // Single-quoted YAML: the command holds double quotes and `$`, never a single quote.
    format!(
        "dag_id: netcut\nis_paused_upon_creation: false\ntasks:\n  - id: long\n    \
         operator: bash\n    queue: cut\n    retries: 0\n    with:\n      \
         bash_command: '{command}'\n      do_xcom_push: false\n"
    )
}

#[derive(Debug, Clone)]
struct Line {
    kind: String,
    process: String,
    try_number: u32,
    pid: u32,
    ts: u128,
}

fn read_lines(path: &Path) -> Vec<Line> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert!(
                f.len() == 5 && matches!(f[0], "start" | "tick" | "end"),
                "a malformed effects line: {l:?}"
            );
            Line {
                kind: f[0].to_string(),
                process: f[1].to_string(),
                try_number: f[2].parse().unwrap_or_else(|_| panic!("{l:?}")),
                pid: f[3].parse().unwrap_or_else(|_| panic!("{l:?}")),
                ts: f[4].parse().unwrap_or_else(|_| panic!("{l:?}")),
            }
        })
        .collect()
}

/// Whether `pid` is gone or a zombie (it stopped running).
fn has_stopped(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `PID (COMM) STATE ...`: COMM may hold spaces, the state follows its last `)`.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

fn ms_between(a: u128, b: u128) -> f64 {
    (b as f64 - a as f64) / 1e6
}

/// Fails with `what`, the effects file and (through the cluster) the database and every
/// process's stderr.
async fn fail(cluster: &Cluster, what: &str) -> ! {
    let effects = std::fs::read_to_string(cluster.effects_path()).unwrap_or_default();
    let lines: Vec<&str> = effects.lines().collect();
    let shown: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.starts_with("tick"))
        .collect();
    let last_ticks: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("tick"))
        .rev()
        .take(10)
        .collect();
    cluster
        .fail(&format!(
            "{what}\n===== effects: {} lines; start/end lines {shown:#?}; last ticks (newest first) {last_ticks:#?}",
            lines.len()
        ))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_cut_off_from_the_database_stops_its_task_and_it_runs_elsewhere() {
    let started = Instant::now();
    // Dropped in reverse: the processes, then PostgreSQL, then the namespace.
    let net = Netns::create();
    let pg = postgres_listening_on(&format!("{}/30", net.host_addr));
    let cut_off_url = pg
        .url
        .replacen("@127.0.0.1:", &format!("@{}:", net.host_addr), 1);
    assert_ne!(cut_off_url, pg.url, "the URL names 127.0.0.1: {}", pg.url);
    let lease = format!("{}s", LEASE.as_secs());
    let mut cluster = Cluster::new(&pg.url, &[("UPDRAFT__WORKER__LEASE_TIMEOUT", &lease)]);
    let effects = cluster.effects_path();
    cluster.write_dag("netcut", &netcut_dag(&effects));
    cluster.start_api().await;
    cluster.add(Role::Scheduler, 1);
    // At first the only worker of queue `cut`: inside the namespace, PostgreSQL over the veth.
    let b = cluster.add_with(
        Role::Worker,
        Launch {
            name: Some("worker-cut".into()),
            wrapper: vec!["ip".into(), "netns".into(), "exec".into(), net.name.clone()],
            args: vec!["--queues".into(), "cut".into()],
            env: vec![("DATABASE_URL".into(), cut_off_url.clone())],
        },
    );
    cluster.wait_up(b, Duration::from_secs(30)).await;
    let b_name = cluster.instance(b).to_string();
    println!(
        "set up in {:?}: netns {} ({} {} ↔ {} {}), {b_name} up",
        started.elapsed(),
        net.name,
        net.host_if,
        net.host_addr,
        net.ns_if,
        net.ns_addr
    );
    cluster
        .trigger("netcut", "r00", "2024-01-01T00:00:00Z")
        .await;

    // The cut, once the cut-off worker's task has started.
    let waited = Instant::now();
    let b_start = loop {
        if let Some(l) = read_lines(&effects).into_iter().find(|l| l.kind == "start") {
            break l;
        }
        if waited.elapsed() > Duration::from_secs(30) {
            fail(
                &cluster,
                "the task did not start within 30 s of the trigger",
            )
            .await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    if b_start.process != b_name {
        fail(
            &cluster,
            &format!(
                "the task started on {} rather than {b_name}",
                b_start.process
            ),
        )
        .await;
    }
    net.cut();
    let cut_at = now_ns();
    let cut = Instant::now();
    println!(
        "{b_name} started the task (try {}, pid {}) {:?} after the trigger; link cut {:.0} ms later",
        b_start.try_number,
        b_start.pid,
        waited.elapsed(),
        ms_between(b_start.ts, cut_at)
    );
    // The other worker of queue `cut`, on the host.
    let a = cluster.add_with(
        Role::Worker,
        Launch {
            args: vec!["--queues".into(), "cut".into()],
            ..Launch::default()
        },
    );
    let a_name = cluster.instance(a).to_string();

    // Watch: when the cut-off task's process stops, when the other worker starts the task,
    // until it ends.
    let mut b_stopped_at: Option<u128> = None;
    let mut a_start: Option<Line> = None;
    let mut restored = false;
    let a_end = loop {
        if b_stopped_at.is_none() && has_stopped(b_start.pid) {
            b_stopped_at = Some(now_ns());
        }
        let lines = read_lines(&effects);
        if a_start.is_none() {
            a_start = lines
                .iter()
                .find(|l| l.kind == "start" && l.process == a_name)
                .cloned();
            if let Some(s) = &a_start {
                println!(
                    "{a_name} started the task (try {}) {:.0} ms after the cut",
                    s.try_number,
                    ms_between(cut_at, s.ts)
                );
            }
        }
        // Both seen: the link comes back while the task runs on, and the cut-off worker
        // (reconnecting, its try taken away) must leave it alone.
        if !restored && b_stopped_at.is_some() && a_start.is_some() {
            net.restore();
            restored = true;
            println!("link restored {:?} after the cut", cut.elapsed());
        }
        if let Some(end) = lines
            .iter()
            .find(|l| l.kind == "end" && l.process == a_name)
        {
            break end.clone();
        }
        if let Some(l) = lines
            .iter()
            .find(|l| l.process != a_name && l.process != b_name)
        {
            fail(&cluster, &format!("a line from an unknown process: {l:?}")).await;
        }
        if let Some(l) = lines.iter().find(|l| l.kind == "end") {
            fail(
                &cluster,
                &format!("the cut-off worker's task ran to its end: {l:?}"),
            )
            .await;
        }
        let exited = cluster.exited();
        if !exited.is_empty() {
            fail(
                &cluster,
                &format!("processes exited on their own: {exited:?}"),
            )
            .await;
        }
        if b_stopped_at.is_none() && cut.elapsed() > STOP_LIMIT + Duration::from_secs(1) {
            let last = lines.iter().rfind(|l| l.process == b_name).cloned();
            fail(
                &cluster,
                &format!(
                    "{b_name}'s task (pid {}) still runs {:?} after the cut (lease {LEASE:?}): \
                     its last line {last:?}",
                    b_start.pid,
                    cut.elapsed()
                ),
            )
            .await;
        }
        if cut.elapsed() > LEASE + Duration::from_secs(35) {
            fail(
                &cluster,
                &format!(
                    "{a_name} did not run the task to its end within {:?} of the cut (its start: {a_start:?})",
                    cut.elapsed()
                ),
            )
            .await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let a_start = a_start.expect("an end line comes after a start line");
    let b_stopped_at = b_stopped_at.expect("checked in the loop");

    // What the file says of the cut-off execution.
    let lines = read_lines(&effects);
    let b_lines: Vec<&Line> = lines.iter().filter(|l| l.process == b_name).collect();
    let b_last = b_lines.iter().map(|l| l.ts).max().expect("its start line");
    let b_ticks_after_cut = b_lines.iter().filter(|l| l.ts > cut_at).count();
    println!(
        "{b_name}: {} ticks in all, {b_ticks_after_cut} after the cut, last line {:.0} ms after \
         the cut; its process seen stopped {:.0} ms after the cut; {a_name} started {:.0} ms \
         after the cut ({:.0} ms after {b_name}'s process was seen stopped), ended {:.0} ms after it",
        b_lines.iter().filter(|l| l.kind == "tick").count(),
        ms_between(cut_at, b_last),
        ms_between(cut_at, b_stopped_at),
        ms_between(cut_at, a_start.ts),
        ms_between(b_stopped_at, a_start.ts),
        ms_between(cut_at, a_end.ts)
    );
    let mut problems = Vec::new();
    if b_last > cut_at + STOP_LIMIT.as_nanos() {
        problems.push(format!(
            "{b_name}'s task wrote until {:.0} ms after the cut: it must stop once its lease \
             ({LEASE:?}) can no longer be renewed (limit {STOP_LIMIT:?})",
            ms_between(cut_at, b_last)
        ));
    }
    if b_last >= a_start.ts {
        problems.push(format!(
            "two executions at once: {b_name}'s last line is {:.0} ms after {a_name}'s start",
            ms_between(a_start.ts, b_last)
        ));
    }
    if b_stopped_at >= a_start.ts {
        problems.push(format!(
            "two executions at once: {b_name}'s task process {} was still running {:.0} ms \
             after {a_name} started the task (seen stopped {:.0} ms after the cut)",
            b_start.pid,
            ms_between(a_start.ts, b_stopped_at),
            ms_between(cut_at, b_stopped_at)
        ));
    }
    if a_start.try_number != b_start.try_number {
        problems.push(format!(
            "the worker's loss is not the task's failure: {a_name} ran try {}, {b_name} try {} \
             (a re-claim runs the same try)",
            a_start.try_number, b_start.try_number
        ));
    }
    let a_ticks = lines
        .iter()
        .filter(|l| l.process == a_name && l.kind == "tick")
        .count();
    if a_ticks != TICKS as usize {
        problems.push(format!(
            "{a_name}'s execution wrote {a_ticks} ticks, not {TICKS}"
        ));
    }
    let executions: std::collections::BTreeSet<(String, u32)> =
        lines.iter().map(|l| (l.process.clone(), l.pid)).collect();
    if executions.len() != 2 {
        problems.push(format!("expected 2 executions, found {executions:?}"));
    }
    if !problems.is_empty() {
        fail(&cluster, &problems.join("\n")).await;
    }

    // The run ends `success`, the task instance on its first try.
    let waited = Instant::now();
    loop {
        match cluster.run_states().await {
            Ok(states) => match states
                .get(&("netcut".to_string(), "r00".to_string()))
                .map(String::as_str)
            {
                Some("success") => break,
                Some("failed") => fail(&cluster, "the run failed").await,
                _ => {}
            },
            Err(e) if waited.elapsed() > Duration::from_secs(10) => {
                fail(&cluster, &format!("the API: {e}")).await
            }
            Err(_) => {}
        }
        if waited.elapsed() > Duration::from_secs(10) {
            fail(
                &cluster,
                "the run did not end success within 10 s of the task's end",
            )
            .await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ti: serde_json::Value = cluster
        .client
        .get(format!(
            "{}/api/v2/dags/netcut/dagRuns/r00/taskInstances/long",
            cluster.base_url()
        ))
        .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
        .send()
        .await
        .expect("GET the task instance")
        .json()
        .await
        .expect("a JSON task instance");
    if ti["state"] != "success" || ti["try_number"] != b_start.try_number {
        fail(
            &cluster,
            &format!(
                "the task instance must be success on try {}: {ti}",
                b_start.try_number
            ),
        )
        .await;
    }
    println!(
        "the run succeeded {:?} after the cut; reclaims logged: {:?}; cut-off worker: {:?}",
        cut.elapsed(),
        cluster.grep_stderr("stopped renewing its lease"),
        cluster.grep_stderr("could not be renewed")
    );
    // Every process, the reconnected one too, stops cleanly.
    cluster.stop_gracefully().await;
    println!("total {:?}", started.elapsed());
}
