//! Diagnostics of the DAG parser: one test per class of bad file. Each checks where the
//! problem is reported (line and column, 1-based), what the message says, and that it says
//! what to do about it.

use chrono::{TimeZone, Utc};

use super::*;

/// One task that is fine, to complete DAGs whose problem lies elsewhere (lines 2-4).
const TASKS: &str = "tasks:\n  - id: a\n    operator: empty\n";

fn diags(src: &str) -> Vec<Diagnostic> {
    diags_of(src.as_bytes())
}

fn diags_of(bytes: &[u8]) -> Vec<Diagnostic> {
    match parse_dag(bytes) {
        Ok(dag) => panic!("expected diagnostics, got {dag:#?}"),
        Err(diags) => {
            assert!(!diags.is_empty());
            diags
        }
    }
}

/// The only diagnostic of `src`.
fn one(src: &str) -> Diagnostic {
    let mut d = diags(src);
    assert_eq!(d.len(), 1, "expected one diagnostic, got {d:#?}");
    d.remove(0)
}

fn ok(src: &str) -> Dag {
    match parse_dag(src.as_bytes()) {
        Ok(dag) => dag,
        Err(diags) => panic!("expected a DAG, got {diags:#?}"),
    }
}

/// Asserts the position and that the message contains each of `words`, the fix included.
#[track_caller]
fn check(d: &Diagnostic, line: u32, column: u32, words: &[&str]) {
    assert_eq!((d.line, d.column), (line, column), "position of {d}");
    for w in words {
        assert!(d.message.contains(w), "{w:?} is not in the message: {d}");
    }
    assert!(
        d.message.starts_with("YAML") || d.message.starts_with(|c: char| !c.is_uppercase()),
        "messages start in lower case: {d}"
    );
}

// 1. YAML itself ---------------------------------------------------------------------------

#[test]
fn yaml_syntax_error_is_reported_where_the_parser_stopped() {
    let d = one("dag_id: d\ntasks:\n  - id: a\n   operator: empty\n");
    check(
        &d,
        4,
        4,
        &[
            "YAML syntax error",
            "did not find expected '-' indicator",
            "; check the indentation",
        ],
    );
    // An unclosed flow list is noticed at the end of the file.
    let d = one("dag_id: d\ntasks: [a, b\n");
    check(
        &d,
        3,
        1,
        &[
            "YAML syntax error",
            "expected ',' or ']'",
            "; check the indentation, quotes and brackets",
        ],
    );
}

#[test]
fn a_second_yaml_document_is_refused() {
    let d = one(&format!("dag_id: d\n{TASKS}---\ndag_id: e\n{TASKS}"));
    check(
        &d,
        5,
        1,
        &[
            "a second YAML document",
            "exactly one DAG",
            "; move the other into its own file",
        ],
    );
}

#[test]
fn duplicate_keys_are_reported_at_the_second() {
    let d = one(&format!("dag_id: d\n{TASKS}dag_id: e\n"));
    check(
        &d,
        5,
        1,
        &[
            "duplicate key `dag_id` (first at line 1)",
            "; remove or rename one",
        ],
    );
}

// 2. Unknown keys ------------------------------------------------------------------------------

#[test]
fn unknown_top_level_key_suggests_the_closest() {
    let d = one(&format!(
        "dag_id: d\nschedul: '@daily'\nstart_date: 2024-01-01\n{TASKS}"
    ));
    check(
        &d,
        2,
        1,
        &[
            "unknown key `schedul` in the DAG",
            "did you mean `schedule`?",
            "allowed keys: dag_id,",
        ],
    );
}

#[test]
fn unknown_task_key_suggests_the_closest() {
    let d = one("dag_id: d\ntasks:\n  - id: a\n    operator: empty\n    retires: 3\n");
    check(
        &d,
        5,
        5,
        &[
            "unknown key `retires` in a task",
            "did you mean `retries`?",
            "allowed keys: id, operator, with",
        ],
    );
}

