//! DAG file → [`Dag`], or every problem at once, each with line, column and a fix.
//!
//! A pure function of the bytes: no I/O, no clock, no panics on any input (a fuzz target in
//! `fuzz/` holds us to that). The keys checked here are the ones the JSON Schema publishes; a
//! test compares the two lists.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use indexmap::IndexMap;

use super::duration::Duration;
use super::model::*;
use super::yaml::{self, Node, Pos, Value};

/// Bumped when the parser's output for the same file can change: DAG versions are keyed by a
/// hash of this and the file's bytes, so an upgrade stores freshly parsed versions.
pub const PARSER_VERSION: &str = "1";

/// Default limit on a DAG file's size.
pub const DEFAULT_MAX_BYTES: usize = 1024 * 1024;

/// Airflow's schedule presets and the cron expressions they stand for (`@once` has none).
pub const PRESETS: [(&str, Option<&str>); 7] = [
    ("@once", None),
    ("@hourly", Some("0 * * * *")),
    ("@daily", Some("0 0 * * *")),
    ("@weekly", Some("0 0 * * 0")),
    ("@monthly", Some("0 0 1 * *")),
    ("@quarterly", Some("0 0 1 */3 *")),
    ("@yearly", Some("0 0 1 1 *")),
];

/// One problem in a DAG file: where, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diagnostic {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

#[derive(Debug, Clone)]
pub struct ParseOptions {
    pub max_bytes: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// Parses and validates a DAG file with the default options.
pub fn parse_dag(bytes: &[u8]) -> Result<Dag, Vec<Diagnostic>> {
    parse_dag_with(bytes, &ParseOptions::default())
}

pub fn parse_dag_with(bytes: &[u8], options: &ParseOptions) -> Result<Dag, Vec<Diagnostic>> {
    let at_start = |message: String| {
        vec![Diagnostic {
            line: 1,
            column: 1,
            message,
        }]
    };
    if bytes.len() > options.max_bytes {
        return Err(at_start(format!(
            "the file is {} bytes, over the {}-byte limit for DAG files (core.dag_file_max_bytes); split it or move data out of it",
            bytes.len(),
            options.max_bytes
        )));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|b| **b == b'\n').count() as u32 + 1;
            // Columns count characters (as the YAML layer's do), not bytes.
            let line_start = good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let column = std::str::from_utf8(&good[line_start..]).map_or(0, |s| s.chars().count())
                as u32
                + 1;
            return Err(vec![Diagnostic {
                line,
                column,
                message: "the file is not valid UTF-8: save it as UTF-8".into(),
            }]);
        }
    };
    let root = match yaml::parse(text) {
        Ok(Some(root)) => root,
        Ok(None) => {
            return Err(at_start(
                "the file is empty: a DAG needs at least `dag_id` and `tasks`".into(),
            ))
        }
        Err(errors) => {
            // Through a walker for its limits (a file of duplicate keys has many errors).
            let mut w = Walker::default();
            for e in errors {
                w.err(e.pos, e.message);
            }
            return Err(w.finish());
        }
    };
    let mut w = Walker::default();
    let dag = w.dag(&root);
    if w.diags.is_empty() {
        if let Some(dag) = dag {
            return Ok(dag);
        }
    }
    Err(w.finish())
}

/// Keys of each mapping in a DAG file (the JSON Schema's properties; a test compares them).
pub const DAG_KEYS: &[&str] = &[
    "dag_id",
    "description",
    "doc_md",
    "tags",
    "owner",
    "schedule",
    "timezone",
    "start_date",
    "end_date",
    "catchup",
    "max_active_runs",
    "max_active_tasks",
    "dagrun_timeout",
    "default_args",
    "params",
    "on_failure",
    "on_success",
    "on_retry",
    "is_paused_upon_creation",
    "tasks",
];
pub const TASK_ARG_KEYS: &[&str] = &[
    "owner",
    "retries",
    "retry_delay",
    "retry_exponential_backoff",
    "max_retry_delay",
    "execution_timeout",
    "pool",
    "pool_slots",
    "priority_weight",
    "weight_rule",
    "depends_on_past",
    "trigger_rule",
    "queue",
];
pub const TASK_OWN_KEYS: &[&str] = &["id", "operator", "with", "depends_on", "doc_md", "expand"];
pub const PARAM_KEYS: &[&str] = &[
    "default",
    "type",
    "title",
    "description",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "format",
];
pub const NOTIFICATION_KEYS: &[&str] = &["via", "conn_id", "to", "message"];
pub const BASH_KEYS: &[&str] = &[
    "bash_command",
    "env",
    "append_env",
    "cwd",
    "skip_on_exit_code",
    "do_xcom_push",
];
pub const PYTHON_KEYS: &[&str] = &["python_callable", "code", "op_kwargs", "do_xcom_push"];
const PARAM_TYPES: &[&str] = &[
    "string", "number", "integer", "boolean", "array", "object", "null",
];

/// Whether `id` is a valid DAG or task id: `^[A-Za-z0-9_.-]{1,250}$`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 250
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    suggest(word, candidates)
        .map(|s| format!("did you mean `{s}`? "))
        .unwrap_or_default()
}

#[derive(Default)]
struct Walker {
    diags: Vec<Diagnostic>,
    /// Problems past `MAX_DIAGNOSTICS`: how many, and where the first was.
    dropped: usize,
    first_dropped: Pos,
    templates: Option<minijinja::Environment<'static>>,
}

