//! Rendering task templates with Airflow's context names, so tutorials port line by line.
//!
//! minijinja with strict undefined (Airflow's DAG default, `StrictUndefined`): a misspelt name
//! is an error, not an empty string. Dates follow Airflow: `ds` and `ts` come from the logical
//! date in UTC.
//!
//! What Airflow 3 hands its templates as Python objects is modelled with minijinja objects:
//! - datetimes (`logical_date`, `data_interval_*`, `prev_*`, `dag_run.logical_date`) print like
//!   `str()` of a pendulum 3 `DateTime` (`2024-01-01 00:00:00+00:00`) and carry Python's and
//!   pendulum's methods. minijinja cannot overload `+`/`-` for objects, so
//!   `logical_date - macros.timedelta(days=1)` is written the pendulum way:
//!   `logical_date.subtract(days=1)` or `logical_date.subtract(macros.timedelta(days=1))`;
//! - `var.value.KEY`, `var.json.KEY`, `conn.ID.*` and `ti.xcom_pull(...)` read a [`Lookups`] the
//!   engine fills from the database, only when [`needs_lookups`] says the template asks for them;
//! - lists and dicts print like Python's `str()` (`{'a': [1, None]}`), and dicts and strings have
//!   the Python methods templates use most (`dag_run.conf.get('key', 'default')`).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, Months, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    SecondsFormat, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use minijinja::value::{from_args, DynObject, Kwargs, Object, ObjectRepr, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Output, State, UndefinedBehavior};

/// What the engine reads from the database for a template that needs it (see [`needs_lookups`]).
#[derive(Clone, Default)]
pub struct Lookups {
    /// Variables by key (plain text values).
    pub variables: HashMap<String, String>,
    /// Connections by conn_id.
    pub connections: HashMap<String, Connection>,
    /// XComs of this DAG run: (task_id, key) -> value.
    pub xcoms: HashMap<(String, String), serde_json::Value>,
}

impl fmt::Debug for Lookups {
    /// Keys only: variable and XCom values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lookups")
            .field("variables", &self.variables.keys().collect::<Vec<_>>())
            .field(
                "connections",
                &self.connections.values().collect::<Vec<_>>(),
            )
            .field("xcoms", &self.xcoms.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// An Airflow connection as templates see it (`conn.ID.host`, ...).
#[derive(Clone, Default, PartialEq)]
pub struct Connection {
    pub conn_id: String,
    pub conn_type: String,
    pub host: Option<String>,
    pub schema: Option<String>,
    pub login: Option<String>,
    pub password: Option<String>,
    pub port: Option<i32>,
    pub extra: Option<String>,
}

impl fmt::Debug for Connection {
    /// Redacts the password and `extra` (which often holds keys), as Airflow masks them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "***");
        f.debug_struct("Connection")
            .field("conn_id", &self.conn_id)
            .field("conn_type", &self.conn_type)
            .field("host", &self.host)
            .field("schema", &self.schema)
            .field("login", &self.login)
            .field("password", &redacted(&self.password))
            .field("port", &self.port)
            .field("extra", &redacted(&self.extra))
            .finish()
    }
}

/// What a template can see about the run and the task being rendered.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub dag_id: String,
    pub task_id: String,
    pub run_id: String,
    /// "scheduled", "manual" or "backfill".
    pub run_type: String,
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
    /// -1 for a task that is not mapped, as in Airflow.
    pub map_index: i32,
    pub max_tries: u32,
    pub owner: String,
}

/// Airflow's `ts`: ISO 8601 with the offset, no fraction when there is none.
fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

impl RunContext {
    /// The template context as Airflow names it.
    pub fn to_value(&self, lookups: Arc<Lookups>) -> Value {
        let ld = self.logical_date;
        let opt = |t: Option<DateTime<Utc>>| t.map_or(Value::from(()), PyDateTime::value);
        let ti = Value::from_object(TaskInstance {
            dag_id: self.dag_id.clone(),
            task_id: self.task_id.clone(),
            run_id: self.run_id.clone(),
            try_number: self.try_number,
            map_index: self.map_index,
            max_tries: self.max_tries,
            lookups: lookups.clone(),
        });
        let dag_run = Value::from_iter([
            ("dag_id", Value::from(self.dag_id.as_str())),
            ("run_id", Value::from(self.run_id.as_str())),
            ("run_type", Value::from(self.run_type.as_str())),
            ("conf", Value::from_serialize(&self.conf)),
            ("logical_date", PyDateTime::value(ld)),
            (
                "data_interval_start",
                PyDateTime::value(self.data_interval_start),
            ),
            (
                "data_interval_end",
                PyDateTime::value(self.data_interval_end),
            ),
        ]);
        let var = Value::from_iter([
            ("value", VariableAccessor::value(lookups.clone(), false)),
            ("json", VariableAccessor::value(lookups.clone(), true)),
        ]);
        Value::from_iter([
            ("ds", Value::from(ld.format("%Y-%m-%d").to_string())),
            ("ds_nodash", Value::from(ld.format("%Y%m%d").to_string())),
            ("ts", Value::from(iso(ld))),
            (
                "ts_nodash",
                Value::from(ld.format("%Y%m%dT%H%M%S").to_string()),
            ),
            (
                "ts_nodash_with_tz",
                Value::from(ld.format("%Y%m%dT%H%M%S%z").to_string()),
            ),
            ("logical_date", PyDateTime::value(ld)),
            (
                "data_interval_start",
                PyDateTime::value(self.data_interval_start),
            ),
            (
                "data_interval_end",
                PyDateTime::value(self.data_interval_end),
            ),
            (
                "prev_data_interval_start_success",
                opt(self.prev_data_interval_start_success),
            ),
            (
                "prev_data_interval_end_success",
                opt(self.prev_data_interval_end_success),
            ),
            ("prev_start_date_success", opt(self.prev_start_date_success)),
            ("run_id", Value::from(self.run_id.as_str())),
            (
                "dag",
                Value::from_iter([
                    ("dag_id", self.dag_id.as_str()),
                    ("owner", self.owner.as_str()),
                ]),
            ),
            (
                "task",
                Value::from_iter([("task_id", self.task_id.as_str())]),
            ),
            (
                "task_instance_key_str",
                Value::from(format!(
                    "{}__{}__{}",
                    self.dag_id,
                    self.task_id,
                    ld.format("%Y%m%d")
                )),
            ),
            ("params", Value::from_serialize(&self.params)),
            ("dag_run", dag_run),
            ("ti", ti.clone()),
            ("task_instance", ti),
            ("var", var),
            (
                "conn",
                Value::from_object(ConnectionAccessor {
                    lookups: lookups.clone(),
                }),
            ),
        ])
    }
}