#[test]
fn unknown_key_in_bash_with_suggests_the_closest() {
    let d = one("dag_id: d\ntasks:\n  - id: a\n    operator: bash\n    with:\n      bash_command: ls\n      skip_on_exit_codes: [1]\n");
    check(
        &d,
        7,
        7,
        &[
            "unknown key `skip_on_exit_codes` in `with` of task `a`",
            "did you mean `skip_on_exit_code`?",
            "allowed keys: bash_command,",
        ],
    );
}

#[test]
fn operator_setting_at_task_level_is_told_to_go_under_with() {
    let d = diags("dag_id: d\ntasks:\n  - id: a\n    operator: bash\n    bash_command: ls\n");
    assert_eq!(d.len(), 2, "{d:#?}");
    check(
        &d[0],
        4,
        15,
        &["the bash operator needs `with: {bash_command: ...}`"],
    );
    check(
        &d[1],
        5,
        5,
        &[
            "`bash_command` is an operator setting",
            "put it under `with:`",
            "`with: {bash_command: ...}`",
        ],
    );
    // Not also reported as an unknown key.
    assert!(!d.iter().any(|d| d.message.contains("unknown key")));
}

// 3. Missing keys --------------------------------------------------------------------------

#[test]
fn missing_required_keys_are_reported_at_their_mapping() {
    let d = one(TASKS);
    check(
        &d,
        1,
        1,
        &[
            "the DAG is missing the required key `dag_id`",
            "; add e.g. `dag_id: my_pipeline`",
        ],
    );

    let d = one("dag_id: d\ndescription: no tasks\n");
    check(
        &d,
        1,
        1,
        &[
            "the DAG is missing the required key `tasks`",
            "; add e.g. `tasks:",
        ],
    );

    let d = one("dag_id: d\ntasks:\n  - operator: empty\n");
    check(
        &d,
        3,
        5,
        &[
            "a task is missing the required key `id`",
            "; add e.g. `id: extract`",
        ],
    );

    let d = one("dag_id: d\ntasks:\n  - id: a\n    depends_on: []\n");
    check(
        &d,
        3,
        5,
        &[
            "a task is missing the required key `operator`",
            "; add e.g. `operator: bash`",
        ],
    );

    let d = one("dag_id: d\ntasks:\n  - id: a\n    operator: bash\n    with:\n      cwd: /tmp\n");
    check(
        &d,
        6,
        7,
        &[
            "`with` of task `a` is missing the required key `bash_command`",
            "; add e.g. `bash_command: echo {{ ds }}`",
        ],
    );
}

// 4. Wrong types -----------------------------------------------------------------------------

#[test]
fn wrong_types_say_what_was_expected_and_how_to_write_it() {
    let src = "dag_id: d\ncatchup: yes\ntags: 5\nowner: 123\ntasks:\n  - id: a\n    operator: empty\n    retries: three\n";
    let d = diags(src);
    assert_eq!(d.len(), 4, "{d:#?}");
    check(
        &d[0],
        2,
        10,
        &[
            "`catchup` must be true or false, found the string `yes`",
            "YAML 1.2 reads yes/no/on/off as text",
            "; write `catchup: true`",
        ],
    );
    check(
        &d[1],
        3,
        7,
        &[
            "`tags` must be a list, found an integer",
            "; write a list, e.g. `tags: [a, b]`",
        ],
    );
    check(
        &d[2],
        4,
        8,
        &[
            "`owner` must be a string, found an integer",
            "; put it in quotes to make it a string",
        ],
    );
    check(
        &d[3],
        8,
        14,
        &[
            "`retries` must be a whole number, found a string",
            "; write it in digits, e.g. `retries: 3`",
        ],
    );
    let d = one(&format!("dag_id: d\ncatchup: off\n{TASKS}"));
    check(
        &d,
        2,
        10,
        &["found the string `off`", "; write `catchup: false`"],
    );
}

// 5. Duplicate task ids ------------------------------------------------------------------

#[test]
fn duplicate_task_id_is_reported_at_the_second_with_the_first_line() {
    let d = one("dag_id: d\ntasks:\n  - id: a\n    operator: empty\n  - id: b\n    operator: empty\n  - id: a\n    operator: empty\n");
    check(
        &d,
        7,
        5,
        &[
            "duplicate task id `a` (first at line 3)",
            "; task ids must be unique",
        ],
    );
}

