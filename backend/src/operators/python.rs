//! The `python` operator: Python 3 code run by `python3` in its own process (see
//! [`super::process`] for the process group, the log, `execution_timeout` and cancellation).
//!
//! # What the code sees and returns
//!
//! - **Inline code**, and a **script without a function**, run as the body of a function: a
//!   top-level `return <value>` gives the task's result. Line numbers in tracebacks are those of
//!   the code as written; inline code is named `<dag_id.task_id>` in them. The names available
//!   are `context` (the task context: `ds`, `ts`, `params`, `dag_run`, `ti`, …), `params`
//!   (`context["params"]`), `op_kwargs` (a dict), each `op_kwargs` key that is a valid Python
//!   name as its own variable (`context`, `params` and `op_kwargs` themselves win over keys of
//!   the same name), and `AirflowSkipException`. `__name__` is `"__main__"`, so a script's
//!   `if __name__ == "__main__":` block runs; a script also gets `__file__`.
//! - **A script with a function** (`file.py:func` in the DAG) is imported as a module and the
//!   function is called like Airflow's PythonOperator calls its callable: with every `op_kwargs`
//!   entry as a keyword argument, plus the context entries its signature names (`def
//!   f(ds, params, limit)`), or the whole context if it takes `**kwargs`. `op_kwargs` win over
//!   context entries of the same name.
//! - A script's folder comes first on `sys.path`, as with `python file.py`, so modules next to
//!   it can be imported. The working directory is `cwd`, or a fresh temporary one.
//! - **The result** must be JSON: lists (tuples too), dicts with string keys, strings, numbers,
//!   booleans or None. It becomes the `return_value` XCom; `None` pushes nothing, and with
//!   `do_xcom_push: false` the result is ignored. Anything else (a set, a datetime, an object)
//!   fails the task with a message naming its type.
//! - **`raise AirflowSkipException("why")`** skips the task (the message is logged). The class is
//!   a builtin, so imported modules can raise it too without an import. Exit code 99 (e.g.
//!   `sys.exit(99)`) also means skipped.
//! - **An uncaught exception** fails the task: its traceback is in the log and the failure
//!   reason is its last line (`the task raised ValueError: bad input`). `sys.exit(n)` with
//!   another non-zero `n` fails it too.
//! - Output is unbuffered: `print` lands in the log as it happens.
//!
//! The context and `op_kwargs` (which may hold secrets) reach Python through a private temporary
//! file, deleted once read; the result comes back through another, so stdout stays the log.
//!
//! `python3` is looked up on the worker's `PATH` once and its interpreter (`sys.executable`)
//! kept for later tasks, because version managers' shims (pyenv) cost tens of milliseconds
//! per start; a task whose `env` sets `PATH` looks `python3` up in it each time.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::process::{self, Ended};
use super::Outcome;
use crate::logs::TaskLog;

/// What to run, with templates already rendered.
#[derive(Clone)]
pub struct PythonTask {
    pub code: PythonCode,
    /// Keyword arguments for the code, already rendered.
    pub op_kwargs: Map<String, Value>,
    /// The Airflow-style task context as JSON (`ds`, `ts`, `params`, `dag_run`, `ti`, …).
    pub context: Value,
    /// Added to the worker's environment (`UPDRAFT_CTX_*` variables included by the caller).
    pub env: BTreeMap<String, String>,
    /// Default: a fresh temporary directory, as for bash.
    pub cwd: Option<PathBuf>,
    pub do_xcom_push: bool,
    pub execution_timeout: Option<Duration>,
}

/// The code a python task runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PythonCode {
    /// Inline code from the DAG file.
    Inline(String),
    /// A script file; with `function`, that function is called (`file.py:func` in the DAG).
    /// A relative path is taken from the worker's working directory.
    Script {
        path: PathBuf,
        function: Option<String>,
    },
}

