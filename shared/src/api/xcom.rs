//! XCom entries (Airflow's `XCom*` models).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An XCom entry shape: the keys every shape has, then its own.
macro_rules! xcom_entry {
    ($(#[$attr:meta])* $name:ident { $($own:tt)* }) => {
        $(#[$attr])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub struct $name {
            pub key: String,
            pub timestamp: DateTime<Utc>,
            pub logical_date: Option<DateTime<Utc>>,
            pub map_index: i32,
            pub task_id: String,
            pub dag_id: String,
            pub run_id: String,
            pub dag_display_name: String,
            pub task_display_name: String,
            pub run_after: DateTime<Utc>,
            $($own)*
        }
    };
}

xcom_entry! {
    /// An XCom entry without its value (Airflow's `XComResponse`), as lists show them.
    XComResponse {}
}

xcom_entry! {
    /// An XCom entry with its value as JSON (Airflow's `XComResponseNative`).
    XComResponseNative {
        /// Any JSON value, null included.
        #[cfg_attr(feature = "openapi", schema(value_type = Object, nullable = true))]
        pub value: serde_json::Value,
    }
}

xcom_entry! {
    /// An XCom entry with its value printed as Python's `str()` would (Airflow's
    /// `XComResponseString`, `stringify=true`).
    XComResponseString {
        pub value: Option<String>,
    }
}

/// A page of XCom entries (Airflow's `XComCollectionResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct XComCollectionResponse {
    pub xcom_entries: Vec<XComResponse>,
    pub total_entries: i64,
}

fn no_map_index() -> i32 {
    -1
}

/// `POST .../xcomEntries` (Airflow's `XComCreateBody`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct XComCreateBody {
    pub key: String,
    /// Any JSON value, null included.
    #[cfg_attr(feature = "openapi", schema(value_type = Object, nullable = true))]
    pub value: serde_json::Value,
    #[serde(default = "no_map_index")]
    pub map_index: i32,
}

/// `PATCH .../xcomEntries/{xcom_key}` (Airflow's `XComUpdateBody`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct XComUpdateBody {
    /// Any JSON value, null included.
    #[cfg_attr(feature = "openapi", schema(value_type = Object, nullable = true))]
    pub value: serde_json::Value,
    #[serde(default = "no_map_index")]
    pub map_index: i32,
}