// 6. Dependencies ------------------------------------------------------------------------------

#[test]
fn dependencies_on_unknown_tasks_and_on_itself() {
    let src = "dag_id: d\ntasks:\n  - id: extract\n    operator: empty\n    depends_on: extract\n  - id: load\n    operator: empty\n    depends_on: [extract, extrct]\n";
    let d = diags(src);
    assert_eq!(d.len(), 2, "{d:#?}");
    check(
        &d[0],
        5,
        17,
        &[
            "task `extract` depends on itself",
            "; remove it from its own `depends_on`",
        ],
    );
    check(
        &d[1],
        8,
        27,
        &[
            "`depends_on` names `extrct`, which is not a task of this DAG",
            "did you mean `extract`?",
            "tasks: extract, load",
        ],
    );
}

// 7. Cycles --------------------------------------------------------------------------------

#[test]
fn a_cycle_is_named_by_its_path_in_run_order() {
    let src = "dag_id: d\ntasks:\n  - id: a\n    operator: empty\n    depends_on: [c]\n  - id: b\n    operator: empty\n    depends_on: [a]\n  - id: c\n    operator: empty\n    depends_on: [b]\n  - id: x\n    operator: empty\n    depends_on: [c]\n";
    let d = one(src);
    check(&d, 3, 5, &["; remove one of these dependencies"]);
    assert!(
        d.message
            .starts_with("the tasks form a cycle: a → b → c → a;"),
        "{d}"
    );
}

// 8. Schedules, time zones, durations, dates -----------------------------------------------

#[test]
fn bad_cron_expressions() {
    let d = one(&format!(
        "dag_id: d\nschedule: '0 6 * *'\nstart_date: 2024-01-01\n{TASKS}"
    ));
    check(
        &d,
        2,
        11,
        &[
            "`schedule` `0 6 * *` is not a cron expression",
            "write 5 fields",
            "e.g. `0 6 * * *`",
        ],
    );
    let d = one(&format!(
        "dag_id: d\nschedule: '61 * * * *'\nstart_date: 2024-01-01\n{TASKS}"
    ));
    check(
        &d,
        2,
        11,
        &[
            "`schedule` `61 * * * *` is not a valid cron expression",
            "; fields are minute (0-59)",
        ],
    );
}

#[test]
fn unknown_schedule_preset_suggests_the_closest() {
    let d = one(&format!(
        "dag_id: d\nschedule: '@daly'\nstart_date: 2024-01-01\n{TASKS}"
    ));
    check(
        &d,
        2,
        11,
        &[
            "`schedule` `@daly` is not a preset",
            "did you mean `@daily`?",
            "presets: @once, @hourly",
        ],
    );
}

#[test]
fn unknown_timezone_suggests_the_closest() {
    let d = one(&format!("dag_id: d\ntimezone: Europe/Pari\n{TASKS}"));
    check(
        &d,
        2,
        11,
        &[
            "`timezone` `Europe/Pari` is not an IANA time zone",
            "did you mean `Europe/Paris`?",
            "use a name like UTC",
        ],
    );
}

#[test]
fn bad_durations() {
    let d = one("dag_id: d\ntasks:\n  - id: a\n    operator: empty\n    retry_delay: 5 minutes\n");
    check(
        &d,
        5,
        18,
        &[
            "`retry_delay`: `5 minutes` is not a duration",
            "; write it like 30s, 5m, 1h30m or PT5M",
        ],
    );
    // A number of seconds too large for the clock: refused, not overflowed (it panicked in
    // debug builds).
    let d = one("dag_id: d\ndefault_args:\n  retry_delay: 9223372036854775807\ntasks: []\n");
    check(
        &d,
        3,
        16,
        &["`retry_delay`: `9223372036854775807` is not a duration"],
    );
    let d = one("dag_id: d\ndagrun_timeout: 4000000000\ntasks: []\n");
    check(
        &d,
        2,
        17,
        &[
            "`dagrun_timeout`: `4000000000` is longer than 100 years",
            "; write it like",
        ],
    );
}

