//! The OpenAPI document, generated from the handlers and DTOs by utoipa. `updraft openapi`
//! prints it; the committed `openapi.yaml` must equal that output (a test checks).

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Updraft API",
        description = "Updraft's REST API. Paths, fields and status codes under /api/v2 follow Apache Airflow 3's public API.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        super::version::get_version,
        super::monitor::get_health,
        super::dag_runs::trigger_dag_run,
        super::dag_runs::get_dag_run,
        super::dag_runs::get_task_instances,
    ),
    components(schemas(updraft_shared::api::HttpError)),
    tags(
        (name = "Version", description = "The server's version"),
        (name = "Monitor", description = "Health of the server's components"),
        (name = "DagRun", description = "Runs of DAGs"),
        (name = "Task Instance", description = "Tries of tasks within runs"),
    )
)]
struct ApiDoc;

pub fn spec() -> utoipa::openapi::OpenApi {
    let mut spec = ApiDoc::openapi();
    spec.info.version = crate::VERSION.to_string();
    spec
}

pub fn spec_yaml() -> String {
    spec()
        .to_yaml()
        .expect("the OpenAPI document is plain data and always serializes")
}