/// A file with more problems than this gets only this many (and a count of the rest): nobody
/// reads more, and a megabyte of generated mistakes must not cost minutes or gigabytes.
const MAX_DIAGNOSTICS: usize = 100;
/// Longer messages keep their start and their end (the fix).
const MAX_MESSAGE_BYTES: usize = 1000;
/// Messages that list a DAG's task ids name at most this many.
const MAX_LISTED_IDS: usize = 20;

type Entries<'n> = Vec<(&'n str, &'n Node, &'n Node)>;

impl Walker {
    /// The diagnostics in line order, and how many more there were.
    fn finish(mut self) -> Vec<Diagnostic> {
        self.diags.sort_by_key(|d| (d.line, d.column));
        self.diags.dedup();
        if self.dropped > 0 {
            self.diags.push(Diagnostic {
                line: self.first_dropped.line.max(1),
                column: self.first_dropped.column.max(1),
                message: format!(
                    "{} more problems are not shown; fix the ones above and check the file again",
                    self.dropped
                ),
            });
        }
        self.diags
    }

    fn full(&self) -> bool {
        self.diags.len() >= MAX_DIAGNOSTICS
    }

    fn err(&mut self, pos: Pos, message: impl Into<String>) {
        if self.full() {
            if self.dropped == 0 {
                self.first_dropped = pos;
            }
            self.dropped += 1;
            return;
        }
        let mut message = message.into();
        // Messages quote what was written; a value of a megabyte is not worth quoting whole.
        if message.len() > MAX_MESSAGE_BYTES {
            let cut = |at: usize| {
                (0..=at)
                    .rev()
                    .find(|i| message.is_char_boundary(*i))
                    .unwrap_or(0)
            };
            let (head, tail) = (
                cut(MAX_MESSAGE_BYTES / 2),
                cut(message.len() - MAX_MESSAGE_BYTES / 2),
            );
            message = format!("{} … {}", &message[..head], &message[tail..]);
        }
        self.diags.push(Diagnostic {
            line: pos.line.max(1),
            column: pos.column.max(1),
            message,
        });
    }