#[test]
fn bad_dates() {
    let d = one(&format!("dag_id: d\nstart_date: 2024-13-01\n{TASKS}"));
    check(
        &d,
        2,
        13,
        &[
            "`start_date` `2024-13-01` is not a date",
            "write 2024-02-01, 2024-02-01T06:00:00 or",
        ],
    );
}

#[test]
fn a_schedule_needs_a_start_date() {
    let d = one(&format!("dag_id: d\nschedule: '@daily'\n{TASKS}"));
    check(
        &d,
        2,
        11,
        &[
            "a schedule needs a `start_date`",
            "; add e.g. `start_date: 2024-01-01`",
            "`schedule: null`",
        ],
    );
    // `@once` and null do not.
    ok(&format!("dag_id: d\nschedule: '@once'\n{TASKS}"));
    ok(&format!("dag_id: d\nschedule: null\n{TASKS}"));
}

// 9. Date order ----------------------------------------------------------------------------

#[test]
fn start_date_after_end_date_is_reported_at_end_date() {
    let d = one(&format!(
        "dag_id: d\nstart_date: 2024-02-01\nend_date: 2024-01-01\n{TASKS}"
    ));
    check(
        &d,
        3,
        11,
        &["`end_date` (2024-01-01T00:00:00+00:00) is before `start_date` (2024-02-01T00:00:00+00:00)", "; move one of them"],
    );
}

// 10. Operators and trigger rules -----------------------------------------------------------

#[test]
fn unknown_operator_lists_the_known_ones() {
    let d = one("dag_id: d\ntasks:\n  - id: a\n    operator: bsh\n");
    check(
        &d,
        4,
        15,
        &[
            "unknown operator `bsh`",
            "did you mean `bash`?",
            "known operators: empty, bash, python",
        ],
    );
}

#[test]
fn unknown_trigger_rule_lists_the_known_ones() {
    let d =
        one("dag_id: d\ntasks:\n  - id: a\n    operator: empty\n    trigger_rule: all_sucess\n");
    check(
        &d,
        5,
        19,
        &[
            "unknown trigger rule `all_sucess`",
            "did you mean `all_success`?",
            "trigger rules: all_success, all_failed,",
            "none_failed_min_one_success",
            "always",
        ],
    );
}

// 11. Templates ------------------------------------------------------------------------------

/// A bash task whose `with:` is `with` (lines 3-6 and on), after `dag_id` and `tasks`.
fn bash_task(with: &str) -> String {
    format!("dag_id: d\ntasks:\n  - id: a\n    operator: bash\n    with:\n{with}  - id: b\n    operator: empty\n")
}

#[test]
fn templates_that_do_not_compile() {
    // Inline: at the scalar.
    let d = one(&bash_task("      bash_command: \"echo {{ ds \"\n"));
    check(
        &d,
        6,
        21,
        &[
            "the template in `bash_command` does not compile",
            "unexpected end of input",
            "; check the {{ }} and {% %} pairs",
        ],
    );

    // A literal block: at the line in the block, whose first line is line 7.
    let block = "      bash_command: |\n        echo start\n        echo two\n        {% for i in range(3) %}\n        echo {{ i }}\n";
    let d = one(&bash_task(block));
    check(
        &d,
        9,
        9,
        &[
            "the template in `bash_command` does not compile",
            "`{% for %}` is never closed",
            "; add `{% endfor %}`",
        ],
    );

    // A syntax error on the block's 3rd line, after a leading blank line (which YAML keeps).
    let block =
        "      bash_command: |\n\n        echo start\n        echo {{ 1 + }}\n        echo end\n";
    let d = one(&bash_task(block));
    check(
        &d,
        9,
        9,
        &[
            "the template in `bash_command` does not compile",
            "unexpected end of variable block",
        ],
    );

    // An error on its first line.
    let d = one(&bash_task("      bash_command: |\n        {{ x ) }}\n"));
    check(&d, 7, 9, &["does not compile"]);

    // Escaped newlines in a quoted string: at the string, naming the template's line (not a
    // line of the file further down).
    let d = one(&bash_task("      bash_command: \"a\\nb\\n{{ 1 + }}\"\n"));
    check(&d, 6, 21, &["does not compile (on line 3 of the template)"]);

    // Templates in `env` too.
    let d = one(&bash_task(
        "      bash_command: ls\n      env:\n        X: '{% if %}'\n",
    ));
    check(&d, 8, 12, &["the template in `env.X` does not compile"]);
}