/// Values are left out: rendered kwargs, the context and the environment may hold secrets.
impl fmt::Debug for PythonTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PythonTask")
            .field("code", &self.code)
            .field("op_kwargs", &self.op_kwargs.keys().collect::<Vec<_>>())
            .field("context", &"…")
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("cwd", &self.cwd)
            .field("do_xcom_push", &self.do_xcom_push)
            .field("execution_timeout", &self.execution_timeout)
            .finish()
    }
}

/// The exit code with which the bootstrap reports `AirflowSkipException`.
const SKIP_EXIT_CODE: i32 = 99;
const INPUT_VAR: &str = "UPDRAFT_PYTHON_INPUT";
const RESULT_VAR: &str = "UPDRAFT_PYTHON_RESULT";

/// Runs the code to completion, its timeout or `cancel`, writing output to `log`.
pub async fn run(
    task: &PythonTask,
    log: Arc<Mutex<TaskLog>>,
    cancel: CancellationToken,
) -> std::io::Result<Outcome> {
    // Private (0700) and separate from the working directory the code sees.
    let exchange = tempfile::tempdir()?;
    let input = exchange.path().join("input.json");
    let result = exchange.path().join("result.json");
    std::fs::write(&input, serde_json::to_vec(&Input::new(task)?)?)?;

    let mut cmd = Command::new(interpreter(&task.env).await);
    // -u: output reaches the log as it is printed.
    cmd.arg("-u").arg("-c").arg(BOOTSTRAP);
    cmd.envs(&task.env)
        .env(INPUT_VAR, &input)
        .env(RESULT_VAR, &result);
    let _tmp = process::in_dir(&mut cmd, task.cwd.as_deref())?;
    let status = match process::run(cmd, task.execution_timeout, log, &cancel).await? {
        Ended::Stopped(outcome) => return Ok(outcome),
        Ended::Exited { status, .. } => status,
    };
    let report = read_report(&result);
    Ok(match status.code() {
        Some(0) => match report {
            Ok(report) => Outcome::Success {
                return_value: report.return_value.filter(|_| task.do_xcom_push),
            },
            Err(reason) => Outcome::Failed { reason },
        },
        Some(SKIP_EXIT_CODE) => Outcome::Skipped {
            exit_code: SKIP_EXIT_CODE,
        },
        _ => match report.ok().and_then(|r| r.error) {
            Some(reason) => Outcome::Failed { reason },
            None => process::exit_failure("python", status),
        },
    })
}

/// What the bootstrap reads from the input file.
#[derive(Serialize)]
struct Input<'a> {
    /// Inline code, or None to read `path`.
    source: Option<&'a str>,
    path: Option<PathBuf>,
    function: Option<&'a str>,
    /// The code's name in tracebacks.
    filename: String,
    op_kwargs: &'a Map<String, Value>,
    context: &'a Value,
    push: bool,
}

impl<'a> Input<'a> {
    fn new(task: &'a PythonTask) -> std::io::Result<Self> {
        let (source, path, function, filename) = match &task.code {
            PythonCode::Inline(code) => (Some(code.as_str()), None, None, inline_name(task)),
            PythonCode::Script { path, function } => {
                // The process runs elsewhere (`cwd` or a temporary directory).
                let path = std::path::absolute(path)?;
                let filename = path.display().to_string();
                (None, Some(path), function.as_deref(), filename)
            }
        };
        Ok(Self {
            source,
            path,
            function,
            filename,
            op_kwargs: &task.op_kwargs,
            context: &task.context,
            push: task.do_xcom_push,
        })
    }
}

/// `<dag_id.task_id>` from the context's `ti`.
fn inline_name(task: &PythonTask) -> String {
    let ti = &task.context["ti"];
    match (ti["dag_id"].as_str(), ti["task_id"].as_str()) {
        (Some(dag), Some(task)) => format!("<{dag}.{task}>"),
        _ => "<task>".into(),
    }
}