    /// The entries of a mapping, reporting keys outside `known`.
    fn fields<'n>(&mut self, node: &'n Node, what: &str, known: &[&str]) -> Entries<'n> {
        self.fields_hinted(node, what, known, &[])
    }

    /// Like `fields`; keys in `hinted` already got a more specific message and are skipped.
    fn fields_hinted<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        known: &[&str],
        hinted: &[&str],
    ) -> Entries<'n> {
        let Value::Map(entries) = &node.value else {
            self.err(
                node.pos,
                format!(
                    "{what} must be a mapping of keys, found {}; write it as `key: value` lines",
                    node.kind()
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            let Some(key) = k.as_str() else {
                self.err(
                    k.pos,
                    format!("keys in {what} must be strings, found {}", k.kind()),
                );
                continue;
            };
            if known.contains(&key) {
                out.push((key, k, v));
            } else if !hinted.contains(&key) {
                self.err(
                    k.pos,
                    format!(
                        "unknown key `{key}` in {what}; {}allowed keys: {}",
                        did_you_mean(key, known.iter().copied()),
                        known.join(", ")
                    ),
                );
            }
        }
        out
    }

    fn require(
        &mut self,
        node: &Node,
        entries: &Entries<'_>,
        key: &str,
        what: &str,
        example: &str,
    ) {
        if matches!(node.value, Value::Map(_)) && !entries.iter().any(|(k, _, _)| *k == key) {
            self.err(
                node.pos,
                format!("{what} is missing the required key `{key}`; add e.g. `{example}`"),
            );
        }
    }

    fn wrong_type(&mut self, node: &Node, key: &str, expected: &str) {
        let hint = match (&node.value, expected) {
            (Value::Int(_) | Value::Float(_) | Value::Bool(_), "a string") => {
                "; put it in quotes to make it a string".into()
            }
            (Value::Null, _) => "; give it a value or remove the key".into(),
            (_, "a whole number") => format!("; write it in digits, e.g. `{key}: 3`"),
            (_, "a number") => format!("; write it in digits, e.g. `{key}: 1.5`"),
            (_, "true or false") => format!("; write `{key}: true` or `{key}: false`"),
            (_, "a list") => format!("; write a list, e.g. `{key}: [a, b]`"),
            (Value::Seq(_) | Value::Map(_), "a string") => {
                "; write a single value, in quotes if in doubt".into()
            }
            _ => String::new(),
        };
        self.err(
            node.pos,
            format!("`{key}` must be {expected}, found {}{hint}", node.kind()),
        );
    }

    fn string(&mut self, node: &Node, key: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.wrong_type(node, key, "a string");
                None
            }
        }
    }

    fn template(&mut self, node: &Node, key: &str) -> Option<String> {
        let text = self.string(node, key)?;
        self.check_template(node, key, &text);
        Some(text)
    }

    /// Compiles a template (syntax only; names are checked when the task runs).
    fn check_template(&mut self, node: &Node, key: &str, text: &str) {
        if !text.contains("{{") && !text.contains("{%") && !text.contains("{#") {
            return;
        }
        let env = self
            .templates
            .get_or_insert_with(minijinja::Environment::new);
        let Err(e) = env.template_from_str(text) else {
            return;
        };
        let mut tline = e.line().unwrap_or(1).max(1);
        let mut detail = e
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.to_string());
        let mut fix = "check the {{ }} and {% %} pairs".to_string();
        // At the end of the text minijinja only knows that a block is still open: point at the
        // tag that opened it instead.
        if detail == "unexpected end of input, expected end of block" {
            if let Some((line, tag)) = unclosed_block(text) {
                tline = line;
                detail = format!("`{{% {tag} %}}` is never closed");
                fix = format!("add `{{% end{tag} %}}` where its body ends");
            }
        }
        let (pos, at) = if node.block {
            // `pos` is where the block's first non-blank line starts; a literal block keeps the
            // file's lines from there (a folded one joins lines: this points at or above).
            let blank = text.bytes().take_while(|b| *b == b'\n').count();
            let line = node
                .pos
                .line
                .saturating_add((tline - 1).saturating_sub(blank) as u32);
            (
                Pos {
                    line,
                    column: node.pos.column,
                },
                String::new(),
            )
        } else if tline > 1 {
            // A quoted scalar's lines come from escapes and folding: name the template's line.
            (node.pos, format!(" (on line {tline} of the template)"))
        } else {
            (node.pos, String::new())
        };
        self.err(
            pos,
            format!("the template in `{key}` does not compile{at}: {detail}; {fix}"),
        );
    }

    fn boolean(&mut self, node: &Node, key: &str) -> Option<bool> {
        match &node.value {
            Value::Bool(b) => Some(*b),
            Value::Str(s) if matches!(s.as_str(), "yes" | "no" | "on" | "off") => {
                self.err(
                    node.pos,
                    format!(
                        "`{key}` must be true or false, found the string `{s}` (YAML 1.2 reads yes/no/on/off as text); write `{key}: {}`",
                        matches!(s.as_str(), "yes" | "on")
                    ),
                );
                None
            }
            _ => {
                self.wrong_type(node, key, "true or false");
                None
            }
        }
    }

    fn int_in(&mut self, node: &Node, key: &str, min: i64, max: i64) -> Option<i64> {
        match &node.value {
            Value::Int(i) if (min..=max).contains(i) => Some(*i),
            Value::Int(i) => {
                self.err(
                    node.pos,
                    format!("`{key}` is {i}; it must be between {min} and {max}"),
                );
                None
            }
            _ => {
                self.wrong_type(node, key, "a whole number");
                None
            }
        }
    }

    fn uint(&mut self, node: &Node, key: &str, min: u32) -> Option<u32> {
        self.int_in(node, key, min as i64, u32::MAX as i64)
            .map(|i| i as u32)
    }

    fn number(&mut self, node: &Node, key: &str) -> Option<f64> {
        match &node.value {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) if f.is_finite() => Some(*f),
            _ => {
                self.wrong_type(node, key, "a number");
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, key: &str) -> Option<Duration> {
        match &node.value {
            // Through `parse`, which refuses overflow and more than 100 years.
            Value::Int(i) if *i >= 0 => self.duration_text(node, key, &i.to_string()),
            Value::Str(s) => self.duration_text(node, key, s),
            _ => {
                self.wrong_type(node, key, "a duration such as 30s, 5m or 1h30m");
                None
            }
        }
    }

    fn duration_text(&mut self, node: &Node, key: &str, s: &str) -> Option<Duration> {
        match Duration::parse(s) {
            Ok(d) => Some(d),
            Err(why) => {
                self.err(
                    node.pos,
                    format!("`{key}`: {why}; write it like 30s, 5m, 1h30m or PT5M"),
                );
                None
            }
        }
    }

    fn list<'n>(&mut self, node: &'n Node, key: &str) -> &'n [Node] {
        match &node.value {
            Value::Seq(items) => items,
            _ => {
                self.wrong_type(node, key, "a list");
                &[]
            }
        }
    }

    /// A list of strings; a single string is accepted as a list of one.
    fn strings(&mut self, node: &Node, key: &str) -> Vec<(String, Pos)> {
        if let Value::Str(s) = &node.value {
            return vec![(s.clone(), node.pos)];
        }
        let items = self.list(node, key);
        items
            .iter()
            .filter_map(|item| self.string(item, key).map(|s| (s, item.pos)))
            .collect()
    }

    fn id(&mut self, node: &Node, key: &str) -> Option<String> {
        let id = self.string(node, key)?;
        if !is_valid_id(&id) {
            self.err(
                node.pos,
                format!("`{key}` `{id}` is not a valid id: use 1 to 250 letters, digits, `_`, `.` or `-` (no spaces)"),
            );
        }
        Some(id)
    }

    fn dag(&mut self, root: &Node) -> Option<Dag> {
        let entries = self.fields(root, "the DAG", DAG_KEYS);
        if !matches!(root.value, Value::Map(_)) {
            return None;
        }
        self.require(root, &entries, "dag_id", "the DAG", "dag_id: my_pipeline");
        self.require(
            root,
            &entries,
            "tasks",
            "the DAG",
            "tasks: [{id: hello, operator: bash, with: {bash_command: 'echo hi'}}]",
        );
        let get = |name: &str| {
            entries
                .iter()
                .find(|(k, _, _)| *k == name)
                .map(|(_, _, v)| *v)
        };

        // The time zone first: naive dates are read in it.
        let tz = match get("timezone") {
            None => Some(chrono_tz::UTC),
            Some(node) => self.timezone(node),
        };

        let mut dag = Dag {
            dag_id: String::new(),
            description: None,
            doc_md: None,
            tags: Vec::new(),
            owner: None,
            schedule: None,
            timezone: tz.map_or_else(|| "UTC".to_string(), |t| t.name().to_string()),
            start_date: None,
            end_date: None,
            catchup: false,
            max_active_runs: 16,
            max_active_tasks: 16,
            dagrun_timeout: None,
            default_args: TaskArgs::default(),
            params: IndexMap::new(),
            on_failure: Vec::new(),
            on_success: Vec::new(),
            on_retry: Vec::new(),
            is_paused_upon_creation: None,
            tasks: Vec::new(),
        };
        let mut tasks_node = None;
        for (key, _, v) in &entries {
            let v = *v;
            match *key {
                "dag_id" => dag.dag_id = self.id(v, key).unwrap_or_default(),
                "description" => dag.description = self.string(v, key),
                "doc_md" => dag.doc_md = self.string(v, key),
                "tags" => dag.tags = self.strings(v, key).into_iter().map(|(s, _)| s).collect(),
                "owner" => dag.owner = self.string(v, key),
                "schedule" => dag.schedule = self.schedule(v),
                "timezone" => {}
                // With a bad `timezone` (reported), the dates are still checked, read in UTC.
                "start_date" => dag.start_date = self.date(v, key, tz.unwrap_or(chrono_tz::UTC)),
                "end_date" => dag.end_date = self.date(v, key, tz.unwrap_or(chrono_tz::UTC)),
                "catchup" => dag.catchup = self.boolean(v, key).unwrap_or(false),
                "max_active_runs" => dag.max_active_runs = self.uint(v, key, 1).unwrap_or(16),
                "max_active_tasks" => dag.max_active_tasks = self.uint(v, key, 1).unwrap_or(16),
                "dagrun_timeout" => dag.dagrun_timeout = self.duration(v, key),
                "default_args" => {
                    let args = self.fields(v, "`default_args`", TASK_ARG_KEYS);
                    dag.default_args = self.task_args(&args);
                }
                "params" => dag.params = self.params(v),
                "on_failure" | "on_success" | "on_retry" => {
                    let list = self.notifications(v, key);
                    match *key {
                        "on_failure" => dag.on_failure = list,
                        "on_success" => dag.on_success = list,
                        _ => dag.on_retry = list,
                    }
                }
                "is_paused_upon_creation" => dag.is_paused_upon_creation = self.boolean(v, key),
                "tasks" => tasks_node = Some(v),
                _ => {}
            }
        }
        if let (Some(start), Some(end)) = (dag.start_date, dag.end_date) {
            if start.0 > end.0 {
                let pos = get("end_date").map_or(root.pos, |n| n.pos);
                self.err(
                    pos,
                    format!(
                        "`end_date` ({}) is before `start_date` ({}): no interval could run; move one of them",
                        end.0.to_rfc3339(),
                        start.0.to_rfc3339()
                    ),
                );
            }
        }
        if let Some(schedule) = &dag.schedule {
            if schedule != "@once" && dag.start_date.is_none() && get("start_date").is_none() {
                let pos = get("schedule").map_or(root.pos, |n| n.pos);
                self.err(
                    pos,
                    "a schedule needs a `start_date` (the start of the first data interval); add e.g. `start_date: 2024-01-01`, or use `schedule: null` for manual runs only",
                );
            }
        }
        if let Some(node) = tasks_node {
            dag.tasks = self.tasks(node);
        }
        Some(dag)
    }

    fn timezone(&mut self, node: &Node) -> Option<chrono_tz::Tz> {
        let name = self.string(node, "timezone")?;
        match chrono_tz::Tz::from_str(&name) {
            Ok(tz) => Some(tz),
            Err(_) => {
                let hint = suggest(&name, chrono_tz::TZ_VARIANTS.iter().map(|t| t.name()))
                    .map(|s| format!("did you mean `{s}`? "))
                    .unwrap_or_default();
                self.err(
                    node.pos,
                    format!("`timezone` `{name}` is not an IANA time zone; {hint}use a name like UTC, Europe/Paris or America/New_York"),
                );
                None
            }
        }
    }

    fn schedule(&mut self, node: &Node) -> Option<String> {
        let text = match &node.value {
            Value::Null => return None,
            Value::Str(s) => s.trim().to_string(),
            _ => {
                self.wrong_type(
                    node,
                    "schedule",
                    "a cron expression, a preset such as @daily, or null",
                );
                return None;
            }
        };
        let presets = PRESETS.map(|(p, _)| p);
        if text.starts_with('@') {
            if presets.contains(&text.as_str()) {
                return Some(text);
            }
            self.err(
                node.pos,
                format!(
                    "`schedule` `{text}` is not a preset; {}presets: {}",
                    did_you_mean(&text, presets),
                    presets.join(", ")
                ),
            );
            return None;
        }
        if text.split_whitespace().count() != 5 {
            self.err(
                node.pos,
                format!("`schedule` `{text}` is not a cron expression: write 5 fields (minute hour day-of-month month day-of-week), e.g. `0 6 * * *`, or a preset such as @daily"),
            );
            return None;
        }
        match croner::Cron::new(&text).parse() {
            Ok(_) => Some(text),
            Err(e) => {
                self.err(
                    node.pos,
                    format!("`schedule` `{text}` is not a valid cron expression ({e}); fields are minute (0-59) hour (0-23) day-of-month (1-31) month (1-12) day-of-week (0-6)"),
                );
                None
            }
        }
    }

    fn date(&mut self, node: &Node, key: &str, tz: chrono_tz::Tz) -> Option<DagDate> {
        let text = match &node.value {
            Value::Str(s) => s.trim().to_string(),
            _ => {
                self.wrong_type(node, key, "a date such as 2024-02-01");
                return None;
            }
        };
        if let Ok(dt) = DateTime::parse_from_rfc3339(&text.replace(' ', "T")) {
            return Some(DagDate(dt.with_timezone(&Utc)));
        }
        let naive = NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .or_else(|| {
                [
                    "%Y-%m-%dT%H:%M:%S%.f",
                    "%Y-%m-%d %H:%M:%S%.f",
                    "%Y-%m-%dT%H:%M",
                    "%Y-%m-%d %H:%M",
                ]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(&text, f).ok())
            });
        let Some(naive) = naive else {
            self.err(
                node.pos,
                format!("`{key}` `{text}` is not a date: write 2024-02-01, 2024-02-01T06:00:00 or 2024-02-01T06:00:00+02:00"),
            );
            return None;
        };
        match tz.from_local_datetime(&naive).earliest() {
            Some(local) => Some(DagDate(local.with_timezone(&Utc))),
            None => {
                self.err(
                    node.pos,
                    format!("`{key}` `{text}` does not exist in {} (skipped by a daylight-saving change); pick another time", tz.name()),
                );
                None
            }
        }
    }

    fn task_args(&mut self, entries: &Entries<'_>) -> TaskArgs {
        let mut args = TaskArgs::default();
        for (key, _, v) in entries {
            let v = *v;
            match *key {
                "owner" => args.owner = self.string(v, key),
                "retries" => args.retries = self.uint(v, key, 0),
                "retry_delay" => args.retry_delay = self.duration(v, key),
                "retry_exponential_backoff" => {
                    args.retry_exponential_backoff = self.boolean(v, key)
                }
                "max_retry_delay" => args.max_retry_delay = self.duration(v, key),
                "execution_timeout" => args.execution_timeout = self.duration(v, key),
                "pool" => args.pool = self.string(v, key),
                "pool_slots" => args.pool_slots = self.uint(v, key, 1),
                "priority_weight" => {
                    args.priority_weight = self
                        .int_in(v, key, i32::MIN as i64, i32::MAX as i64)
                        .map(|i| i as i32)
                }
                "weight_rule" => args.weight_rule = self.weight_rule(v),
                "depends_on_past" => args.depends_on_past = self.boolean(v, key),
                "trigger_rule" => args.trigger_rule = self.trigger_rule(v),
                "queue" => args.queue = self.string(v, key),
                _ => {}
            }
        }
        args
    }

    fn trigger_rule(&mut self, node: &Node) -> Option<TriggerRule> {
        let name = self.string(node, "trigger_rule")?;
        if let Some((_, rule)) = TriggerRule::ALL.iter().find(|(n, _)| *n == name) {
            return Some(*rule);
        }
        let names = TriggerRule::ALL.map(|(n, _)| n);
        self.err(
            node.pos,
            format!(
                "unknown trigger rule `{name}`; {}trigger rules: {}",
                did_you_mean(&name, names),
                names.join(", ")
            ),
        );
        None
    }

    fn weight_rule(&mut self, node: &Node) -> Option<WeightRule> {
        match self.string(node, "weight_rule")?.as_str() {
            "downstream" => Some(WeightRule::Downstream),
            "upstream" => Some(WeightRule::Upstream),
            "absolute" => Some(WeightRule::Absolute),
            other => {
                self.err(
                    node.pos,
                    format!("unknown weight rule `{other}`; use downstream, upstream or absolute"),
                );
                None
            }
        }
    }

    fn params(&mut self, node: &Node) -> IndexMap<String, Param> {
        let mut out = IndexMap::new();
        let Value::Map(entries) = &node.value else {
            self.wrong_type(
                node,
                "params",
                "a mapping of parameter names to defaults or specs",
            );
            return out;
        };
        for (k, v) in entries {
            let name = k.key_text();
            // A mapping made only of spec keys (with `default` or `type`) is a spec; anything
            // else is the default value itself.
            let is_spec = match &v.value {
                Value::Map(es) => {
                    es.iter()
                        .all(|(k, _)| k.as_str().is_some_and(|k| PARAM_KEYS.contains(&k)))
                        && es
                            .iter()
                            .any(|(k, _)| matches!(k.as_str(), Some("default" | "type")))
                }
                _ => false,
            };
            let param = if is_spec {
                self.param_spec(v, &name)
            } else {
                Param {
                    default: Some(json(v)),
                    ..Default::default()
                }
            };
            out.insert(name, param);
        }
        out
    }

    fn param_spec(&mut self, node: &Node, name: &str) -> Param {
        let what = format!("param `{name}`");
        let entries = self.fields(node, &what, PARAM_KEYS);
        let mut p = Param::default();
        for (key, _, v) in &entries {
            let v = *v;
            match *key {
                "default" => p.default = Some(json(v)),
                "type" => {
                    if let Some(t) = self.string(v, key) {
                        if !PARAM_TYPES.contains(&t.as_str()) {
                            self.err(
                                v.pos,
                                format!("{what}: `type` `{t}` is not a JSON-Schema type; {}use one of {}", did_you_mean(&t, PARAM_TYPES.iter().copied()), PARAM_TYPES.join(", ")),
                            );
                        }
                        p.type_ = Some(t);
                    }
                }
                "title" => p.title = self.string(v, key),
                "description" => p.description = self.string(v, key),
                "enum" => p.enum_ = Some(self.list(v, key).iter().map(json).collect()),
                "minimum" => p.minimum = self.number(v, key),
                "maximum" => p.maximum = self.number(v, key),
                "minLength" => p.min_length = self.uint(v, key, 0).map(u64::from),
                "maxLength" => p.max_length = self.uint(v, key, 0).map(u64::from),
                "pattern" => p.pattern = self.string(v, key),
                "format" => p.format = self.string(v, key),
                _ => {}
            }
        }
        if let (Some(default), Some(allowed)) = (&p.default, &p.enum_) {
            if !allowed.contains(default) {
                self.err(
                    node.pos,
                    format!("{what}: the default {default} is not one of its `enum` values"),
                );
            }
        }
        p
    }

    fn notifications(&mut self, node: &Node, key: &str) -> Vec<Notification> {
        let items = self.list(node, key).to_vec();
        let mut out = Vec::new();
        for item in &items {
            let what = format!("an `{key}` entry");
            let entries = self.fields(item, &what, NOTIFICATION_KEYS);
            self.require(item, &entries, "via", &what, "via: email");
            let mut n = Notification {
                via: NotifyVia::Email,
                conn_id: None,
                to: Vec::new(),
                message: None,
            };
            let mut ok = true;
            for (k, _, v) in &entries {
                let v = *v;
                match *k {
                    "via" => match self.string(v, k).as_deref() {
                        Some("email") => n.via = NotifyVia::Email,
                        Some("slack") => n.via = NotifyVia::Slack,
                        Some("discord") => n.via = NotifyVia::Discord,
                        Some("webhook") => n.via = NotifyVia::Webhook,
                        Some(other) => {
                            self.err(v.pos, format!("unknown notification channel `{other}`; use email, slack, discord or webhook"));
                            ok = false;
                        }
                        None => ok = false,
                    },
                    "conn_id" => n.conn_id = self.string(v, k),
                    "to" => n.to = self.strings(v, k).into_iter().map(|(s, _)| s).collect(),
                    "message" => n.message = self.template(v, k),
                    _ => {}
                }
            }
            if ok {
                out.push(n);
            }
        }
        out
    }

    fn tasks(&mut self, node: &Node) -> Vec<Task> {
        let items = self.list(node, "tasks");
        let mut tasks = Vec::new();
        // (task index, dependency name, where it was written)
        let mut deps: Vec<(usize, String, Pos)> = Vec::new();
        let mut seen: HashMap<String, u32> = HashMap::new();
        let mut positions = Vec::new();
        for item in items {
            let Some((task, task_deps)) = self.task(item) else {
                continue;
            };
            if let Some(first) = seen.get(&task.id) {
                self.err(
                    item.pos,
                    format!("duplicate task id `{}` (first at line {first}); task ids must be unique in a DAG", task.id),
                );
            } else {
                seen.insert(task.id.clone(), item.pos.line);
            }
            for (dep, pos) in task_deps {
                deps.push((tasks.len(), dep, pos));
            }
            positions.push(item.pos);
            tasks.push(task);
        }
        // Dependencies: known, not self, no cycles.
        let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
        // A duplicated id (reported above) means its first task.
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, id) in ids.iter().enumerate() {
            index.entry(id).or_insert(i);
        }
        let mut upstream: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
        for (i, dep, pos) in &deps {
            if dep == &tasks[*i].id {
                self.err(
                    *pos,
                    format!("task `{dep}` depends on itself; remove it from its own `depends_on`"),
                );
            } else if let Some(j) = index.get(dep.as_str()) {
                upstream[*i].push(*j);
            } else if self.full() {
                // Only counted: the suggestion compares with every task id.
                self.err(*pos, "");
            } else {
                let listed = ids
                    .iter()
                    .take(MAX_LISTED_IDS)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ");
                let more = if ids.len() > MAX_LISTED_IDS {
                    format!(", … ({} more)", ids.len() - MAX_LISTED_IDS)
                } else {
                    String::new()
                };
                self.err(
                    *pos,
                    format!(
                        "`depends_on` names `{dep}`, which is not a task of this DAG; {}tasks: {listed}{more}",
                        did_you_mean(dep, ids.iter().copied()),
                    ),
                );
            }
        }
        if let Some(cycle) = find_cycle(&upstream) {
            let names: Vec<&str> = cycle.iter().map(|i| ids[*i]).collect();
            self.err(
                positions[cycle[0]],
                format!(
                    "the tasks form a cycle: {}; remove one of these dependencies",
                    names.join(" → ")
                ),
            );
        }
        tasks
    }

    fn task(&mut self, node: &Node) -> Option<(Task, Vec<(String, Pos)>)> {
        let mut known: Vec<&str> = TASK_OWN_KEYS.to_vec();
        known.extend_from_slice(TASK_ARG_KEYS);
        let Value::Map(raw) = &node.value else {
            self.err(
                node.pos,
                format!(
                    "each task must be a mapping with `id` and `operator`, found {}",
                    node.kind()
                ),
            );
            return None;
        };
        // Settings written next to `operator:` instead of under `with:` get their own hint.
        let operator_settings: Vec<&str> = BASH_KEYS.iter().chain(PYTHON_KEYS).copied().collect();
        for (k, _) in raw {
            if let Some(key) = k.as_str() {
                if operator_settings.contains(&key) && !known.contains(&key) {
                    self.err(k.pos, format!("`{key}` is an operator setting: put it under `with:` (e.g. `with: {{{key}: ...}}`)"));
                }
            }
        }
        let entries = self.fields_hinted(node, "a task", &known, &operator_settings);
        self.require(node, &entries, "id", "a task", "id: extract");
        self.require(node, &entries, "operator", "a task", "operator: bash");
        let get = |name: &str| {
            entries
                .iter()
                .find(|(k, _, _)| *k == name)
                .map(|(_, _, v)| *v)
        };
        // Everything is checked even when the id or the operator is wrong; a task with a wrong
        // operator (reported, so no DAG comes out) still counts as a task for `depends_on`.
        let id = get("id").and_then(|v| self.id(v, "id"));
        let with = get("with");
        let operator =
            get("operator").and_then(|v| self.operator(v, with, id.as_deref().unwrap_or("?")));
        let arg_entries: Entries<'_> = entries
            .iter()
            .filter(|(k, _, _)| TASK_ARG_KEYS.contains(k))
            .copied()
            .collect();
        let args = self.task_args(&arg_entries);
        let deps = get("depends_on")
            .map(|v| self.strings(v, "depends_on"))
            .unwrap_or_default();
        let doc_md = get("doc_md").and_then(|v| self.string(v, "doc_md"));
        let expand = match (get("expand"), &operator) {
            (Some(v), Some(operator)) => self.expand(v, operator),
            _ => IndexMap::new(),
        };
        Some((
            Task {
                id: id?,
                operator: operator.unwrap_or(Operator::Empty),
                depends_on: deps.iter().map(|(d, _)| d.clone()).collect(),
                args,
                doc_md,
                expand,
            },
            deps,
        ))
    }

    fn operator(&mut self, node: &Node, with: Option<&Node>, task_id: &str) -> Option<Operator> {
        let name = self.string(node, "operator")?;
        let what = format!("`with` of task `{task_id}`");
        match name.as_str() {
            "empty" => {
                if let Some(w) = with {
                    let empty = matches!(&w.value, Value::Null)
                        || matches!(&w.value, Value::Map(m) if m.is_empty());
                    if !empty {
                        self.err(
                            w.pos,
                            "the `empty` operator takes no settings; remove `with:`",
                        );
                    }
                }
                Some(Operator::Empty)
            }
            "bash" => {
                let Some(w) = with else {
                    self.err(node.pos, format!("task `{task_id}`: the bash operator needs `with: {{bash_command: ...}}`"));
                    return None;
                };
                let entries = self.fields(w, &what, BASH_KEYS);
                self.require(
                    w,
                    &entries,
                    "bash_command",
                    &what,
                    "bash_command: echo {{ ds }}",
                );
                let mut op = BashOperator {
                    bash_command: String::new(),
                    env: IndexMap::new(),
                    append_env: true,
                    cwd: None,
                    skip_on_exit_code: vec![99],
                    do_xcom_push: true,
                };
                for (key, _, v) in &entries {
                    let v = *v;
                    match *key {
                        "bash_command" => {
                            op.bash_command = self.template(v, key).unwrap_or_default()
                        }
                        "env" => {
                            if let Value::Map(es) = &v.value {
                                for (k, val) in es {
                                    let name = k.key_text();
                                    if let Some(text) = self.template(val, &format!("env.{name}")) {
                                        op.env.insert(name, text);
                                    }
                                }
                            } else {
                                self.wrong_type(v, key, "a mapping of variable names to values");
                            }
                        }
                        "append_env" => op.append_env = self.boolean(v, key).unwrap_or(true),
                        "cwd" => op.cwd = self.template(v, key),
                        "skip_on_exit_code" => {
                            op.skip_on_exit_code = match &v.value {
                                Value::Null => Vec::new(),
                                Value::Int(_) => self
                                    .int_in(v, key, 0, 255)
                                    .map(|c| vec![c as i32])
                                    .unwrap_or_default(),
                                _ => self
                                    .list(v, key)
                                    .iter()
                                    .filter_map(|c| self.int_in(c, key, 0, 255).map(|c| c as i32))
                                    .collect(),
                            }
                        }
                        "do_xcom_push" => op.do_xcom_push = self.boolean(v, key).unwrap_or(true),
                        _ => {}
                    }
                }
                Some(Operator::Bash(op))
            }
            "python" => {
                let Some(w) = with else {
                    self.err(node.pos, format!("task `{task_id}`: the python operator needs `with: {{code: ...}}` or `with: {{python_callable: script.py}}`"));
                    return None;
                };
                let entries = self.fields(w, &what, PYTHON_KEYS);
                let mut op = PythonOperator {
                    python_callable: None,
                    code: None,
                    op_kwargs: IndexMap::new(),
                    do_xcom_push: true,
                };
                for (key, _, v) in &entries {
                    let v = *v;
                    match *key {
                        "python_callable" => op.python_callable = self.string(v, key),
                        "code" => op.code = self.string(v, key),
                        "op_kwargs" => {
                            if let Value::Map(es) = &v.value {
                                for (k, val) in es {
                                    let name = k.key_text();
                                    self.check_templates_in(val, &format!("op_kwargs.{name}"));
                                    op.op_kwargs.insert(name, json(val));
                                }
                            } else {
                                self.wrong_type(v, key, "a mapping of argument names to values");
                            }
                        }
                        "do_xcom_push" => op.do_xcom_push = self.boolean(v, key).unwrap_or(true),
                        _ => {}
                    }
                }
                let has = |k: &str| entries.iter().any(|(key, _, _)| *key == k);
                match (has("python_callable"), has("code")) {
                    (true, true) => self.err(w.pos, format!("{what} has both `python_callable` and `code`; keep exactly one of them")),
                    (false, false) => self.err(w.pos, format!("{what} needs exactly one of `python_callable` (a script path) and `code` (inline Python); add e.g. `code: print(\"hi\")`")),
                    _ => {}
                }
                Some(Operator::Python(op))
            }
            other => {
                self.err(
                    node.pos,
                    format!(
                        "unknown operator `{other}`; {}known operators: {}",
                        did_you_mean(other, Operator::NAMES),
                        Operator::NAMES.join(", ")
                    ),
                );
                None
            }
        }
    }

    fn check_templates_in(&mut self, node: &Node, key: &str) {
        match &node.value {
            Value::Str(s) => self.check_template(node, key, s),
            Value::Seq(items) => items.iter().for_each(|i| self.check_templates_in(i, key)),
            Value::Map(entries) => entries
                .iter()
                .for_each(|(_, v)| self.check_templates_in(v, key)),
            _ => {}
        }
    }

    fn expand(&mut self, node: &Node, operator: &Operator) -> IndexMap<String, serde_json::Value> {
        let settings: &[&str] = match operator {
            Operator::Empty => &[],
            Operator::Bash(_) => BASH_KEYS,
            Operator::Python(_) => PYTHON_KEYS,
        };
        let what = format!("`expand` (settings of the {} operator)", operator.name());
        let entries = self.fields(node, &what, settings);
        let mut out = IndexMap::new();
        for (key, _, v) in &entries {
            match &v.value {
                Value::Seq(_) => {}
                Value::Str(s) if s.contains("{{") => {
                    self.check_template(v, &format!("expand.{key}"), s)
                }
                _ => {
                    self.err(v.pos, format!("`expand.{key}` must be a list, or a template that renders to one such as `{{{{ params.items }}}}`, found {}", v.kind()));
                    continue;
                }
            }
            out.insert(key.to_string(), json(v));
        }
        out
    }
}