/// Which database lookups a template may need: (variables, connections, XComs).
///
/// A cheap text check that may say yes too often (a shell `var=1` counts), never too rarely
/// for the names it knows: `var`/`conn` as whole words, and `xcom_pull`.
pub fn needs_lookups(template: &str) -> (bool, bool, bool) {
    (
        mentions(template, "var"),
        mentions(template, "conn"),
        template.contains("xcom_pull"),
    )
}

/// Whether `name` occurs as a whole identifier (`var.x`, `var['x']`, `{% set v = var %}`).
fn mentions(template: &str, name: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    template.match_indices(name).any(|(i, _)| {
        !template[..i].chars().next_back().is_some_and(ident)
            && !template[i + name.len()..].chars().next().is_some_and(ident)
    })
}

// ---------------------------------------------------------------------------------------------
// Small helpers for Python-style calls

fn invalid(detail: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, detail)
}

/// Binds a call's arguments the Python way: the first `max_positional` of `names` may come by
/// position, any by keyword. `none` counts as not given: every default here is None.
fn bind<const N: usize>(
    what: &str,
    args: &[Value],
    names: [&str; N],
    max_positional: usize,
) -> Result<[Option<Value>; N], Error> {
    let (positional, kwargs): (&[Value], Kwargs) = from_args(args)?;
    let max_positional = max_positional.min(N);
    if positional.len() > max_positional {
        return Err(Error::new(
            ErrorKind::TooManyArguments,
            format!(
                "{what}() takes at most {max_positional} positional arguments ({} given)",
                positional.len()
            ),
        ));
    }
    if let Some(unknown) = kwargs.args().find(|k| !names.contains(k)) {
        return Err(Error::new(
            ErrorKind::TooManyArguments,
            format!("{what}() got an unexpected keyword argument '{unknown}'"),
        ));
    }
    let mut bound: [Option<Value>; N] = std::array::from_fn(|i| positional.get(i).cloned());
    for (slot, name) in bound.iter_mut().zip(names) {
        if kwargs.has(name) {
            if slot.is_some() {
                return Err(invalid(format!(
                    "{what}() got multiple values for argument '{name}'"
                )));
            }
            *slot = Some(kwargs.peek::<Value>(name)?);
        }
    }
    for slot in &mut bound {
        if slot
            .as_ref()
            .is_some_and(|v| v.is_none() || v.is_undefined())
        {
            *slot = None;
        }
    }
    Ok(bound)
}

fn required<'v>(v: &'v Option<Value>, what: &str, name: &str) -> Result<&'v Value, Error> {
    v.as_ref().ok_or_else(|| {
        Error::new(
            ErrorKind::MissingArgument,
            format!("{what}() missing required argument '{name}'"),
        )
    })
}

fn as_string(v: &Value, what: &str, name: &str) -> Result<String, Error> {
    v.as_str().map(str::to_owned).ok_or_else(|| {
        invalid(format!(
            "{what}(): {name} must be a string, not {}",
            v.kind()
        ))
    })
}

fn as_int(v: &Value, what: &str, name: &str) -> Result<i64, Error> {
    let not_int = || invalid(format!("{what}(): {name} must be an integer, not {v:?}"));
    if !v.is_integer() {
        return Err(not_int());
    }
    i64::try_from(v.clone()).map_err(|_| not_int())
}

/// An optional integer argument, `0` when not given.
fn int_or_zero(v: &Option<Value>, what: &str, name: &str) -> Result<i64, Error> {
    v.as_ref().map_or(Ok(0), |v| as_int(v, what, name))
}

/// An int-or-float argument times `unit` microseconds, `0` when not given.
fn micros(v: &Option<Value>, unit: i64, what: &str, name: &str) -> Result<i128, Error> {
    let Some(v) = v else { return Ok(0) };
    if v.is_integer() {
        return Ok(i128::from(as_int(v, what, name)?) * i128::from(unit));
    }
    let number = (v.is_number())
        .then(|| f64::try_from(v.clone()).ok())
        .flatten()
        .ok_or_else(|| invalid(format!("{what}(): {name} must be a number, not {v:?}")))?;
    let us = (number * unit as f64).round();
    if !us.is_finite() || us.abs() > 1e20 {
        return Err(invalid(format!("{what}(): {name} is out of range")));
    }
    Ok(us as i128)
}

fn duration_us(us: i128, what: &str) -> Result<Duration, Error> {
    i64::try_from(us)
        .map(Duration::microseconds)
        .map_err(|_| invalid(format!("{what}(): the duration is out of range")))
}

/// `%f` is microseconds in Python and nanoseconds in chrono.
fn chrono_format(python: &str) -> String {
    let mut out = String::with_capacity(python.len() + 2);
    let mut chars = python.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '%' {
            match chars.next() {
                Some('f') => out.push_str("6f"),
                Some(next) => out.push(next),
                None => {}
            }
        }
    }
    out
}

/// Writes out chrono's `format(chrono_format(python_format))`: a bad format is an error, not
/// a panic.
fn strftime(formatted: impl fmt::Display, python_format: &str) -> Result<String, Error> {
    let mut out = String::new();
    write!(out, "{formatted}").map_err(|_| {
        invalid(format!(
            "strftime(): `{python_format}` is not a valid format for this value"
        ))
    })?;
    Ok(out)
}

