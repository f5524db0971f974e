//! The scheduler: timetables and trigger rules now; DAG runs and task instances arrive with
//! the engine issue.
//! Knows nothing of HTTP.

pub mod timetable;
pub mod trigger_rule;
