//! Python in templates: calls bound the Python way (positional or keyword arguments), lists
//! and dicts printed like Python's `str()`, and the dict and string methods templates use.

use std::fmt::Write as _;

use chrono::Duration;
use minijinja::value::{from_args, Kwargs, Value, ValueKind};
use minijinja::{Error, ErrorKind, Output, State};

// ---------------------------------------------------------------------------------------------
// Small helpers for Python-style calls

pub(super) fn invalid(detail: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, detail)
}

/// Binds a call's arguments the Python way: the first `max_positional` of `names` may come by
/// position, any by keyword. `none` counts as not given: every default here is None.
pub(super) fn bind<const N: usize>(
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

pub(super) fn required<'v>(
    v: &'v Option<Value>,
    what: &str,
    name: &str,
) -> Result<&'v Value, Error> {
    v.as_ref().ok_or_else(|| {
        Error::new(
            ErrorKind::MissingArgument,
            format!("{what}() missing required argument '{name}'"),
        )
    })
}

pub(super) fn as_string(v: &Value, what: &str, name: &str) -> Result<String, Error> {
    v.as_str().map(str::to_owned).ok_or_else(|| {
        invalid(format!(
            "{what}(): {name} must be a string, not {}",
            v.kind()
        ))
    })
}

pub(super) fn as_int(v: &Value, what: &str, name: &str) -> Result<i64, Error> {
    let not_int = || invalid(format!("{what}(): {name} must be an integer, not {v:?}"));
    if !v.is_integer() {
        return Err(not_int());
    }
    i64::try_from(v.clone()).map_err(|_| not_int())
}

/// An optional integer argument, `0` when not given.
pub(super) fn int_or_zero(v: &Option<Value>, what: &str, name: &str) -> Result<i64, Error> {
    v.as_ref().map_or(Ok(0), |v| as_int(v, what, name))
}

/// An int-or-float argument times `unit` microseconds, `0` when not given.
pub(super) fn micros(v: &Option<Value>, unit: i64, what: &str, name: &str) -> Result<i128, Error> {
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

pub(super) fn duration_us(us: i128, what: &str) -> Result<Duration, Error> {
    i64::try_from(us)
        .map(Duration::microseconds)
        .map_err(|_| invalid(format!("{what}(): the duration is out of range")))
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
pub(super) fn python_formatter(
    out: &mut Output,
    state: &State,
    value: &Value,
) -> Result<(), Error> {
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
pub(super) fn python_methods(
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