fn parse_tz(name: &str, what: &str) -> Result<Tz, Error> {
    name.parse::<Tz>().map_err(|_| {
        invalid(format!(
            "{what}(): unknown time zone '{name}' (use an IANA name like 'Europe/Amsterdam' or 'UTC')"
        ))
    })
}

/// A local wall-clock time in `tz` the way pendulum resolves it (`fold=1`): the later of two
/// instants in a DST fold; a time inside a DST gap moves forward by the gap.
fn localize(tz: &Tz, naive: NaiveDateTime) -> DateTime<Tz> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(dt) => dt,
        LocalResult::Ambiguous(_, later) => later,
        LocalResult::None => {
            let before_gap = naive.checked_sub_signed(Duration::days(1)).unwrap_or(naive);
            let offset = tz.offset_from_utc_datetime(&before_gap).fix();
            tz.from_utc_datetime(&(naive - Duration::seconds(offset.local_minus_utc().into())))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Datetimes, dates and timedeltas

/// A timezone-aware datetime that behaves like Airflow's pendulum `DateTime` in templates.
#[derive(Debug, Clone)]
struct PyDateTime(DateTime<Tz>);

impl PyDateTime {
    fn value(t: DateTime<Utc>) -> Value {
        Value::from_object(PyDateTime(t.with_timezone(&chrono_tz::UTC)))
    }

    fn microsecond(&self) -> u32 {
        // chrono puts a leap second into the nanoseconds.
        self.0.nanosecond() % 1_000_000_000 / 1_000
    }

    /// Python's `isoformat(sep)`: microseconds only when set, offset as `+HH:MM`.
    fn isoformat(&self, sep: &str) -> String {
        let dt = &self.0;
        let mut out = format!("{}{sep}{}", dt.format("%Y-%m-%d"), dt.format("%H:%M:%S"));
        let us = self.microsecond();
        if us != 0 {
            let _ = write!(out, ".{us:06}");
        }
        let offset = dt.offset().fix().local_minus_utc();
        let (sign, abs) = if offset < 0 {
            ('-', -offset)
        } else {
            ('+', offset)
        };
        let _ = write!(out, "{sign}{:02}:{:02}", abs / 3600, abs / 60 % 60);
        if abs % 60 != 0 {
            let _ = write!(out, ":{:02}", abs % 60);
        }
        out
    }

    fn timestamp(&self) -> f64 {
        self.0.timestamp_micros() as f64 / 1e6
    }

    /// pendulum's `add`: years, months, weeks and days move the wall clock in the datetime's
    /// zone; hours and smaller (and a plain timedelta) move the instant.
    fn shift(&self, what: &str, args: &[Value], sign: i64) -> Result<DateTime<Tz>, Error> {
        let out_of_range = || invalid(format!("{what}(): the result is out of range"));
        if let Some(delta) = args
            .first()
            .and_then(|v| v.downcast_object_ref::<Timedelta>())
        {
            if args.len() > 1 {
                return Err(Error::new(
                    ErrorKind::TooManyArguments,
                    format!("{what}() takes a timedelta or keyword arguments, not both"),
                ));
            }
            let delta = duration_us(i128::from(delta.micros) * i128::from(sign), what)?;
            return self.0.checked_add_signed(delta).ok_or_else(out_of_range);
        }
        let [years, months, weeks, days, hours, minutes, seconds, microseconds] = bind(
            what,
            args,
            [
                "years",
                "months",
                "weeks",
                "days",
                "hours",
                "minutes",
                "seconds",
                "microseconds",
            ],
            8,
        )?;
        let months = i128::from(int_or_zero(&years, what, "years")?) * 12
            + i128::from(int_or_zero(&months, what, "months")?);
        let wall_us = micros(&weeks, 7 * US_PER_DAY, what, "weeks")?
            + micros(&days, US_PER_DAY, what, "days")?;
        let exact_us = micros(&hours, 3600 * US_PER_SEC, what, "hours")?
            + micros(&minutes, 60 * US_PER_SEC, what, "minutes")?
            + micros(&seconds, US_PER_SEC, what, "seconds")?
            + micros(&microseconds, 1, what, "microseconds")?;
        let sign = i128::from(sign);
        if months == 0 && wall_us == 0 {
            let delta = duration_us(exact_us * sign, what)?;
            return self.0.checked_add_signed(delta).ok_or_else(out_of_range);
        }
        let months = months * sign;
        let step = Months::new(u32::try_from(months.unsigned_abs()).map_err(|_| out_of_range())?);
        let local = self.0.naive_local();
        let local = if months >= 0 {
            local.checked_add_months(step)
        } else {
            local.checked_sub_months(step)
        }
        .ok_or_else(out_of_range)?
        .checked_add_signed(duration_us((wall_us + exact_us) * sign, what)?)
        .ok_or_else(out_of_range)?;
        Ok(localize(&self.0.timezone(), local))
    }

    /// Python's `replace` / pendulum's `set` for the date and time fields.
    fn replace(&self, what: &str, args: &[Value]) -> Result<DateTime<Tz>, Error> {
        let names = [
            "year",
            "month",
            "day",
            "hour",
            "minute",
            "second",
            "microsecond",
        ];
        let given = bind(what, args, names, 0)?;
        let dt = &self.0;
        let current = [
            i64::from(dt.year()),
            i64::from(dt.month()),
            i64::from(dt.day()),
            i64::from(dt.hour()),
            i64::from(dt.minute()),
            i64::from(dt.second()),
            i64::from(self.microsecond()),
        ];
        let mut parts = current;
        for ((part, value), name) in parts.iter_mut().zip(&given).zip(names) {
            if let Some(value) = value {
                *part = as_int(value, what, name)?;
            }
        }
        Ok(localize(&dt.timezone(), naive_from_parts(what, parts)?))
    }
}

const US_PER_SEC: i64 = 1_000_000;
const US_PER_DAY: i64 = 86_400 * US_PER_SEC;

/// year, month, day, hour, minute, second, microsecond -> a wall-clock time, checked.
fn naive_from_parts(what: &str, parts: [i64; 7]) -> Result<NaiveDateTime, Error> {
    let [year, month, day, hour, minute, second, microsecond] = parts;
    let date = i32::try_from(year)
        .ok()
        .zip(u32::try_from(month).ok())
        .zip(u32::try_from(day).ok())
        .and_then(|((y, m), d)| NaiveDate::from_ymd_opt(y, m, d))
        .ok_or_else(|| {
            invalid(format!(
                "{what}(): {year:04}-{month:02}-{day:02} is not a valid date"
            ))
        })?;
    let time = u32::try_from(hour)
        .ok()
        .zip(u32::try_from(minute).ok())
        .zip(u32::try_from(second).ok())
        .zip(u32::try_from(microsecond).ok())
        .and_then(|(((h, m), s), us)| NaiveTime::from_hms_micro_opt(h, m, s, us))
        .ok_or_else(|| {
            invalid(format!(
                "{what}(): {hour:02}:{minute:02}:{second:02}.{microsecond:06} is not a valid time"
            ))
        })?;
    Ok(date.and_time(time))
}

impl fmt::Display for PyDateTime {
    /// `str()` of a pendulum 3 DateTime is `isoformat(" ")`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.isoformat(" "))
    }
}

