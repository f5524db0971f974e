//! One try of one task instance: its context, rendered templates, the operator, the log, and
//! the record of how it ended.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use sea_orm::EntityTrait;
use tokio_util::sync::CancellationToken;
use updraft_shared::dag::Operator;
use updraft_shared::state::TaskInstanceState as S;

use super::Worker;
use crate::logs::{log_path, TaskLog};
use crate::operators::{bash, python, Outcome};
use crate::scheduler::loaded::LoadedDag;
use crate::store::entities::{dag_run, task_instance};
use crate::store::runs::{self, FinishTry};
use crate::store::StoreError;
use crate::templating::{self, Lookups, RunContext};
use crate::timefmt::iso;

/// How a try ended, before it is recorded.
pub struct TryEnd {
    pub state: S,
    xcom: Option<String>,
    rendered: Option<String>,
    next_retry_at: Option<DateTime<Utc>>,
}

impl Worker {
    pub(super) async fn execute(&self, ti: task_instance::Model, cancel: CancellationToken) {
        let run = match dag_run::Entity::find_by_id(ti.dag_run_id)
            .one(self.db.conn())
            .await
        {
            Ok(Some(run)) => run,
            Ok(None) => return, // The run was deleted meanwhile: nothing to record.
            Err(e) => {
                tracing::warn!("loading the DAG run of a claimed task failed: {e}");
                let end = self.failure(&ti, None, None);
                self.record(&ti, end).await;
                return;
            }
        };
        let stopped = cancel.clone();
        let end = self.run_logged(&ti, &run, cancel).await;
        let handed_back = self.handing_back.load(std::sync::atomic::Ordering::SeqCst)
            || self.leases_lost.load(std::sync::atomic::Ordering::SeqCst);
        if stopped.is_cancelled() && handed_back {
            // Stopped by this worker's shutdown, or because its leases could not be renewed:
            // not the task's failure; the same try goes back to the queue (now, or through
            // the scheduler once the lease expires if the database is out of reach).
            match runs::reclaim(
                &self.db,
                ti.id,
                Some(self.job_id),
                ti.try_number,
                Utc::now(),
            )
            .await
            {
                Ok(true) => tracing::info!(
                    dag_id = ti.dag_id,
                    run_id = ti.run_id,
                    task_id = ti.task_id,
                    "handed the try back to the queue (shutting down)"
                ),
                Ok(false) => {}
                // Its lease will expire and the scheduler re-claims it.
                Err(e) => tracing::warn!("handing a try back failed: {e}"),
            }
            self.signals.wake_workers();
            return;
        }
        self.record(&ti, end).await;
    }

    /// Runs one try with its log (header, output, verdict); returns how it ended.
    pub(super) async fn run_logged(
        &self,
        ti: &task_instance::Model,
        run: &dag_run::Model,
        cancel: CancellationToken,
    ) -> TryEnd {
        let started = Utc::now();
        let path = log_path(
            &self.options.logs_folder,
            &ti.dag_id,
            &ti.run_id,
            &ti.task_id,
            (ti.map_index >= 0).then_some(ti.map_index as u32),
            ti.try_number.max(1) as u32,
        );
        let log = match TaskLog::create(&path, self.masker.clone()) {
            Ok(log) if self.options.echo_logs => log.echo_to_stdout(format!("{} | ", ti.task_id)),
            Ok(log) => log,
            Err(e) => {
                tracing::error!(path = %path.display(), "cannot write the task log: {e}");
                return self.failure(ti, None, None);
            }
        };
        let log = Arc::new(Mutex::new(log));
        let end = match self.run_try(ti, run, &log, cancel).await {
            Ok(end) => end,
            Err(e) => {
                write(&log, &format!("Updraft could not run the task: {e}"));
                self.failure(ti, None, None)
            }
        };
        let ended = Utc::now();
        write(
            &log,
            &format!(
                "Marking task as {}. dag_id={}, task_id={}, run_id={}, logical_date={}, try_number={}, start_date={}, end_date={}{}",
                end.state.as_str().to_uppercase(),
                ti.dag_id,
                ti.task_id,
                ti.run_id,
                compact(run.logical_date.unwrap_or(run.run_after)),
                ti.try_number,
                compact(started),
                compact(ended),
                end.next_retry_at
                    .map(|t| format!(", next try at {}", iso(t)))
                    .unwrap_or_default()
            ),
        );
        if let Ok(log) =
            Arc::try_unwrap(log).map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        {
            if let Err(e) = log.finish() {
                tracing::warn!(path = %path.display(), "closing the task log failed: {e}");
            }
        }
        end
    }

