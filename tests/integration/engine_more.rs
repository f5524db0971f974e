//! The engine end to end: templates, XCom, python, paused DAGs, versions, catchup, and the run commands of the CLI.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::{json, Value};
use updraft::store::dags::{dag, dag_version};
use updraft::store::entities::{connection, dag_run, task_instance, variable, xcom};

use crate::db_test;
use crate::engine_helpers::*;
use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// Helpers

/// A log's lines without their `[timestamp] ` prefix.
fn log_texts(log: &str) -> Vec<&str> {
    log.lines()
        .map(|line| {
            assert!(line.starts_with('['), "a log line has a timestamp: {line}");
            line.split_once("] ").map_or("", |(_, text)| text)
        })
        .collect()
}

/// The run's `return_value` XComs by task id, as JSON.
async fn xcoms(app: &TestApp, dag_id: &str, run_id: &str) -> HashMap<String, Value> {
    xcom::Entity::find()
        .filter(xcom::Column::DagId.eq(dag_id))
        .filter(xcom::Column::RunId.eq(run_id))
        .all(app.db.conn())
        .await
        .unwrap()
        .into_iter()
        .map(|x| {
            assert_eq!(x.key, "return_value");
            assert_eq!(x.map_index, -1);
            let value = serde_json::from_str(&x.value)
                .unwrap_or_else(|e| panic!("XCom of {} is not JSON ({e}): {}", x.task_id, x.value));
            (x.task_id, value)
        })
        .collect()
}

async fn run_row(app: &TestApp, dag_id: &str, run_id: &str) -> dag_run::Model {
    dag_run::Entity::find()
        .filter(dag_run::Column::DagId.eq(dag_id))
        .filter(dag_run::Column::RunId.eq(run_id))
        .one(app.db.conn())
        .await
        .unwrap()
        .expect("the run exists")
}

/// An API date-time (`2024-01-01T00:00:00Z`) as an instant.
fn api_time(v: &Value) -> DateTime<Utc> {
    utc(v.as_str().unwrap_or_else(|| panic!("not a date-time: {v}")))
}

// ---------------------------------------------------------------------------------------------
// 1. Templates

const MANUAL_RUN_ID: &str = "manual__2024-01-01T00:00:00+00:00";