impl Object for PyDateTime {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let dt = &self.0;
        Some(match key.as_str()? {
            "year" => dt.year().into(),
            "month" => dt.month().into(),
            "day" => dt.day().into(),
            "hour" => dt.hour().into(),
            "minute" => dt.minute().into(),
            "second" => dt.second().into(),
            "microsecond" => self.microsecond().into(),
            "day_of_year" => dt.ordinal().into(),
            "tz" | "timezone" | "timezone_name" => dt.timezone().name().into(),
            "offset" => dt.offset().fix().local_minus_utc().into(),
            "int_timestamp" => dt.timestamp().into(),
            "float_timestamp" => self.timestamp().into(),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let what = method;
        let dt = &self.0;
        let new = |dt: DateTime<Tz>| Value::from_object(PyDateTime(dt));
        Ok(match method {
            "strftime" => {
                let [format] = bind(what, args, ["format"], 1)?;
                let format = as_string(required(&format, what, "format")?, what, "format")?;
                Value::from(strftime(dt.format(&chrono_format(&format)), &format)?)
            }
            "isoformat" => {
                let [sep] = bind(what, args, ["sep"], 1)?;
                let sep = match &sep {
                    Some(v) => as_string(v, what, "sep")?,
                    None => "T".into(),
                };
                Value::from(self.isoformat(&sep))
            }
            "timestamp" => {
                bind(what, args, [], 0)?;
                Value::from(self.timestamp())
            }
            "date" => {
                bind(what, args, [], 0)?;
                Value::from_object(PyDate(dt.date_naive()))
            }
            "to_date_string" => {
                bind(what, args, [], 0)?;
                Value::from(dt.format("%Y-%m-%d").to_string())
            }
            "to_datetime_string" => {
                bind(what, args, [], 0)?;
                Value::from(dt.format("%Y-%m-%d %H:%M:%S").to_string())
            }
            "weekday" => {
                bind(what, args, [], 0)?;
                Value::from(dt.weekday().num_days_from_monday())
            }
            "isoweekday" => {
                bind(what, args, [], 0)?;
                Value::from(dt.weekday().number_from_monday())
            }
            "in_timezone" | "in_tz" | "astimezone" => {
                let [tz] = bind(what, args, ["tz"], 1)?;
                let tz = as_string(required(&tz, what, "tz")?, what, "tz")?;
                new(dt.with_timezone(&parse_tz(&tz, what)?))
            }
            "add" => new(self.shift(what, args, 1)?),
            "subtract" => new(self.shift(what, args, -1)?),
            "replace" | "set" => new(self.replace(what, args)?),
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        })
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        Some(self.0.cmp(&other.downcast_ref::<Self>()?.0))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_ref(), f)
    }
}

/// What `dt.date()` returns: prints as `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy)]
struct PyDate(NaiveDate);

impl Object for PyDate {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "year" => self.0.year().into(),
            "month" => self.0.month().into(),
            "day" => self.0.day().into(),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let what = method;
        Ok(match method {
            "strftime" => {
                let [format] = bind(what, args, ["format"], 1)?;
                let format = as_string(required(&format, what, "format")?, what, "format")?;
                Value::from(strftime(self.0.format(&chrono_format(&format)), &format)?)
            }
            "isoformat" => {
                bind(what, args, [], 0)?;
                Value::from(self.0.format("%Y-%m-%d").to_string())
            }
            "weekday" => {
                bind(what, args, [], 0)?;
                Value::from(self.0.weekday().num_days_from_monday())
            }
            "isoweekday" => {
                bind(what, args, [], 0)?;
                Value::from(self.0.weekday().number_from_monday())
            }
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        })
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        Some(self.0.cmp(&other.downcast_ref::<Self>()?.0))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

/// Python's `datetime.timedelta`, kept as microseconds.
#[derive(Debug, Clone, Copy)]
struct Timedelta {
    micros: i64,
}

impl Timedelta {
    /// Python's normalised fields: `days` may be negative, `seconds` and `microseconds` not.
    fn parts(self) -> (i64, i64, i64) {
        let rest = self.micros.rem_euclid(US_PER_DAY);
        (
            self.micros.div_euclid(US_PER_DAY),
            rest / US_PER_SEC,
            rest % US_PER_SEC,
        )
    }

