//! The committed openapi.yaml is exactly what `updraft openapi` prints.

use std::time::Duration;

use crate::helpers::*;

#[test]
fn committed_openapi_yaml_matches_the_binary() {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = updraft_cmd(home.path());
    cmd.arg("openapi");
    let out = run_with_timeout(cmd, Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let printed = stdout_of(&out);
    let committed = std::fs::read_to_string(repo_root().join("openapi.yaml")).unwrap_or_default();
    assert!(
        printed == committed,
        "openapi.yaml is out of date with the code: regenerate it with\n    cargo run -q -p updraft -- openapi > openapi.yaml\nand commit the result"
    );
}

#[test]
fn spec_documents_the_public_endpoints() {
    let spec: serde_json::Value = serde_json::to_value(updraft::api::openapi::spec()).unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec["paths"].as_object().unwrap();
    assert_eq!(
        paths["/api/v2/version"]["get"]["operationId"],
        "get_version"
    );
    assert_eq!(
        paths["/api/v2/monitor/health"]["get"]["operationId"],
        "get_health"
    );
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    for name in [
        "VersionInfo",
        "HealthInfoResponse",
        "SchedulerInfoResponse",
        "HttpError",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
}
