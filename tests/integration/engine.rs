//! The engine through the API: trigger rules, retries, timeouts, pools, priority, runs.
