//! The HTTP server: API and UI on one port, request logging, graceful shutdown.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::middleware::{self, Next};
use actix_web::{web, App, HttpServer};
use anyhow::Context;

use crate::config::Config;
use crate::store::Db;

/// What every request handler can reach.
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub engine: EngineLink,
    pub secrets: crate::secrets::Secrets,
    pub auth: crate::auth::Authenticator,
}

/// How request handlers reach the engine running in this process.
#[derive(Clone)]
pub struct EngineLink {
    pub signals: Arc<crate::scheduler::engine::Signals>,
    pub cache: Arc<crate::scheduler::loaded::DagCache>,
}

/// A bound, not yet running server.
pub struct Application {
    server: actix_web::dev::Server,
    addr: SocketAddr,
}

impl Application {
    /// Binds the configured address (port 0 picks a free one) around an open database.
    pub fn build(
        config: Arc<Config>,
        db: Db,
        engine: EngineLink,
        secrets: crate::secrets::Secrets,
    ) -> anyhow::Result<Self> {
        let server_settings = &config.settings.server;
        let bind = (server_settings.host.as_str(), server_settings.port);
        let listener = TcpListener::bind(bind).with_context(|| {
            format!(
                "cannot listen on {}:{} (server.host / server.port, or PORT)",
                bind.0, bind.1
            )
        })?;
        let addr = listener.local_addr()?;
        let workers = match server_settings.workers {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(8),
            n => n,
        };
        let state = web::Data::new(AppState {
            auth: crate::auth::Authenticator::new(&config.settings.auth, &secrets),
            config: config.clone(),
            db: db.clone(),
            engine,
            secrets,
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(JSON_LIMIT)
                        .error_handler(json_error),
                )
                .app_data(web::PathConfig::default().error_handler(|e, _| {
                    crate::api::ApiError::Unprocessable(format!("path: {e}")).into()
                }))
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    crate::api::ApiError::Unprocessable(format!("query parameters: {e}")).into()
                }))
                .wrap(middleware::Compress::default())
                .wrap(
                    middleware::DefaultHeaders::new()
                        .add(("X-Content-Type-Options", "nosniff"))
                        .add(("X-Frame-Options", "DENY"))
                        .add(("Referrer-Policy", "same-origin")),
                )
                .wrap(middleware::from_fn(log_request))
                .configure(crate::api::configure)
                .configure(crate::ui::configure)
        })
        .workers(workers)
        .shutdown_timeout(server_settings.shutdown_timeout.as_secs())
        // Signals are ours to handle: `serve` stops the server and then the other components.
        .disable_signals()
        .listen(listener)?
        .run();
        Ok(Self { server, addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until the handle stops the server (the caller closes the database).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Largest JSON body the API reads.
const JSON_LIMIT: usize = 8 * 1024 * 1024;

/// Body errors as the API reports them: 413 for size, 415 for type, 422 for content (FastAPI's
/// codes, so Airflow clients see what they expect).
fn json_error(
    e: actix_web::error::JsonPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    use crate::api::ApiError;
    use actix_web::error::JsonPayloadError as E;
    match e {
        E::OverflowKnownLength { .. } | E::Overflow { .. } => ApiError::PayloadTooLarge(format!(
            "the request body is larger than the limit of {} MiB",
            JSON_LIMIT / (1024 * 1024)
        ))
        .into(),
        E::ContentType => actix_web::error::InternalError::new(
            "Content-Type must be application/json",
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        )
        .into(),
        E::Deserialize(e) => ApiError::Unprocessable(format!("body: {e}")).into(),
        other => ApiError::BadRequest(format!("body: {other}")).into(),
    }
}

/// One line per request: method, path (never the query, which may hold tokens), status, time.
async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_string();
    let res = next.call(req).await?;
    let status = res.status().as_u16();
    let ms = (started.elapsed().as_secs_f64() * 100_000.0).round() / 100.0;
    if path == "/api/v2/monitor/health" && status < 400 {
        tracing::debug!(%method, %path, status, ms, "request");
    } else if status >= 500 {
        tracing::error!(%method, %path, status, ms, "request");
    } else {
        tracing::info!(%method, %path, status, ms, "request");
    }
    Ok(res)
}

/// Resolves when the process gets SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot listen for SIGTERM ({e}); only Ctrl-C stops the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received, shutting down"),
    }
}