/// What the bootstrap writes to the result file.
#[derive(Debug, Default, Deserialize)]
struct Report {
    #[serde(default)]
    return_value: Option<Value>,
    /// Why the task failed, when the bootstrap could tell.
    #[serde(default)]
    error: Option<String>,
}

/// The report, an empty one when there is none (no result, or `sys.exit` before the end).
fn read_report(path: &Path) -> Result<Report, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("the python task's result could not be read: {e}")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Report::default()),
        Err(e) => Err(format!("the python task's result could not be read: {e}")),
    }
}

/// `python3` as found on the worker's `PATH`, resolved once (see the module comment).
async fn interpreter(env: &BTreeMap<String, String>) -> PathBuf {
    static RESOLVED: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    if env.contains_key("PATH") {
        return "python3".into();
    }
    RESOLVED
        .get_or_init(|| async {
            let out = Command::new("python3")
                .args(["-S", "-c", "import sys; print(sys.executable)"])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .await;
            match out {
                Ok(out) if out.status.success() => {
                    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
                    if path.is_absolute() {
                        path
                    } else {
                        "python3".into()
                    }
                }
                // Spawning it for the task will report the problem.
                _ => "python3".into(),
            }
        })
        .await
        .clone()
}

/// Runs in `python3 -u -c`: reads the input file, runs the code, writes the result file.
/// Standard library only, and only what is needed: every import is start-up time.
const BOOTSTRAP: &str = r#"
import sys
# `python -c` puts the working directory first on sys.path: a json.py there must not be ours.
if sys.path and sys.path[0] == "":
    del sys.path[0]
import builtins, json, os


class AirflowSkipException(Exception):
    """Raise it to skip the task; the message is logged."""


def mask_secret(value):
    """Masks `value` as *** in this task's log from now on (Airflow's `mask_secret`)."""
    value = str(value)
    for part in [value] + value.splitlines():
        if part.strip():
            sys.stdout.write("::add-mask::%s\n" % part.strip())
    sys.stdout.flush()


class _TaskError(Exception):
    """A problem reported as it is, without a traceback."""


_JSON_HINT = "return lists, dicts, strings, numbers, booleans or None"
_FIXED = ("context", "params", "op_kwargs")
_BOOT = sys._getframe().f_code.co_filename


def _a(name):
    return ("an " if name[:1].lower() in "aeiou" else "a ") + name


def _run_body(src, filename, context, op_kwargs, file):
    import ast, keyword
    try:
        tree = ast.parse(src, filename)
    except SyntaxError as e:
        # Its message points at the user's line; the parser's frames would only distract.
        raise e.with_traceback(None) from None
    future = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
    names = list(_FIXED) + [
        k for k in op_kwargs
        if k.isidentifier() and not keyword.iskeyword(k) and k not in _FIXED
    ]
    # The code becomes the body of a function taking the names as arguments: `return` works,
    # and assigning to a name does not make reading it first an UnboundLocalError.
    module = ast.parse("def __updraft_task__(%s):\n    pass\n" % ", ".join(names))
    func = module.body[0]
    func.body = [n for n in tree.body if not any(n is f for f in future)] or func.body
    module.body = future + [func]
    ast.fix_missing_locations(module)
    code = compile(module, filename, "exec", dont_inherit=True)
    params = context.get("params") if isinstance(context, dict) else None
    args = {"context": context, "params": params if params is not None else {}, "op_kwargs": op_kwargs}
    for k in names[len(_FIXED):]:
        args[k] = op_kwargs[k]
    scope = {"__name__": "__main__", "__builtins__": builtins,
             "AirflowSkipException": AirflowSkipException, "mask_secret": mask_secret, **args}
    if file is not None:
        scope["__file__"] = file
    exec(code, scope)
    return scope["__updraft_task__"](**args)


