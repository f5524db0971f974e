//! The `macros` global: Airflow's `ds_add` and `ds_format`, and Python's `datetime` and
//! `timedelta` classes (see [`super::datetime`]).

use std::fmt::Write as _;

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use minijinja::value::Value;
use minijinja::{Error, ErrorKind};

use super::datetime::{DatetimeClass, TimedeltaClass};

/// What templates see as `macros`.
pub(super) fn namespace() -> Value {
    Value::from_iter([
        ("ds_add", Value::from_function(ds_add)),
        ("ds_format", Value::from_function(ds_format)),
        ("datetime", Value::from_object(DatetimeClass)),
        ("timedelta", Value::from_object(TimedeltaClass)),
    ])
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
    let date = NaiveDateTime::parse_from_str(&ds, &input)
        .or_else(|_| NaiveDate::parse_from_str(&ds, &input).map(|d| d.and_time(NaiveTime::MIN)))
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
