//! Datetimes, dates and timedeltas as Airflow's templates see them (pendulum's `DateTime`,
//! Python's `date` and `timedelta`), and the `macros.datetime` and `macros.timedelta` classes.

use std::cmp::Ordering;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, Months, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use minijinja::value::{DynObject, Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind, State};

use super::python::{as_int, as_string, bind, duration_us, int_or_zero, invalid, micros, required};

// ---------------------------------------------------------------------------------------------
// Formats and time zones

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
pub(super) struct PyDateTime(DateTime<Tz>);

impl PyDateTime {
    pub(super) fn value(t: DateTime<Utc>) -> Value {
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
// macros.datetime and macros.timedelta

/// `macros.datetime`: Python's `datetime` class, callable and with its class methods. Unlike
/// Python's naive datetimes, what it makes is in UTC, so it compares with `logical_date`.
#[derive(Debug)]
pub(super) struct DatetimeClass;

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
pub(super) struct TimedeltaClass;

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
