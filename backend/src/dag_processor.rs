//! The DAG processor: keeps the database in line with the DAG folder.
//!
//! A file is re-read only when its size or modification time changed, and re-parsed only when
//! its content hash changed, so a rescan of an unchanged folder costs one `stat` per file. A
//! `notify` watcher triggers a scan as soon as a file is saved; a periodic full rescan catches
//! whatever a watcher can miss (network file systems, editors that swap directories).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use updraft_shared::dag::{parse_dag_with, ParseOptions};

use crate::config::Config;
use crate::store::dags::{self, Parsed, ParsedFile, SyncReport};
use crate::store::job::{self, JobType};
use crate::store::{Db, StoreError};

/// How often the processor records that it is alive.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// Events closer together than this are handled by one scan (an editor's save is several).
const DEBOUNCE: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
struct FileState {
    modified: Option<SystemTime>,
    size: u64,
    hash: String,
    errored: bool,
}

/// One scan's outcome: files to sync, and every DAG file present.
#[derive(Debug, Default)]
pub struct Scan {
    pub changed: Vec<ParsedFile>,
    pub present: HashSet<String>,
    /// Files that disappeared since the last committed scan.
    pub removed: Vec<String>,
    states: HashMap<String, FileState>,
}

/// The DAG folder and what the last committed scan saw in it.
pub struct DagFolder {
    root: PathBuf,
    options: ParseOptions,
    seen: HashMap<String, FileState>,
    synced_once: bool,
}

