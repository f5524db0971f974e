//! The templating module's tests: each renders a template the way the worker does.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use minijinja::{Error, ErrorKind};

use super::lookups::ConnectionValue;
use super::{environment, needs_lookups, render, render_json, Connection, Lookups, RunContext};

fn utc(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

fn ctx() -> RunContext {
    let ld = utc("2024-01-01T00:00:00Z");
    let mut params = serde_json::Map::new();
    params.insert("my_param".into(), "Parameter I passed in".into());
    RunContext {
        dag_id: "tutorial".into(),
        task_id: "templated".into(),
        run_id: "scheduled__2024-01-01T00:00:00+00:00".into(),
        run_type: "scheduled".into(),
        logical_date: ld,
        data_interval_start: ld,
        data_interval_end: ld + Duration::days(1),
        prev_data_interval_start_success: None,
        prev_data_interval_end_success: None,
        prev_start_date_success: None,
        params,
        conf: serde_json::Map::new(),
        try_number: 1,
        map_index: -1,
        max_tries: 3,
        owner: "airflow".into(),
    }
}

fn lookups() -> Lookups {
    let mut l = Lookups::default();
    l.variables.insert("env".into(), "prod".into());
    l.variables
        .insert("cfg".into(), r#"{"bucket": "logs", "days": [1, 2]}"#.into());
    l.variables.insert("broken".into(), "{not json".into());
    l.connections.insert(
        "warehouse".into(),
        Connection {
            conn_id: "warehouse".into(),
            conn_type: "postgres".into(),
            host: Some("db.example.com".into()),
            schema: Some("analytics".into()),
            login: Some("etl user".into()),
            password: Some("p@ss:w/rd".into()),
            port: Some(5432),
            extra: Some(r#"{"sslmode": "require", "application_name": "up draft"}"#.into()),
        },
    );
    l.connections.insert(
        "api".into(),
        Connection {
            conn_id: "api".into(),
            conn_type: "http".into(),
            host: Some("https://api.example.com".into()),
            extra: Some(r#"{"timeout": 30}"#.into()),
            ..Connection::default()
        },
    );
    let xcom = |task: &str, key: &str, value: serde_json::Value| {
        ((task.to_string(), key.to_string()), value)
    };
    l.xcoms.extend([
        xcom(
            "extract",
            "return_value",
            serde_json::json!("s3://bucket/2024-01-01"),
        ),
        xcom("extract", "rows", serde_json::json!(42)),
        xcom(
            "load",
            "return_value",
            serde_json::json!({"rows": 3, "ok": true}),
        ),
        xcom("templated", "return_value", serde_json::json!("mine")),
    ]);
    l
}

fn r(template: &str) -> Result<String, Error> {
    render(
        &environment(),
        template,
        &ctx().to_value(Arc::new(lookups())),
    )
}

fn ok(template: &str) -> String {
    r(template).unwrap_or_else(|e| panic!("{template}: {e}"))
}

fn err(template: &str) -> String {
    match r(template) {
        Ok(out) => panic!("{template} rendered as {out:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_tutorial_renders_as_in_airflow() {
    let template = "{% for i in range(2) %}\n    echo \"{{ ds }}\"\n    echo \"{{ macros.ds_add(ds, 7) }}\"\n    echo \"{{ params.my_param }}\"\n{% endfor %}\n";
    assert_eq!(
        r(template).unwrap(),
        "\n    echo \"2024-01-01\"\n    echo \"2024-01-08\"\n    echo \"Parameter I passed in\"\n\n    echo \"2024-01-01\"\n    echo \"2024-01-08\"\n    echo \"Parameter I passed in\"\n"
    );
}

#[test]
fn date_names_match_airflow() {
    assert_eq!(
        r("{{ ds_nodash }} {{ ts }} {{ ts_nodash }}").unwrap(),
        "20240101 2024-01-01T00:00:00+00:00 20240101T000000"
    );
    assert_eq!(
        r("{{ ts_nodash_with_tz }}").unwrap(),
        "20240101T000000+0000"
    );
    assert_eq!(
        r("{{ data_interval_end }}").unwrap(),
        "2024-01-02 00:00:00+00:00"
    );
    assert_eq!(
        r("{{ dag.dag_id }}.{{ task.task_id }} {{ run_id }}").unwrap(),
        "tutorial.templated scheduled__2024-01-01T00:00:00+00:00"
    );
    assert_eq!(
        r("{{ macros.ds_add('2024-03-01', -1) }}").unwrap(),
        "2024-02-29"
    );
    assert_eq!(
        r("{{ macros.ds_format('2024-01-31', '%Y-%m-%d', '%d/%m/%Y') }}").unwrap(),
        "31/01/2024"
    );
}

#[test]
fn run_and_task_instance_names_match_airflow() {
    assert_eq!(
        ok("{{ ti.dag_id }} {{ ti.task_id }} {{ ti.run_id }} {{ ti.try_number }} {{ ti.map_index }} {{ ti.max_tries }}"),
        "tutorial templated scheduled__2024-01-01T00:00:00+00:00 1 -1 3"
    );
    assert_eq!(ok("{{ task_instance.task_id }}"), "templated");
    assert_eq!(
        ok("{{ dag_run.run_type }} {{ dag_run.run_id == run_id }} {{ dag_run.conf }}"),
        "scheduled True {}"
    );
    assert_eq!(
        ok("{{ dag_run.data_interval_start }} / {{ dag_run.data_interval_end }}"),
        "2024-01-01 00:00:00+00:00 / 2024-01-02 00:00:00+00:00"
    );
    assert_eq!(ok("{{ dag.owner }}"), "airflow");
    assert_eq!(
        ok("{{ task_instance_key_str }}"),
        "tutorial__templated__20240101"
    );
}

#[test]
fn misspelt_names_and_bad_macro_input_are_errors() {
    let err = r("{{ params.my_parm }}").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UndefinedError);
    let err = r("{{ dss }}").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UndefinedError);
    let err = r("{{ macros.ds_add('yesterday', 1) }}").unwrap_err();
    assert!(err.to_string().contains("is not a date"), "{err}");
    let err = r("{{ logical_date.yeer }}").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UndefinedError);
}

#[test]
fn output_is_not_html_escaped() {
    assert_eq!(r("{{ '<a & b>' }}").unwrap(), "<a & b>");
}

#[test]
fn datetimes_print_like_pendulum() {
    assert_eq!(ok("{{ logical_date }}"), "2024-01-01 00:00:00+00:00");
    assert_eq!(
        ok("{{ dag_run.logical_date }}"),
        "2024-01-01 00:00:00+00:00"
    );
    assert_eq!(
        ok("{{ logical_date.isoformat() }}"),
        "2024-01-01T00:00:00+00:00"
    );
    assert_eq!(
        ok("{{ prev_data_interval_start_success }} {{ prev_data_interval_end_success }} {{ prev_start_date_success is none }}"),
        "None None True"
    );
    assert_eq!(
        ok("{{ data_interval_end.year }}-{{ data_interval_end.month }}-{{ data_interval_end.day }} {{ logical_date.hour }}:{{ logical_date.minute }}:{{ logical_date.second }}.{{ logical_date.microsecond }}"),
        "2024-1-2 0:0:0.0"
    );
    assert_eq!(ok("{{ logical_date.timestamp() }}"), "1704067200.0");
    assert_eq!(ok("{{ logical_date.int_timestamp }}"), "1704067200");
    assert_eq!(ok("{{ logical_date.date() }}"), "2024-01-01");
    assert_eq!(ok("{{ logical_date.date().strftime('%d.%m.') }}"), "01.01.");
    assert_eq!(
        ok("{{ logical_date.add(seconds=1.5) }}"),
        "2024-01-01 00:00:01.500000+00:00"
    );
}

#[test]
fn datetimes_format_and_shift_across_month_ends() {
    assert_eq!(
        ok("{{ logical_date.strftime('%d/%m/%Y %H:%M %f %Z') }}"),
        "01/01/2024 00:00 000000 UTC"
    );
    assert_eq!(
        ok("{{ logical_date.subtract(days=1) }}"),
        "2023-12-31 00:00:00+00:00"
    );
    assert_eq!(
        ok("{{ logical_date.add(days=31) }}"),
        "2024-02-01 00:00:00+00:00"
    );
    assert_eq!(
        ok("{{ logical_date.add(weeks=1, hours=36) }}"),
        "2024-01-09 12:00:00+00:00"
    );
    assert_eq!(
        ok("{{ logical_date.add(days=30).add(months=1) }}"),
        "2024-02-29 00:00:00+00:00",
        "pendulum clamps to the month's last day"
    );
    assert_eq!(
        ok("{{ logical_date.subtract(macros.timedelta(days=1, minutes=30)) }}"),
        "2023-12-30 23:30:00+00:00"
    );
    assert_eq!(
        ok("{{ logical_date.replace(day=15, hour=6) }}"),
        "2024-01-15 06:00:00+00:00"
    );
    let e = err("{{ logical_date.replace(month=2, day=30) }}");
    assert!(e.contains("2024-02-30 is not a valid date"), "{e}");
    let e = err("{{ logical_date.strftime('%Q') }}");
    assert!(e.contains("not a valid format"), "{e}");
}

#[test]
fn datetimes_change_time_zone() {
    assert_eq!(
        ok("{{ logical_date.in_timezone('Europe/Amsterdam') }}"),
        "2024-01-01 01:00:00+01:00"
    );
    assert_eq!(
        ok("{{ logical_date.in_tz('America/New_York').strftime('%Y-%m-%d %H:%M %Z') }} {{ logical_date.in_timezone('Asia/Kolkata').timezone_name }}"),
        "2023-12-31 19:00 EST Asia/Kolkata"
    );
    // Days keep the wall clock across the DST change (31 March 2024), hours do not.
    let eve = "logical_date.replace(month=3, day=30, hour=11).in_timezone('Europe/Amsterdam')";
    assert_eq!(ok(&format!("{{{{ {eve} }}}}")), "2024-03-30 12:00:00+01:00");
    assert_eq!(
        ok(&format!("{{{{ {eve}.add(days=1) }}}}")),
        "2024-03-31 12:00:00+02:00"
    );
    assert_eq!(
        ok(&format!("{{{{ {eve}.add(hours=24) }}}}")),
        "2024-03-31 13:00:00+02:00"
    );
    assert_eq!(
        ok(&format!(
            "{{{{ {eve}.replace(day=31, hour=2, minute=30) }}}}"
        )),
        "2024-03-31 03:30:00+02:00",
        "a time in the DST gap moves forward, as in pendulum"
    );
    let e = err("{{ logical_date.in_timezone('Mars/Olympus') }}");
    assert!(e.contains("unknown time zone 'Mars/Olympus'"), "{e}");
}

#[test]
fn datetimes_compare() {
    assert_eq!(
        ok("{{ logical_date == data_interval_start }} {{ logical_date < data_interval_end }} {{ logical_date == logical_date.in_timezone('Europe/Amsterdam') }} {{ logical_date.add(days=1) == data_interval_end }}"),
        "True True True True"
    );
    assert_eq!(
        ok("{{ macros.datetime(2024, 1, 1) == logical_date }} {{ macros.timedelta(hours=24) == macros.timedelta(days=1) }}"),
        "True True"
    );
}

#[test]
fn macros_datetime_and_timedelta_behave_like_python() {
    assert_eq!(
        ok("{{ macros.datetime(2024, 2, 29, 12) }} {{ macros.datetime(year=2024, month=3, day=1, minute=5) }}"),
        "2024-02-29 12:00:00+00:00 2024-03-01 00:05:00+00:00"
    );
    assert_eq!(
        ok("{{ macros.datetime.strptime('31/01/2024 10:20', '%d/%m/%Y %H:%M') }} {{ macros.datetime.strptime(ds, '%Y-%m-%d').add(days=1).strftime('%Y%m%d') }}"),
        "2024-01-31 10:20:00+00:00 20240102"
    );
    assert_eq!(
        ok("{{ macros.datetime.fromisoformat('2024-01-01T12:00:00+02:00') }}"),
        "2024-01-01 10:00:00+00:00"
    );
    assert!(
        ok("{{ macros.datetime.now().year }}")
            .parse::<i32>()
            .unwrap()
            >= 2024
    );
    assert_eq!(
        ok("{{ macros.timedelta(days=7) }}|{{ macros.timedelta(hours=1, minutes=30) }}|{{ macros.timedelta(days=1, hours=2) }}|{{ macros.timedelta(hours=-1) }}|{{ macros.timedelta(milliseconds=1500) }}|{{ macros.timedelta(2, 30) }}"),
        "7 days, 0:00:00|1:30:00|1 day, 2:00:00|-1 day, 23:00:00|0:00:01.500000|2 days, 0:00:30"
    );
    assert_eq!(
        ok("{{ macros.timedelta(hours=1, minutes=30).total_seconds() }} {{ macros.timedelta(weeks=1, seconds=5).days }} {{ macros.timedelta(weeks=1, seconds=5).seconds }}"),
        "5400.0 7 5"
    );
    let e = err("{{ macros.datetime(2024, 2, 30) }}");
    assert!(e.contains("2024-02-30 is not a valid date"), "{e}");
    let e = err("{{ macros.datetime(2024) }}");
    assert!(e.contains("missing required argument 'month'"), "{e}");
    let e = err("{{ macros.timedelta(day=1) }}");
    assert!(e.contains("unexpected keyword argument 'day'"), "{e}");
    let e = err("{{ macros.datetime.strptime('2024', '%d/%m') }}");
    assert!(e.contains("does not match format '%d/%m'"), "{e}");
}

#[test]
fn variables_read_text_and_json() {
    assert_eq!(
        ok("{{ var.value.env }} {{ var.value['env'] }}"),
        "prod prod"
    );
    assert_eq!(
        ok("{{ var.value.get('env') }} {{ var.value.get('nope') }} {{ var.value.get('nope', 'dev') }}"),
        "prod None dev"
    );
    assert_eq!(
        ok("{{ var.json.cfg.bucket }} {{ var.json.cfg.days[1] }} {{ var.json.get('nope', {'a': 1}).a }}"),
        "logs 2 1"
    );
    assert_eq!(
        ok("{{ var.json.cfg }}"),
        "{'bucket': 'logs', 'days': [1, 2]}"
    );
    let e = err("{{ var.value.missing }}");
    assert!(e.contains("variable missing does not exist"), "{e}");
    let e = err("{{ var.json.missing }}");
    assert!(e.contains("variable missing does not exist"), "{e}");
    let e = err("{{ var.json.broken }}");
    assert!(e.contains("variable broken is not valid JSON"), "{e}");
    let e = err("{{ var.json.get('broken') }}");
    assert!(e.contains("variable broken is not valid JSON"), "{e}");
}

#[test]
fn connections_expose_fields_extra_and_uri() {
    assert_eq!(
        ok("{{ conn.warehouse.conn_type }} {{ conn.warehouse.host }} {{ conn.warehouse.schema }} {{ conn.warehouse.login }} {{ conn.warehouse.password }} {{ conn.warehouse.port }}"),
        "postgres db.example.com analytics etl user p@ss:w/rd 5432"
    );
    assert_eq!(ok("{{ conn.warehouse.extra_dejson.sslmode }}"), "require");
    assert_eq!(
        ok("{{ conn.api.extra_dejson.timeout + 1 }} {{ conn.api.login }} {{ conn.api.port }}"),
        "31 None None"
    );
    assert_eq!(
        ok("{{ conn.warehouse.get_uri() }}"),
        "postgres://etl%20user:p%40ss%3Aw%2Frd@db.example.com:5432/analytics?sslmode=require&application_name=up+draft"
    );
    assert_eq!(
        ok("{{ conn.api.get_uri() }}"),
        "http://https://api.example.com/?__extra__=%7B%22timeout%22%3A+30%7D"
    );
    assert_eq!(
        ok("{{ conn.warehouse }} {{ conn.get('nope') }} {{ conn.get('api').conn_id }}"),
        "warehouse None api"
    );
    let e = err("{{ conn.nope.host }}");
    assert!(e.contains("connection nope is not defined"), "{e}");
}

#[test]
fn connection_uri_follows_airflow_corner_cases() {
    let uri = |c: Connection| ConnectionValue(c).uri();
    let bare = Connection {
        conn_id: "x".into(),
        conn_type: "google_cloud_platform".into(),
        port: Some(8080),
        extra: Some("{}".into()),
        ..Connection::default()
    };
    assert_eq!(
        uri(bare),
        "google-cloud-platform://@:8080/?__extra__=%7B%7D"
    );
    let same_protocol = Connection {
        conn_id: "x".into(),
        conn_type: "https".into(),
        host: Some("https://h".into()),
        login: Some("u".into()),
        ..Connection::default()
    };
    assert_eq!(uri(same_protocol), "https://u@https%3A%2F%2Fh");
}

#[test]
fn xcom_pull_reads_this_runs_xcoms() {
    assert_eq!(
        ok("{{ ti.xcom_pull(task_ids='extract') }} {{ ti.xcom_pull('extract') }}"),
        "s3://bucket/2024-01-01 s3://bucket/2024-01-01"
    );
    assert_eq!(
        ok("{{ ti.xcom_pull(task_ids='extract', key='rows') + 1 }}"),
        "43"
    );
    assert_eq!(
        ok("{{ ti.xcom_pull('extract', 'tutorial', 'rows') }}"),
        "42"
    );
    assert_eq!(
        ok("{{ ti.xcom_pull(task_ids=['extract', 'nope', 'load']) }}"),
        "['s3://bucket/2024-01-01', None, {'ok': True, 'rows': 3}]"
    );
    assert_eq!(ok("{{ ti.xcom_pull('load').rows }}"), "3");
    assert_eq!(
        ok("{{ ti.xcom_pull('nope') }} {{ ti.xcom_pull('nope', default='-') }} {{ ti.xcom_pull('extract', key='nope') is none }}"),
        "None - True"
    );
    assert_eq!(
        ok("{{ ti.xcom_pull() }}"),
        "mine",
        "Airflow 3 defaults to this task"
    );
    let e = err("{{ ti.xcom_pull('extract', 'other_dag') }}");
    assert!(e.contains("only XComs of this DAG run"), "{e}");
    let e = err("{{ ti.xcom_pull('extract', map_indexes=1) }}");
    assert!(
        e.contains("unexpected keyword argument 'map_indexes'"),
        "{e}"
    );
}

#[test]
fn values_print_and_behave_like_python() {
    assert_eq!(
        ok("{{ [1, 'a', none, true, \"it's\"] }} {{ {'k': 2.5} }} {{ none }} {{ false }}"),
        "[1, 'a', None, True, \"it's\"] {'k': 2.5} None False"
    );
    assert_eq!(
        ok("{{ params.get('my_param') }}|{{ dag_run.conf.get('name', 'world') }}|{{ params.keys()|list }}"),
        "Parameter I passed in|world|['my_param']"
    );
    assert_eq!(
        ok("{{ ' a b '.strip() }}|{{ 'a,b,,c'.split(',') }}|{{ ' x  y '.split() }}|{{ 'x-y'.replace('-', '_').upper() }}|{{ ds.startswith('2024') }}|{{ '-'.join(['a', 'b']) }}"),
        "a b|['a', 'b', '', 'c']|['x', 'y']|X_Y|True|a-b"
    );
}

#[test]
fn needs_lookups_spots_the_names() {
    assert_eq!(needs_lookups("{{ ds }}"), (false, false, false));
    assert_eq!(needs_lookups("{{ var.value.x }}"), (true, false, false));
    assert_eq!(
        needs_lookups("{% set v = var %}{{ conn['db'].host }}"),
        (true, true, false)
    );
    assert_eq!(
        needs_lookups("{{ ti.xcom_pull('a') }}"),
        (false, false, true)
    );
    assert_eq!(
        needs_lookups("{{ my_var.variable }} {{ connection }}"),
        (false, false, false)
    );
}

#[test]
fn render_json_renders_every_string() {
    let env = environment();
    let ctx = ctx().to_value(Arc::new(lookups()));
    let kwargs = serde_json::json!({
        "day": "{{ ds }}",
        "n": 3,
        "flag": true,
        "none": null,
        "files": ["a_{{ ds_nodash }}.csv", {"path": "{{ var.value.env }}/x", "size": 1.5}],
        "{{ key }}": "kept"
    });
    assert_eq!(
        render_json(&env, &kwargs, &ctx).unwrap(),
        serde_json::json!({
            "day": "2024-01-01",
            "n": 3,
            "flag": true,
            "none": null,
            "files": ["a_20240101.csv", {"path": "prod/x", "size": 1.5}],
            "{{ key }}": "kept"
        })
    );
    let bad = serde_json::json!({"files": ["ok", {"path": "{{ nope }}"}]});
    let e = render_json(&env, &bad, &ctx).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UndefinedError);
    assert!(e.to_string().contains("at files[1].path"), "{e}");
}

#[test]
fn debug_output_hides_secrets() {
    let debug = format!("{:?}", lookups());
    assert!(!debug.contains("p@ss"), "{debug}");
    assert!(!debug.contains("prod"), "{debug}");
    assert!(!debug.contains("sslmode"), "{debug}");
    assert!(debug.contains("warehouse"), "{debug}");
}