// 12. Ids ----------------------------------------------------------------------------------

#[test]
fn ids_outside_the_allowed_pattern() {
    let long = "x".repeat(251);
    let d = diags(&format!(
        "dag_id: my dag\ntasks:\n  - id: {long}\n    operator: empty\n"
    ));
    assert_eq!(d.len(), 2, "{d:#?}");
    check(
        &d[0],
        1,
        9,
        &[
            "`dag_id` `my dag` is not a valid id",
            "use 1 to 250 letters, digits, `_`, `.` or `-` (no spaces)",
        ],
    );
    check(
        &d[1],
        3,
        9,
        &["`id` `xxx", "is not a valid id", "use 1 to 250 letters"],
    );
    // 250 is fine.
    ok(&format!(
        "dag_id: my.dag-1\ntasks:\n  - id: {}\n    operator: empty\n",
        "x".repeat(250)
    ));
}

// 13. The file as a whole ----------------------------------------------------------------

#[test]
fn files_that_are_not_a_dag_at_all() {
    // Too big.
    let src = format!("dag_id: d\n{TASKS}");
    let d = parse_dag_with(src.as_bytes(), &ParseOptions { max_bytes: 16 }).unwrap_err();
    assert_eq!(d.len(), 1);
    check(
        &d[0],
        1,
        1,
        &[
            &format!("the file is {} bytes, over the 16-byte limit", src.len()),
            "; split it",
        ],
    );
    assert!(parse_dag_with(
        src.as_bytes(),
        &ParseOptions {
            max_bytes: src.len()
        }
    )
    .is_ok());

    // Not UTF-8: the column counts characters, like every other column.
    let d = diags_of(b"dag_id: d\ndescription: caf\xc3\xa9 \xff\ntasks: []\n");
    assert_eq!(d.len(), 1);
    check(
        &d[0],
        2,
        19,
        &["the file is not valid UTF-8", "save it as UTF-8"],
    );

    // Empty, or only comments.
    for src in ["", "\n\n", "# nothing yet\n"] {
        let d = one(src);
        check(
            &d,
            1,
            1,
            &[
                "the file is empty",
                "a DAG needs at least `dag_id` and `tasks`",
            ],
        );
    }

    // Not a mapping.
    let d = one("- dag_id: d\n");
    check(
        &d,
        1,
        1,
        &[
            "the DAG must be a mapping of keys, found a list",
            "; write it as `key: value` lines",
        ],
    );
    let d = one("just text\n");
    check(
        &d,
        1,
        1,
        &["the DAG must be a mapping of keys, found a string"],
    );
}

// 14. Operator settings ----------------------------------------------------------------------

#[test]
fn python_needs_exactly_one_of_callable_and_code() {
    let d = one("dag_id: d\ntasks:\n  - id: a\n    operator: python\n    with:\n      code: print(1)\n      python_callable: a.py\n");
    check(
        &d,
        6,
        7,
        &[
            "`with` of task `a` has both `python_callable` and `code`",
            "; keep exactly one",
        ],
    );
    let d = one(
        "dag_id: d\ntasks:\n  - id: a\n    operator: python\n    with:\n      op_kwargs: {n: 1}\n",
    );
    check(
        &d,
        6,
        7,
        &[
            "needs exactly one of `python_callable` (a script path) and `code` (inline Python)",
            "; add e.g. `code:",
        ],
    );
    let d = one("dag_id: d\ntasks:\n  - id: a\n    operator: python\n");
    check(
        &d,
        4,
        15,
        &["the python operator needs `with: {code: ...}`"],
    );
}

