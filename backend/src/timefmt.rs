//! Times as Airflow (Python) writes them, and the clock at the precision the database keeps.

use chrono::{DateTime, SubsecRound, Utc};

/// Python's `isoformat()`: `2024-01-01T00:00:00+00:00`, with six fraction digits when there is
/// a fraction (`…T06:00:00.250000+00:00`). Run ids, `ts` and the API's times use it.
pub fn iso(t: DateTime<Utc>) -> String {
    if t.timestamp_subsec_nanos() == 0 {
        t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
    }
}

/// Seconds from `start` to `end`, to the microsecond (the API's `duration`).
pub fn seconds_between(start: DateTime<Utc>, end: DateTime<Utc>) -> f64 {
    (end - start).num_microseconds().unwrap_or(0) as f64 / 1e6
}

/// The current time in microseconds, the precision PostgreSQL keeps: a run id made from it
/// matches the logical date stored beside it.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_python_isoformat() {
        let t = DateTime::parse_from_rfc3339("2024-01-01T06:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(iso(t), "2024-01-01T06:00:00+00:00");
        let t = DateTime::parse_from_rfc3339("2024-01-01T06:00:00.25Z")
            .unwrap()
            .to_utc();
        assert_eq!(iso(t), "2024-01-01T06:00:00.250000+00:00");
        assert_eq!(now().timestamp_subsec_nanos() % 1000, 0);
    }
}
