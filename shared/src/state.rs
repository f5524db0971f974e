//! States of DAG runs and task instances, and run types, spelt as Airflow spells them in its
//! database and API (lowercase).

use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value for a stored or sent name; None for an unknown one.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// The state of a DAG run.
    DagRunState {
        Queued = "queued",
        Running = "running",
        Success = "success",
        Failed = "failed",
    }
}

impl DagRunState {
    pub fn is_finished(self) -> bool {
        matches!(self, DagRunState::Success | DagRunState::Failed)
    }
}

string_enum! {
    /// How a DAG run came to be.
    DagRunType {
        Scheduled = "scheduled",
        Manual = "manual",
        Backfill = "backfill",
        AssetTriggered = "asset_triggered",
    }
}

string_enum! {
    /// The state of a task instance. A task instance that has not been looked at yet has no
    /// state (`None` in Rust, null in the API), as in Airflow.
    TaskInstanceState {
        Scheduled = "scheduled",
        Queued = "queued",
        Running = "running",
        Success = "success",
        Failed = "failed",
        Skipped = "skipped",
        UpstreamFailed = "upstream_failed",
        UpForRetry = "up_for_retry",
        UpForReschedule = "up_for_reschedule",
        Removed = "removed",
        Restarting = "restarting",
        Deferred = "deferred",
    }
}

impl TaskInstanceState {
    /// States a task instance does not leave by itself (Airflow's `State.finished`).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskInstanceState::Success
                | TaskInstanceState::Failed
                | TaskInstanceState::Skipped
                | TaskInstanceState::UpstreamFailed
                | TaskInstanceState::Removed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for state in TaskInstanceState::ALL {
            assert_eq!(TaskInstanceState::parse(state.as_str()), Some(*state));
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::Value::String(state.as_str().into())
            );
        }
        for kind in DagRunType::ALL {
            assert_eq!(DagRunType::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(DagRunState::parse("bogus"), None);
    }
}
