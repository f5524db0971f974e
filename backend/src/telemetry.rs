//! Logging with `tracing`: text or JSON lines on stderr, filtered by `logging.level` or `RUST_LOG`.

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::{LogFormat, LoggingSettings};

/// Libraries that narrate routine work at info (every SQL statement, every worker start).
const QUIET: &str = "sqlx=warn,actix_server=warn,sea_orm_migration=warn";

/// Installs the global subscriber once; later calls (tests) are no-ops.
pub fn init(settings: &LoggingSettings) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| {
            EnvFilter::try_new(format!("{},{QUIET}", settings.level))
                .unwrap_or_else(|_| EnvFilter::new(format!("info,{QUIET}")))
        });
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match settings.format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