def _call_function(path, name, context, op_kwargs):
    import importlib.machinery, importlib.util, inspect
    stem = os.path.splitext(os.path.basename(path))[0]
    modname = stem if stem not in sys.modules else "__updraft_script__"
    loader = importlib.machinery.SourceFileLoader(modname, path)
    spec = importlib.util.spec_from_file_location(modname, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    loader.exec_module(module)
    fn = getattr(module, name, None)
    if not callable(fn):
        raise _TaskError(f"{path} has no function {name!r}")
    context = context if isinstance(context, dict) else {}
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        parameters = {}
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        kwargs = dict(context)
    else:
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        kwargs = {k: v for k, v in context.items() if k in parameters and parameters[k].kind in named}
    kwargs.update(op_kwargs)
    return fn(**kwargs)


def _call(task):
    context, op_kwargs = task["context"], task["op_kwargs"]
    if task["source"] is not None:
        return _run_body(task["source"], task["filename"], context, op_kwargs, None)
    path = task["path"]
    if not os.path.isfile(path):
        raise _TaskError(f"the script {path} does not exist")
    sys.path.insert(0, os.path.dirname(path))
    sys.argv = [path]
    if task["function"] is not None:
        return _call_function(path, task["function"], context, op_kwargs)
    with open(path, "rb") as f:
        src = f.read()
    return _run_body(src, path, context, op_kwargs, path)


def _to_json(value):
    class Unsupported(Exception):
        pass

    def unsupported(o):
        raise Unsupported(o)

    try:
        return json.dumps(value, allow_nan=False, default=unsupported)
    except Unsupported as e:
        bad = _a(type(e.args[0]).__name__)
        what = bad if e.args[0] is value else f"{_a(type(value).__name__)} holding {bad}"
        raise _TaskError(f"the task returned {what}, which is not JSON: {_JSON_HINT}") from None
    except (TypeError, ValueError, RecursionError) as e:
        raise _TaskError(
            f"the task returned {_a(type(value).__name__)} that is not JSON ({e}): {_JSON_HINT}"
        ) from None


def _print_traceback(e, task):
    import linecache, traceback
    if task["source"] is not None:
        src = task["source"]
        linecache.cache[task["filename"]] = (len(src), None, src.splitlines(True), task["filename"])
    tb = e.__traceback__
    # Our frames and importlib's (loading a script) are not the user's business.
    while tb is not None and (
        tb.tb_frame.f_code.co_filename == _BOOT
        or tb.tb_frame.f_code.co_filename.startswith("<frozen ")
    ):
        tb = tb.tb_next
    traceback.print_exception(type(e), e, tb)


def _report(path, error):
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"error": error}, f)


def _main():
    input_path = os.environ.pop("UPDRAFT_PYTHON_INPUT")
    result_path = os.environ.pop("UPDRAFT_PYTHON_RESULT")
    with open(input_path, encoding="utf-8") as f:
        task = json.load(f)
    # It may hold secrets; the code has no use for it.
    os.unlink(input_path)
    builtins.AirflowSkipException = AirflowSkipException
    builtins.mask_secret = mask_secret
    try:
        value = _call(task)
        if not task["push"] or value is None:
            return 0
        text = _to_json(value)
    except AirflowSkipException as e:
        print("Updraft: the task is skipped" + (f": {e}" if str(e) else ""))
        return 99
    except _TaskError as e:
        print(e, file=sys.stderr)
        _report(result_path, str(e))
        return 1
    except Exception as e:
        _print_traceback(e, task)
        message = str(e).strip().splitlines()
        error = type(e).__name__ + (": " + message[0][:500] if message else "")
        _report(result_path, "the task raised " + error)
        return 1
    with open(result_path, "w", encoding="utf-8") as f:
        f.write('{"return_value": ' + text + "}")
    return 0