impl DagFolder {
    pub fn new(root: PathBuf, max_bytes: usize) -> Self {
        Self {
            root,
            options: ParseOptions { max_bytes },
            seen: HashMap::new(),
            synced_once: false,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads what changed. Nothing is remembered until [`DagFolder::commit`], so a failed sync
    /// is retried by the next scan.
    pub fn scan(&self) -> std::io::Result<Scan> {
        let mut scan = Scan::default();
        let files = if self.root.exists() {
            list_dag_files(&self.root)?
        } else {
            Vec::new()
        };
        // Broken files whose bytes did not change, kept for a second look below.
        let mut unchanged_errored = Vec::new();
        for (fileloc, path) in files {
            scan.present.insert(fileloc.clone());
            let meta = std::fs::metadata(&path).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            let size = meta.as_ref().map_or(0, |m| m.len());
            let previous = self.seen.get(&fileloc);
            let same_stat = previous
                .is_some_and(|p| p.modified == modified && p.size == size && modified.is_some());
            if same_stat && previous.is_some_and(|p| !p.errored) {
                scan.states
                    .insert(fileloc, previous.expect("checked above").clone());
                continue;
            }
            // Changed on disk, or broken before: a permission fix changes neither size nor
            // time, so a broken file's bytes are looked at on every scan.
            let bytes = read_limited(&path, self.options.max_bytes);
            let hash = bytes.as_ref().map(|b| content_hash(b)).unwrap_or_default();
            if let Some(prev) = previous.filter(|p| p.hash == hash) {
                let state = FileState {
                    modified,
                    size,
                    ..prev.clone()
                };
                if prev.errored && same_stat {
                    scan.states.insert(fileloc.clone(), state);
                    unchanged_errored.push((fileloc, bytes, hash));
                    continue;
                }
                if !prev.errored && !hash.is_empty() {
                    // Touched but not changed.
                    scan.states.insert(fileloc, state);
                    continue;
                }
            }
            let file = self.parse(&fileloc, bytes, hash.clone());
            let errored = matches!(file.parsed, Parsed::Errors(_));
            scan.states.insert(
                fileloc,
                FileState {
                    modified,
                    size,
                    hash,
                    errored,
                },
            );
            scan.changed.push(file);
        }
        scan.removed = self
            .seen
            .keys()
            .filter(|f| !scan.present.contains(*f))
            .cloned()
            .collect();
        // A broken file may be broken because of another one (a duplicate dag_id): when
        // anything changed, look at broken files again.
        if !scan.changed.is_empty() || !scan.removed.is_empty() {
            for (fileloc, bytes, hash) in unchanged_errored {
                scan.changed.push(self.parse(&fileloc, bytes, hash));
            }
        }
        Ok(scan)
    }

    fn parse(&self, fileloc: &str, bytes: std::io::Result<Vec<u8>>, hash: String) -> ParsedFile {
        match bytes {
            Ok(bytes) => {
                let parsed = match parse_dag_with(&bytes, &self.options) {
                    Ok(dag) => Parsed::Dag(Box::new(dag)),
                    Err(diags) => Parsed::Errors(diags),
                };
                ParsedFile {
                    fileloc: fileloc.to_string(),
                    content_hash: hash,
                    source: String::from_utf8_lossy(&bytes).into_owned(),
                    parsed,
                }
            }
            Err(e) => ParsedFile {
                fileloc: fileloc.to_string(),
                content_hash: hash,
                source: String::new(),
                parsed: Parsed::Errors(vec![updraft_shared::dag::Diagnostic {
                    line: 1,
                    column: 1,
                    message: format!("cannot read the file: {e}"),
                }]),
            },
        }
    }

    /// Remembers a scan once its changes are in the database.
    pub fn commit(&mut self, scan: &mut Scan) {
        self.seen = std::mem::take(&mut scan.states);
        self.synced_once = true;
    }
}

/// Reads at most `limit + 1` bytes: enough for the parser to say the file is too big.
fn read_limited(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The content hash of a DAG file: its bytes and the parser version that read them.
pub fn content_hash(bytes: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(updraft_shared::dag::parse::PARSER_VERSION.as_bytes());
    hasher.update([0]);
    hasher.update(bytes);
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `*.yaml` / `*.yml` regular files below `root`, skipping hidden files and folders, as
/// (`/`-separated path relative to `root`, full path), sorted so scans are deterministic.
/// Symlinked folders are followed once each (a link to `.` is no loop). A folder that cannot
/// be listed fails the scan: treating it as empty would make its DAGs stale.
fn list_dag_files(root: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut visited = HashSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let meta = std::fs::metadata(&dir)?;
        if !visited.insert((meta.dev(), meta.ino())) {
            continue;
        }
        let mut entries = std::fs::read_dir(&dir)?.collect::<std::io::Result<Vec<_>>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries.into_iter().rev() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                tracing::warn!(path = %entry.path().display(), "skipping a file whose name is not UTF-8");
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            // Follows symlinks; a dangling link is skipped.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                pending.push(path);
            } else if meta.is_file() && (name.ends_with(".yaml") || name.ends_with(".yml")) {
                let rel = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((rel, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// One scan and sync; returns what changed. Used by the processor loop, the CLI and benchmarks.
pub async fn scan_and_sync(
    folder: &Arc<Mutex<DagFolder>>,
    db: &Db,
    paused_at_creation: bool,
) -> Result<SyncReport, StoreError> {
    let scanning = folder.clone();
    let mut scan = tokio::task::spawn_blocking(move || {
        scanning
            .lock()
            .expect("the DAG folder lock is never poisoned: scan does not panic")
            .scan()
    })
    .await
    .map_err(|e| StoreError::DagFolder(format!("the scan stopped: {e}")))?
    .map_err(|e| {
        StoreError::DagFolder(format!(
            "cannot list it ({e}); nothing was changed in the database"
        ))
    })?;
    // The first sync of a process runs even when nothing changed on disk: files removed while
    // no processor ran must still make their DAGs stale.
    let first = !folder.lock().expect("not poisoned").synced_once;
    if scan.changed.is_empty() && scan.removed.is_empty() && !first {
        folder.lock().expect("not poisoned").commit(&mut scan);
        return Ok(SyncReport::default());
    }
    let report = dags::sync(db, &scan.changed, &scan.present, paused_at_creation).await?;
    // Files the sync refused (a duplicate dag_id) are broken too, and looked at again later.
    for file in &report.import_errors {
        if let Some(state) = scan.states.get_mut(file) {
            state.errored = true;
        }
    }
    folder.lock().expect("not poisoned").commit(&mut scan);
    Ok(report)
}

fn log_report(report: &SyncReport) {
    for dag_id in &report.new_dags {
        tracing::info!(dag_id, "new DAG");
    }
    for dag_id in report
        .new_versions
        .iter()
        .filter(|d| !report.new_dags.contains(d))
    {
        tracing::info!(dag_id, "new DAG version");
    }
    for (file, problem) in report.import_errors.iter().zip(&report.first_problems) {
        tracing::warn!(
            file,
            "import error: {problem} (`updraft dags validate` lists every problem)"
        );
    }
    for file in &report.fixed_files {
        tracing::info!(file, "import error cleared");
    }
    for dag_id in &report.stale_dags {
        tracing::info!(
            dag_id,
            "DAG is stale: its file is gone (runs and logs are kept)"
        );
    }
}

/// Runs until `shutdown`: a scan at start, on every change the watcher reports, and every
/// `core.dag_dir_list_interval`; a heartbeat every few seconds.
pub async fn run(db: Db, config: Arc<Config>, shutdown: CancellationToken) {
    let root = config.dags_folder.clone();
    if let Err(e) = std::fs::create_dir_all(&root) {
        tracing::warn!(folder = %root.display(), "cannot create the DAG folder: {e}");
    }
    let core = &config.settings.core;
    let folder = Arc::new(Mutex::new(DagFolder::new(
        root.clone(),
        core.dag_file_max_bytes,
    )));
    let paused = core.dags_are_paused_at_creation;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let watcher = start_watcher(&root, tx);
    let hostname = hostname();
    let job_id = match job::start(&db, JobType::DagProcessor, &hostname).await {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::warn!("cannot register the DAG processor's heartbeat: {e}");
            None
        }
    };
    tracing::info!(folder = %root.display(), watching = watcher.is_some(), "DAG processor started");

    let mut rescan = tokio::time::interval(core.dag_dir_list_interval);
    let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = rescan.tick() => {}
            Some(()) = rx.recv() => {
                // Let the burst of events from one save settle, then scan once.
                tokio::time::sleep(DEBOUNCE).await;
                while rx.try_recv().is_ok() {}
            }
            _ = heartbeat.tick() => {
                if let Some(id) = job_id {
                    if let Err(e) = job::heartbeat(&db, id, chrono::Utc::now()).await {
                        tracing::warn!("DAG processor heartbeat failed: {e}");
                    }
                }
                continue;
            }
        }
        let started = Instant::now();
        match scan_and_sync(&folder, &db, paused).await {
            Ok(report) if !report.is_empty() => {
                log_report(&report);
                tracing::debug!(
                    ms = started.elapsed().as_millis() as u64,
                    "DAG folder synced"
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("syncing the DAG folder failed (retried on the next scan): {e}")
            }
        }
    }
    drop(watcher);
    tracing::info!("DAG processor stopped");
}

fn start_watcher(
    root: &Path,
    tx: tokio::sync::mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let mut watcher =
        match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| !e.kind.is_access()) {
                let _ = tx.send(());
            }
        }) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!("no file watcher ({e}); relying on the periodic rescan");
                return None;
            }
        };
    if let Err(e) = watcher.watch(root, notify::RecursiveMode::Recursive) {
        tracing::warn!(folder = %root.display(), "cannot watch the DAG folder ({e}); relying on the periodic rescan");
        return None;
    }
    Some(watcher)
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
