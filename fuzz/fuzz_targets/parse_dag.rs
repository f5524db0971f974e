//! Any bytes → `parse_dag` returns a DAG or diagnostics, never panics, and stays within the
//! fuzzer's time and memory limits. A DAG it returns survives a JSON round trip (the form the
//! backend stores).

#![no_main]

use libfuzzer_sys::fuzz_target;
use updraft_shared::dag::{parse_dag, Dag};

fuzz_target!(|data: &[u8]| {
    match parse_dag(data) {
        Ok(dag) => {
            let json = serde_json::to_string(&dag).expect("a parsed DAG serializes to JSON");
            let back = serde_json::from_str::<Dag>(&json);
            // Equality is not checked; parsing back must work.
            back.expect("a parsed DAG's JSON deserializes");
        }
        Err(diags) => {
            assert!(!diags.is_empty(), "an error without a diagnostic");
            for d in &diags {
                assert!(d.line >= 1 && d.column >= 1, "positions are 1-based: {d}");
            }
        }
    }
});