sys.exit(_main())
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::process::testing::{alive, pid_in, TestLog};
    use serde_json::json;

    fn inline(code: &str) -> PythonTask {
        PythonTask {
            code: PythonCode::Inline(code.into()),
            op_kwargs: Map::new(),
            context: json!({
                "ds": "2024-01-31",
                "params": {"limit": 3},
                "ti": {"dag_id": "d", "task_id": "t", "try_number": 1},
            }),
            env: BTreeMap::new(),
            cwd: None,
            do_xcom_push: true,
            execution_timeout: None,
        }
    }

    async fn run_logged(t: &PythonTask) -> (Outcome, String) {
        let log = TestLog::new();
        let outcome = run(t, log.log.clone(), CancellationToken::new())
            .await
            .unwrap();
        (outcome, log.text())
    }

    async fn returned(code: &str) -> Option<Value> {
        match run_logged(&inline(code)).await {
            (Outcome::Success { return_value }, _) => return_value,
            (other, log) => panic!("{other:?}\n{log}"),
        }
    }

    fn failed(reason: &str) -> Outcome {
        Outcome::Failed {
            reason: reason.into(),
        }
    }

    #[tokio::test]
    async fn top_level_return_gives_the_json_result() {
        assert_eq!(
            returned("return {'a': [1, 2.5, None, True], 'b': (1, 2)}").await,
            Some(json!({"a": [1, 2.5, null, true], "b": [1, 2]}))
        );
        assert_eq!(returned("return [1, 'x']").await, Some(json!([1, "x"])));
        assert_eq!(returned("return 42").await, Some(json!(42)));
        assert_eq!(returned("return 'héllo'").await, Some(json!("héllo")));
        assert_eq!(returned("return None").await, None);
        assert_eq!(returned("x = 1").await, None);
    }

    #[tokio::test]
    async fn return_inside_nested_control_flow() {
        let code = "\
total = 0
for i in range(10):
    try:
        if i == 4:
            with open('f', 'w') as f:
                return {'i': i, 'total': total}
        total += i
    finally:
        pass
return 'not reached'
";
        assert_eq!(returned(code).await, Some(json!({"i": 4, "total": 6})));
    }

    #[tokio::test]
    async fn op_kwargs_context_and_params_are_visible() {
        let mut t = inline(
            "\
limit = limit + 1  # an op_kwarg may be reassigned
def helper():
    return name.upper()
return [limit, helper(), op_kwargs['name'], op_kwargs['not-a-name'], params['limit'], context['ds']]
",
        );
        t.op_kwargs = json!({"limit": 10, "name": "abc", "not-a-name": 1})
            .as_object()
            .unwrap()
            .clone();
        let (outcome, log) = run_logged(&t).await;
        assert_eq!(
            outcome,
            Outcome::Success {
                return_value: Some(json!([11, "ABC", "abc", 1, 3, "2024-01-31"]))
            },
            "{log}"
        );
    }

    #[tokio::test]
    async fn print_output_is_in_the_log_and_secrets_masked() {
        let mut t = inline(
            "import os, sys\nprint('hello from python')\nprint('to stderr', file=sys.stderr)\n\
             print('token=' + os.environ['TOKEN'])",
        );
        t.env.insert("TOKEN".into(), "very-secret-token".into());
        let (outcome, log) = run_logged(&t).await;
        assert_eq!(outcome, Outcome::Success { return_value: None });
        assert!(log.contains("] hello from python\n"), "{log}");
        assert!(log.contains("] to stderr\n"), "{log}");
        assert!(log.contains("] token=***\n"), "{log}");
    }

    #[tokio::test]
    async fn an_exception_fails_with_a_traceback_at_the_users_line() {
        let code = "x = 1\n\ndef f():\n    raise ValueError('bad input\\nsecond line')\n\nf()\n";
        let (outcome, log) = run_logged(&inline(code)).await;
        assert_eq!(outcome, failed("the task raised ValueError: bad input"));
        assert!(log.contains("Traceback (most recent call last):"), "{log}");
        assert!(
            log.contains(r#"File "<d.t>", line 6, in __updraft_task__"#),
            "{log}"
        );
        assert!(log.contains(r#"File "<d.t>", line 4, in f"#), "{log}");
        assert!(log.contains("]     raise ValueError('bad input"), "{log}");
        // The bootstrap's own frames are left out.
        assert!(!log.contains("<string>"), "{log}");

        let (outcome, log) = run_logged(&inline("x = (\n")).await;
        let Outcome::Failed { reason } = outcome else {
            panic!("{log}")
        };
        assert!(
            reason.starts_with("the task raised SyntaxError: ") && reason.contains("<d.t>, line 1"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn airflow_skip_exception_skips_the_task() {
        let (outcome, log) = run_logged(&inline(
            "if params['limit'] > 2:\n    raise AirflowSkipException('nothing to do')",
        ))
        .await;
        assert_eq!(outcome, Outcome::Skipped { exit_code: 99 });
        assert!(
            log.contains("] Updraft: the task is skipped: nothing to do\n"),
            "{log}"
        );
        assert!(!log.contains("Traceback"), "{log}");
    }

    #[tokio::test]
    async fn a_result_that_is_not_json_fails_clearly() {
        let hint = "which is not JSON: return lists, dicts, strings, numbers, booleans or None";
        let (outcome, log) = run_logged(&inline("return {1, 2}")).await;
        assert_eq!(outcome, failed(&format!("the task returned a set, {hint}")));
        assert!(
            log.contains(&format!("] the task returned a set, {hint}\n")),
            "{log}"
        );
        let (outcome, _) = run_logged(&inline(
            "import datetime\nreturn {'at': datetime.date.today()}",
        ))
        .await;
        assert_eq!(
            outcome,
            failed(&format!("the task returned a dict holding a date, {hint}"))
        );
        let (outcome, _) = run_logged(&inline("return float('nan')")).await;
        let Outcome::Failed { reason } = outcome else {
            panic!()
        };
        assert!(
            reason.starts_with("the task returned a float that is not JSON ("),
            "{reason}"
        );
        // Not pushed, so not checked.
        let mut t = inline("return {1, 2}");
        t.do_xcom_push = false;
        assert_eq!(
            run_logged(&t).await.0,
            Outcome::Success { return_value: None }
        );
    }

    #[tokio::test]
    async fn do_xcom_push_false_pushes_nothing() {
        let mut t = inline("return {'a': 1}");
        t.do_xcom_push = false;
        assert_eq!(
            run_logged(&t).await.0,
            Outcome::Success { return_value: None }
        );
    }

    #[tokio::test]
    async fn a_script_runs_as_a_function_body() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("helpers.py"),
            "def double(x):\n    return 2 * x\n",
        )
        .unwrap();
        let script = dir.path().join("job.py");
        std::fs::write(
            &script,
            "import os\nfrom helpers import double\n\nif __name__ == '__main__':\n    \
             return {'n': double(n), 'file': os.path.basename(__file__)}\n",
        )
        .unwrap();
        let mut t = inline("");
        t.code = PythonCode::Script {
            path: script.clone(),
            function: None,
        };
        t.op_kwargs.insert("n".into(), json!(21));
        assert_eq!(
            run_logged(&t).await.0,
            Outcome::Success {
                return_value: Some(json!({"n": 42, "file": "job.py"}))
            }
        );

        std::fs::write(&script, "x = 1\nraise KeyError('k')\n").unwrap();
        let (outcome, log) = run_logged(&t).await;
        assert_eq!(outcome, failed("the task raised KeyError: 'k'"));
        assert!(
            log.contains(&format!("File \"{}\", line 2", script.display())),
            "{log}"
        );
    }

    #[tokio::test]
    async fn a_script_function_gets_op_kwargs_and_the_context_keys_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("tasks.py");
        std::fs::write(
            &script,
            "\
def named(ds, params, limit, ti=None):
    return {'ds': ds, 'limit': limit + params['limit'], 'ti': ti['task_id']}

def everything(limit, **kwargs):
    return sorted(kwargs)

def skip(limit):
    raise AirflowSkipException()

def no_args():
    return 1
",
        )
        .unwrap();
        let mut t = inline("");
        t.op_kwargs.insert("limit".into(), json!(10));
        let mut call = |function: &str| {
            t.code = PythonCode::Script {
                path: script.clone(),
                function: Some(function.into()),
            };
            t.clone()
        };
        assert_eq!(
            run_logged(&call("named")).await.0,
            Outcome::Success {
                return_value: Some(json!({"ds": "2024-01-31", "limit": 13, "ti": "t"}))
            }
        );
        assert_eq!(
            run_logged(&call("everything")).await.0,
            Outcome::Success {
                return_value: Some(json!(["ds", "params", "ti"]))
            }
        );
        assert_eq!(
            run_logged(&call("skip")).await.0,
            Outcome::Skipped { exit_code: 99 }
        );
        // Every op_kwarg is passed, as Airflow does: an unknown one is an error.
        assert_eq!(
            run_logged(&call("no_args")).await.0,
            failed(
                "the task raised TypeError: no_args() got an unexpected keyword argument 'limit'"
            )
        );
        assert_eq!(
            run_logged(&call("missing")).await.0,
            failed(&format!("{} has no function 'missing'", script.display()))
        );
    }

    /// Inline code that starts `sleep 300` and writes its pid to the `marker` op_kwarg.
    fn sleeper(marker: &Path) -> PythonTask {
        let mut t = inline(
            "import subprocess, time\np = subprocess.Popen(['sleep', '300'])\n\
             open(marker, 'w').write(str(p.pid))\ntime.sleep(60)",
        );
        t.op_kwargs
            .insert("marker".into(), json!(marker.display().to_string()));
        t
    }

    #[tokio::test]
    async fn timeout_kills_python_and_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("child.pid");
        let mut t = sleeper(&marker);
        t.execution_timeout = Some(Duration::from_secs(1));
        let started = std::time::Instant::now();
        let (outcome, log) = run_logged(&t).await;
        assert_eq!(
            outcome,
            Outcome::TimedOut {
                after: Duration::from_secs(1)
            }
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(log.contains("execution_timeout of 1s reached"), "{log}");
        let pid = pid_in(&marker).await;
        assert!(!alive(pid).await, "child {pid} survived the timeout");
    }

    #[tokio::test]
    async fn cancellation_stops_python_and_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("child.pid");
        let t = sleeper(&marker);
        let log = TestLog::new();
        let cancel = CancellationToken::new();
        let running = tokio::spawn({
            let (log, cancel) = (log.log.clone(), cancel.clone());
            async move { run(&t, log, cancel).await }
        });
        let pid = pid_in(&marker).await;
        cancel.cancel();
        assert_eq!(
            running.await.unwrap().unwrap(),
            failed("the task was stopped externally")
        );
        assert!(!alive(pid).await, "child {pid} survived the cancellation");
    }

    #[tokio::test]
    async fn the_exchange_variables_are_not_passed_on() {
        let code = "import os\nreturn [k for k in os.environ if k.startswith('UPDRAFT_PYTHON')]";
        assert_eq!(returned(code).await, Some(json!([])));
    }

    /// Spawn → outcome of a no-op task; `cargo test -p updraft --lib noop_timing -- --ignored
    /// --nocapture`.
    #[tokio::test]
    #[ignore = "a measurement, not a test"]
    async fn noop_timing() {
        let t = inline("pass");
        run_logged(&t).await; // resolves the interpreter
        let mut times = Vec::new();
        for _ in 0..10 {
            let started = std::time::Instant::now();
            assert_eq!(
                run_logged(&t).await.0,
                Outcome::Success { return_value: None }
            );
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "no-op python task: min {:?}, median {:?}, max {:?}",
            times[0], times[5], times[9]
        );
    }
}