#[test]
fn expand_over_a_key_that_is_not_a_setting() {
    let d = one("dag_id: d\ntasks:\n  - id: a\n    operator: bash\n    with:\n      bash_command: echo\n    expand:\n      bash_comand: [a, b]\n");
    check(
        &d,
        8,
        7,
        &[
            "unknown key `bash_comand` in `expand` (settings of the bash operator)",
            "did you mean `bash_command`?",
            "allowed keys: bash_command,",
        ],
    );
    let d = one("dag_id: d\ntasks:\n  - id: a\n    operator: bash\n    with:\n      bash_command: echo\n    expand:\n      env: 3\n");
    check(
        &d,
        8,
        12,
        &["`expand.env` must be a list, or a template that renders to one"],
    );
}

// Several at once ------------------------------------------------------------------------

#[test]
fn all_problems_are_reported_at_once_in_line_order() {
    let src = "\
dag_id: my dag
schedul: '@daily'
tasks:
  - id: a
    operator: bash
    retries: three
    with:
      bash_command: ls
  - id: b
    operator: empty
    depends_on: [c]
";
    let d = diags(src);
    assert_eq!(d.len(), 4, "{d:#?}");
    check(&d[0], 1, 9, &["is not a valid id"]);
    check(
        &d[1],
        2,
        1,
        &["unknown key `schedul`", "did you mean `schedule`?"],
    );
    check(&d[2], 6, 14, &["`retries` must be a whole number"]);
    check(&d[3], 11, 18, &["`depends_on` names `c`"]);
}

// What parses --------------------------------------------------------------------------------

#[test]
fn durations_in_every_documented_form() {
    for (text, secs) in [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("PT5M", 300),
        ("90", 90),
    ] {
        let dag = ok(&format!("dag_id: d\ndefault_args:\n  retry_delay: {text}\ntasks:\n  - id: a\n    operator: empty\n    retry_delay: {text}\n"));
        assert_eq!(
            dag.default_args.retry_delay,
            Some(Duration::from_secs(secs)),
            "{text}"
        );
        assert_eq!(
            dag.tasks[0].args.retry_delay,
            Some(Duration::from_secs(secs)),
            "{text}"
        );
    }
}

#[test]
fn naive_dates_are_read_in_the_dag_timezone() {
    // A time skipped by daylight saving (New York, 10 March 2024, 02:00 → 03:00).
    let d = one(&format!(
        "dag_id: d\ntimezone: America/New_York\nstart_date: 2024-03-10T02:30:00\n{TASKS}"
    ));
    check(
        &d,
        3,
        13,
        &[
            "`start_date` `2024-03-10T02:30:00` does not exist in America/New_York",
            "daylight-saving",
            "; pick another time",
        ],
    );

    // Paris is UTC+1 in winter, UTC+2 in summer.
    for (date, utc) in [
        (
            "2024-01-01",
            Utc.with_ymd_and_hms(2023, 12, 31, 23, 0, 0).unwrap(),
        ),
        (
            "2024-01-15T06:00:00",
            Utc.with_ymd_and_hms(2024, 1, 15, 5, 0, 0).unwrap(),
        ),
        (
            "2024-07-01 06:00",
            Utc.with_ymd_and_hms(2024, 7, 1, 4, 0, 0).unwrap(),
        ),
        // An explicit offset wins over `timezone`.
        (
            "2024-07-01T06:00:00+00:00",
            Utc.with_ymd_and_hms(2024, 7, 1, 6, 0, 0).unwrap(),
        ),
    ] {
        let dag = ok(&format!(
            "dag_id: d\ntimezone: Europe/Paris\nstart_date: {date}\n{TASKS}"
        ));
        assert_eq!(dag.timezone, "Europe/Paris");
        assert_eq!(dag.start_date, Some(DagDate(utc)), "{date}");
    }
}

// Found by reading and by the fuzzer (fuzz/) ---------------------------------------------

#[test]
fn many_unknown_dependencies_stay_small() {
    // 2,000 tasks each naming an unknown task: the messages used to list every task id, so a
    // 1 MiB file made gigabytes of messages. Now: at most 100 problems, 20 ids each.
    let mut src = String::from("dag_id: d\ntasks:\n");
    for i in 0..2000 {
        src.push_str(&format!(
            "  - {{id: t{i}, operator: empty, depends_on: [zz]}}\n"
        ));
    }
    let d = diags(&src);
    assert_eq!(d.len(), 101, "{:#?}", &d[..3]);
    check(
        &d[0],
        3,
        44,
        &["`depends_on` names `zz`", "tasks: t0, t1,", "… (1980 more)"],
    );
    check(
        &d[100],
        103,
        46,
        &["1900 more problems are not shown", "; fix the ones above"],
    );
    assert!(d.iter().all(|d| d.message.len() < 400), "{}", d[0]);
}

