//! The scheduler: timetables, trigger rules and the task graph now; DAG runs and task
//! instances arrive with the engine issue. Knows nothing of HTTP.

pub mod graph;
pub mod timetable;
pub mod trigger_rule;