/// The innermost block tag (`for`, `if`, …) still open at the end of a template: its line
/// (1-based) and name. None when the text ends inside a tag, or the tags look balanced.
fn unclosed_block(text: &str) -> Option<(usize, &str)> {
    const BLOCKS: [&str; 9] = [
        "for",
        "if",
        "macro",
        "call",
        "filter",
        "with",
        "block",
        "autoescape",
        "set",
    ];
    let mut open: Vec<(usize, &str)> = Vec::new();
    let mut line = 1;
    let mut rest = text;
    while let Some(start) = rest.find("{%").into_iter().chain(rest.find("{#")).min() {
        let comment = rest[start..].starts_with("{#");
        line += rest[..start].matches('\n').count();
        rest = &rest[start + 2..];
        let end = rest.find(if comment { "#}" } else { "%}" })?;
        let tag = &rest[..end];
        let tag_line = line;
        line += tag.matches('\n').count();
        rest = &rest[end + 2..];
        if comment {
            continue;
        }
        let tag = tag.trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        let name = tag
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .next()
            .unwrap_or("");
        if name == "raw" {
            // Nothing inside `{% raw %}` is a tag.
            let close = rest.find("endraw")?;
            line += rest[..close].matches('\n').count();
            rest = &rest[close..];
        } else if let Some(closed) = name.strip_prefix("end") {
            if open.last().is_some_and(|(_, n)| *n == closed) {
                open.pop();
            }
        } else if BLOCKS.contains(&name) && !(name == "set" && tag.contains('=')) {
            open.push((tag_line, name));
        }
    }
    open.pop()
}

