//! Operators: what a task runs. Each knows nothing of HTTP or the scheduler; it gets rendered
//! settings and a log, and returns an outcome.

pub mod bash;
