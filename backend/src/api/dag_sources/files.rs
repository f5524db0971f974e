//! What DAG file upload needs beside HTTP: a safe file name, the body within the size limit,
//! an atomic write into the DAG folder, and registering the file at once, as the DAG
//! processor would on its next scan.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use updraft_shared::api::DagFileDiagnostic;
use updraft_shared::dag::{Dag, Diagnostic};

use crate::api::ApiError;
use crate::dag_processor::content_hash;
use crate::server::AppState;
use crate::store::dags::{self, dag, import_error, Parsed, ParsedFile, SyncReport};
use crate::store::StoreError;

/// Media types a DAG file may be sent as (or none at all).
const YAML_TYPES: [&str; 6] = [
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/x-yaml",
    "text/plain",
    "application/octet-stream",
];

/// A 415 unless the request says it sends YAML, plain text or bytes.
pub fn check_content_type(req: &HttpRequest) -> Result<(), String> {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if YAML_TYPES.contains(&media.as_str()) {
        Ok(())
    } else {
        Err(format!(
            "Content-Type {media:?} is not accepted: send the DAG file's text as application/yaml (or {})",
            YAML_TYPES[1..].join(", ")
        ))
    }
}

/// The request body, refused with 413 past `max` bytes (`core.dag_file_max_bytes`) without
/// reading the rest.
pub async fn read_body(mut payload: web::Payload, max: usize) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > max {
            return Err(ApiError::PayloadTooLarge(format!(
                "the DAG file is over the {max}-byte limit for DAG files (core.dag_file_max_bytes); split it or move data out of it"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A plain `*.yaml`/`*.yml` name directly in the DAG folder: letters, digits, `_`, `-`, `.`,
/// not hidden (the processor skips hidden files), no path separators.
pub fn check_file_name(name: &str) -> Result<(), ApiError> {
    let plain = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    let stem_ok = [".yaml", ".yml"]
        .iter()
        .any(|ext| name.len() > ext.len() && name.ends_with(ext));
    if plain && stem_ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "{name:?} is not a DAG file name: use a plain name ending in .yaml or .yml, made of letters, digits, `_`, `-` and `.`, not starting with `.`, without folders"
        )))
    }
}

pub fn diagnostics(diags: &[Diagnostic]) -> Vec<DagFileDiagnostic> {
    diags
        .iter()
        .map(|d| DagFileDiagnostic {
            line: d.line,
            column: d.column,
            message: d.message.clone(),
        })
        .collect()
}

/// Writes `bytes` as `dir/name` through a hidden temporary file and a rename, so the DAG
/// processor never reads half a file. Returns whether a file was replaced.
pub async fn write_atomically(
    dir: PathBuf,
    name: String,
    bytes: Vec<u8>,
) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || -> Result<bool, ApiError> {
        let io = |what: &str, path: &Path, e: std::io::Error| {
            ApiError::Internal(anyhow::anyhow!("{what} {}: {e}", path.display()))
        };
        std::fs::create_dir_all(&dir).map_err(|e| io("creating the DAG folder", &dir, e))?;
        let path = dir.join(&name);
        if path.is_dir() {
            return Err(ApiError::Conflict(format!(
                "{name} is a folder in the DAG folder; remove it or pick another file name"
            )));
        }
        let replaced = path.exists();
        let tmp = dir.join(format!(".{name}.{}.upload", uuid::Uuid::new_v4().simple()));
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io("writing", &path, e));
        }
        Ok(replaced)
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("the file write stopped: {e}")))?
}

/// The files the database knows as present: those of live DAGs and of import errors. A sync
/// with this set (give or take one file) leaves every other DAG as it is.
async fn known_files(state: &AppState) -> Result<HashSet<String>, StoreError> {
    let mut files: HashSet<String> = dag::Entity::find()
        .select_only()
        .column(dag::Column::Fileloc)
        .filter(dag::Column::IsStale.eq(false))
        .into_tuple::<String>()
        .all(state.db.conn())
        .await?
        .into_iter()
        .collect();
    files.extend(
        import_error::Entity::find()
            .select_only()
            .column(import_error::Column::Filename)
            .into_tuple::<String>()
            .all(state.db.conn())
            .await?,
    );
    Ok(files)
}

/// Registers a just-written, valid file now (a new DAG or version) instead of waiting for the
/// DAG processor, which later finds the same content and changes nothing.
pub async fn register(
    state: &AppState,
    fileloc: &str,
    bytes: &[u8],
    parsed: Dag,
) -> Result<SyncReport, StoreError> {
    let mut present = known_files(state).await?;
    present.insert(fileloc.to_string());
    let file = ParsedFile {
        fileloc: fileloc.to_string(),
        content_hash: content_hash(bytes),
        source: String::from_utf8_lossy(bytes).into_owned(),
        parsed: Parsed::Dag(Box::new(parsed)),
    };
    let paused = state.config.settings.core.dags_are_paused_at_creation;
    dags::sync(&state.db, &[file], &present, paused).await
}

/// Marks the DAGs of a removed file stale and drops its import error now.
pub async fn unregister(state: &AppState, fileloc: &str) -> Result<SyncReport, StoreError> {
    let mut present = known_files(state).await?;
    present.remove(fileloc);
    let paused = state.config.settings.core.dags_are_paused_at_creation;
    dags::sync(&state.db, &[], &present, paused).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_yaml_names() {
        for ok in ["etl.yaml", "my-dag_2.yml", "a.b.yaml"] {
            assert!(check_file_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".yaml",
            ".hidden.yaml",
            "../evil.yaml",
            "..",
            "sub/dag.yaml",
            "sub\\dag.yaml",
            "dag.txt",
            "dag.yaml.bak",
            "a%2Fb.yaml",
            "naïve.yaml",
        ] {
            assert!(check_file_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn same_hash_as_the_dag_processor_gives() {
        let dir = tempfile::tempdir().unwrap();
        let text = b"dag_id: d\ntasks:\n  - id: t\n    operator: empty\n";
        std::fs::write(dir.path().join("d.yaml"), text).unwrap();
        let scan = crate::dag_processor::DagFolder::new(dir.path().to_path_buf(), 1 << 20)
            .scan()
            .unwrap();
        assert_eq!(scan.changed[0].content_hash, content_hash(text));
    }
}