    async fn record(&self, ti: &task_instance::Model, end: TryEnd) {
        let finish = FinishTry {
            ti_id: ti.id,
            try_number: Some(ti.try_number),
            owner: Some(self.job_id),
            state: end.state,
            end_date: Utc::now(),
            next_retry_at: end.next_retry_at,
            rendered_fields: end.rendered,
            xcom: end.xcom,
        };
        // The database may be briefly unreachable: the result is worth a few retries.
        for attempt in 1..=5u64 {
            match runs::finish_try(&self.db, &finish).await {
                Ok(true) => return,
                Ok(false) => {
                    tracing::warn!(
                        dag_id = ti.dag_id,
                        run_id = ti.run_id,
                        task_id = ti.task_id,
                        "the try's result was not recorded: the task instance was changed meanwhile or its lease expired"
                    );
                    return;
                }
                Err(e) => {
                    tracing::warn!(attempt, "recording the end of a try failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
                }
            }
        }
    }

    /// A failed try: `up_for_retry` while tries remain, else `failed`.
    fn failure(
        &self,
        ti: &task_instance::Model,
        loaded: Option<&LoadedDag>,
        rendered: Option<String>,
    ) -> TryEnd {
        let retry = ti.try_number <= ti.max_tries;
        let delay = match (retry, loaded) {
            (true, Some(l)) => l.retry_delay(
                l.graph.index_of(&ti.task_id).unwrap_or(0),
                ti.try_number.max(1) as u32,
            ),
            _ => crate::scheduler::loaded::DEFAULT_RETRY_DELAY,
        };
        TryEnd {
            state: if retry { S::UpForRetry } else { S::Failed },
            xcom: None,
            rendered,
            next_retry_at: retry
                .then(|| Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default()),
        }
    }

    async fn run_try(
        &self,
        ti: &task_instance::Model,
        run: &dag_run::Model,
        log: &Arc<Mutex<TaskLog>>,
        cancel: CancellationToken,
    ) -> Result<TryEnd, StoreError> {
        let loaded = self.cache.get(&self.db, ti.dag_version_id).await?;
        let Some(idx) = loaded.graph.index_of(&ti.task_id) else {
            write(
                log,
                &format!(
                    "Task {} is not in the DAG version this run uses",
                    ti.task_id
                ),
            );
            return Ok(self.failure(ti, Some(&loaded), None));
        };
        let task = &loaded.dag.tasks[idx];
        let class = match task.operator {
            Operator::Empty => "EmptyOperator",
            Operator::Bash(_) => "BashOperator",
            Operator::Python(_) => "PythonOperator",
        };
        let logical = run.logical_date.unwrap_or(run.run_after);
        write(
            log,
            &format!(
                "Executing <Task({class}): {}> on {}",
                ti.task_id,
                logical.format("%Y-%m-%d %H:%M:%S%:z")
            ),
        );
        write(
            log,
            &format!(
                "DAG {}, run {}, try {} of {}, on host {}",
                ti.dag_id,
                ti.run_id,
                ti.try_number,
                ti.max_tries + 1,
                self.hostname
            ),
        );
        if !task.expand.is_empty() {
            write(
                log,
                "Dynamic task mapping (`expand`) is not supported yet by this version of Updraft",
            );
            return Ok(self.failure(ti, Some(&loaded), None));
        }

        let templates = template_sources(&task.operator);
        let ctx = self.context(ti, run, &loaded, idx, &templates).await?;
        let (needs_var, needs_conn, needs_xcom) = templates
            .iter()
            .map(|t| templating::needs_lookups(t))
            .fold((false, false, false), |a, b| {
                (a.0 || b.0, a.1 || b.1, a.2 || b.2)
            });
        let lookups = Arc::new(self.lookups(run, needs_var, needs_conn, needs_xcom).await?);
        let env = templating::environment();
        let value = ctx.to_value(lookups);

        let timeout = loaded.args[idx].execution_timeout.map(|d| d.as_std());
        let mut context_env = context_env(ti, run, &loaded, idx);
        let outcome = match &task.operator {
            Operator::Empty => Outcome::Success { return_value: None },
            Operator::Bash(op) => {
                let rendered = (|| -> Result<_, (String, minijinja::Error)> {
                    let command = templating::render(&env, &op.bash_command, &value)
                        .map_err(|e| ("bash_command".to_string(), e))?;
                    let mut vars = BTreeMap::new();
                    for (k, v) in &op.env {
                        let r = templating::render(&env, v, &value)
                            .map_err(|e| (format!("env.{k}"), e))?;
                        vars.insert(k.clone(), r);
                    }
                    let cwd = match &op.cwd {
                        Some(c) => Some(
                            templating::render(&env, c, &value)
                                .map_err(|e| ("cwd".to_string(), e))?,
                        ),
                        None => None,
                    };
                    Ok((command, vars, cwd))
                })();
                let (command, vars, cwd) = match rendered {
                    Ok(r) => r,
                    Err((field, e)) => {
                        write(
                            log,
                            &format!("Error rendering template field {field}: {e:#}"),
                        );
                        return Ok(self.failure(ti, Some(&loaded), None));
                    }
                };
                let rendered_fields = self.masked(
                    serde_json::json!({
                        "bash_command": command,
                        "env": vars,
                        "cwd": cwd,
                    })
                    .to_string(),
                );
                write(
                    log,
                    &format!("Running command: ['bash', '-c', {command:?}]"),
                );
                write(log, "Output:");
                let mut env_vars = vars;
                env_vars.append(&mut context_env);
                let bash_task = bash::BashTask {
                    command,
                    env: env_vars,
                    append_env: op.append_env,
                    cwd: cwd.map(PathBuf::from),
                    skip_on_exit_code: op.skip_on_exit_code.clone(),
                    do_xcom_push: op.do_xcom_push,
                    execution_timeout: timeout,
                };
                let outcome = bash::run(&bash_task, log.clone(), cancel).await;
                match &outcome {
                    Ok(Outcome::Success { .. }) => write(log, "Command exited with return code 0"),
                    Ok(Outcome::Skipped { exit_code }) => {
                        write(log, &format!("Command exited with return code {exit_code}"))
                    }
                    _ => {}
                }
                return self
                    .conclude(ti, &loaded, log, outcome, Some(rendered_fields))
                    .await;
            }
            Operator::Python(op) => {
                let mut kwargs = serde_json::Map::new();
                for (k, v) in &op.op_kwargs {
                    match templating::render_json(&env, v, &value) {
                        Ok(r) => {
                            kwargs.insert(k.clone(), r);
                        }
                        Err(e) => {
                            write(
                                log,
                                &format!("Error rendering template field op_kwargs.{k}: {e:#}"),
                            );
                            return Ok(self.failure(ti, Some(&loaded), None));
                        }
                    }
                }
                let rendered_fields =
                    self.masked(serde_json::json!({ "op_kwargs": kwargs }).to_string());
                let code = match (&op.code, &op.python_callable) {
                    (Some(code), _) => python::PythonCode::Inline(code.clone()),
                    (None, Some(callable)) => {
                        let (file, function) = match callable.rsplit_once(':') {
                            Some((f, func)) if !func.contains('/') => (f, Some(func.to_string())),
                            _ => (callable.as_str(), None),
                        };
                        let base = self.options.dags_folder.join(&loaded.fileloc);
                        let dir = base.parent().map(PathBuf::from).unwrap_or_default();
                        python::PythonCode::Script {
                            path: dir.join(file),
                            function,
                        }
                    }
                    (None, None) => python::PythonCode::Inline(String::new()),
                };
                let py = python::PythonTask {
                    code,
                    op_kwargs: kwargs,
                    context: ctx.to_json(),
                    env: std::mem::take(&mut context_env),
                    cwd: None,
                    do_xcom_push: op.do_xcom_push,
                    execution_timeout: timeout,
                };
                let outcome = python::run(&py, log.clone(), cancel).await;
                return self
                    .conclude(ti, &loaded, log, outcome, Some(rendered_fields))
                    .await;
            }
        };
        self.conclude(ti, &loaded, log, Ok(outcome), None).await
    }

    /// Turns an operator's outcome into the try's end, checking the XCom's size.
    async fn conclude(
        &self,
        ti: &task_instance::Model,
        loaded: &LoadedDag,
        log: &Arc<Mutex<TaskLog>>,
        outcome: std::io::Result<Outcome>,
        rendered: Option<String>,
    ) -> Result<TryEnd, StoreError> {
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                write(log, &format!("The task could not be started: {e}"));
                return Ok(self.failure(ti, Some(loaded), rendered));
            }
        };
        Ok(match outcome {
            Outcome::Success { return_value } => {
                let xcom = return_value.map(|v| v.to_string());
                if let Some(x) = &xcom {
                    if x.len() > self.options.xcom_max_size {
                        write(
                            log,
                            &format!(
                                "The task's return_value XCom is {} bytes, over the limit of {} bytes (core.xcom_max_size): write large data to object storage and push its path instead",
                                x.len(),
                                self.options.xcom_max_size
                            ),
                        );
                        return Ok(self.failure(ti, Some(loaded), rendered));
                    }
                }
                TryEnd {
                    state: S::Success,
                    xcom,
                    rendered,
                    next_retry_at: None,
                }
            }
            Outcome::Skipped { exit_code } => {
                write(
                    log,
                    &format!("Exit code {exit_code}: skipping the task (skip_on_exit_code)"),
                );
                TryEnd {
                    state: S::Skipped,
                    xcom: None,
                    rendered,
                    next_retry_at: None,
                }
            }
            Outcome::Failed { reason } => {
                write(log, &format!("Task failed: {reason}"));
                self.failure(ti, Some(loaded), rendered)
            }
            Outcome::TimedOut { after } => {
                write(
                    log,
                    &format!(
                        "Task timed out after {} (execution_timeout)",
                        humantime::format_duration(after)
                    ),
                );
                self.failure(ti, Some(loaded), rendered)
            }
        })
    }

    /// The template context of this try.
    async fn context(
        &self,
        ti: &task_instance::Model,
        run: &dag_run::Model,
        loaded: &LoadedDag,
        idx: usize,
        templates: &[&str],
    ) -> Result<RunContext, StoreError> {
        let logical_date = run.logical_date.unwrap_or(run.run_after);
        let conf: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&run.conf).unwrap_or_default();
        // Params: the DAG's defaults, overridden by the run's conf (Airflow's
        // `dag_run_conf_overrides_params`).
        let mut params = serde_json::Map::new();
        for (name, param) in &loaded.dag.params {
            params.insert(
                name.clone(),
                param.default.clone().unwrap_or(serde_json::Value::Null),
            );
        }
        for (k, v) in &conf {
            params.insert(k.clone(), v.clone());
        }
        let prev = if templates.iter().any(|t| t.contains("prev_")) {
            runs::previous_success(&self.db, &run.dag_id, logical_date).await?
        } else {
            None
        };
        Ok(RunContext {
            dag_id: ti.dag_id.clone(),
            task_id: ti.task_id.clone(),
            run_id: ti.run_id.clone(),
            run_type: run.run_type.clone(),
            logical_date,
            data_interval_start: run.data_interval_start.unwrap_or(logical_date),
            data_interval_end: run.data_interval_end.unwrap_or(logical_date),
            prev_data_interval_start_success: prev.as_ref().and_then(|p| p.data_interval_start),
            prev_data_interval_end_success: prev.as_ref().and_then(|p| p.data_interval_end),
            prev_start_date_success: prev.as_ref().and_then(|p| p.start_date),
            params,
            conf,
            try_number: ti.try_number.max(1) as u32,
            max_tries: ti.max_tries.max(0) as u32,
            map_index: ti.map_index,
            owner: loaded.owner(idx),
        })
    }

    /// Rendered fields as stored and served: registered secrets replaced by `***`.
    fn masked(&self, rendered: String) -> String {
        self.masker.mask(&rendered).into_owned()
    }

    /// Variables, connections and XComs a template reads, fetched only when it mentions them.
    async fn lookups(
        &self,
        run: &dag_run::Model,
        vars: bool,
        conns: bool,
        xcoms: bool,
    ) -> Result<Lookups, StoreError> {
        let mut lookups = Lookups::default();
        let secrets = &self.options.secrets;
        if vars {
            for (key, value) in
                crate::store::variables::all_variables_plain(&self.db, secrets).await?
            {
                lookups.variables.insert(key, value);
            }
            // Variables are secrets: every value a template reads is masked in the task's log.
            let masker = self.masker.clone();
            lookups.on_variable_read = Some(Arc::new(move |value: &str| masker.add(value)));
        }
        if conns {
            for c in crate::store::connections::all_connections_plain(&self.db, secrets).await? {
                // Secrets inside `extra` (api_key, token, ...) are masked like passwords.
                if let Some(json) = c
                    .extra
                    .as_deref()
                    .and_then(|e| serde_json::from_str::<serde_json::Value>(e).ok())
                {
                    let mut found = Vec::new();
                    secrets.names.sensitive_strings(&json, &mut found);
                    found.iter().for_each(|s| self.masker.add(s));
                }
                // A password a template can read is masked in logs and rendered fields.
                if let Some(password) = &c.password {
                    self.masker.add(password);
                }
                lookups.connections.insert(
                    c.conn_id.clone(),
                    templating::Connection {
                        conn_id: c.conn_id,
                        conn_type: c.conn_type,
                        host: c.host,
                        schema: c.schema,
                        login: c.login,
                        password: c.password,
                        port: c.port,
                        extra: c.extra,
                    },
                );
            }
        }
        if xcoms {
            for x in runs::run_xcoms(&self.db, run.id).await? {
                let value =
                    serde_json::from_str(&x.value).unwrap_or(serde_json::Value::String(x.value));
                lookups.xcoms.insert((x.task_id, x.key), value);
            }
        }
        Ok(lookups)
    }
}