db_test!(
    templated_command_renders_airflows_values_for_a_manual_daily_run,
    |backend| async move {
        let app = spawn_app(backend).await;
        let conn = app.db.conn();
        variable::ActiveModel {
            key: Set("v".into()),
            val: Set("plain value".into()),
            description: Set(None),
            is_encrypted: Set(false),
            ..Default::default()
        }
        .insert(conn)
        .await
        .unwrap();
        variable::ActiveModel {
            key: Set("j".into()),
            val: Set(r#"{"k": "deep", "n": [1, 2]}"#.into()),
            description: Set(None),
            is_encrypted: Set(false),
            ..Default::default()
        }
        .insert(conn)
        .await
        .unwrap();
        connection::ActiveModel {
            conn_id: Set("c".into()),
            conn_type: Set("postgres".into()),
            description: Set(None),
            host: Set(Some("db.example.com".into())),
            schema: Set(Some("warehouse".into())),
            login: Set(Some("reader".into())),
            password: Set(None),
            port: Set(Some(5432)),
            extra: Set(None),
            is_encrypted: Set(false),
            is_extra_encrypted: Set(false),
            ..Default::default()
        }
        .insert(conn)
        .await
        .unwrap();

        // (label, template, what Airflow renders for a manual run of a @daily DAG at
        // 2024-01-01T00:00Z: its data interval is the last complete day before it).
        let templated: &[(&str, &str, &str)] = &[
            ("ds", "{{ ds }}", "2024-01-01"),
            ("ds_nodash", "{{ ds_nodash }}", "20240101"),
            ("ts", "{{ ts }}", "2024-01-01T00:00:00+00:00"),
            ("ts_nodash", "{{ ts_nodash }}", "20240101T000000"),
            (
                "logical_date",
                "{{ logical_date }}",
                "2024-01-01 00:00:00+00:00",
            ),
            (
                "data_interval_start",
                "{{ data_interval_start }}",
                "2023-12-31 00:00:00+00:00",
            ),
            (
                "data_interval_end",
                "{{ data_interval_end }}",
                "2024-01-01 00:00:00+00:00",
            ),
            ("run_id", "{{ run_id }}", MANUAL_RUN_ID),
            ("p", "{{ params.p }}", "from conf"),
            ("q", "{{ params.q }}", "default q"),
            ("who", "{{ dag_run.conf.who }}", "x"),
            ("week_later", "{{ macros.ds_add(ds, 7) }}", "2024-01-08"),
            // Rendered, then masked: a variable a task reads is a secret in its log (docs/api.md).
            ("var", "{{ var.value.v }}", "***"),
            ("var_json", "{{ var.json.j.k }}", "deep"),
            ("conn_host", "{{ conn.c.host }}", "db.example.com"),
            ("conn_port", "{{ conn.c.port }}", "5432"),
        ];
        // (label, variable, value): the process environment, not templates.
        let environment: &[(&str, &str, &str)] = &[
            ("ctx_dag", "UPDRAFT_CTX_DAG_ID", "templates"),
            ("ctx_task", "UPDRAFT_CTX_TASK_ID", "show"),
            ("ctx_run", "UPDRAFT_CTX_DAG_RUN_ID", MANUAL_RUN_ID),
            (
                "ctx_logical",
                "UPDRAFT_CTX_LOGICAL_DATE",
                "2024-01-01T00:00:00+00:00",
            ),
            ("ctx_try", "UPDRAFT_CTX_TRY_NUMBER", "1"),
            ("airflow_dag", "AIRFLOW_CTX_DAG_ID", "templates"),
            ("airflow_run", "AIRFLOW_CTX_DAG_RUN_ID", MANUAL_RUN_ID),
        ];
        let mut command = String::new();
        let mut rendered = String::new();
        let mut printed = Vec::new();
        for (label, template, value) in templated {
            command.push_str(&format!("echo \"{label}={template}\"\n"));
            rendered.push_str(&format!("echo \"{label}={value}\"\n"));
            printed.push(format!("{label}={value}"));
        }
        for (label, name, value) in environment {
            command.push_str(&format!("echo \"{label}=${name}\"\n"));
            rendered.push_str(&format!("echo \"{label}=${name}\"\n"));
            printed.push(format!("{label}={value}"));
        }
        // Jinja drops a template's final newline (Airflow keeps `keep_trailing_newline` off).
        rendered.pop();
        let block: String = command.lines().map(|l| format!("        {l}\n")).collect();
        write_dag(
            &app,
            "templates",
            &format!(
                "dag_id: templates\nschedule: \"@daily\"\nstart_date: 2023-01-01\nis_paused_upon_creation: false\n\
                 params:\n  p: default p\n  q: default q\ntasks:\n  - id: show\n    operator: bash\n    with:\n      bash_command: |\n{block}"
            ),
        )
        .await;
        // The scheduler runs the latest @daily interval by itself: let it finish first, so the
        // trigger below meets an idle engine (see `triggering_while_tasks_finish_is_never_a_500`).
        let deadline = Instant::now() + PATIENCE;
        while !scheduled_runs(&app, "templates")
            .await
            .first()
            .is_some_and(|r| r.state == "success" || r.state == "failed")
        {
            assert!(
                Instant::now() < deadline,
                "the scheduled run never finished"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let created = trigger(
            &app,
            "templates",
            json!({"logical_date": "2024-01-01T00:00:00Z", "conf": {"who": "x", "p": "from conf"}}),
        )
        .await;
        assert_eq!(created["dag_run_id"], MANUAL_RUN_ID, "{created}");
        assert_eq!(created["run_type"], "manual");
        assert_eq!(
            api_time(&created["logical_date"]),
            utc("2024-01-01T00:00:00Z")
        );
        assert_eq!(
            api_time(&created["data_interval_start"]),
            utc("2023-12-31T00:00:00Z")
        );
        assert_eq!(
            api_time(&created["data_interval_end"]),
            utc("2024-01-01T00:00:00Z")
        );
        assert_eq!(created["conf"], json!({"who": "x", "p": "from conf"}));

        let run = wait_for_run(&app, "templates", MANUAL_RUN_ID).await;
        let tis = task_instances(&app, "templates", MANUAL_RUN_ID).await;
        let log = task_log(&app, "templates", MANUAL_RUN_ID, "show", 1);
        assert_eq!(run["state"], "success", "{log}");
        assert_eq!(tis["show"]["try_number"], 1);
        assert_eq!(
            tis["show"]["rendered_fields"]["bash_command"].as_str(),
            Some(rendered.as_str()),
            "{}",
            tis["show"]
        );
        let lines = log_texts(&log);
        for line in &printed {
            assert!(
                lines.contains(&line.as_str()),
                "`{line}` missing from:\n{log}"
            );
        }
    }
);

// A connection password a template reads never reaches the log or the rendered fields.
db_test!(
    a_connection_password_read_by_a_template_is_masked,
    |backend| async move {
        let app = spawn_app(backend).await;
        connection::ActiveModel {
            conn_id: Set("db".into()),
            conn_type: Set("postgres".into()),
            description: Set(None),
            host: Set(Some("db.example.com".into())),
            schema: Set(None),
            login: Set(Some("reader".into())),
            password: Set(Some("s3cret-Passw0rd".into())),
            port: Set(None),
            extra: Set(None),
            is_encrypted: Set(false),
            is_extra_encrypted: Set(false),
            ..Default::default()
        }
        .insert(app.db.conn())
        .await
        .unwrap();
        write_dag(
            &app,
            "secret",
            "dag_id: secret\nis_paused_upon_creation: false\ntasks:\n  - id: use\n    operator: bash\n    with:\n      bash_command: \"echo pw={{ conn.db.password }} host={{ conn.db.host }}\"\n",
        )
        .await;
        let run = trigger(&app, "secret", json!({"dag_run_id": "r1"})).await;
        let run_id = run["dag_run_id"].as_str().unwrap().to_string();
        let run = wait_for_run(&app, "secret", &run_id).await;
        assert_eq!(run["state"], "success", "{run}");
        let log = task_log(&app, "secret", &run_id, "use", 1);
        assert!(!log.contains("s3cret-Passw0rd"), "{log}");
        assert!(log.contains("pw=*** host=db.example.com"), "{log}");
        let tis = task_instances(&app, "secret", &run_id).await;
        let rendered = tis["use"]["rendered_fields"].to_string();
        assert!(!rendered.contains("s3cret-Passw0rd"), "{rendered}");
        assert!(rendered.contains("pw=***"), "{rendered}");
    }
);

// ---------------------------------------------------------------------------------------------
// 2. XCom

db_test!(
    xcoms_carry_bash_lines_and_python_results_downstream,
    |backend| async move {
        let app = spawn_app(backend).await;
        write_dag(
            &app,
            "xcoms",
            r#"dag_id: xcoms
is_paused_upon_creation: false
tasks:
  - id: a
    operator: bash
    with: {bash_command: "echo first line; echo hello world"}
  - id: p
    operator: python
    with:
      code: |
        return {"rows": 3}
  - id: b
    operator: bash
    depends_on: [a, p, quiet_bash]
    with: {bash_command: "echo \"none: {{ ti.xcom_pull('quiet_bash') }}\"; echo \"got {{ ti.xcom_pull('a') }} and {{ ti.xcom_pull('p') }}\""}
  - id: q
    operator: python
    depends_on: [a, p]
    with:
      op_kwargs:
        x: "{{ ti.xcom_pull('a') }}"
        n: 7
      code: |
        print("x is", x)
        return [x, n]
  - id: quiet_bash
    operator: bash
    with: {bash_command: "echo not pushed", do_xcom_push: false}
  - id: quiet_python
    operator: python
    with: {code: "return 1", do_xcom_push: false}
"#,
        )
        .await;
        trigger(&app, "xcoms", json!({"dag_run_id": "x1"})).await;
        let run = wait_for_run(&app, "xcoms", "x1").await;
        let tis = task_instances(&app, "xcoms", "x1").await;
        assert_eq!(run["state"], "success", "{tis:#?}");

        let pushed = xcoms(&app, "xcoms", "x1").await;
        // The last stdout line, as a JSON string.
        assert_eq!(pushed["a"], json!("hello world"));
        assert_eq!(pushed["p"], json!({"rows": 3}));
        // Templates render to text: a dict prints as Python's str() does.
        // A missing XCom is None, which prints as Python does.
        assert_eq!(
            tis["b"]["rendered_fields"]["bash_command"],
            "echo \"none: None\"; echo \"got hello world and {'rows': 3}\""
        );
        assert_eq!(pushed["b"], json!("got hello world and {'rows': 3}"));
        assert_eq!(
            tis["q"]["rendered_fields"]["op_kwargs"],
            json!({"x": "hello world", "n": 7})
        );
        assert_eq!(pushed["q"], json!(["hello world", 7]));
        assert!(log_texts(&task_log(&app, "xcoms", "x1", "q", 1)).contains(&"x is hello world"));
        // do_xcom_push: false pushes no row.
        for task in ["quiet_bash", "quiet_python"] {
            assert!(!pushed.contains_key(task), "{task}: {pushed:?}");
        }
        assert_eq!(pushed.len(), 4, "{pushed:?}");
    }
);

// Airflow's SubprocessHook keeps `line.rstrip()` of the last stdout line ("" when there was no
// output) and BashOperator returns it; only None is not pushed.
db_test!(
    bash_return_value_is_the_last_line_rstripped,
    |backend| async move {
        let app = spawn_app(backend).await;
        write_dag(
            &app,
            "padded",
            "dag_id: padded\nis_paused_upon_creation: false\ntasks:\n  - id: padded\n    operator: bash\n    with: {bash_command: \"printf 'first\\\\nvalue \\\\t \\\\n'\"}\n",
        )
        .await;
        trigger(&app, "padded", json!({"dag_run_id": "r"})).await;
        let run = wait_for_run(&app, "padded", "r").await;
        assert_eq!(run["state"], "success");
        let pushed = xcoms(&app, "padded", "r").await;
        assert_eq!(pushed.get("padded"), Some(&json!("value")), "{pushed:?}");
    }
);

db_test!(
    bash_without_output_pushes_an_empty_string,
    |backend| async move {
        let app = spawn_app(backend).await;
        write_dag(
            &app,
            "silent",
            "dag_id: silent\nis_paused_upon_creation: false\ntasks:\n  - id: silent\n    operator: bash\n    with: {bash_command: \"true\"}\n",
        )
        .await;
        trigger(&app, "silent", json!({"dag_run_id": "r"})).await;
        let run = wait_for_run(&app, "silent", "r").await;
        assert_eq!(run["state"], "success");
        let pushed = xcoms(&app, "silent", "r").await;
        assert_eq!(pushed.get("silent"), Some(&json!("")), "{pushed:?}");
    }
);

db_test!(
    a_run_triggered_without_a_date_gets_airflows_run_id_and_ts,
    |backend| async move {
        let app = spawn_app(backend).await;
        write_dag(
            &app,
            "now",
            "dag_id: now\nis_paused_upon_creation: false\ntasks:\n  - id: show\n    operator: bash\n    with: {bash_command: \"echo \\\"{{ ts }}|{{ run_id }}|$UPDRAFT_CTX_LOGICAL_DATE\\\"\"}\n",
        )
        .await;
        let created = trigger(&app, "now", json!({})).await;
        let logical = api_time(&created["logical_date"]);
        // Python's isoformat(): microseconds, six digits, left out when zero.
        let python_iso = if logical.timestamp_subsec_micros() == 0 {
            logical.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
        } else {
            logical.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
        };
        assert_eq!(
            logical.timestamp_subsec_nanos() % 1000,
            0,
            "Airflow's dates have microseconds: {created}"
        );
        let run_id = format!("manual__{python_iso}");
        assert_eq!(created["dag_run_id"], run_id.as_str(), "{created}");
        let run = wait_for_run(&app, "now", &run_id).await;
        assert_eq!(run["state"], "success");
        let log = task_log(&app, "now", &run_id, "show", 1);
        let expected = format!("{python_iso}|{run_id}|{python_iso}");
        assert!(
            log_texts(&log).contains(&expected.as_str()),
            "{expected}\n{log}"
        );
    }
);

db_test!(
    an_xcom_over_core_xcom_max_size_fails_the_task,
    |backend| async move {
        let app = spawn_app_with(backend, &[("UPDRAFT__CORE__XCOM_MAX_SIZE", "100")]).await;
        let long = "x".repeat(200);
        let fits = "y".repeat(90);
        write_dag(
            &app,
            "big_xcom",
            &format!(
                "dag_id: big_xcom\nis_paused_upon_creation: false\ntasks:\n  - id: big\n    operator: bash\n    with: {{bash_command: \"echo {long}\"}}\n  - id: small\n    operator: bash\n    with: {{bash_command: \"echo {fits}\"}}\n"
            ),
        )
        .await;
        trigger(&app, "big_xcom", json!({"dag_run_id": "r"})).await;
        let run = wait_for_run(&app, "big_xcom", "r").await;
        assert_eq!(run["state"], "failed");
        let tis = task_instances(&app, "big_xcom", "r").await;
        assert_eq!(state(&tis["big"]), "failed");
        assert_eq!(state(&tis["small"]), "success");
        let log = task_log(&app, "big_xcom", "r", "big", 1);
        assert!(log.contains("core.xcom_max_size"), "{log}");
        assert!(
            log.contains("202 bytes, over the limit of 100 bytes"),
            "{log}"
        );
        let pushed = xcoms(&app, "big_xcom", "r").await;
        assert!(!pushed.contains_key("big"), "{pushed:?}");
        assert_eq!(pushed["small"], json!(fits));
    }
);

// ---------------------------------------------------------------------------------------------
// 3. Python

db_test!(
    python_tasks_fail_with_a_traceback_skip_and_call_scripts,
    |backend| async move {
        let app = spawn_app(backend).await;
        let dags = &app.config.dags_folder;
        std::fs::create_dir_all(dags.join("scripts")).unwrap();
        std::fs::write(
            dags.join("scripts/job.py"),
            "import helper\n\ndef main(ds, n, name):\n    print('job sees', ds, n, name)\n    return {'ds': ds, 'n': helper.double(n), 'name': name}\n",
        )
        .unwrap();
        // A module next to the script is importable.
        std::fs::write(
            dags.join("scripts/helper.py"),
            "def double(n):\n    return n * 2\n",
        )
        .unwrap();
        write_dag(
            &app,
            "py",
            r#"dag_id: py
is_paused_upon_creation: false
params: {who: someone}
tasks:
  - id: boom
    operator: python
    with:
      code: |
        def check(value):
            raise ValueError("bad input: " + value)
        check("42")
  - id: skip_me
    operator: python
    with:
      code: |
        raise AirflowSkipException('x')
  - id: after_skip
    operator: bash
    depends_on: [skip_me]
    with: {bash_command: "echo never"}
  - id: script
    operator: python
    with:
      python_callable: scripts/job.py:main
      op_kwargs:
        n: 21
        name: "{{ params.who }}"
"#,
        )
        .await;
        trigger(
            &app,
            "py",
            json!({"dag_run_id": "p1", "logical_date": "2024-01-01T00:00:00Z", "conf": {"who": "ann"}}),
        )
        .await;
        let run = wait_for_run(&app, "py", "p1").await;
        let tis = task_instances(&app, "py", "p1").await;
        assert_eq!(run["state"], "failed", "{tis:#?}");

        assert_eq!(state(&tis["boom"]), "failed");
        let log = task_log(&app, "py", "p1", "boom", 1);
        assert!(log.contains("Traceback (most recent call last):"), "{log}");
        assert!(log.contains("in check"), "{log}");
        assert!(log.contains("ValueError: bad input: 42"), "{log}");
        assert!(
            log.contains("Task failed: the task raised ValueError: bad input: 42"),
            "{log}"
        );
        // The bootstrap's own frames are not shown.
        assert!(!log.contains("_run_body"), "{log}");

        assert_eq!(state(&tis["skip_me"]), "skipped");
        let log = task_log(&app, "py", "p1", "skip_me", 1);
        assert!(log.contains("skipped: x"), "{log}");
        assert!(!log.contains("Traceback"), "{log}");
        // all_success downstream of a skip is skipped, as in Airflow.
        assert_eq!(state(&tis["after_skip"]), "skipped");

        assert_eq!(state(&tis["script"]), "success");
        let pushed = xcoms(&app, "py", "p1").await;
        assert_eq!(
            pushed["script"],
            json!({"ds": "2024-01-01", "n": 42, "name": "ann"})
        );
        let log = task_log(&app, "py", "p1", "script", 1);
        assert!(
            log_texts(&log).contains(&"job sees 2024-01-01 21 ann"),
            "{log}"
        );
        assert!(!pushed.contains_key("boom") && !pushed.contains_key("skip_me"));
    }
);

// ---------------------------------------------------------------------------------------------
// 4. DAG versions

db_test!(
    a_run_keeps_the_dag_version_it_started_with,
    |backend| async move {
        let app = spawn_app(backend).await;
        let gate = app.home.path().join("gate");
        let dag_file = |second: &str| {
            format!(
                "dag_id: versioned\nis_paused_upon_creation: false\ntasks:\n  - id: a\n    operator: bash\n    with:\n      bash_command: \"for i in $(seq 600); do [ -f {gate} ] && break; sleep 0.1; done; echo gate open\"\n  - id: b\n    operator: bash\n    depends_on: [a]\n    with: {{bash_command: \"echo {second}\"}}\n",
                gate = gate.display()
            )
        };
        write_dag(&app, "versioned", &dag_file("old command")).await;
        let first = trigger(&app, "versioned", json!({"dag_run_id": "first"})).await;
        let old_version = first["dag_version_id"].as_i64().expect("a version id");

        // Change the file while the run's first task runs.
        let deadline = Instant::now() + PATIENCE;
        while state(&task_instances(&app, "versioned", "first").await["a"]) != "running" {
            assert!(Instant::now() < deadline, "task a never ran");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Only the file: the DAG is registered already, the loop below waits for the version.
        let dags = &app.config.dags_folder;
        write_dag_file(dags, "versioned.yaml", &dag_file("new command"));
        let deadline = Instant::now() + PATIENCE;
        let new_version = loop {
            let row = dag::Entity::find_by_id("versioned".to_string())
                .one(app.db.conn())
                .await
                .unwrap()
                .unwrap();
            match row.current_version_id {
                Some(v) if v != old_version => break v,
                _ => {}
            }
            assert!(Instant::now() < deadline, "the new version never came");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        std::fs::write(&gate, "").unwrap();

        let run = wait_for_run(&app, "versioned", "first").await;
        assert_eq!(run["state"], "success");
        let tis = task_instances(&app, "versioned", "first").await;
        assert_eq!(
            tis["b"]["rendered_fields"]["bash_command"],
            "echo old command"
        );
        let log = task_log(&app, "versioned", "first", "b", 1);
        assert!(log_texts(&log).contains(&"old command"), "{log}");
        assert!(!log.contains("new command"), "{log}");

        let second = trigger(&app, "versioned", json!({"dag_run_id": "second"})).await;
        assert_eq!(second["dag_version_id"].as_i64(), Some(new_version));
        let run = wait_for_run(&app, "versioned", "second").await;
        assert_eq!(run["state"], "success");
        let tis = task_instances(&app, "versioned", "second").await;
        assert_eq!(
            tis["b"]["rendered_fields"]["bash_command"],
            "echo new command"
        );
        let log = task_log(&app, "versioned", "second", "b", 1);
        assert!(log_texts(&log).contains(&"new command"), "{log}");

        let first_row = run_row(&app, "versioned", "first").await;
        let second_row = run_row(&app, "versioned", "second").await;
        assert_eq!(first_row.dag_version_id, old_version);
        assert_eq!(second_row.dag_version_id, new_version);
        assert_ne!(first_row.dag_version_id, second_row.dag_version_id);
        let versions: Vec<i32> = dag_version::Entity::find()
            .filter(dag_version::Column::DagId.eq("versioned"))
            .all(app.db.conn())
            .await
            .unwrap()
            .into_iter()
            .map(|v| v.version_number)
            .collect();
        assert_eq!(versions.len(), 2, "{versions:?}");
        for ti in task_instance::Entity::find()
            .filter(task_instance::Column::DagId.eq("versioned"))
            .all(app.db.conn())
            .await
            .unwrap()
        {
            let expected = if ti.run_id == "first" {
                old_version
            } else {
                new_version
            };
            assert_eq!(ti.dag_version_id, expected, "{ti:?}");
        }
    }
);

// ---------------------------------------------------------------------------------------------
// 5. Catchup across a DST change

const AMSTERDAM_DAILY: &str = "schedule: \"30 2 * * *\"\ntimezone: Europe/Amsterdam\nstart_date: 2026-10-20\nmax_active_runs: 16\nis_paused_upon_creation: false\ntasks:\n  - id: nothing\n    operator: empty\n";

/// 02:30 in Amsterdam on `day`; on the autumn change, when 02:30 happens twice, the first
/// (summer time) one, as pendulum resolves it for Airflow (`fold=0`).
fn amsterdam_0230(day: NaiveDate) -> DateTime<Utc> {
    chrono_tz::Europe::Amsterdam
        .from_local_datetime(&day.and_hms_opt(2, 30, 0).unwrap())
        .earliest()
        .expect("02:30 exists every day in Amsterdam")
        .with_timezone(&Utc)
}

/// Logical dates of every daily 02:30 interval from 2026-10-20 that has ended by `now`.
fn due_logical_dates(now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut day = NaiveDate::from_ymd_opt(2026, 10, 20).unwrap();
    let mut out = Vec::new();
    while amsterdam_0230(day.succ_opt().unwrap()) <= now {
        out.push(amsterdam_0230(day));
        day = day.succ_opt().unwrap();
    }
    out
}

async fn scheduled_runs(app: &TestApp, dag_id: &str) -> Vec<dag_run::Model> {
    let mut runs = dag_run::Entity::find()
        .filter(dag_run::Column::DagId.eq(dag_id))
        .filter(dag_run::Column::RunType.eq("scheduled"))
        .all(app.db.conn())
        .await
        .unwrap();
    runs.sort_by_key(|r| r.logical_date);
    runs
}

db_test!(
    catchup_creates_one_run_per_local_day_across_the_dst_change,
    |backend| async move {
        let app = spawn_app(backend).await;
        let before = Utc::now();
        write_dag(
            &app,
            "dst_catchup",
            &format!("dag_id: dst_catchup\ncatchup: true\n{AMSTERDAM_DAILY}"),
        )
        .await;
        write_dag(
            &app,
            "dst_latest",
            &format!("dag_id: dst_latest\ncatchup: false\n{AMSTERDAM_DAILY}"),
        )
        .await;

        // Known instants, independent of the helper: summer time (UTC+2) until the change on
        // Sunday 2026-10-25 at 03:00 CEST, winter time (UTC+1) after it.
        assert_eq!(
            amsterdam_0230(NaiveDate::from_ymd_opt(2026, 10, 20).unwrap()),
            utc("2026-10-20T00:30:00Z")
        );
        assert_eq!(
            amsterdam_0230(NaiveDate::from_ymd_opt(2026, 10, 25).unwrap()),
            utc("2026-10-25T00:30:00Z")
        );
        assert_eq!(
            amsterdam_0230(NaiveDate::from_ymd_opt(2026, 10, 26).unwrap()),
            utc("2026-10-26T01:30:00Z")
        );

        // Wait until every due run exists. (Whether they all finish is another test's business:
        // see `many_tries_ending_at_once_are_all_recorded`.)
        let deadline = Instant::now() + PATIENCE;
        let runs = loop {
            let runs = scheduled_runs(&app, "dst_catchup").await;
            let due = due_logical_dates(Utc::now()).len();
            if runs.len() >= due {
                break runs;
            }
            if Instant::now() > deadline {
                let unfinished: Vec<&dag_run::Model> =
                    runs.iter().filter(|r| r.state != "success").collect();
                let tis = task_instance::Entity::find()
                    .filter(task_instance::Column::DagId.eq("dst_catchup"))
                    .all(app.db.conn())
                    .await
                    .unwrap();
                let stuck: Vec<&task_instance::Model> = tis
                    .iter()
                    .filter(|ti| unfinished.iter().any(|r| r.id == ti.dag_run_id))
                    .collect();
                panic!(
                    "{} of {due} runs; unfinished: {unfinished:#?}\ntheir task instances: {stuck:#?}",
                    runs.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        // A tick may pass while the test runs (at 01:30 UTC): either count is right.
        let after = Utc::now();
        let expected = {
            let early = due_logical_dates(before);
            let late = due_logical_dates(after);
            if runs.len() == early.len() {
                early
            } else {
                late
            }
        };
        assert!(
            expected.len() >= 32,
            "the test assumes it runs after 2026-11-21"
        );
        let logical: Vec<DateTime<Utc>> = runs.iter().map(|r| r.logical_date.unwrap()).collect();
        assert_eq!(logical, expected, "one run per local day, none twice");
        assert!(logical.contains(&utc("2026-10-25T00:30:00Z")));
        assert!(logical.contains(&utc("2026-10-26T01:30:00Z")));
        for pair in runs.windows(2) {
            assert_eq!(pair[0].data_interval_end, pair[1].data_interval_start);
        }
        for run in &runs {
            let start = run.data_interval_start.unwrap();
            let end = run.data_interval_end.unwrap();
            assert_eq!(Some(start), run.logical_date);
            assert_eq!(run.run_after, end, "a run is due when its interval ends");
            let local = start.with_timezone(&chrono_tz::Europe::Amsterdam);
            assert_eq!(local.format("%H:%M").to_string(), "02:30", "{}", run.run_id);
            let hours = (end - start).num_hours();
            let expected_hours =
                if local.date_naive() == NaiveDate::from_ymd_opt(2026, 10, 25).unwrap() {
                    25
                } else {
                    24
                };
            assert_eq!(hours, expected_hours, "{}", run.run_id);
            assert_eq!(
                run.run_id,
                format!(
                    "scheduled__{}",
                    start.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
                )
            );
        }

        // The next interval is the one after the newest run.
        let last = expected
            .last()
            .unwrap()
            .with_timezone(&chrono_tz::Europe::Amsterdam);
        let next_day = last.date_naive().succ_opt().unwrap();
        let next_start = amsterdam_0230(next_day);
        let next_end = amsterdam_0230(next_day.succ_opt().unwrap());
        for dag_id in ["dst_catchup", "dst_latest"] {
            let deadline = Instant::now() + PATIENCE;
            loop {
                let row = dag::Entity::find_by_id(dag_id.to_string())
                    .one(app.db.conn())
                    .await
                    .unwrap()
                    .unwrap();
                let got = (
                    row.next_dagrun,
                    row.next_dagrun_data_interval_start,
                    row.next_dagrun_data_interval_end,
                    row.next_dagrun_create_after,
                );
                let want = (
                    Some(next_start),
                    Some(next_start),
                    Some(next_end),
                    Some(next_end),
                );
                if got == want {
                    break;
                }
                assert!(Instant::now() < deadline, "{dag_id}: {got:?} != {want:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }

        // Settled: the scheduler wrote the next interval above, and made no more runs since.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            scheduled_runs(&app, "dst_catchup").await.len(),
            expected.len()
        );
        // Without catchup, only the latest complete interval runs.
        let latest = scheduled_runs(&app, "dst_latest").await;
        assert_eq!(latest.len(), 1, "{latest:?}");
        assert_eq!(latest[0].logical_date, expected.last().copied());
    }
);

// ---------------------------------------------------------------------------------------------
// 6. The CLI's run commands

/// A home with its own DAG folder (SQLite in the home: no DATABASE_URL).
struct CliHome {
    home: tempfile::TempDir,
    dags: PathBuf,
}

impl CliHome {
    fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        let dags = home.path().join("dag_files");
        std::fs::create_dir_all(&dags).unwrap();
        Self { home, dags }
    }

    /// With a copy of `examples/dags`.
    fn with_examples() -> Self {
        let me = Self::new();
        for entry in std::fs::read_dir(repo_root().join("examples/dags")).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, me.dags.join(path.file_name().unwrap())).unwrap();
            }
        }
        me
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = updraft_cmd(self.home.path());
        cmd.env("UPDRAFT__CORE__DAGS_FOLDER", &self.dags).args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        run_with_timeout(self.cmd(args), Duration::from_secs(120))
    }

    async fn db(&self) -> sea_orm::DatabaseConnection {
        let url = format!(
            "sqlite://{}?mode=ro",
            self.home.path().join("updraft.db").display()
        );
        sea_orm::Database::connect(url).await.unwrap()
    }
}

fn both(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        stdout_of(out),
        stderr_of(out)
    )
}

/// Lines of a task in `dags test` output (`task | [timestamp] text`), without the prefix.
fn task_lines<'a>(stdout: &'a str, task_id: &str) -> Vec<&'a str> {
    let prefix = format!("{task_id} | [");
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .map(|rest| rest.split_once("] ").map_or("", |(_, text)| text))
        .collect()
}

#[test]
fn dags_test_runs_the_tutorial_and_prints_airflows_output() {
    let cli = CliHome::with_examples();
    let out = cli.run(&["dags", "test", "tutorial", "2024-01-01"]);
    let all = both(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let stdout = stdout_of(&out);
    let templated = task_lines(&stdout, "templated");
    for (text, times) in [
        ("2024-01-01", 5),
        ("2024-01-08", 5),
        ("Parameter I passed in", 5),
    ] {
        assert_eq!(
            templated.iter().filter(|l| **l == text).count(),
            times,
            "`{text}`:\n{all}"
        );
    }
    // `date` prints today (not the logical date), with the year.
    let year = Utc::now().year().to_string();
    assert!(
        task_lines(&stdout, "print_date")
            .iter()
            .any(|l| l.contains(&year) && !l.starts_with("Executing") && !l.starts_with("Marking")),
        "{all}"
    );
    assert!(!task_lines(&stdout, "sleep").is_empty(), "{all}");
    for task in ["print_date", "sleep", "templated"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [task, "success", "try", "1"]),
            "{task}:\n{all}"
        );
    }
    assert!(
        stdout.contains(&format!("Dag run {MANUAL_RUN_ID} finished: success")),
        "{all}"
    );
}

const FAST_DAGS: [(&str, &str); 2] = [
    (
        "fast.yaml",
        "dag_id: fast\ntasks:\n  - id: hello\n    operator: bash\n    with: {bash_command: \"echo hello {{ ds }}\"}\n",
    ),
    (
        "broken.yaml",
        "dag_id: broken\ntasks:\n  - id: fine\n    operator: bash\n    with: {bash_command: \"echo fine\"}\n  - id: explode\n    operator: bash\n    depends_on: [fine]\n    with: {bash_command: \"echo going down; exit 3\"}\n  - id: after\n    operator: bash\n    depends_on: [explode]\n    with: {bash_command: \"echo unreachable\"}\n",
    ),
];

fn fast_home() -> CliHome {
    let cli = CliHome::new();
    for (file, yaml) in FAST_DAGS {
        write_dag_file(&cli.dags, file, yaml);
    }
    cli
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dags_test_exits_1_naming_the_failed_task_and_replaces_an_earlier_test_run() {
    let cli = fast_home();
    let out = cli.run(&["dags", "test", "broken", "2024-01-01"]);
    let all = both(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let stdout = stdout_of(&out);
    assert!(
        task_lines(&stdout, "explode").contains(&"going down"),
        "{all}"
    );
    let state_line = |task: &str, state: &str| {
        stdout
            .lines()
            .any(|l| l.split_whitespace().take(2).eq([task, state]))
    };
    assert!(state_line("explode", "failed"), "{all}");
    assert!(state_line("fine", "success"), "{all}");
    assert!(state_line("after", "upstream_failed"), "{all}");
    assert!(stderr_of(&out).contains("failed"), "{all}");

    // The same date again: the earlier test run is replaced, not a duplicate.
    for _ in 0..2 {
        let out = cli.run(&["dags", "test", "fast", "2024-01-01"]);
        let all = both(&out);
        assert_eq!(out.status.code(), Some(0), "{all}");
        assert!(
            task_lines(&stdout_of(&out), "hello").contains(&"hello 2024-01-01"),
            "{all}"
        );
    }
    let db = cli.db().await;
    let runs = dag_run::Entity::find()
        .filter(dag_run::Column::DagId.eq("fast"))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].run_id, MANUAL_RUN_ID);
    assert_eq!(runs[0].state, "success");
    let tis = task_instance::Entity::find()
        .filter(task_instance::Column::DagId.eq("fast"))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(tis, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_test_prints_the_rendered_task_and_records_nothing() {
    let cli = CliHome::with_examples();
    let out = cli.run(&["tasks", "test", "tutorial", "templated", "2024-01-01"]);
    let all = both(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let stdout = stdout_of(&out);
    let lines = task_lines(&stdout, "templated");
    for text in ["2024-01-01", "2024-01-08", "Parameter I passed in"] {
        assert_eq!(
            lines.iter().filter(|l| **l == text).count(),
            5,
            "`{text}`:\n{all}"
        );
    }
    assert!(
        stdout.contains("Task templated of tutorial: success"),
        "{all}"
    );
    let db = cli.db().await;
    assert_eq!(dag_run::Entity::find().count(&db).await.unwrap(), 0);
    assert_eq!(task_instance::Entity::find().count(&db).await.unwrap(), 0);
    assert_eq!(xcom::Entity::find().count(&db).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dags_pause_and_trigger_explain_mistakes() {
    let cli = CliHome::with_examples();
    let out = cli.run(&["dags", "pause", "nope"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        stderr_of(&out).contains("DAG nope not found"),
        "{}",
        both(&out)
    );

    let paused = |db: sea_orm::DatabaseConnection| async move {
        dag::Entity::find_by_id("tutorial".to_string())
            .one(&db)
            .await
            .unwrap()
            .unwrap()
            .is_paused
    };
    let out = cli.run(&["dags", "unpause", "tutorial"]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(stdout_of(&out).trim(), "Dag: tutorial, paused: False");
    assert!(!paused(cli.db().await).await);
    let out = cli.run(&["dags", "pause", "tutorial"]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(stdout_of(&out).trim(), "Dag: tutorial, paused: True");
    assert!(paused(cli.db().await).await);

    let out = cli.run(&["dags", "trigger", "tutorial", "--conf", "[1]"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        stderr_of(&out).contains("--conf must be a JSON object"),
        "{}",
        both(&out)
    );
    let out = cli.run(&["dags", "trigger", "tutorial", "--conf", "{not json"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        stderr_of(&out).contains("--conf is not valid JSON"),
        "{}",
        both(&out)
    );
    let db = cli.db().await;
    assert_eq!(dag_run::Entity::find().count(&db).await.unwrap(), 0);
}

#[test]
fn trigger_wait_without_a_server_times_out_with_a_warning() {
    let cli = fast_home();
    let started = Instant::now();
    let out = cli.run(&["dags", "trigger", "fast", "--wait", "--timeout", "3s"]);
    let all = both(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(started.elapsed() >= Duration::from_secs(3), "{all}");
    assert!(stdout_of(&out).contains("Created <DagRun fast"), "{all}");
    let stderr = stderr_of(&out);
    assert!(stderr.contains("warning:"), "{all}");
    assert!(stderr.contains("updraft serve"), "{all}");
    assert!(stderr.contains("still queued after 3s"), "{all}");
}

/// `updraft serve`, killed when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_wait_follows_the_run_a_running_server_executes() {
    let cli = CliHome::new();
    for (file, yaml) in FAST_DAGS {
        // Unpaused, so the server starts their runs.
        let yaml = yaml.replacen("\n", "\nis_paused_upon_creation: false\n", 1);
        write_dag_file(&cli.dags, file, &yaml);
    }
    let port = free_port();
    let mut cmd = cli.cmd(&["serve"]);
    cmd.env("UPDRAFT__SERVER__PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let server = Server(cmd.spawn().expect("spawn updraft serve"));
    let client = reqwest::Client::new();
    let health = format!("http://127.0.0.1:{port}/api/v2/monitor/health");
    assert!(
        wait_until_healthy(&client, &health, PATIENCE).await,
        "updraft serve never answered"
    );

    let out = tokio::task::spawn_blocking({
        let cmd = cli.cmd(&[
            "dags",
            "trigger",
            "fast",
            "--run-id",
            "ok",
            "--wait",
            "--timeout",
            "60s",
        ]);
        move || run_with_timeout(cmd, Duration::from_secs(120))
    })
    .await
    .unwrap();
    let all = both(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        stdout_of(&out).contains("DAG run ok of fast finished: success"),
        "{all}"
    );

    let out = tokio::task::spawn_blocking({
        let cmd = cli.cmd(&["dags", "trigger", "broken", "--wait", "--timeout", "60s"]);
        move || run_with_timeout(cmd, Duration::from_secs(120))
    })
    .await
    .unwrap();
    let all = both(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let stdout = stdout_of(&out);
    assert!(stdout.contains("finished: failed"), "{all}");
    assert!(
        stdout
            .lines()
            .any(|l| l.split_whitespace().take(2).eq(["explode", "failed"])),
        "{all}"
    );
    // The server ran the task: its log is in the shared home.
    let logs = cli
        .home
        .path()
        .join("logs/dag_id=fast/run_id=ok/task_id=hello/attempt=1.log");
    assert!(logs.is_file(), "{}", logs.display());
    drop(server);
}
