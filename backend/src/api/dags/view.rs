//! How a stored DAG looks in the API: Airflow's `DAGResponse` and `DAGDetailsResponse`.

use base64::Engine as _;
use serde_json::{json, Map, Value};
use updraft_shared::api::{DagDetailsResponse, DagResponse, DagTagResponse};
use updraft_shared::dag::parse::PRESETS;
use updraft_shared::dag::{Dag, Param};

use crate::api::ids::dag_version_response;
use crate::config::Config;
use crate::store::dags::{dag, dag_version};

/// Updraft's one bundle: the DAG folder.
pub const BUNDLE_NAME: &str = "dags-folder";

/// The tags stored with a DAG (a JSON array), in the order its file lists them.
pub fn tags_of(row: &dag::Model) -> Vec<String> {
    serde_json::from_str(&row.tags).unwrap_or_default()
}

/// The owners stored with a DAG (comma-separated, as Airflow stores them).
pub fn owners_of(row: &dag::Model) -> Vec<String> {
    row.owners
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect()
}

/// Airflow's timetable class name for a schedule (what `timetable_type` filters on).
pub fn timetable_type(schedule: Option<&str>) -> &'static str {
    match schedule {
        None => "NullTimetable",
        Some("@once") => "OnceTimetable",
        Some(_) => "CronDataIntervalTimetable",
    }
}

pub fn dag_response(config: &Config, row: &dag::Model) -> DagResponse {
    let schedule = row.schedule.as_deref();
    let periodic = schedule.is_some_and(|s| s != "@once");
    DagResponse {
        dag_id: row.dag_id.clone(),
        dag_display_name: row.dag_id.clone(),
        is_paused: row.is_paused,
        is_stale: row.is_stale,
        last_parsed_time: row.last_parsed_time,
        last_parse_duration: None,
        last_expired: None,
        bundle_name: Some(BUNDLE_NAME.into()),
        bundle_version: None,
        relative_fileloc: Some(row.fileloc.clone()),
        fileloc: config.dags_folder.join(&row.fileloc).display().to_string(),
        description: row.description.clone(),
        timetable_summary: row.schedule.clone(),
        timetable_description: Some(describe_schedule(schedule, &row.timezone)),
        timetable_partitioned: false,
        timetable_periodic: periodic,
        tags: tags_of(row)
            .into_iter()
            .map(|name| DagTagResponse {
                name,
                dag_id: row.dag_id.clone(),
                dag_display_name: row.dag_id.clone(),
            })
            .collect(),
        max_active_tasks: row.max_active_tasks,
        max_active_runs: Some(row.max_active_runs),
        max_consecutive_failed_dag_runs: 0,
        has_task_concurrency_limits: false,
        has_import_errors: row.has_import_errors,
        next_dagrun_logical_date: row.next_dagrun,
        next_dagrun_data_interval_start: row.next_dagrun_data_interval_start,
        next_dagrun_data_interval_end: row.next_dagrun_data_interval_end,
        next_dagrun_run_after: row.next_dagrun_create_after,
        allowed_run_types: None,
        owners: owners_of(row),
        file_token: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&row.fileloc),
        is_backfillable: schedule.is_some(),
    }
}

/// The details of a DAG: its row, what its current version's file says, and how many of its
/// runs are running.
pub fn details_response(
    config: &Config,
    row: &dag::Model,
    version: Option<&dag_version::Model>,
    active_runs_count: i64,
) -> DagDetailsResponse {
    let parsed: Option<Dag> = version.and_then(|v| serde_json::from_str(&v.dag_json).ok());
    let d = parsed.as_ref();
    DagDetailsResponse {
        dag: dag_response(config, row),
        catchup: d.is_some_and(|d| d.catchup),
        concurrency: row.max_active_tasks,
        render_template_as_native_obj: false,
        dag_run_timeout: d
            .and_then(|d| d.dagrun_timeout)
            .map(|t| iso_duration(t.as_millis())),
        asset_expression: None,
        doc_md: d.and_then(|d| d.doc_md.clone()),
        start_date: d.and_then(|d| d.start_date).map(|t| t.0),
        end_date: d.and_then(|d| d.end_date).map(|t| t.0),
        is_paused_upon_creation: d.and_then(|d| d.is_paused_upon_creation),
        template_search_path: None,
        timezone: Some(row.timezone.clone()),
        last_parsed: row.last_parsed_time,
        params: d.map(|d| {
            Value::Object(
                d.params
                    .iter()
                    .map(|(name, p)| (name.clone(), dump_param(p)))
                    .collect(),
            )
        }),
        default_args: d.map(|d| {
            serde_json::to_value(&d.default_args).unwrap_or_else(|_| Value::Object(Map::new()))
        }),
        owner_links: None,
        is_favorite: false,
        rerun_with_latest_version: None,
        latest_dag_version: version.map(dag_version_response),
        active_runs_count,
    }
}

