//! Durations as DAG files write them: `30s`, `5m`, `1h30m`, `1h 30m`, `2d`, `500ms`, ISO 8601
//! (`PT5M`, `P1DT2H`), or a plain number of seconds.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative duration with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    millis: u64,
}

/// More than 100 years is surely a typo.
const MAX_MILLIS: u64 = 100 * 365 * 24 * 3600 * 1000;

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Duration {
            millis: secs.saturating_mul(1000),
        }
    }

    pub const fn from_millis(millis: u64) -> Self {
        Duration { millis }
    }

    pub fn as_millis(self) -> u64 {
        self.millis
    }

    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.millis)
    }

    /// Parses any accepted form; the error says what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("an empty duration".into());
        }
        let millis = if let Some(iso) = t.strip_prefix(['P', 'p']) {
            parse_iso(iso)
        } else if let Ok(secs) = t.parse::<u64>() {
            secs.checked_mul(1000)
        } else {
            parse_units(t)
        }
        .ok_or_else(|| format!("`{t}` is not a duration"))?;
        if millis > MAX_MILLIS {
            return Err(format!("`{t}` is longer than 100 years"));
        }
        Ok(Duration { millis })
    }
}

/// `1h30m`, `1h 30m`, `90s`, `500ms`, `2d`: numbers each followed by a unit.
fn parse_units(t: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut rest = t;
    let mut any = false;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let factor: u64 = match unit {
            "ms" => 1,
            "s" | "sec" | "secs" => 1000,
            "m" | "min" | "mins" => 60_000,
            "h" | "hr" | "hrs" => 3_600_000,
            "d" | "day" | "days" => 86_400_000,
            "w" => 7 * 86_400_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(factor)?)?;
        any = true;
    }
    any.then_some(total)
}

/// ISO 8601 after the `P`: `1DT2H30M`, `T5M`, `T0.5S`, `2W`.
fn parse_iso(t: &str) -> Option<u64> {
    let mut total: f64 = 0.0;
    let mut in_time = false;
    let mut num = String::new();
    let mut any = false;
    for c in t.chars() {
        match c.to_ascii_uppercase() {
            'T' if !in_time && num.is_empty() => in_time = true,
            d if d.is_ascii_digit() || d == '.' || d == ',' => {
                num.push(if d == ',' { '.' } else { d })
            }
            unit => {
                let n: f64 = num.parse().ok()?;
                num.clear();
                let secs = match (unit, in_time) {
                    ('W', false) => 7.0 * 86400.0,
                    ('D', false) => 86400.0,
                    ('H', true) => 3600.0,
                    ('M', true) => 60.0,
                    ('S', true) => 1.0,
                    _ => return None,
                };
                total += n * secs;
                any = true;
            }
        }
    }
    if !num.is_empty() || !any || !total.is_finite() || total < 0.0 {
        return None;
    }
    Some((total * 1000.0).round() as u64)
}

impl fmt::Display for Duration {
    /// The shortest unit form: `1h30m`, `45s`, `1500ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.millis == 0 {
            return f.write_str("0s");
        }
        if !self.millis.is_multiple_of(1000) {
            return write!(f, "{}ms", self.millis);
        }
        let mut secs = self.millis / 1000;
        for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
            if secs >= size {
                write!(f, "{}{unit}", secs / size)?;
                secs %= size;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Duration::from_secs(s)),
            Raw::Text(t) => Duration::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration: 30s, 5m, 1h30m, 2d, 500ms, ISO 8601 (PT5M), or a number of seconds",
            "anyOf": [
                {"type": "string", "pattern": "^(\\s*\\d+\\s*(ms|s|sec|secs|m|min|mins|h|hr|hrs|d|day|days|w))+\\s*$|^[Pp]"},
                {"type": "integer", "minimum": 0}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        for (text, millis) in [
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("1h 30m", 5_400_000),
            ("2d", 172_800_000),
            ("500ms", 500),
            ("PT5M", 300_000),
            ("P1DT2H", 93_600_000),
            ("PT0.5S", 500),
            ("90", 90_000),
        ] {
            assert_eq!(Duration::parse(text).unwrap().as_millis(), millis, "{text}");
        }
    }

    #[test]
    fn rejects_nonsense_with_a_reason() {
        for text in [
            "",
            "5x",
            "m5",
            "PT",
            "P5M5",
            "1h30",
            "-5s",
            "P1H",
            "99999999999999999999d",
        ] {
            assert!(Duration::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn displays_in_the_shortest_form_and_round_trips() {
        for text in ["1h30m", "45s", "1500ms", "1d2h", "0s"] {
            let d = Duration::parse(text).unwrap();
            assert_eq!(d.to_string(), text);
            assert_eq!(Duration::parse(&d.to_string()).unwrap(), d);
        }
    }
}