#[test]
fn aliases_of_long_strings_are_refused() {
    // 1,000 × 1,000 aliases of a 10 KB string: the node count was under its limit, and the
    // parser built 10 GB of text.
    let mut src = format!(
        "dag_id: d\ntasks: []\nparams:\n  a: &a \"{}\"\n  b: &b [",
        "x".repeat(10_000)
    );
    src.push_str(&"*a, ".repeat(1000));
    src.push_str("]\n  c: [");
    src.push_str(&"*b, ".repeat(1000));
    src.push_str("]\n");
    let d = one(&src);
    check(
        &d,
        6,
        23,
        &[
            "the document expands to more than",
            "MiB of text (aliases included)",
            "; a DAG file should be far smaller",
        ],
    );
}

#[test]
fn a_mapping_with_many_keys_parses_in_linear_time() {
    // Duplicate keys were found by comparing each key with all before it: a 1 MiB mapping
    // took 17 s (release). With a hash, this 0.7 MiB one takes about a second unoptimized.
    let mut src = String::from("dag_id: d\ntasks: []\nparams:\n");
    for i in 0..60_000 {
        src.push_str(&format!("  p{i}: {i}\n"));
    }
    let start = std::time::Instant::now();
    let dag = ok(&src);
    assert_eq!(dag.params.len(), 60_000);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    let d = one(&format!("{src}  p59999: again\n"));
    check(
        &d,
        60_004,
        3,
        &["duplicate key `p59999` (first at line 60003)"],
    );
    // Duplicate keys are all found, but (like any problem) at most 100 are listed.
    let keys: String = (0..30_000).map(|i| format!("  p{i}: {i}\n")).collect();
    let d = diags(&format!("dag_id: d\ntasks: []\nparams:\n{keys}{keys}"));
    assert_eq!(d.len(), 101);
    check(&d[0], 30_004, 3, &["duplicate key `p0` (first at line 4)"]);
    check(&d[100], 30_104, 3, &["29900 more problems are not shown"]);
}

#[test]
fn a_wrong_operator_or_timezone_hides_no_other_problem() {
    // The task's other settings used to go unchecked, and `b`'s dependency on `a` was called
    // unknown.
    let src = "dag_id: d\ntasks:\n  - id: a\n    operator: bsh\n    retries: three\n  - id: b\n    operator: empty\n    depends_on: [a]\n";
    let d = diags(src);
    assert_eq!(d.len(), 2, "{d:#?}");
    check(&d[0], 4, 15, &["unknown operator `bsh`"]);
    check(&d[1], 5, 14, &["`retries` must be a whole number"]);
    // The dates used to go unchecked after a bad time zone.
    let d = diags(&format!(
        "dag_id: d\ntimezone: Europe/Pari\nstart_date: 2024-13-01\n{TASKS}"
    ));
    assert_eq!(d.len(), 2, "{d:#?}");
    check(&d[0], 2, 11, &["did you mean `Europe/Paris`?"]);
    check(&d[1], 3, 13, &["`start_date` `2024-13-01` is not a date"]);
}

#[test]
fn a_cycle_through_a_duplicated_id_is_found() {
    // `depends_on: [a]` means the first `a` (the second is reported as a duplicate).
    let src = "dag_id: d\ntasks:\n  - id: a\n    operator: empty\n    depends_on: [b]\n  - id: b\n    operator: empty\n    depends_on: [a]\n  - id: a\n    operator: empty\n";
    let d = diags(src);
    assert_eq!(d.len(), 2, "{d:#?}");
    check(&d[0], 3, 5, &["the tasks form a cycle: a → b → a"]);
    check(&d[1], 9, 5, &["duplicate task id `a` (first at line 3)"]);
}