    /// `timedelta(days=0, seconds=0, microseconds=0, milliseconds=0, minutes=0, hours=0, weeks=0)`.
    fn from_args(args: &[Value]) -> Result<Timedelta, Error> {
        const WHAT: &str = "macros.timedelta";
        let names = [
            "days",
            "seconds",
            "microseconds",
            "milliseconds",
            "minutes",
            "hours",
            "weeks",
        ];
        let units = [
            US_PER_DAY,
            US_PER_SEC,
            1,
            1_000,
            60 * US_PER_SEC,
            3_600 * US_PER_SEC,
            7 * US_PER_DAY,
        ];
        let given = bind(WHAT, args, names, 7)?;
        let mut total = 0i128;
        for ((value, unit), name) in given.iter().zip(units).zip(names) {
            total += micros(value, unit, WHAT, name)?;
        }
        let micros = i64::try_from(total)
            .map_err(|_| invalid(format!("{WHAT}(): the duration is out of range")))?;
        Ok(Timedelta { micros })
    }
}

impl fmt::Display for Timedelta {
    /// Python's `str(timedelta)`: `1 day, 2:00:00`, `-1 day, 23:00:00`, `0:00:00.500000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, seconds, us) = self.parts();
        if days != 0 {
            let plural = if days.abs() == 1 { "" } else { "s" };
            write!(f, "{days} day{plural}, ")?;
        }
        write!(
            f,
            "{}:{:02}:{:02}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        )?;
        if us != 0 {
            write!(f, ".{us:06}")?;
        }
        Ok(())
    }
}

impl Object for Timedelta {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let (days, seconds, us) = self.parts();
        Some(match key.as_str()? {
            "days" => days.into(),
            "seconds" => seconds.into(),
            "microseconds" => us.into(),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "total_seconds" => {
                bind(method, args, [], 0)?;
                Ok(Value::from(self.micros as f64 / 1e6))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        Some(self.micros.cmp(&other.downcast_ref::<Self>()?.micros))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_ref(), f)
    }
}

// ---------------------------------------------------------------------------------------------
// macros

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

/// `macros.datetime`: Python's `datetime` class, callable and with its class methods. Unlike
/// Python's naive datetimes, what it makes is in UTC, so it compares with `logical_date`.
#[derive(Debug)]
struct DatetimeClass;

impl DatetimeClass {
    fn strptime(text: &str, python_format: &str) -> Result<DateTime<Utc>, Error> {
        let format = chrono_format(python_format);
        DateTime::parse_from_str(text, &format)
            .map(|dt| dt.with_timezone(&Utc))
            .or_else(|_| NaiveDateTime::parse_from_str(text, &format).map(|dt| dt.and_utc()))
            .or_else(|_| {
                NaiveDate::parse_from_str(text, &format)
                    .map(|d| d.and_time(NaiveTime::MIN).and_utc())
            })
            .map_err(|e| {
                invalid(format!(
                    "macros.datetime.strptime(): time data '{text}' does not match format '{python_format}' ({e})"
                ))
            })
    }

    fn fromisoformat(text: &str) -> Result<DateTime<Utc>, Error> {
        let naive = |format| NaiveDateTime::parse_from_str(text, format).map(|dt| dt.and_utc());
        DateTime::parse_from_rfc3339(text)
            .map(|dt| dt.with_timezone(&Utc))
            .or_else(|_| naive("%Y-%m-%dT%H:%M:%S%.f"))
            .or_else(|_| naive("%Y-%m-%d %H:%M:%S%.f"))
            .or_else(|_| naive("%Y-%m-%dT%H:%M"))
            .or_else(|_| {
                NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .map(|d| d.and_time(NaiveTime::MIN).and_utc())
            })
            .map_err(|_| {
                invalid(format!(
                    "macros.datetime.fromisoformat(): invalid isoformat string: '{text}'"
                ))
            })
    }
}

impl Object for DatetimeClass {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        const WHAT: &str = "macros.datetime";
        let names = [
            "year",
            "month",
            "day",
            "hour",
            "minute",
            "second",
            "microsecond",
        ];
        let given = bind(WHAT, args, names, 7)?;
        let mut parts = [0i64; 7];
        for (i, ((part, value), name)) in parts.iter_mut().zip(&given).zip(names).enumerate() {
            // year, month and day are required; the time defaults to midnight.
            if value.is_some() || i < 3 {
                *part = as_int(required(value, WHAT, name)?, WHAT, name)?;
            }
        }
        Ok(PyDateTime::value(naive_from_parts(WHAT, parts)?.and_utc()))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let what = format!("macros.datetime.{method}");
        let text =
            |v: &Option<Value>, name: &str| as_string(required(v, &what, name)?, &what, name);
        let dt = match method {
            "now" | "utcnow" | "today" => {
                bind(&what, args, [], 0)?;
                Utc::now()
            }
            "strptime" => {
                let [date_string, format] = bind(&what, args, ["date_string", "format"], 2)?;
                Self::strptime(
                    &text(&date_string, "date_string")?,
                    &text(&format, "format")?,
                )?
            }
            "fromisoformat" => {
                let [date_string] = bind(&what, args, ["date_string"], 1)?;
                Self::fromisoformat(&text(&date_string, "date_string")?)?
            }
            "fromtimestamp" | "utcfromtimestamp" => {
                let [ts] = bind(&what, args, ["timestamp"], 1)?;
                let us = micros(&ts, US_PER_SEC, &what, "timestamp")?;
                i64::try_from(us)
                    .ok()
                    .and_then(DateTime::from_timestamp_micros)
                    .ok_or_else(|| invalid(format!("{what}(): timestamp out of range")))?
            }
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        };
        Ok(PyDateTime::value(dt))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<class 'datetime.datetime'>")
    }
}

/// `macros.timedelta`: Python's `datetime.timedelta` class.
#[derive(Debug)]
struct TimedeltaClass;

impl Object for TimedeltaClass {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        Ok(Value::from_object(Timedelta::from_args(args)?))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<class 'datetime.timedelta'>")
    }
}

// ---------------------------------------------------------------------------------------------
// var, conn and ti

/// `var.value` (text) and `var.json` (parsed): Airflow's `VariableAccessor`.
#[derive(Debug)]
struct VariableAccessor {
    lookups: Arc<Lookups>,
    json: bool,
}

impl VariableAccessor {
    fn value(lookups: Arc<Lookups>, json: bool) -> Value {
        Value::from_object(VariableAccessor { lookups, json })
    }