/// A param as Airflow's `Param.dump()` shows it: the value, its description, and the
/// JSON-Schema constraints.
fn dump_param(p: &Param) -> Value {
    let mut schema = match serde_json::to_value(p) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    schema.remove("default");
    schema.remove("description");
    json!({
        "value": p.default.clone().unwrap_or(Value::Null),
        "description": p.description,
        "schema": schema,
    })
}

/// An ISO 8601 duration as pydantic writes a `timedelta`: `PT1H30M`, `P1DT2H`, `PT0.5S`.
fn iso_duration(millis: u64) -> String {
    let days = millis / 86_400_000;
    let mut rest = millis % 86_400_000;
    let hours = rest / 3_600_000;
    rest %= 3_600_000;
    let minutes = rest / 60_000;
    rest %= 60_000;
    let mut out = String::from("P");
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if hours == 0 && minutes == 0 && rest == 0 {
        if days == 0 {
            out.push_str("T0S");
        }
        return out;
    }
    out.push('T');
    if hours > 0 {
        out.push_str(&format!("{hours}H"));
    }
    if minutes > 0 {
        out.push_str(&format!("{minutes}M"));
    }
    if rest > 0 {
        if rest.is_multiple_of(1000) {
            out.push_str(&format!("{}S", rest / 1000));
        } else {
            out.push_str(&format!("{}S", rest as f64 / 1000.0));
        }
    }
    out
}

/// The schedule in words, as Airflow's timetables describe themselves.
pub fn describe_schedule(schedule: Option<&str>, timezone: &str) -> String {
    let Some(schedule) = schedule else {
        return "Never, external triggers only".into();
    };
    if schedule == "@once" {
        return "Once, as soon as possible".into();
    }
    let expr = PRESETS
        .iter()
        .find(|(p, _)| *p == schedule)
        .and_then(|(_, c)| *c)
        .unwrap_or(schedule);
    let words = describe_cron(expr).unwrap_or_else(|| format!("Cron schedule `{expr}`"));
    if timezone == "UTC" {
        words
    } else {
        format!("{words} ({timezone})")
    }
}

/// Words for the common cron shapes (a fixed time of day, optionally on one weekday, day of
/// month, month, or every few months); None for the rest.
fn describe_cron(expr: &str) -> Option<String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let [minute, hour, dom, month, dow] = fields.as_slice() else {
        return None;
    };
    let minute: u32 = minute.parse().ok()?;
    if *hour == "*" && *dom == "*" && *month == "*" && *dow == "*" {
        return Some(if minute == 0 {
            "Every hour".into()
        } else {
            format!("At {minute} minutes past the hour")
        });
    }
    let hour: u32 = hour.parse().ok()?;
    let mut words = format!("At {hour:02}:{minute:02}");
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    match *dow {
        "*" => {}
        d => {
            let day = DAYS.get(d.parse::<usize>().ok()? % 7)?;
            words.push_str(&format!(", only on {day}"));
        }
    }
    match *dom {
        "*" => {}
        d => words.push_str(&format!(", on day {} of the month", d.parse::<u32>().ok()?)),
    }
    match *month {
        "*" => {}
        m => {
            if let Some(step) = m.strip_prefix("*/") {
                words.push_str(&format!(", every {} months", step.parse::<u32>().ok()?));
            } else {
                let name = MONTHS.get(m.parse::<usize>().ok()?.checked_sub(1)?)?;
                words.push_str(&format!(", only in {name}"));
            }
        }
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_in_words() {
        assert_eq!(
            describe_schedule(None, "UTC"),
            "Never, external triggers only"
        );
        assert_eq!(describe_schedule(Some("@daily"), "UTC"), "At 00:00");
        assert_eq!(describe_schedule(Some("@hourly"), "UTC"), "Every hour");
        assert_eq!(
            describe_schedule(Some("@weekly"), "UTC"),
            "At 00:00, only on Sunday"
        );
        assert_eq!(
            describe_schedule(Some("@quarterly"), "UTC"),
            "At 00:00, on day 1 of the month, every 3 months"
        );
        assert_eq!(
            describe_schedule(Some("30 6 * * 1"), "Europe/Paris"),
            "At 06:30, only on Monday (Europe/Paris)"
        );
        assert_eq!(
            describe_schedule(Some("*/5 * * * *"), "UTC"),
            "Cron schedule `*/5 * * * *`"
        );
    }

    #[test]
    fn durations_as_pydantic_writes_them() {
        assert_eq!(iso_duration(0), "PT0S");
        assert_eq!(iso_duration(3_600_000), "PT1H");
        assert_eq!(iso_duration(86_400_000 + 5_400_000), "P1DT1H30M");
        assert_eq!(iso_duration(86_400_000), "P1D");
        assert_eq!(iso_duration(1_500), "PT1.5S");
    }
}
