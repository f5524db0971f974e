//! Diagnostics of the DAG parser: one test per class of bad file.

use super::*;

fn show(src: &str) {
    println!("==== {src}");
    match parse_dag(src.as_bytes()) {
        Ok(d) => println!("OK {}", serde_json::to_string(&d).unwrap()),
        Err(ds) => ds.iter().for_each(|d| println!("  {d}")),
    }
}

#[test]
fn scratch() {
    let base = "dag_id: d\ntasks:\n  - id: a\n    operator: empty\n";
    show("dag_id: d\ntasks: [a\n");
    show("dag_id: d\ntasks:\n  - id: a\n   operator: x\n");
    show(&format!("{base}---\ndag_id: e\n"));
    show("dag_id: d\ndag_id: e\ntasks: []\n");
    show(&format!("schedul: '@daily'\n{base}"));
    show("dag_id: d\ntasks:\n  - id: a\n    operator: empty\n    retires: 3\n");
    show("dag_id: d\ntasks:\n  - id: a\n    operator: bash\n    with:\n      bash_command: ls\n      evn: {A: b}\n");
    show("dag_id: d\ntasks:\n  - id: a\n    operator: bash\n    bash_command: ls\n");
    show("tasks: []\n");
    show("dag_id: d\n");
    show("dag_id: d\ntasks:\n  - operator: empty\n");
    show("dag_id: d\ntasks:\n  - id: a\n");
    show("dag_id: d\ntasks:\n  - id: a\n    operator: bash\n    with:\n      env: {A: b}\n");
    show("dag_id: d\ntasks:\n  - id: a\n    operator: empty\n    retries: three\n");
    show(&format!("catchup: yes\n{base}"));
    show(&format!("tags: 5\n{base}"));
    show(&format!("owner: 123\n{base}"));
    show("dag_id: d\ntasks:\n  - id: a\n    operator: empty\n  - id: b\n    operator: empty\n  - id: a\n    operator: empty\n");
    show("dag_id: d\ntasks:\n  - id: extract\n    operator: empty\n  - id: b\n    operator: empty\n    depends_on: [extrct]\n");
    show("dag_id: d\ntasks:\n  - id: a\n    operator: empty\n    depends_on: a\n");
    show("dag_id: d\ntasks:\n  - id: a\n    operator: empty\n    depends_on: [c]\n  - id: b\n    operator: empty\n    depends_on: [a]\n  - id: c\n    operator: empty\n    depends_on: [b]\n");
    show(&format!(
        "schedule: '0 6 * *'\nstart_date: 2024-01-01\n{base}"
    ));
    show(&format!(
        "schedule: '61 * * * *'\nstart_date: 2024-01-01\n{base}"
    ));
    show(&format!(
        "schedule: '@daly'\nstart_date: 2024-01-01\n{base}"
    ));
    show(&format!("timezone: Europe/Pari\n{base}"));
    show(&format!("dagrun_timeout: 5 minutes\n{base}"));
    show("dag_id: d\ntasks:\n  - id: a\n    operator: empty\n    retry_delay: 5 minutes\n");
    show(&format!("start_date: 2024-13-01\n{base}"));
    show(&format!("schedule: '@daily'\n{base}"));
    show(&format!(
        "start_date: 2024-02-01\nend_date: 2024-01-01\n{base}"
    ));
    show("dag_id: d\ntasks:\n  - id: a\n    operator: bsh\n");
    show("dag_id: d\ntasks:\n  - id: a\n    operator: empty\n    trigger_rule: all_sucess\n");
    show("dag_id: d\ntasks:\n  - id: a\n    operator: bash\n    with:\n      bash_command: \"echo {{ ds \"\n");
    show("dag_id: d\ntasks:\n  - id: a\n    operator: bash\n    with:\n      bash_command: |\n        echo start\n        echo two\n        {% for i in range(3) %}\n        echo {{ i }}\n");
    show(&format!(
        "dag_id: my dag\ntasks:\n  - id: {}\n    operator: empty\n",
        "x".repeat(251)
    ));
    show("");
    show("- a\n- b\n");
    show("dag_id: d\ntasks:\n  - id: a\n    operator: python\n    with:\n      code: print(1)\n      python_callable: a.py\n");
    show("dag_id: d\ntasks:\n  - id: a\n    operator: python\n    with:\n      op_kwargs: {}\n");
    show("dag_id: d\ntasks:\n  - id: a\n    operator: bash\n    with:\n      bash_command: echo\n    expand:\n      bash_comand: [a, b]\n");
    show(&format!(
        "timezone: America/New_York\nstart_date: 2024-03-10T02:30:00\n{base}"
    ));
    show(&format!(
        "timezone: Europe/Paris\nstart_date: 2024-07-01T06:00:00\n{base}"
    ));
}