    fn get(&self, key: &str) -> Option<Result<Value, Error>> {
        let raw = self.lookups.variables.get(key)?;
        Some(if self.json {
            serde_json::from_str::<serde_json::Value>(raw)
                .map(Value::from_serialize)
                .map_err(|e| invalid(format!("variable {key} is not valid JSON ({e})")))
        } else {
            Ok(Value::from(raw.as_str()))
        })
    }
}

impl Object for VariableAccessor {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    /// A missing key is an error with its name (Airflow raises), not an anonymous undefined.
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        Some(match self.get(key) {
            Some(Ok(value)) => value,
            Some(Err(e)) => Value::from(e),
            None => Value::from(invalid(format!("variable {key} does not exist"))),
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if method != "get" {
            return Err(Error::from(ErrorKind::UnknownMethod));
        }
        let what = if self.json {
            "var.json.get"
        } else {
            "var.value.get"
        };
        let [key, default] = bind(what, args, ["key", "default"], 2)?;
        let key = as_string(required(&key, what, "key")?, what, "key")?;
        match self.get(&key) {
            Some(value) => value,
            None => Ok(default.unwrap_or_else(|| Value::from(()))),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<VariableAccessor (dynamic access)>")
    }
}

/// `conn`: Airflow's `ConnectionAccessor`.
#[derive(Debug)]
struct ConnectionAccessor {
    lookups: Arc<Lookups>,
}

impl Object for ConnectionAccessor {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let id = key.as_str()?;
        Some(match self.lookups.connections.get(id) {
            Some(conn) => Value::from_object(ConnectionValue(conn.clone())),
            None => Value::from(invalid(format!("connection {id} is not defined"))),
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if method != "get" {
            return Err(Error::from(ErrorKind::UnknownMethod));
        }
        let [id, default] = bind("conn.get", args, ["conn_id", "default_conn"], 2)?;
        let id = as_string(required(&id, "conn.get", "conn_id")?, "conn.get", "conn_id")?;
        Ok(match self.lookups.connections.get(&id) {
            Some(conn) => Value::from_object(ConnectionValue(conn.clone())),
            None => default.unwrap_or_else(|| Value::from(())),
        })
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<ConnectionAccessor (dynamic access)>")
    }
}

/// One connection in a template. Prints as its id so that secrets do not leak by accident.
#[derive(Debug)]
struct ConnectionValue(Connection);

/// Python's `quote(s, safe="")` (`plus`: `quote_plus`, a space becomes `+`).
fn quote(s: &str, plus: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(b))
            }
            b' ' if plus => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

impl ConnectionValue {
    /// Airflow's `extra_dejson`: the parsed `extra`, `{}` when empty or not JSON.
    fn extra_dejson(&self) -> Value {
        self.0
            .extra
            .as_deref()
            .and_then(|e| serde_json::from_str::<serde_json::Value>(e).ok())
            .map_or_else(
                || Value::from_serialize(serde_json::Map::new()),
                Value::from_serialize,
            )
    }

    /// Airflow's `Connection.get_uri()` (task SDK): `type://login:password@host:port/schema`,
    /// `extra` as the query (`?k=v` when it is a JSON object of strings, else `__extra__=`).
    fn uri(&self) -> String {
        let c = &self.0;
        let mut uri = if c.conn_type.is_empty() {
            "//".to_string()
        } else {
            format!("{}://", c.conn_type.to_lowercase().replace('_', "-"))
        };
        let host = match c.host.as_deref().and_then(|h| h.split_once("://")) {
            Some((protocol, _)) if protocol == c.conn_type => c.host.as_deref(),
            Some((protocol, rest)) => {
                uri.push_str(protocol);
                uri.push_str("://");
                Some(rest)
            }
            None => c.host.as_deref(),
        };
        let mut authority = String::new();
        if let Some(login) = &c.login {
            authority.push_str(&quote(login, false));
        }
        if let Some(password) = &c.password {
            authority.push(':');
            authority.push_str(&quote(password, false));
        }
        if !authority.is_empty() {
            uri.push_str(&authority);
            uri.push('@');
        }
        let host = host.filter(|h| !h.is_empty()).map(|h| quote(h, false));
        if let Some(host) = &host {
            uri.push_str(host);
        }
        if let Some(port) = c.port {
            let at = if host.is_none() && authority.is_empty() {
                "@"
            } else {
                ""
            };
            let _ = write!(uri, "{at}:{port}");
        }
        let schema = c.schema.as_deref().filter(|s| !s.is_empty());
        if let Some(schema) = schema {
            uri.push('/');
            uri.push_str(&quote(schema, false));
        }
        if let Some(extra) = c.extra.as_deref().filter(|e| !e.is_empty()) {
            uri.push_str(if schema.is_some() { "?" } else { "/?" });
            // Airflow keeps `k=v` only when it parses back to the same dict: string values.
            match serde_json::from_str::<indexmap::IndexMap<String, serde_json::Value>>(extra) {
                Ok(map) if !map.is_empty() && map.values().all(|v| v.is_string()) => {
                    let pairs: Vec<String> = map
                        .iter()
                        .map(|(k, v)| {
                            let v = v.as_str().unwrap_or_default();
                            format!("{}={}", quote(k, true), quote(v, true))
                        })
                        .collect();
                    uri.push_str(&pairs.join("&"));
                }
                _ => {
                    uri.push_str("__extra__=");
                    uri.push_str(&quote(extra, true));
                }
            }
        }
        uri
    }
}

impl Object for ConnectionValue {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let c = &self.0;
        let text = |v: &Option<String>| v.as_deref().map_or(Value::from(()), Value::from);
        Some(match key.as_str()? {
            "conn_id" => Value::from(c.conn_id.as_str()),
            "conn_type" => Value::from(c.conn_type.as_str()),
            "host" => text(&c.host),
            "schema" => text(&c.schema),
            "login" => text(&c.login),
            "password" => text(&c.password),
            "port" => c.port.map_or(Value::from(()), Value::from),
            "extra" => text(&c.extra),
            "extra_dejson" => self.extra_dejson(),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "get_uri" => {
                bind(method, args, [], 0)?;
                Ok(Value::from(self.uri()))
            }
            "get_extra_dejson" => {
                bind(method, args, [], 0)?;
                Ok(self.extra_dejson())
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.conn_id)
    }
}

/// `ti` / `task_instance`.
#[derive(Debug)]
struct TaskInstance {
    dag_id: String,
    task_id: String,
    run_id: String,
    try_number: u32,
    map_index: i32,
    max_tries: u32,
    lookups: Arc<Lookups>,
}

impl TaskInstance {
    /// Airflow 3's `RuntimeTaskInstance.xcom_pull(task_ids=None, dag_id=None,
    /// key='return_value', include_prior_dates=False, *, default=None, run_id=None)`: no task
    /// ids means this task; a string gives one value, a list a list (missing ones `default`).
    /// Only this run's XComs are at hand, so another DAG, run or prior dates are errors.
    fn xcom_pull(&self, args: &[Value]) -> Result<Value, Error> {
        const WHAT: &str = "ti.xcom_pull";
        let [task_ids, dag_id, key, include_prior_dates, default, run_id] = bind(
            WHAT,
            args,
            [
                "task_ids",
                "dag_id",
                "key",
                "include_prior_dates",
                "default",
                "run_id",
            ],
            4,
        )?;
        for (given, current, name) in [
            (&dag_id, &self.dag_id, "dag_id"),
            (&run_id, &self.run_id, "run_id"),
        ] {
            if let Some(given) = given {
                let given = as_string(given, WHAT, name)?;
                if &given != current {
                    return Err(invalid(format!(
                        "{WHAT}(): only XComs of this DAG run can be pulled, not {name}={given}"
                    )));
                }
            }
        }
        if include_prior_dates.is_some_and(|v| v.is_true()) {
            return Err(invalid(format!(
                "{WHAT}(): include_prior_dates=True is not supported"
            )));
        }
        let key = match &key {
            Some(key) => as_string(key, WHAT, "key")?,
            None => "return_value".to_string(),
        };
        let default = default.unwrap_or_else(|| Value::from(()));
        let pull = |task_id: String| {
            self.lookups
                .xcoms
                .get(&(task_id, key.clone()))
                .map_or_else(|| default.clone(), Value::from_serialize)
        };
        match task_ids {
            None => Ok(pull(self.task_id.clone())),
            Some(id) if id.kind() == ValueKind::String => {
                Ok(pull(as_string(&id, WHAT, "task_ids")?))
            }
            Some(ids) if matches!(ids.kind(), ValueKind::Seq | ValueKind::Iterable) => ids
                .try_iter()?
                .map(|id| as_string(&id, WHAT, "task_ids").map(&pull))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::from),
            Some(other) => Err(invalid(format!(
                "{WHAT}(): task_ids must be a task id or a list of them, not {other:?}"
            ))),
        }
    }
}

impl Object for TaskInstance {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "dag_id" => Value::from(self.dag_id.as_str()),
            "task_id" => Value::from(self.task_id.as_str()),
            "run_id" => Value::from(self.run_id.as_str()),
            "try_number" => Value::from(self.try_number),
            "map_index" => Value::from(self.map_index),
            "max_tries" => Value::from(self.max_tries),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "xcom_pull" => self.xcom_pull(args),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<TaskInstance: {}.{} {} map_index={}>",
            self.dag_id, self.task_id, self.run_id, self.map_index
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Python-like printing and methods

/// Python's `repr()` of a string: single quotes unless only double quotes avoid escaping.
fn push_python_str(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Python's `repr()` of a value inside a list or dict.
fn push_python_repr(value: &Value, out: &mut String) -> Result<(), Error> {
    match value.kind() {
        ValueKind::String => push_python_str(value.as_str().unwrap_or_default(), out),
        ValueKind::Seq => {
            out.push('[');
            for (i, item) in value.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                push_python_repr(&item, out)?;
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            for (i, key) in value.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                push_python_repr(&key, out)?;
                out.push_str(": ");
                push_python_repr(&value.get_item(&key)?, out)?;
            }
            out.push('}');
        }
        _ => {
            let _ = write!(out, "{value}");
        }
    }
    Ok(())
}

/// Prints lists and dicts like Python's `str()` does, as Airflow's output shows them.
fn python_formatter(out: &mut Output, state: &State, value: &Value) -> Result<(), Error> {
    match value.kind() {
        ValueKind::Seq | ValueKind::Map => {
            let mut text = String::new();
            push_python_repr(value, &mut text)?;
            out.write_str(&text).map_err(Error::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// The Python methods of dicts and strings that Airflow templates use most.
fn python_methods(
    _state: &State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    let what = format!("{}.{method}", value.kind());
    let text = |v: &Option<Value>, name: &str| -> Result<Option<String>, Error> {
        v.as_ref().map(|v| as_string(v, &what, name)).transpose()
    };
    if value.kind() == ValueKind::Map {
        let keys = || value.try_iter();
        return match method {
            "get" => {
                let [key, default] = bind(&what, args, ["key", "default"], 2)?;
                let found = value.get_item(required(&key, &what, "key")?)?;
                Ok(match default {
                    Some(default) if found.is_undefined() => default,
                    _ if found.is_undefined() => Value::from(()),
                    _ => found,
                })
            }
            "keys" => {
                bind(&what, args, [], 0)?;
                Ok(Value::from(keys()?.collect::<Vec<_>>()))
            }
            "values" => {
                bind(&what, args, [], 0)?;
                let values = keys()?
                    .map(|k| value.get_item(&k))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Value::from(values))
            }
            "items" => {
                bind(&what, args, [], 0)?;
                let items = keys()?
                    .map(|k| Ok(Value::from(vec![k.clone(), value.get_item(&k)?])))
                    .collect::<Result<Vec<_>, Error>>()?;
                Ok(Value::from(items))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        };
    }
    let Some(s) = value.as_str() else {
        return Err(Error::from(ErrorKind::UnknownMethod));
    };
    let strip = |chars: Option<String>| {
        move |c: char| {
            chars
                .as_deref()
                .map_or(c.is_whitespace(), |set| set.contains(c))
        }
    };
    let affix = |v: &Option<Value>, name: &str| -> Result<Vec<String>, Error> {
        let v = required(v, &what, name)?;
        if v.kind() == ValueKind::String {
            return Ok(vec![as_string(v, &what, name)?]);
        }
        v.try_iter()?.map(|v| as_string(&v, &what, name)).collect()
    };
    Ok(match method {
        "upper" | "lower" => {
            bind(&what, args, [], 0)?;
            Value::from(match method {
                "upper" => s.to_uppercase(),
                _ => s.to_lowercase(),
            })
        }
        "strip" | "lstrip" | "rstrip" => {
            let [chars] = bind(&what, args, ["chars"], 1)?;
            let matches = strip(text(&chars, "chars")?);
            Value::from(match method {
                "strip" => s.trim_matches(matches),
                "lstrip" => s.trim_start_matches(matches),
                _ => s.trim_end_matches(matches),
            })
        }
        "startswith" => {
            let [prefix] = bind(&what, args, ["prefix"], 1)?;
            Value::from(
                affix(&prefix, "prefix")?
                    .iter()
                    .any(|p| s.starts_with(p.as_str())),
            )
        }
        "endswith" => {
            let [suffix] = bind(&what, args, ["suffix"], 1)?;
            Value::from(
                affix(&suffix, "suffix")?
                    .iter()
                    .any(|p| s.ends_with(p.as_str())),
            )
        }
        "replace" => {
            let [old, new, count] = bind(&what, args, ["old", "new", "count"], 3)?;
            let old = as_string(required(&old, &what, "old")?, &what, "old")?;
            let new = as_string(required(&new, &what, "new")?, &what, "new")?;
            match count.map(|c| as_int(&c, &what, "count")).transpose()? {
                Some(count) if count >= 0 => {
                    Value::from(s.replacen(&old, &new, usize::try_from(count).unwrap_or(0)))
                }
                _ => Value::from(s.replace(&old, &new)),
            }
        }
        "split" => {
            let [sep, maxsplit] = bind(&what, args, ["sep", "maxsplit"], 2)?;
            let max = match &maxsplit {
                Some(m) => usize::try_from(as_int(m, &what, "maxsplit")?).ok(),
                None => None,
            };
            let parts: Vec<Value> = match text(&sep, "sep")? {
                Some(sep) if sep.is_empty() => {
                    return Err(invalid(format!("{what}(): empty separator")))
                }
                Some(sep) => match max {
                    Some(max) => s.splitn(max + 1, sep.as_str()).map(Value::from).collect(),
                    None => s.split(sep.as_str()).map(Value::from).collect(),
                },
                None => {
                    // Python: runs of whitespace, no empty strings, the rest kept after `maxsplit`.
                    let mut parts = Vec::new();
                    let mut rest = s.trim_start();
                    while !rest.is_empty() {
                        if max.is_some_and(|max| parts.len() == max) {
                            parts.push(Value::from(rest));
                            break;
                        }
                        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                        parts.push(Value::from(&rest[..end]));
                        rest = rest[end..].trim_start();
                    }
                    parts
                }
            };
            Value::from(parts)
        }
        "join" => {
            let [items] = bind(&what, args, ["iterable"], 1)?;
            let items = required(&items, &what, "iterable")?
                .try_iter()?
                .map(|v| v.to_string())
                .collect::<Vec<_>>();
            Value::from(items.join(s))
        }
        _ => return Err(Error::from(ErrorKind::UnknownMethod)),
    })
}

// ---------------------------------------------------------------------------------------------
// The environment and rendering

/// The environment every task template renders in.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Shell commands and SQL are not HTML.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_formatter(python_formatter);
    env.set_unknown_method_callback(python_methods);
    env.add_global(
        "macros",
        Value::from_iter([
            ("ds_add", Value::from_function(ds_add)),
            ("ds_format", Value::from_function(ds_format)),
            ("datetime", Value::from_object(DatetimeClass)),
            ("timedelta", Value::from_object(TimedeltaClass)),
        ]),
    );
    env
}

/// Renders one template field.
pub fn render(env: &Environment<'_>, template: &str, ctx: &Value) -> Result<String, Error> {
    env.render_str(template, ctx)
}

/// Renders every string inside a JSON value (e.g. `op_kwargs`), keeping everything else and
/// the keys as they are. An error names where it happened (`files[1].path`).
pub fn render_json(
    env: &Environment<'_>,
    value: &serde_json::Value,
    ctx: &Value,
) -> Result<serde_json::Value, Error> {
    render_json_at(env, value, ctx, &mut String::new())
}

fn render_json_at(
    env: &Environment<'_>,
    value: &serde_json::Value,
    ctx: &Value,
    path: &mut String,
) -> Result<serde_json::Value, Error> {
    use serde_json::Value as Json;
    let nested = |path: &mut String, step: fmt::Arguments<'_>, value: &Json| {
        let len = path.len();
        let _ = path.write_fmt(step);
        let rendered = render_json_at(env, value, ctx, path);
        path.truncate(len);
        rendered
    };
    Ok(match value {
        Json::String(template) => Json::String(render(env, template, ctx).map_err(|err| {
            if path.is_empty() {
                return err;
            }
            let detail = match err.detail() {
                Some(detail) => format!("at {path}: {detail}"),
                None => format!("at {path}"),
            };
            Error::new(err.kind(), detail).with_source(err)
        })?),
        Json::Array(items) => Json::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| nested(path, format_args!("[{i}]"), item))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(map) => Json::Object(
            map.iter()
                .map(|(key, item)| {
                    let dot = if path.is_empty() { "" } else { "." };
                    Ok((key.clone(), nested(path, format_args!("{dot}{key}"), item)?))
                })
                .collect::<Result<_, Error>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
