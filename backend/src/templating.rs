//! Rendering task templates with Airflow's context names, so tutorials port line by line.
//!
//! minijinja with strict undefined (Airflow's DAG default, `StrictUndefined`): a misspelt name
//! is an error, not an empty string. Dates follow Airflow: `ds` and `ts` come from the logical
//! date in UTC.

use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};

/// What a template can see about the run and the task being rendered.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub dag_id: String,
    pub task_id: String,
    pub run_id: String,
    pub logical_date: DateTime<Utc>,
    pub data_interval_start: DateTime<Utc>,
    pub data_interval_end: DateTime<Utc>,
    pub prev_data_interval_start_success: Option<DateTime<Utc>>,
    pub prev_data_interval_end_success: Option<DateTime<Utc>>,
    pub prev_start_date_success: Option<DateTime<Utc>>,
    /// The DAG's params with the run's conf applied over their defaults.
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The run's `conf` as triggered.
    pub conf: serde_json::Map<String, serde_json::Value>,
    pub try_number: u32,
}

/// Airflow's `ts`: ISO 8601 with the offset, no fraction when there is none.
fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

impl RunContext {
    /// The template context as Airflow names it.
    pub fn to_value(&self) -> Value {
        let ld = self.logical_date;
        let opt = |t: Option<DateTime<Utc>>| t.map(iso);
        Value::from_serialize(serde_json::json!({
            "ds": ld.format("%Y-%m-%d").to_string(),
            "ds_nodash": ld.format("%Y%m%d").to_string(),
            "ts": iso(ld),
            "ts_nodash": ld.format("%Y%m%dT%H%M%S").to_string(),
            "ts_nodash_with_tz": ld.format("%Y%m%dT%H%M%S%z").to_string(),
            "logical_date": iso(ld),
            "data_interval_start": iso(self.data_interval_start),
            "data_interval_end": iso(self.data_interval_end),
            "prev_data_interval_start_success": opt(self.prev_data_interval_start_success),
            "prev_data_interval_end_success": opt(self.prev_data_interval_end_success),
            "prev_start_date_success": opt(self.prev_start_date_success),
            "run_id": self.run_id,
            "dag": {"dag_id": self.dag_id},
            "task": {"task_id": self.task_id},
            "task_instance_key_str": format!("{}__{}__{}", self.dag_id, self.task_id, ld.format("%Y%m%d")),
            "params": self.params,
            "dag_run": {"run_id": self.run_id, "conf": self.conf, "logical_date": iso(ld)},
            "ti": {"task_id": self.task_id, "dag_id": self.dag_id, "run_id": self.run_id, "try_number": self.try_number},
        }))
    }
}

fn parse_ds(ds: &str, what: &str) -> Result<NaiveDate, Error> {
    NaiveDate::parse_from_str(ds, "%Y-%m-%d").map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("{what}: `{ds}` is not a date like 2024-01-31"),
        )
    })
}

/// `macros.ds_add(ds, days)`: the date `days` later (or earlier), as `YYYY-MM-DD`.
fn ds_add(ds: String, days: i64) -> Result<String, Error> {
    let date = parse_ds(&ds, "macros.ds_add")?;
    let shifted = Duration::try_days(days)
        .and_then(|d| date.checked_add_signed(d))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                "macros.ds_add: date out of range",
            )
        })?;
    Ok(shifted.format("%Y-%m-%d").to_string())
}

/// `macros.ds_format(ds, input_format, output_format)` with strftime formats.
fn ds_format(ds: String, input: String, output: String) -> Result<String, Error> {
    use std::fmt::Write;
    let date = chrono::NaiveDateTime::parse_from_str(&ds, &input)
        .or_else(|_| {
            NaiveDate::parse_from_str(&ds, &input)
                .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists"))
        })
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("macros.ds_format: `{ds}` does not match `{input}` ({e})"),
            )
        })?;
    let mut out = String::new();
    write!(out, "{}", date.format(&output)).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("macros.ds_format: `{output}` is not a valid strftime format"),
        )
    })?;
    Ok(out)
}

/// The environment every task template renders in.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Shell commands and SQL are not HTML.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    let mut macros = std::collections::BTreeMap::new();
    macros.insert("ds_add", Value::from_function(ds_add));
    macros.insert("ds_format", Value::from_function(ds_format));
    env.add_global("macros", Value::from_object(macros));
    env
}

/// Renders one template field.
pub fn render(env: &Environment<'_>, template: &str, ctx: &Value) -> Result<String, Error> {
    env.render_str(template, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RunContext {
        let ld = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut params = serde_json::Map::new();
        params.insert("my_param".into(), "Parameter I passed in".into());
        RunContext {
            dag_id: "tutorial".into(),
            task_id: "templated".into(),
            run_id: "scheduled__2024-01-01T00:00:00+00:00".into(),
            logical_date: ld,
            data_interval_start: ld,
            data_interval_end: ld + Duration::days(1),
            prev_data_interval_start_success: None,
            prev_data_interval_end_success: None,
            prev_start_date_success: None,
            params,
            conf: serde_json::Map::new(),
            try_number: 1,
        }
    }

    fn r(template: &str) -> Result<String, Error> {
        render(&environment(), template, &ctx().to_value())
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
            "2024-01-02T00:00:00+00:00"
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
    fn misspelt_names_and_bad_macro_input_are_errors() {
        let err = r("{{ params.my_parm }}").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UndefinedError);
        let err = r("{{ dss }}").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UndefinedError);
        let err = r("{{ macros.ds_add('yesterday', 1) }}").unwrap_err();
        assert!(err.to_string().contains("is not a date"), "{err}");
    }

    #[test]
    fn output_is_not_html_escaped() {
        assert_eq!(r("{{ '<a & b>' }}").unwrap(), "<a & b>");
    }
}