/// The template strings of an operator's templated fields.
fn template_sources(op: &Operator) -> Vec<&str> {
    fn strings<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::String(s) => out.push(s),
            serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
            serde_json::Value::Object(o) => o.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    match op {
        Operator::Empty => {}
        Operator::Bash(b) => {
            out.push(b.bash_command.as_str());
            out.extend(b.env.values().map(String::as_str));
            out.extend(b.cwd.as_deref());
        }
        Operator::Python(p) => p.op_kwargs.values().for_each(|v| strings(v, &mut out)),
    }
    out
}

/// Airflow-style context variables for the task's process, under Updraft's and Airflow's
/// names (scripts written for Airflow keep working).
fn context_env(
    ti: &task_instance::Model,
    run: &dag_run::Model,
    loaded: &LoadedDag,
    idx: usize,
) -> BTreeMap<String, String> {
    let logical = run.logical_date.unwrap_or(run.run_after);
    let mut env = BTreeMap::new();
    for prefix in ["UPDRAFT_CTX_", "AIRFLOW_CTX_"] {
        for (name, value) in [
            ("DAG_ID", ti.dag_id.clone()),
            ("TASK_ID", ti.task_id.clone()),
            ("DAG_RUN_ID", ti.run_id.clone()),
            ("LOGICAL_DATE", iso(logical)),
            ("TRY_NUMBER", ti.try_number.to_string()),
            ("DAG_OWNER", loaded.owner(idx)),
        ] {
            env.insert(format!("{prefix}{name}"), value);
        }
    }
    env
}

/// Airflow's compact time in "Marking task as …" lines: `20240101T000000`.
fn compact(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%S").to_string()
}

fn write(log: &Arc<Mutex<TaskLog>>, line: &str) {
    if let Ok(mut log) = log.lock() {
        if let Err(e) = log.line(line) {
            tracing::warn!("writing a task log failed: {e}");
        }
    }
}