#[test]
fn scratch2() {
    for src in [
        "k: |\n  a\n  b\n",
        "k: |\n\n  a\n",
        "k: >\n  a\n  b\n",
        "k: |-\n    a\n",
        "- |\n  x\n",
        "k: \"a\n  b\"\n",
        "k: 'é\u{e9}'\n",
        "é: x\ny: [1, 2\n",
    ] {
        println!("{src:?} => {:?}", yaml::parse(src));
    }
    let env = minijinja::Environment::new();
    for t in [
        "echo start\necho two\n{% for i in range(3) %}\necho {{ i }}\n",
        "a\nb\n{% for %}\nc\n",
        "a\n{{ x \n",
        "a\n  b {{ x + }}\n",
    ] {
        let e = env.template_from_str(t).unwrap_err();
        println!(
            "{t:?} => line {:?} detail {:?} kind {:?}",
            e.line(),
            e.detail(),
            e.kind()
        );
    }
}

#[test]
fn scratch_dos() {
    let which = std::env::var("DOS").unwrap_or_default();
    let mut s = String::new();
    match which.as_str() {
        "dupkeys" => {
            s.push_str("dag_id: d\ntasks: []\nparams:\n");
            let mut i = 0;
            while s.len() < 1_000_000 {
                s.push_str(&format!("  k{i}: 1\n"));
                i += 1;
            }
        }
        "deps" => {
            s.push_str("dag_id: d\ntasks:\n");
            let mut i = 0;
            while s.len() < 1_000_000 {
                s.push_str(&format!(
                    "- {{id: t{i}, operator: empty, depends_on: [z]}}\n"
                ));
                i += 1;
            }
        }
        "alias" => {
            s.push_str(&format!(
                "dag_id: d\ntasks: []\nparams:\n  a: &a \"{}\"\n  b: &b [",
                "x".repeat(30000)
            ));
            for _ in 0..1000 {
                s.push_str("*a,");
            }
            s.push_str("]\n  c: [");
            for _ in 0..990 {
                s.push_str("*b,");
            }
            s.push_str("]\n");
        }
        "nested" => {
            s.push_str(
                "dag_id: d\ntasks: []\nparams:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n  b: &b [",
            );
            for _ in 0..1000 {
                s.push_str("*a,");
            }
            s.push_str("]\n  c: ");
            for i in 0..60 {
                s.push_str(&format!("&n{i} ["));
            }
            for _ in 0..80 {
                s.push_str("*b,");
            }
            for _ in 0..60 {
                s.push(']');
            }
            s.push('\n');
        }
        "tasks" => {
            s.push_str("dag_id: d\ntasks:\n- {id: t0, operator: empty}\n");
            let mut i = 1;
            while s.len() < 1_000_000 {
                s.push_str(&format!("- {{id: t{i}, operator: bash, depends_on: [t{}], with: {{bash_command: 'echo {{{{ ds }}}}'}}}}\n", i - 1));
                i += 1;
            }
        }
        _ => return,
    }
    println!("{} bytes", s.len());
    let t = std::time::Instant::now();
    let r = parse_dag(s.as_bytes());
    let n = match &r {
        Ok(_) => 0,
        Err(d) => d.len(),
    };
    let total: usize = match &r {
        Ok(_) => 0,
        Err(d) => d.iter().map(|d| d.message.len()).sum(),
    };
    println!(
        "{which}: {:?}, {n} diags, {total} bytes of messages",
        t.elapsed()
    );
}

#[test]
fn scratch_dates() {
    for d in [
        "+10000-01-01",
        "10000-01-01",
        "0000-01-01",
        "-0001-01-01",
        "262143-12-31T23:59:59",
        "9999-12-31T23:59:59",
        "0001-01-01",
        "+262142-01-01",
    ] {
        for tz in ["UTC", "America/New_York", "Asia/Tokyo"] {
            let src = format!("dag_id: d\ntimezone: {tz}\nstart_date: '{d}'\ntasks: []\n");
            match parse_dag(src.as_bytes()) {
                Ok(dag) => {
                    let j = serde_json::to_string(&dag).unwrap();
                    let back = serde_json::from_str::<Dag>(&j);
                    println!("{d} {tz}: {:?} back ok={}", dag.start_date, back.is_ok());
                }
                Err(e) => println!("{d} {tz}: {}", e[0]),
            }
        }
    }
}
