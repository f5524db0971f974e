//! The scheduler: timetables now; DAG runs and task instances arrive with the engine issue.
//! Knows nothing of HTTP.

pub mod timetable;