fn json(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Str(s) => J::String(s.clone()),
        Value::Seq(items) => J::Array(items.iter().map(json).collect()),
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| (k.key_text(), json(v)))
                .collect(),
        ),
    }
}

/// A cycle in the upstream graph, as task indexes `a, b, …, a`, if there is one.
fn find_cycle(upstream: &[Vec<usize>]) -> Option<Vec<usize>> {
    // Iterative DFS with colours: 0 new, 1 on the path, 2 done.
    let n = upstream.len();
    let mut colour = vec![0u8; n];
    let mut parent = vec![usize::MAX; n];
    for start in 0..n {
        if colour[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        colour[start] = 1;
        while let Some((node, next)) = stack.pop() {
            if next < upstream[node].len() {
                stack.push((node, next + 1));
                let up = upstream[node][next];
                match colour[up] {
                    0 => {
                        colour[up] = 1;
                        parent[up] = node;
                        stack.push((up, 0));
                    }
                    1 => {
                        // `node` depends on `up`, which is on the current path: walk back.
                        let mut cycle = vec![up];
                        let mut cur = node;
                        while cur != up && cur != usize::MAX {
                            cycle.push(cur);
                            cur = parent[cur];
                        }
                        cycle.push(up);
                        // Read it in run order: upstream first.
                        return Some(cycle);
                    }
                    _ => {}
                }
            } else {
                colour[node] = 2;
            }
        }
    }
    None
}
