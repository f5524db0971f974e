//! What list endpoints share: query strings with repeated keys, Airflow's pagination
//! (`limit`, `offset`, `total_entries`), `order_by` (`-` for descending, several allowed),
//! `*_pattern` filters (`~` is everything, `|` separates alternatives, `%`/`_` are SQL
//! wildcards, matched anywhere and case-insensitively as Airflow's `ilike`), and query
//! datetimes in RFC 3339 or Python's `+0000` offsets.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use chrono::{DateTime, NaiveDateTime, Utc};
use sea_orm::sea_query::{Expr, Func, SimpleExpr};
use sea_orm::{ColumnTrait, Condition, Order};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::ApiError;
use crate::config::ApiSettings;

/// A query string deserialized into `T`; repeated keys fill `Vec` fields (`state=a&state=b`).
/// Bad values answer 422 with the parameter named.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned> FromRequest for ApiQuery<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            serde_html_form::from_str::<T>(req.query_string())
                .map(ApiQuery)
                .map_err(|e| ApiError::Unprocessable(format!("query parameters: {e}"))),
        )
    }
}

/// One page of a list: `limit` is cut to `api.maximum_page_limit`, defaults to
/// `api.fallback_page_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u64,
    pub offset: u64,
}

impl Page {
    pub fn new(settings: &ApiSettings, limit: Option<u64>, offset: Option<u64>) -> Self {
        Self {
            limit: limit
                .unwrap_or(settings.fallback_page_limit)
                .min(settings.maximum_page_limit),
            // SQL binds offsets as i64; larger ones would panic in the driver.
            offset: offset.unwrap_or(0).min(i64::MAX as u64),
        }
    }
}

/// Parses `order_by` values (each may also hold comma-separated names) against the allowed
/// names; `-name` sorts descending. An empty list gives `default`.
pub fn order_by<C: Copy>(
    raw: &[String],
    allowed: &[(&str, C)],
    default: &str,
) -> Result<Vec<(C, Order)>, ApiError> {
    let names: Vec<&str> = raw
        .iter()
        .flat_map(|r| r.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let names = if names.is_empty() {
        vec![default]
    } else {
        names
    };
    names
        .into_iter()
        .map(|name| {
            let (field, order) = match name.strip_prefix('-') {
                Some(f) => (f, Order::Desc),
                None => (name, Order::Asc),
            };
            allowed
                .iter()
                .find(|(n, _)| *n == field)
                .map(|(_, c)| (*c, order))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "Ordering with '{field}' is disallowed or the attribute does not exist on the model; use one of: {}",
                        allowed.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                    ))
                })
        })
        .collect()
}

/// The condition of a `*_pattern` filter, or `None` when it matches everything.
pub fn pattern<C: ColumnTrait>(col: C, raw: Option<&str>) -> Option<Condition> {
    let raw = raw?.trim();
    if raw.is_empty() || raw == "~" {
        return None;
    }
    let mut any = Condition::any();
    for alt in raw.split('|').map(str::trim).filter(|a| !a.is_empty()) {
        let lowered: SimpleExpr = Func::lower(Expr::col((col.entity_name(), col))).into();
        any = any.add(lowered.like(format!("%{}%", alt.to_lowercase())));
    }
    Some(any)
}

/// Parses a datetime given in a query or path: RFC 3339 (`Z` or `+00:00`), or Python's
/// `+0000` form; a `+` that arrived as a space (unencoded in a query) is taken back. Naive
/// times are refused: an offset is required.
pub fn parse_datetime(raw: &str) -> Result<DateTime<Utc>, String> {
    let mut s = raw.trim().to_string();
    // `...T00:00:00 00:00` or `... 0000`: a `+` decoded as a space.
    if let Some(pos) = s.rfind(' ') {
        let tail = &s[pos + 1..];
        if pos > 10 && tail.len() >= 4 && tail.chars().all(|c| c.is_ascii_digit() || c == ':') {
            s.replace_range(pos..pos + 1, "+");
        }
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(&s) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(&s, fmt) {
            return Ok(t.with_timezone(&Utc));
        }
    }
    let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .any(|f| NaiveDateTime::parse_from_str(&s, f).is_ok())
        || chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d").is_ok();
    if naive {
        Err(format!(
            "{raw:?} has no time zone offset: add one, as in 2024-01-01T00:00:00Z or 2024-01-01T00:00:00+00:00"
        ))
    } else {
        Err(format!(
            "{raw:?} is not a datetime: use RFC 3339, as in 2024-01-01T00:00:00Z"
        ))
    }
}

/// `#[serde(default, deserialize_with = "query::opt_datetime")]` for optional query datetimes.
pub fn opt_datetime<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let raw = Option::<String>::deserialize(d)?;
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => parse_datetime(s)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// Lists that clients send as repeated keys but may also send once, comma-free.
pub fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        None => Vec::new(),
        Some(Raw::One(s)) => vec![s],
        Some(Raw::Many(v)) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_in_every_form_clients_send() {
        let want: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
        for s in [
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00+00:00",
            "2024-01-01T00:00:00.000000+0000",
            "2024-01-01T01:00:00+01:00",
            "2024-01-01T00:00:00.000000 0000",
            "2024-01-01T00:00:00 00:00",
        ] {
            assert_eq!(parse_datetime(s).unwrap(), want, "{s}");
        }
        assert!(parse_datetime("2024-01-01T00:00:00")
            .unwrap_err()
            .contains("no time zone"));
        assert!(parse_datetime("yesterday")
            .unwrap_err()
            .contains("not a datetime"));
    }

    #[test]
    fn order_by_checks_names() {
        let allowed = [("dag_id", 1), ("last_parsed_time", 2)];
        let got = order_by(&["-last_parsed_time,dag_id".into()], &allowed, "dag_id").unwrap();
        assert_eq!(got, vec![(2, Order::Desc), (1, Order::Asc)]);
        assert_eq!(
            order_by(&[], &allowed, "dag_id").unwrap(),
            vec![(1, Order::Asc)]
        );
        let e = order_by(&["nope".into()], &allowed, "dag_id").unwrap_err();
        assert!(e.to_string().contains("'nope' is disallowed"));
    }

    #[test]
    fn pages_are_capped() {
        let s = ApiSettings::default();
        assert_eq!(
            Page::new(&s, None, None),
            Page {
                limit: 50,
                offset: 0
            }
        );
        assert_eq!(Page::new(&s, Some(1000), Some(5)).limit, 100);
        assert_eq!(Page::new(&s, None, Some(u64::MAX)).offset, i64::MAX as u64);
    }

    #[test]
    fn repeated_keys_fill_lists() {
        #[derive(Deserialize)]
        struct Q {
            #[serde(default)]
            state: Vec<String>,
            limit: Option<u64>,
        }
        let q: Q = serde_html_form::from_str("state=success&state=failed&limit=3").unwrap();
        assert_eq!((q.state.len(), q.limit), (2, Some(3)));
    }
}
