//! The engine through the API: trigger rules, retries, timeouts, pools, priority, runs.
//!
//! Each test writes DAG files into the server's DAG folder, triggers runs over the REST API
//! and reads the outcome back from the API (and, for tries and pools, the database), as a
//! user of Airflow would observe it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::prelude::Expr;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};
use updraft::store::entities::{dag_run, slot_pool, task_instance, task_instance_history};
use updraft::store::job::{self, JobType};

use crate::db_test;
use crate::engine_helpers::*;
use crate::helpers::*;

/// Two timestamps written by different steps of the engine may be a few milliseconds "early"
/// relative to the rule they obey (a retry's due time is computed just before its try's
/// end is recorded).
const CLOCK_SLACK: chrono::Duration = chrono::Duration::milliseconds(100);

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Polls the run's task instances until `done` holds for them.
async fn wait_task_instances(
    app: &TestApp,
    dag_id: &str,
    run_id: &str,
    what: &str,
    done: impl Fn(&BTreeMap<String, Value>) -> bool,
) -> BTreeMap<String, Value> {
    let started = Instant::now();
    loop {
        let tis = task_instances(app, dag_id, run_id).await;
        if done(&tis) {
            return tis;
        }
        if started.elapsed() > PATIENCE {
            panic!("timed out waiting for {what}: {tis:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is_finished(ti: &Value) -> bool {
    matches!(
        state(ti),
        "success" | "failed" | "skipped" | "upstream_failed"
    )
}

/// A timestamp field of an API answer.
fn time(v: &Value, field: &str) -> DateTime<Utc> {
    utc(v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is set: {v}")))
}

/// The finished tries of a task in its (only) run, oldest first.
async fn history(app: &TestApp, dag_id: &str, task_id: &str) -> Vec<task_instance_history::Model> {
    use task_instance_history::Column as C;
    let mut rows = task_instance_history::Entity::find()
        .filter(C::DagId.eq(dag_id))
        .filter(C::TaskId.eq(task_id))
        .all(app.db.conn())
        .await
        .expect("read task_instance_history");
    rows.sort_by_key(|r| r.try_number);
    rows
}

/// The wait between the end of one try and the start of the next.
fn gap(
    earlier: &task_instance_history::Model,
    later: &task_instance_history::Model,
) -> chrono::Duration {
    later.start_date.expect("a try has a start") - earlier.end_date.expect("a try has an end")
}

/// Reads the pid a task wrote into `file`, waiting for the task to write it.
async fn read_pid(file: &Path) -> i32 {
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(file) {
            if let Ok(pid) = text.trim().parse() {
                return pid;
            }
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the task never wrote {}",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a process is alive: it exists and is not a zombie (an unreaped corpse is dead).
fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) S ...`: the state follows the last parenthesis (comm may hold spaces).
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// Waits (a little: the kill precedes the recorded end) until `pid` is dead.
async fn assert_killed(pid: i32, what: &str) {
    let started = Instant::now();
    while alive(pid) {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{what}: process {pid} is still alive"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The largest number of `[start, end]` intervals that overlap at one instant (touching ends
/// do not overlap: the next task may start the moment the previous one ended).
fn max_overlap(intervals: &[(DateTime<Utc>, DateTime<Utc>)]) -> usize {
    let mut events: Vec<(DateTime<Utc>, i32)> = Vec::new();
    for (start, end) in intervals {
        events.push((*start, 1));
        events.push((*end, -1));
    }
    // At equal times, ends (-1) before starts (+1).
    events.sort();
    let (mut now, mut max) = (0i32, 0i32);
    for (_, delta) in events {
        now += delta;
        max = max.max(now);
    }
    max as usize
}

fn intervals(tis: &BTreeMap<String, Value>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    tis.values()
        .map(|ti| (time(ti, "start_date"), time(ti, "end_date")))
        .collect()
}

// ---------------------------------------------------------------------------------------
// 1. Trigger rules and the propagation of skips and failures
// ---------------------------------------------------------------------------------------

/// Upstream combinations, by the suffix of the downstream task that sees them: `ok` succeeds,
/// `bad` fails, `skip` skips itself (exit 99), `bad_child` is upstream_failed.
const COMBOS: [(&str, &[&str]); 7] = [
    ("s", &["ok"]),
    ("f", &["bad"]),
    ("k", &["skip"]),
    ("sf", &["ok", "bad"]),
    ("sk", &["ok", "skip"]),
    ("fk", &["bad", "skip"]),
    ("u", &["bad_child"]),
];

/// Airflow's final state of a downstream task per rule and combination, in `COMBOS` order:
/// R ran (success), K skipped, U upstream_failed, `-` pinned by its own test below.
/// From Airflow's `TriggerRuleDep._evaluate_direct_relatives` with `flag_upstream_failed`.
const EXPECTED: [(&str, &str); 12] = [
    // Combinations: s, f, k, sf, sk, fk, u.
    ("all_success", "RUKUKUU"),
    ("all_failed", "KRKKKKR"),
    ("all_done", "RRRRRRR"),
    ("all_done_min_one_success", "RUKR--U"),
    ("all_skipped", "KKRKKKK"),
    ("one_success", "RUKRRUU"),
    ("one_failed", "KRKRKRR"),
    ("one_done", "RRKRRRK"),
    ("none_failed", "RURURUU"),
    ("none_failed_min_one_success", "RUKURUU"),
    ("none_skipped", "RRKRKKR"),
    ("always", "RRRRRRR"),
];

/// `skip` runs after `bad` has ended, so a task downstream of both sees the failure first,
/// as Airflow would decide it then (`all_success` with a failed and a skipped upstream is
/// upstream_failed or skipped depending on which ends first, in Airflow too).
const UPSTREAMS: &str = r#"
  - {id: ok, operator: bash, with: {bash_command: "true"}}
  - {id: bad, operator: bash, with: {bash_command: "exit 1"}}
  - {id: skip, operator: bash, depends_on: [bad], trigger_rule: all_done, with: {bash_command: "exit 99"}}
"#;

fn trigger_rules_dag() -> String {
    let mut yaml = format!(
        "dag_id: trigger_rules\nis_paused_upon_creation: false\ntasks:{UPSTREAMS}\
         \x20 - {{id: bad_child, operator: empty, depends_on: [bad]}}\n\
         \x20 - {{id: bad_grandchild, operator: empty, depends_on: [bad_child]}}\n\
         \x20 - {{id: cleanup, operator: empty, depends_on: [bad_grandchild], trigger_rule: all_done}}\n\
         \x20 - {{id: skip_child, operator: empty, depends_on: [skip]}}\n\
         \x20 - {{id: skip_grandchild, operator: empty, depends_on: [skip_child]}}\n"
    );
    for (rule, _) in EXPECTED {
        for (combo, upstream) in COMBOS {
            yaml.push_str(&format!(
                "  - {{id: {rule}-{combo}, operator: empty, depends_on: [{}], trigger_rule: {rule}}}\n",
                upstream.join(", ")
            ));
        }
    }
    yaml
}

fn expected_state(code: u8) -> &'static str {
    match code {
        b'R' => "success",
        b'K' => "skipped",
        b'U' => "upstream_failed",
        _ => unreachable!("codes are R, K and U"),
    }
}

db_test!(
    every_trigger_rule_decides_like_airflow_and_skips_and_failures_propagate,
    |backend| async move {
        let app = spawn_app(backend).await;
        write_dag(&app, "trigger_rules", &trigger_rules_dag()).await;
        let run_id = run_id_of(&trigger(&app, "trigger_rules", json!({})).await);
        let run = wait_for_run(&app, "trigger_rules", &run_id).await;
        let tis = task_instances(&app, "trigger_rules", &run_id).await;

        let mut wrong = Vec::new();
        let mut check = |task: &str, want: &str| {
            let got = state(&tis[task]);
            if got != want {
                wrong.push(format!("{task}: {got}, Airflow says {want}"));
            }
        };
        check("ok", "success");
        check("bad", "failed");
        check("skip", "skipped");
        // Skips cascade through all_success: child and grandchild are skipped.
        check("skip_child", "skipped");
        check("skip_grandchild", "skipped");
        // Failures cascade as upstream_failed; an all_done task after them still runs.
        check("bad_child", "upstream_failed");
        check("bad_grandchild", "upstream_failed");
        check("cleanup", "success");
        for (rule, codes) in EXPECTED {
            for ((combo, _), code) in COMBOS.iter().zip(codes.bytes()) {
                if code != b'-' {
                    check(&format!("{rule}-{combo}"), expected_state(code));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        // Tasks whose fate the trigger rule decided never ran a try.
        for task in ["skip_child", "bad_child", "all_success-k", "one_failed-s"] {
            assert_eq!(tis[task]["try_number"], 0, "{task}: {}", tis[task]);
        }
        // Leaves such as all_success-f are upstream_failed: the run failed.
        assert_eq!(run["state"], "failed", "{run}");
        assert!(run["end_date"].is_string(), "{run}");
    }
);

db_test!(
    a_run_succeeds_when_no_leaf_failed_even_if_a_task_did,
    |backend| async move {
        let app = spawn_app(backend).await;
        let yaml = format!(
            "dag_id: leaves\nis_paused_upon_creation: false\ntasks:{UPSTREAMS}\
             \x20 - {{id: handle_failure, operator: empty, depends_on: [bad], trigger_rule: one_failed}}\n\
             \x20 - {{id: after_skip, operator: empty, depends_on: [skip]}}\n"
        );
        write_dag(&app, "leaves", &yaml).await;
        let run_id = run_id_of(&trigger(&app, "leaves", json!({})).await);
        let run = wait_for_run(&app, "leaves", &run_id).await;
        let tis = task_instances(&app, "leaves", &run_id).await;
        assert_eq!(state(&tis["bad"]), "failed");
        assert_eq!(state(&tis["handle_failure"]), "success");
        assert_eq!(state(&tis["after_skip"]), "skipped");
        // The leaves are ok (success), handle_failure (success) and after_skip (skipped).
        assert_eq!(run["state"], "success", "{run}");
    }
);

db_test!(
    all_done_min_one_success_is_skipped_when_an_upstream_is_skipped,
    |backend| async move {
        let app = spawn_app(backend).await;
        let yaml = format!(
            "dag_id: min_one_success\nis_paused_upon_creation: false\ntasks:{UPSTREAMS}\
             \x20 - {{id: after_ok_and_skip, operator: empty, depends_on: [ok, skip], trigger_rule: all_done_min_one_success}}\n\
             \x20 - {{id: after_bad_and_skip, operator: empty, depends_on: [bad, skip], trigger_rule: all_done_min_one_success}}\n"
        );
        write_dag(&app, "min_one_success", &yaml).await;
        let run_id = run_id_of(&trigger(&app, "min_one_success", json!({})).await);
        wait_for_run(&app, "min_one_success", &run_id).await;
        let tis = task_instances(&app, "min_one_success", &run_id).await;
        // Airflow (3.1+, trigger_rule_dep.py): "if skipped > 0: new_state = SKIPPED", before
        // looking at successes or failures; apache/airflow#59954 confirms this is intended.
        assert_eq!(state(&tis["after_ok_and_skip"]), "skipped");
        assert_eq!(state(&tis["after_bad_and_skip"]), "skipped");
    }
);

// ---------------------------------------------------------------------------------------
// 2. Retries
// ---------------------------------------------------------------------------------------

db_test!(
    retries_wait_with_exponential_backoff_capped_by_max_retry_delay,
    |backend| async move {
        let app = spawn_app(backend).await;
        let marks = tempfile::tempdir().expect("temp dir");
        let marker = marks.path().join("failed_once");
        let yaml = format!(
            r#"dag_id: retries
is_paused_upon_creation: false
default_args: {{retry_delay: 1s, retry_exponential_backoff: true}}
tasks:
  - id: backoff
    operator: bash
    retries: 2
    with: {{bash_command: "exit 1"}}
  - id: capped
    operator: bash
    retries: 3
    max_retry_delay: 1s
    with: {{bash_command: "exit 1"}}
  - id: flaky
    operator: bash
    retries: 1
    with: {{bash_command: "test -f {m} || {{ touch {m}; exit 1; }}"}}
"#,
            m = marker.display()
        );
        write_dag(&app, "retries", &yaml).await;
        let run_id = run_id_of(&trigger(&app, "retries", json!({})).await);
        let run = wait_for_run(&app, "retries", &run_id).await;
        let tis = task_instances(&app, "retries", &run_id).await;

        // retries: 2 → three tries, the last one failed.
        let ti = &tis["backoff"];
        assert_eq!(state(ti), "failed", "{ti}");
        assert_eq!(ti["try_number"], 3, "{ti}");
        assert_eq!(ti["max_tries"], 2, "{ti}");
        let tries = history(&app, "retries", "backoff").await;
        let numbers: Vec<i32> = tries.iter().map(|t| t.try_number).collect();
        assert_eq!(numbers, [1, 2, 3], "one history row per finished try");
        assert_eq!(tries[2].state.as_deref(), Some("failed"));
        // retry_delay × 2^(try - 1): 1 s after try 1, 2 s after try 2.
        let one_s = chrono::Duration::seconds(1);
        assert!(
            gap(&tries[0], &tries[1]) >= one_s - CLOCK_SLACK,
            "{tries:#?}"
        );
        assert!(
            gap(&tries[1], &tries[2]) >= one_s * 2 - CLOCK_SLACK,
            "{tries:#?}"
        );

        // max_retry_delay 1s caps 1, 2, 4 s at 1, 1, 1 s: the third wait is well under 4 s.
        let ti = &tis["capped"];
        assert_eq!(state(ti), "failed", "{ti}");
        assert_eq!(ti["try_number"], 4, "{ti}");
        let tries = history(&app, "retries", "capped").await;
        assert_eq!(tries.len(), 4, "{tries:#?}");
        for pair in tries.windows(2) {
            assert!(gap(&pair[0], &pair[1]) >= one_s - CLOCK_SLACK, "{tries:#?}");
        }
        assert!(
            gap(&tries[2], &tries[3]) < one_s * 3,
            "the cap did not apply: {tries:#?}"
        );

        // A task that fails once, then succeeds on its retry.
        let ti = &tis["flaky"];
        assert_eq!(state(ti), "success", "{ti}");
        assert_eq!(ti["try_number"], 2, "{ti}");
        let tries = history(&app, "retries", "flaky").await;
        assert_eq!(tries.len(), 2, "{tries:#?}");
        assert_eq!(tries[1].state.as_deref(), Some("success"));

        assert_eq!(run["state"], "failed", "{run}");
    }
);

// ---------------------------------------------------------------------------------------
// 3. execution_timeout
// ---------------------------------------------------------------------------------------

db_test!(
    execution_timeout_fails_the_try_and_kills_its_children,
    |backend| async move {
        let app = spawn_app(backend).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let pidfile = dir.path().join("child.pid");
        let yaml = format!(
            r#"dag_id: timeout
is_paused_upon_creation: false
tasks:
  - id: slow
    operator: bash
    retries: 0
    execution_timeout: 1s
    with: {{bash_command: "sleep 300 & echo $! > {}; wait"}}
"#,
            pidfile.display()
        );
        write_dag(&app, "timeout", &yaml).await;
        let run_id = run_id_of(&trigger(&app, "timeout", json!({})).await);
        let pid = read_pid(&pidfile).await;
        assert!(alive(pid), "the background sleep runs");
        let run = wait_for_run(&app, "timeout", &run_id).await;
        assert_eq!(run["state"], "failed", "{run}");
        let ti = &task_instances(&app, "timeout", &run_id).await["slow"];
        assert_eq!(state(ti), "failed", "{ti}");
        assert_eq!(ti["try_number"], 1, "{ti}");
        // Killed after about 1 s (SIGTERM, SIGKILL after a grace period), not after 300 s.
        let took = time(ti, "end_date") - time(ti, "start_date");
        assert!(took >= chrono::Duration::seconds(1) - CLOCK_SLACK, "{ti}");
        assert!(took < chrono::Duration::seconds(30), "{ti}");
        assert_killed(pid, "the task's background child after execution_timeout").await;

        let log = task_log(&app, "timeout", &run_id, "slow", 1);
        assert!(log.contains("execution_timeout"), "{log}");
    }
);

// ---------------------------------------------------------------------------------------
// 4. Pools and priority
// ---------------------------------------------------------------------------------------

db_test!(
    a_one_slot_pool_runs_tasks_one_at_a_time_by_priority,
    |backend| async move {
        let app = spawn_app(backend).await;
        slot_pool::ActiveModel {
            pool: Set("one".into()),
            slots: Set(1),
            description: Set(None),
            include_deferred: Set(false),
            ..Default::default()
        }
        .insert(app.db.conn())
        .await
        .expect("create pool one");
        // Task `wN` has priority_weight N; `big` needs more slots than the pool has.
        let yaml = r#"dag_id: pooled
is_paused_upon_creation: false
default_args: {pool: one, weight_rule: absolute}
tasks:
  - {id: w1, operator: bash, priority_weight: 1, with: {bash_command: "sleep 0.2"}}
  - {id: w4, operator: bash, priority_weight: 4, with: {bash_command: "sleep 0.2"}}
  - {id: w2, operator: bash, priority_weight: 2, with: {bash_command: "sleep 0.2"}}
  - {id: w3, operator: bash, priority_weight: 3, with: {bash_command: "sleep 0.2"}}
  - {id: big, operator: bash, priority_weight: 10, pool_slots: 2, with: {bash_command: "true"}}
"#;
        write_dag(&app, "pooled", yaml).await;
        let run_id = run_id_of(&trigger(&app, "pooled", json!({})).await);
        let weighted = ["w1", "w2", "w3", "w4"];
        let all = wait_task_instances(
            &app,
            "pooled",
            &run_id,
            "the weighted tasks to end",
            |tis| weighted.iter().all(|t| is_finished(&tis[*t])),
        )
        .await;
        let mut ran: Vec<(&str, DateTime<Utc>, DateTime<Utc>)> = weighted
            .iter()
            .map(|t| {
                let ti = &all[*t];
                assert_eq!(state(ti), "success", "{ti}");
                assert_eq!(
                    ti["priority_weight"],
                    t[1..].parse::<i64>().unwrap(),
                    "{ti}"
                );
                (*t, time(ti, "start_date"), time(ti, "end_date"))
            })
            .collect();
        ran.sort_by_key(|r| r.1);
        let order: Vec<&str> = ran.iter().map(|r| r.0).collect();
        assert_eq!(order, ["w4", "w3", "w2", "w1"], "highest priority first");
        for pair in ran.windows(2) {
            assert!(
                pair[0].2 <= pair[1].1,
                "{} started before {} ended: {ran:?}",
                pair[1].0,
                pair[0].0
            );
        }

        // `big` needs 2 slots of a 1-slot pool: it waits `scheduled` for good, and did not
        // hold back the others although its priority is the highest.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let big = &task_instances(&app, "pooled", &run_id).await["big"];
        assert_eq!(state(big), "scheduled", "{big}");
        assert!(big["start_date"].is_null(), "{big}");
        let run = get_run(&app, "pooled", &run_id).await;
        assert_eq!(run["state"], "running", "{run}");
    }
);

// ---------------------------------------------------------------------------------------
// 5. max_active_runs
// ---------------------------------------------------------------------------------------

db_test!(
    max_active_runs_one_runs_the_runs_one_after_another,
    |backend| async move {
        let app = spawn_app(backend).await;
        // Created paused, so all three runs are queued before any may start (and the
        // triggers do not race the engine's writes: see triggers_are_accepted_...).
        let yaml = r#"dag_id: one_run_at_a_time
is_paused_upon_creation: true
max_active_runs: 1
tasks:
  - {id: work, operator: bash, with: {bash_command: "sleep 0.3"}}
"#;
        write_dag(&app, "one_run_at_a_time", yaml).await;
        let mut run_ids = Vec::new();
        // Triggered out of order: they run by logical date.
        for day in ["2024-01-03", "2024-01-01", "2024-01-02"] {
            let body = json!({"logical_date": format!("{day}T00:00:00Z")});
            run_ids.push(run_id_of(&trigger(&app, "one_run_at_a_time", body).await));
        }
        unpause(&app, "one_run_at_a_time").await;

        // Watch the runs in consistent snapshots (one query) until all have ended.
        let started = Instant::now();
        let mut saw_others_queued = false;
        loop {
            let runs = dag_run::Entity::find()
                .filter(dag_run::Column::DagId.eq("one_run_at_a_time"))
                .all(app.db.conn())
                .await
                .expect("read dag_run");
            let states: Vec<&str> = runs.iter().map(|r| r.state.as_str()).collect();
            let running = states.iter().filter(|s| **s == "running").count();
            assert!(running <= 1, "runs overlap: {states:?}");
            for run in &runs {
                if run.start_date.is_none() {
                    assert_eq!(run.state, "queued", "a run waiting its turn: {run:?}");
                }
            }
            if running == 1 && states.iter().filter(|s| **s == "queued").count() == 2 {
                saw_others_queued = true;
            }
            if states.iter().all(|s| matches!(*s, "success" | "failed")) {
                break;
            }
            assert!(started.elapsed() < PATIENCE, "runs did not end: {runs:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            saw_others_queued,
            "the other runs waited queued while the first ran"
        );

        let mut runs = Vec::new();
        for run_id in &run_ids {
            let run = get_run(&app, "one_run_at_a_time", run_id).await;
            assert_eq!(run["state"], "success", "{run}");
            runs.push(run);
        }
        // Oldest logical date first, each after the previous one ended.
        runs.sort_by_key(|r| time(r, "logical_date"));
        for pair in runs.windows(2) {
            assert!(
                time(&pair[1], "start_date") >= time(&pair[0], "end_date"),
                "{runs:#?}"
            );
        }
    }
);

// ---------------------------------------------------------------------------------------
// 6. max_active_tasks
// ---------------------------------------------------------------------------------------

db_test!(
    max_active_tasks_limits_the_tasks_running_at_once_in_a_run,
    |backend| async move {
        let app = spawn_app(backend).await;
        let mut yaml = String::from(
            "dag_id: two_at_a_time\nis_paused_upon_creation: false\nmax_active_tasks: 2\ntasks:\n",
        );
        for i in 1..=6 {
            yaml.push_str(&format!(
                "  - {{id: t{i}, operator: bash, with: {{bash_command: \"sleep 0.3\"}}}}\n"
            ));
        }
        write_dag(&app, "two_at_a_time", &yaml).await;
        let run_id = run_id_of(&trigger(&app, "two_at_a_time", json!({})).await);
        let run = wait_for_run(&app, "two_at_a_time", &run_id).await;
        assert_eq!(run["state"], "success", "{run}");
        let tis = task_instances(&app, "two_at_a_time", &run_id).await;
        assert_eq!(tis.len(), 6);
        assert!(tis.values().all(|ti| state(ti) == "success"), "{tis:#?}");
        let overlap = max_overlap(&intervals(&tis));
        assert!(overlap <= 2, "{overlap} tasks ran at once: {tis:#?}");
    }
);

// ---------------------------------------------------------------------------------------
// 7. depends_on_past
// ---------------------------------------------------------------------------------------

fn depends_on_past_dag(dag_id: &str) -> String {
    format!(
        r#"dag_id: {dag_id}
is_paused_upon_creation: false
tasks:
  - id: a
    operator: bash
    depends_on_past: true
    with:
      bash_command: |
        test "{{{{ dag_run.conf.get('fail', 'no') }}}}" != yes
"#
    )
}

db_test!(
    depends_on_past_waits_for_the_previous_run_to_have_succeeded,
    |backend| async move {
        let app = spawn_app(backend).await;
        write_dag(&app, "past_failed", &depends_on_past_dag("past_failed")).await;
        write_dag(
            &app,
            "past_succeeded",
            &depends_on_past_dag("past_succeeded"),
        )
        .await;
        let d1 = "2024-01-01T00:00:00Z";
        let d2 = "2024-01-02T00:00:00Z";

        // `a` fails at D1 ...
        let first = run_id_of(
            &trigger(
                &app,
                "past_failed",
                json!({"logical_date": d1, "conf": {"fail": "yes"}}),
            )
            .await,
        );
        let run = wait_for_run(&app, "past_failed", &first).await;
        assert_eq!(run["state"], "failed", "{run}");
        // ... so at D2 it does not start, while the run goes on.
        let second = run_id_of(&trigger(&app, "past_failed", json!({"logical_date": d2})).await);
        let started = Instant::now();
        while get_run(&app, "past_failed", &second).await["state"] != "running" {
            assert!(started.elapsed() < PATIENCE, "the D2 run never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let watched = Instant::now();
        while watched.elapsed() < Duration::from_millis(1500) {
            let a = &task_instances(&app, "past_failed", &second).await["a"];
            assert!(a["state"].is_null(), "a ran although it failed before: {a}");
            let run = get_run(&app, "past_failed", &second).await;
            assert_eq!(run["state"], "running", "{run}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // Where `a` succeeded at D1, it runs at D2.
        let first = run_id_of(&trigger(&app, "past_succeeded", json!({"logical_date": d1})).await);
        let run = wait_for_run(&app, "past_succeeded", &first).await;
        assert_eq!(run["state"], "success", "{run}");
        let second = run_id_of(&trigger(&app, "past_succeeded", json!({"logical_date": d2})).await);
        let run = wait_for_run(&app, "past_succeeded", &second).await;
        assert_eq!(run["state"], "success", "{run}");
        let a = &task_instances(&app, "past_succeeded", &second).await["a"];
        assert_eq!(state(a), "success", "{a}");
    }
);

// ---------------------------------------------------------------------------------------
// 8. dagrun_timeout
// ---------------------------------------------------------------------------------------

db_test!(
    dagrun_timeout_fails_the_run_skips_its_tasks_and_kills_them,
    |backend| async move {
        let app = spawn_app(backend).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let pidfile = dir.path().join("child.pid");
        let yaml = format!(
            r#"dag_id: run_timeout
is_paused_upon_creation: false
dagrun_timeout: 1s
tasks:
  - id: long
    operator: bash
    with: {{bash_command: "sleep 30 & echo $! > {}; wait"}}
"#,
            pidfile.display()
        );
        write_dag(&app, "run_timeout", &yaml).await;
        let run_id = run_id_of(&trigger(&app, "run_timeout", json!({})).await);
        let pid = read_pid(&pidfile).await;
        let run = wait_for_run(&app, "run_timeout", &run_id).await;
        assert_eq!(run["state"], "failed", "{run}");
        // Ended by the 1 s timeout, not by the 30 s sleep.
        let took = time(&run, "end_date") - time(&run, "start_date");
        assert!(took >= chrono::Duration::seconds(1) - CLOCK_SLACK, "{run}");
        assert!(took < chrono::Duration::seconds(20), "{run}");
        let ti = &task_instances(&app, "run_timeout", &run_id).await["long"];
        assert_eq!(state(ti), "skipped", "{ti}");
        assert_killed(pid, "the task's child after dagrun_timeout").await;
    }
);

// ---------------------------------------------------------------------------------------
// 9. Paused DAGs
// ---------------------------------------------------------------------------------------

db_test!(
    a_run_of_a_paused_dag_waits_queued_until_it_is_unpaused,
    |backend| async move {
        let app = spawn_app(backend).await;
        let yaml = r#"dag_id: paused
is_paused_upon_creation: true
tasks:
  - {id: work, operator: bash, with: {bash_command: "true"}}
"#;
        write_dag(&app, "paused", yaml).await;
        let run_id = run_id_of(&trigger(&app, "paused", json!({})).await);
        let watched = Instant::now();
        while watched.elapsed() < Duration::from_secs(1) {
            let run = get_run(&app, "paused", &run_id).await;
            assert_eq!(run["state"], "queued", "{run}");
            assert!(run["start_date"].is_null(), "{run}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let work = &task_instances(&app, "paused", &run_id).await["work"];
        assert!(work["state"].is_null(), "{work}");

        unpause(&app, "paused").await;
        let run = wait_for_run(&app, "paused", &run_id).await;
        assert_eq!(run["state"], "success", "{run}");
    }
);

// ---------------------------------------------------------------------------------------
// The engine under concurrent writes, and tries whose end was not recorded
// ---------------------------------------------------------------------------------------

// Triggers runs back to back while the scheduler and worker are busy with the earlier ones:
// every trigger is accepted (on SQLite, a transaction that reads before it writes fails at
// once with SQLITE_BUSY when another connection commits in between).
db_test!(
    triggers_are_accepted_while_the_engine_writes,
    |backend| async move {
        let app = spawn_app(backend).await;
        let mut yaml = String::from("dag_id: busy\nis_paused_upon_creation: false\ntasks:\n");
        for i in 1..=5 {
            yaml.push_str(&format!("  - {{id: t{i}, operator: empty}}\n"));
        }
        write_dag(&app, "busy", &yaml).await;
        let mut failures = Vec::new();
        for day in 1..=20 {
            let body = json!({"logical_date": format!("2024-01-{day:02}T00:00:00Z")});
            let res = app
                .client
                .post(app.url("/api/v2/dags/busy/dagRuns"))
                .json(&body)
                .send()
                .await
                .expect("request sent");
            let status = res.status().as_u16();
            if status != 200 {
                let text = res.text().await.unwrap_or_default();
                failures.push(format!("{body}: {status} {text}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
);

// Many short tries ending while the scheduler queues their successors: every end is
// recorded (none lost to SQLITE_BUSY), and the run finishes.
db_test!(
    tries_ending_together_are_all_recorded,
    |backend| async move {
        let app = spawn_app(backend).await;
        let mut yaml = String::from(
            "dag_id: wide\nis_paused_upon_creation: true\nmax_active_tasks: 64\ntasks:\n",
        );
        yaml.push_str("  - {id: start, operator: bash, with: {bash_command: \"true\"}}\n");
        for i in 1..=48 {
            yaml.push_str(&format!(
                "  - {{id: t{i}, operator: empty, depends_on: [start]}}\n\
                 \x20 - {{id: u{i}, operator: empty, depends_on: [t{i}]}}\n"
            ));
        }
        write_dag(&app, "wide", &yaml).await;
        // Two runs start together (queued while paused), for more tries ending at once.
        let mut run_ids = Vec::new();
        for day in ["2024-01-01", "2024-01-02"] {
            let body = json!({"logical_date": format!("{day}T00:00:00Z")});
            run_ids.push(run_id_of(&trigger(&app, "wide", body).await));
        }
        unpause(&app, "wide").await;
        for run_id in &run_ids {
            let run = wait_for_run(&app, "wide", run_id).await;
            assert_eq!(run["state"], "success", "{run}");
        }
    }
);

/// Leaves a try of `dag_id`'s only run as a dead worker does: the process gone, the row still
/// `running` under the worker's lease (expiring in 3 s), after `reclaims` earlier re-claims.
async fn orphan_the_try(app: &TestApp, dag_id: &str, reclaims: i32) -> String {
    let yaml = format!(
        "dag_id: {dag_id}\nis_paused_upon_creation: true\ntasks:\n  - {{id: a, operator: bash, with: {{bash_command: \"true\"}}}}\n"
    );
    write_dag(app, dag_id, &yaml).await;
    let run_id = run_id_of(&trigger(app, dag_id, json!({})).await);
    let worker = job::Entity::find()
        .filter(job::Column::JobType.eq(JobType::Worker.as_str()))
        .one(app.db.conn())
        .await
        .expect("read job")
        .expect("the worker registered");
    let now = Utc::now();
    task_instance::Entity::update_many()
        .col_expr(task_instance::Column::State, Expr::value("running"))
        .col_expr(task_instance::Column::TryNumber, Expr::value(1))
        .col_expr(task_instance::Column::StartDate, Expr::value(now))
        .col_expr(task_instance::Column::LeaseOwner, Expr::value(worker.id))
        .col_expr(task_instance::Column::Reclaims, Expr::value(reclaims))
        .col_expr(
            task_instance::Column::LeaseExpiresAt,
            Expr::value(now + chrono::Duration::seconds(3)),
        )
        .filter(task_instance::Column::DagId.eq(dag_id))
        .exec(app.db.conn())
        .await
        .expect("orphan the try");
    dag_run::Entity::update_many()
        .col_expr(dag_run::Column::State, Expr::value("running"))
        .col_expr(dag_run::Column::StartDate, Expr::value(now))
        .filter(dag_run::Column::DagId.eq(dag_id))
        .exec(app.db.conn())
        .await
        .expect("start the run");
    app.engine.signals.wake_scheduler();
    run_id
}

// A try whose worker died goes back to the queue when its lease runs out, as the same try
// (the worker's death is not the task's failure), and runs again.
db_test!(
    a_try_whose_worker_died_is_reclaimed_without_costing_a_retry,
    |backend| async move {
        let app = spawn_app_with(backend, &[("UPDRAFT__WORKER__LEASE_TIMEOUT", "3s")]).await;
        let run_id = orphan_the_try(&app, "orphan", 0).await;
        let run = wait_for_run(&app, "orphan", &run_id).await;
        assert_eq!(run["state"], "success", "{run}");
        let tis = task_instances(&app, "orphan", &run_id).await;
        assert_eq!(tis["a"]["try_number"], 1, "{}", tis["a"]);
        let row = task_instance::Entity::find()
            .filter(task_instance::Column::DagId.eq("orphan"))
            .one(app.db.conn())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.reclaims, 1);
    }
);

// After its re-claims are used up, a try whose lease runs out fails as Airflow fails a zombie:
// without retries left it ends failed, and so does its run.
db_test!(
    a_running_task_instance_that_no_worker_executes_fails_when_its_lease_runs_out,
    |backend| async move {
        let app = spawn_app_with(backend, &[("UPDRAFT__WORKER__LEASE_TIMEOUT", "3s")]).await;
        let run_id = orphan_the_try(&app, "orphan", updraft::scheduler::engine::MAX_RECLAIMS).await;
        let ti = wait_task_instances(&app, "orphan", &run_id, "the zombie to be failed", |tis| {
            state(&tis["a"]) != "running"
        })
        .await;
        assert_eq!(state(&ti["a"]), "failed", "{}", ti["a"]);
        let run = wait_for_run(&app, "orphan", &run_id).await;
        assert_eq!(run["state"], "failed", "{run}");
    }
);
