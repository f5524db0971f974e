//! The OpenAPI document, generated from the handlers and DTOs by utoipa. `updraft openapi`
//! prints it; the committed `openapi.yaml` must equal that output (a test checks).
//!
//! Each API module declares its own `Doc` (paths and schemas); this one merges them and adds
//! the security schemes: a token from `/auth/token` (OAuth2 password flow, as Airflow's spec
//! says, or plain bearer) and HTTP Basic.

use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityRequirement,
    SecurityScheme,
};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Updraft API",
        description = "Updraft's REST API. Paths, fields and status codes under /api/v2 follow Apache Airflow 3's public API; every endpoint but version and health needs a token from POST /auth/token (Authorization: Bearer) or HTTP Basic.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        super::version::get_version,
        super::monitor::get_health,
        super::auth::create_token,
    ),
    components(schemas(
        updraft_shared::api::HttpError,
        updraft_shared::api::LoginBody,
        updraft_shared::api::LoginResponse
    )),
    modifiers(&Security),
    tags(
        (name = "Login", description = "Tokens for the API"),
        (name = "Version", description = "The server's version"),
        (name = "Monitor", description = "Health of the server's components"),
        (name = "DAG", description = "DAGs"),
        (name = "DagRun", description = "Runs of DAGs"),
        (name = "Task Instance", description = "Tries of tasks within runs"),
        (name = "XCom", description = "Values tasks pass on"),
        (name = "Variable", description = "Variables, encrypted at rest"),
        (name = "Connection", description = "Connections, encrypted at rest"),
        (name = "Pool", description = "Pools of task slots"),
        (name = "Import Error", description = "DAG files that do not load"),
        (name = "Backfill", description = "Runs over past date ranges"),
        (name = "Event Log", description = "The audit log"),
        (name = "DAG Source", description = "Upload and validate DAG files (Updraft)"),
        (name = "User", description = "Users and roles (Updraft)"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "OAuth2PasswordBearer",
            SecurityScheme::OAuth2(OAuth2::new([Flow::Password(Password::new(
                "/auth/token",
                Scopes::new(),
            ))])),
        );
        components.add_security_scheme(
            "HTTPBearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "HTTPBasic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        // Any one of them; endpoints that need none say `security(())`.
        openapi.security = Some(vec![
            SecurityRequirement::new("OAuth2PasswordBearer", Vec::<String>::new()),
            SecurityRequirement::new("HTTPBearer", Vec::<String>::new()),
            SecurityRequirement::new("HTTPBasic", Vec::<String>::new()),
        ]);
    }
}

pub fn spec() -> utoipa::openapi::OpenApi {
    use super::*;
    let mut spec = ApiDoc::openapi();
    for part in [
        dags::Doc::openapi(),
        dag_sources::Doc::openapi(),
        import_errors::Doc::openapi(),
        dag_runs::Doc::openapi(),
        backfills::Doc::openapi(),
        task_instances::Doc::openapi(),
        logs::Doc::openapi(),
        xcom::Doc::openapi(),
        variables::Doc::openapi(),
        connections::Doc::openapi(),
        pools::Doc::openapi(),
        users::Doc::openapi(),
        event_logs::Doc::openapi(),
    ] {
        spec.merge(part);
    }
    spec.info.version = crate::VERSION.to_string();
    spec
}

pub fn spec_yaml() -> String {
    spec()
        .to_yaml()
        .expect("the OpenAPI document is plain data and always serializes")
}
