//! Operators: what a task runs. Each knows nothing of HTTP or the scheduler; it gets rendered
//! settings, a log and a cancellation token, and returns an [`Outcome`].

use std::time::Duration;

pub mod bash;
pub mod process;
pub mod python;

/// How a task's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Finished; the value to push as the `return_value` XCom (None when push is off or there
    /// is nothing).
    Success {
        return_value: Option<serde_json::Value>,
    },
    /// The task asked to be skipped (bash: an exit code in `skip_on_exit_code`; python:
    /// `AirflowSkipException`).
    Skipped {
        exit_code: i32,
    },
    Failed {
        reason: String,
    },
    /// `execution_timeout` was reached and the task's processes were killed.
    TimedOut {
        after: Duration,
    },
}
