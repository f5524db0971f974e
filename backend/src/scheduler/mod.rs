//! The scheduler: timetables, trigger rules, the task graph, and the loop that creates and
//! moves DAG runs and task instances along. Knows nothing of HTTP.

pub mod engine;
pub mod graph;
pub mod loaded;
pub mod timetable;
pub mod trigger;
pub mod trigger_rule;
