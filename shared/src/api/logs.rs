//! Task logs (Airflow's `TaskInstancesLogResponse`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One log line (Airflow's `StructuredLogMessage`): the text in `event`, the time it was
/// written in `timestamp` (null for a line without one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StructuredLogMessage {
    pub timestamp: Option<DateTime<Utc>>,
    pub event: String,
}

/// A chunk of a try's log (Airflow's `TaskInstancesLogResponse`). `continuation_token` is
/// sent back as `token` to read what follows; it is null once the try has ended and all of
/// its log was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskInstancesLogResponse {
    pub content: Vec<StructuredLogMessage>,
    pub continuation_token: Option<String>,
}
