//! DAGs, their versions and import errors in the metadata database, and the sync that brings
//! them in line with what the DAG folder holds.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, IntoActiveModel, QueryOrder, QuerySelect, TransactionTrait,
};
use updraft_shared::dag::{Dag, Diagnostic};

use super::{Db, StoreError};

pub mod dag {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "dag")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub dag_id: String,
        pub fileloc: String,
        pub description: Option<String>,
        pub owners: String,
        /// JSON array of strings.
        pub tags: String,
        pub schedule: Option<String>,
        pub timezone: String,
        pub is_paused: bool,
        pub is_stale: bool,
        pub has_import_errors: bool,
        pub max_active_runs: i32,
        pub max_active_tasks: i32,
        pub current_version_id: Option<i64>,
        pub last_parsed_time: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub next_dagrun: Option<DateTimeUtc>,
        pub next_dagrun_data_interval_start: Option<DateTimeUtc>,
        pub next_dagrun_data_interval_end: Option<DateTimeUtc>,
        pub next_dagrun_create_after: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod dag_version {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "dag_version")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub dag_id: String,
        pub version_number: i32,
        pub content_hash: String,
        pub fileloc: String,
        pub source: String,
        /// The parsed model as JSON: what the scheduler runs.
        pub dag_json: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod import_error {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "import_error")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub filename: String,
        pub timestamp: DateTimeUtc,
        pub stack_trace: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// What parsing one changed file gave.
#[derive(Debug)]
pub enum Parsed {
    Dag(Box<Dag>),
    Errors(Vec<Diagnostic>),
}

/// A DAG file whose content changed since the last sync (or was never synced).
#[derive(Debug)]
pub struct ParsedFile {
    /// Path relative to the DAG folder, `/`-separated: the same on every machine.
    pub fileloc: String,
    pub content_hash: String,
    pub source: String,
    pub parsed: Parsed,
}

/// What a sync changed, for logs and tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub new_dags: Vec<String>,
    pub new_versions: Vec<String>,
    pub import_errors: Vec<String>,
    /// The first problem of each file in `import_errors`, in the same order, for the log.
    pub first_problems: Vec<String>,
    pub fixed_files: Vec<String>,
    pub stale_dags: Vec<String>,
}

impl SyncReport {
    fn import_error(&mut self, fileloc: &str, text: &str) {
        self.import_errors.push(fileloc.to_string());
        self.first_problems
            .push(text.lines().next().unwrap_or_default().to_string());
    }

    pub fn is_empty(&self) -> bool {
        *self == SyncReport::default()
    }

    fn extend(&mut self, other: SyncReport) {
        self.new_dags.extend(other.new_dags);
        self.new_versions.extend(other.new_versions);
        self.import_errors.extend(other.import_errors);
        self.first_problems.extend(other.first_problems);
        self.fixed_files.extend(other.fixed_files);
        self.stale_dags.extend(other.stale_dags);
    }
}

/// Brings the database in line with the folder: `changed` are the files parsed this round,
/// `present` every DAG file that exists now (unchanged ones included).
pub async fn sync(
    db: &Db,
    changed: &[ParsedFile],
    present: &HashSet<String>,
    paused_at_creation: bool,
) -> Result<SyncReport, StoreError> {
    // Fast path: the whole batch in one transaction. If the database refuses a row, do it
    // again with a savepoint per file, so only that file gets the import error.
    match sync_batch(db, changed, present, paused_at_creation, false).await {
        Ok(report) => Ok(report),
        Err(StoreError::Db(e)) => {
            tracing::debug!("DAG sync batch refused ({e}); retrying file by file");
            sync_batch(db, changed, present, paused_at_creation, true).await
        }
        Err(e) => Err(e),
    }
}

async fn sync_batch(
    db: &Db,
    changed: &[ParsedFile],
    present: &HashSet<String>,
    paused_at_creation: bool,
    isolate: bool,
) -> Result<SyncReport, StoreError> {
    let txn = db.conn().begin().await?;
    match db.kind() {
        // Processors of several `serve`/`scheduler` processes take turns (released at commit).
        crate::config::DatabaseKind::Postgres => {
            txn.execute_unprepared("SELECT pg_advisory_xact_lock(7570647261666702)")
                .await?;
        }
        // Take SQLite's write lock before reading: a transaction that reads first cannot wait
        // for it later (SQLITE_BUSY at once while the engine writes), one that writes first can.
        crate::config::DatabaseKind::Sqlite => {
            txn.execute_unprepared("UPDATE dag SET dag_id = dag_id WHERE 0 = 1")
                .await?;
        }
    }
    let now = Utc::now();
    let mut report = SyncReport::default();
    let mut dags = load_dags(&txn).await?;
    let errors: HashSet<String> = import_error::Entity::find()
        .all(&txn)
        .await?
        .into_iter()
        .map(|e| e.filename)
        .collect();

    // What each changed file declares now: a DAG in another file only blocks a dag_id if that
    // file still declares it (two files swapping ids in one save is not a conflict).
    let declared: HashMap<&str, &str> = changed
        .iter()
        .filter_map(|f| match &f.parsed {
            Parsed::Dag(d) => Some((f.fileloc.as_str(), d.dag_id.as_str())),
            Parsed::Errors(_) => None,
        })
        .collect();

    // Content already stored as the DAG's current version (a restarted processor re-reads
    // every file) needs no write at all.
    let current_ids: Vec<i64> = declared
        .values()
        .filter_map(|id| dags.get(*id).and_then(|d| d.current_version_id))
        .collect();
    let current_hashes: HashMap<i64, String> = dag_version::Entity::find()
        .select_only()
        .column(dag_version::Column::Id)
        .column(dag_version::Column::ContentHash)
        .filter(dag_version::Column::Id.is_in(current_ids))
        .into_tuple::<(i64, String)>()
        .all(&txn)
        .await?
        .into_iter()
        .collect();
    let up_to_date = |file: &ParsedFile, dags: &HashMap<String, dag::Model>| match &file.parsed {
        Parsed::Dag(parsed) => dags.get(&parsed.dag_id).is_some_and(|d| {
            d.fileloc == file.fileloc
                && !d.is_stale
                && !d.has_import_errors
                && !errors.contains(&file.fileloc)
                && d.current_version_id
                    .and_then(|id| current_hashes.get(&id))
                    .is_some_and(|h| *h == file.content_hash)
        }),
        Parsed::Errors(_) => false,
    };

    let batch = Batch {
        errors: &errors,
        declared: &declared,
        present,
        now,
        paused_at_creation,
    };
    for file in changed {
        if up_to_date(file, &dags) {
            continue;
        }
        if !isolate {
            sync_file(&txn, &mut dags, &batch, file, &mut report).await?;
            continue;
        }
        // A savepoint per file: a row the database refuses (a value too long for a column, a
        // NUL byte PostgreSQL will not store) becomes that file's import error instead of
        // stopping every other file's update.
        let savepoint = txn.begin().await?;
        let mut local = SyncReport::default();
        match sync_file(&savepoint, &mut dags, &batch, file, &mut local).await {
            Ok(()) => {
                savepoint.commit().await?;
                report.extend(local);
            }
            Err(e) => {
                savepoint.rollback().await?;
                // The in-memory rows may hold what was rolled back: reload them.
                dags = load_dags(&txn).await?;
                let text = format!(
                    "{}:1:1: the metadata database refused this DAG ({e}); shorten long values and remove NUL characters",
                    file.fileloc
                );
                record_import_error(&txn, &errors, &file.fileloc, now, text, &mut report).await?;
            }
        }
    }

    // Files that are gone: their DAGs go stale (kept with their runs), their errors go away.
    for d in dags
        .values_mut()
        .filter(|d| !d.is_stale && !present.contains(&d.fileloc))
    {
        mark_stale(&txn, d).await?;
        report.stale_dags.push(d.dag_id.clone());
    }
    let gone: Vec<&String> = errors.iter().filter(|f| !present.contains(*f)).collect();
    report
        .fixed_files
        .extend(gone.iter().map(|f| f.to_string()));
    if !gone.is_empty() {
        import_error::Entity::delete_many()
            .filter(import_error::Column::Filename.is_in(gone.iter().map(|s| s.as_str())))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(report)
}

async fn load_dags(
    txn: &sea_orm::DatabaseTransaction,
) -> Result<HashMap<String, dag::Model>, StoreError> {
    Ok(dag::Entity::find()
        .all(txn)
        .await?
        .into_iter()
        .map(|d| (d.dag_id.clone(), d))
        .collect())
}

/// What every file of one sync shares.
struct Batch<'a> {
    /// Files with an import error before this sync.
    errors: &'a HashSet<String>,
    /// What each changed file declares now (fileloc → dag_id).
    declared: &'a HashMap<&'a str, &'a str>,
    /// Every DAG file present now.
    present: &'a HashSet<String>,
    now: DateTime<Utc>,
    paused_at_creation: bool,
}

async fn sync_file(
    txn: &sea_orm::DatabaseTransaction,
    dags: &mut HashMap<String, dag::Model>,
    batch: &Batch<'_>,
    file: &ParsedFile,
    report: &mut SyncReport,
) -> Result<(), StoreError> {
    let Batch {
        errors,
        declared,
        present,
        now,
        paused_at_creation,
    } = *batch;
    match &file.parsed {
        Parsed::Dag(parsed) => {
            let owner = dags.get(&parsed.dag_id).filter(|d| {
                d.fileloc != file.fileloc
                    && !d.is_stale
                    && present.contains(&d.fileloc)
                    && declared
                        .get(d.fileloc.as_str())
                        .is_none_or(|id| *id == parsed.dag_id)
            });
            if let Some(owner) = owner {
                let text = format!(
                    "{}:1:1: dag_id `{}` is already defined in {}; give this DAG another dag_id or remove one of the files",
                    file.fileloc, parsed.dag_id, owner.fileloc
                );
                record_import_error(txn, errors, &file.fileloc, now, text, report).await?;
                return Ok(());
            }
            // The file used to declare another dag_id: that DAG is gone from it.
            for old in dags
                .values_mut()
                .filter(|d| d.fileloc == file.fileloc && d.dag_id != parsed.dag_id && !d.is_stale)
            {
                mark_stale(txn, old).await?;
                report.stale_dags.push(old.dag_id.clone());
            }
            // The dag row first: versions refer to it.
            let new_dag = !dags.contains_key(&parsed.dag_id);
            let row = upsert_dag(txn, dags, file, parsed, now, paused_at_creation, report).await?;
            let version_id = insert_version_if_new(txn, new_dag, file, parsed, now, report).await?;
            let mut row = row;
            if row.current_version_id != Some(version_id) {
                dag::Entity::update_many()
                    .col_expr(dag::Column::CurrentVersionId, Expr::value(version_id))
                    .filter(dag::Column::DagId.eq(&row.dag_id))
                    .exec(txn)
                    .await?;
                row.current_version_id = Some(version_id);
            }
            dags.insert(row.dag_id.clone(), row);
            if errors.contains(&file.fileloc) {
                import_error::Entity::delete_many()
                    .filter(import_error::Column::Filename.eq(&file.fileloc))
                    .exec(txn)
                    .await?;
                report.fixed_files.push(file.fileloc.clone());
            }
        }
        Parsed::Errors(diags) => {
            let text = diags
                .iter()
                .map(|d| format!("{}:{d}", file.fileloc))
                .collect::<Vec<_>>()
                .join("\n");
            record_import_error(txn, errors, &file.fileloc, now, text, report).await?;
        }
    }
    Ok(())
}

/// Records a broken file: its `import_error` row (created or replaced), the flag on the DAGs
/// it declared (they keep running their last good version), and the report line.
async fn record_import_error(
    txn: &sea_orm::DatabaseTransaction,
    existing: &HashSet<String>,
    fileloc: &str,
    now: DateTime<Utc>,
    text: String,
    report: &mut SyncReport,
) -> Result<(), StoreError> {
    report.import_error(fileloc, &text);
    if existing.contains(fileloc) {
        import_error::Entity::update_many()
            .col_expr(import_error::Column::Timestamp, Expr::value(now))
            .col_expr(import_error::Column::StackTrace, Expr::value(text))
            .filter(import_error::Column::Filename.eq(fileloc))
            .exec(txn)
            .await?;
    } else {
        import_error::ActiveModel {
            filename: Set(fileloc.to_string()),
            timestamp: Set(now),
            stack_trace: Set(text),
            ..Default::default()
        }
        .insert(txn)
        .await?;
    }
    dag::Entity::update_many()
        .col_expr(dag::Column::HasImportErrors, Expr::value(true))
        .filter(dag::Column::Fileloc.eq(fileloc))
        .filter(dag::Column::IsStale.eq(false))
        .exec(txn)
        .await?;
    Ok(())
}

async fn mark_stale(
    txn: &sea_orm::DatabaseTransaction,
    d: &mut dag::Model,
) -> Result<(), StoreError> {
    dag::Entity::update_many()
        .col_expr(dag::Column::IsStale, Expr::value(true))
        .filter(dag::Column::DagId.eq(&d.dag_id))
        .exec(txn)
        .await?;
    d.is_stale = true;
    Ok(())
}

/// The version row for this content (one per distinct content of a DAG); returns its id.
async fn insert_version_if_new(
    txn: &sea_orm::DatabaseTransaction,
    new_dag: bool,
    file: &ParsedFile,
    parsed: &Dag,
    now: DateTime<Utc>,
    report: &mut SyncReport,
) -> Result<i64, StoreError> {
    let last = if new_dag {
        // Versions go with their DAG row (foreign key): a new DAG has none.
        None
    } else {
        if let Some(existing) = dag_version::Entity::find()
            .filter(dag_version::Column::DagId.eq(&parsed.dag_id))
            .filter(dag_version::Column::ContentHash.eq(&file.content_hash))
            .one(txn)
            .await?
        {
            return Ok(existing.id);
        }
        dag_version::Entity::find()
            .filter(dag_version::Column::DagId.eq(&parsed.dag_id))
            .order_by_desc(dag_version::Column::VersionNumber)
            .one(txn)
            .await?
    };
    let dag_json = serde_json::to_string(parsed)
        .map_err(|e| sea_orm::DbErr::Custom(format!("serializing DAG {}: {e}", parsed.dag_id)))?;
    let row = dag_version::ActiveModel {
        dag_id: Set(parsed.dag_id.clone()),
        version_number: Set(last.map_or(1, |v| v.version_number + 1)),
        content_hash: Set(file.content_hash.clone()),
        fileloc: Set(file.fileloc.clone()),
        source: Set(file.source.clone()),
        dag_json: Set(dag_json),
        created_at: Set(now),
        ..Default::default()
    };
    // `exec` returns the new id without reading the row back (SQLite has no RETURNING here).
    let id = dag_version::Entity::insert(row)
        .exec(txn)
        .await?
        .last_insert_id;
    report.new_versions.push(parsed.dag_id.clone());
    Ok(id)
}

/// Inserts or updates the DAG's row from its file; `is_paused` is set only on creation.
async fn upsert_dag(
    txn: &sea_orm::DatabaseTransaction,
    dags: &HashMap<String, dag::Model>,
    file: &ParsedFile,
    parsed: &Dag,
    now: DateTime<Utc>,
    paused_at_creation: bool,
    report: &mut SyncReport,
) -> Result<dag::Model, StoreError> {
    let owners = parsed
        .owner
        .clone()
        .or_else(|| parsed.default_args.owner.clone())
        .unwrap_or_else(|| "updraft".into());
    let tags = serde_json::to_string(&parsed.tags).unwrap_or_else(|_| "[]".into());
    let existing = dags.get(&parsed.dag_id).cloned();
    let is_new = existing.is_none();
    let mut row = existing.unwrap_or_else(|| dag::Model {
        dag_id: parsed.dag_id.clone(),
        fileloc: String::new(),
        description: None,
        owners: String::new(),
        tags: String::new(),
        schedule: None,
        timezone: String::new(),
        is_paused: parsed.is_paused_upon_creation.unwrap_or(paused_at_creation),
        is_stale: false,
        has_import_errors: false,
        max_active_runs: 0,
        max_active_tasks: 0,
        current_version_id: None,
        last_parsed_time: None,
        created_at: now,
        next_dagrun: None,
        next_dagrun_data_interval_start: None,
        next_dagrun_data_interval_end: None,
        next_dagrun_create_after: None,
    });
    // `is_paused` is the user's to change: only set when the DAG is new.
    row.fileloc = file.fileloc.clone();
    row.description = parsed.description.clone();
    row.owners = owners;
    row.tags = tags;
    row.schedule = parsed.schedule.clone();
    row.timezone = parsed.timezone.clone();
    row.is_stale = false;
    row.has_import_errors = false;
    row.max_active_runs = parsed.max_active_runs.min(i32::MAX as u32) as i32;
    row.max_active_tasks = parsed.max_active_tasks.min(i32::MAX as u32) as i32;
    row.last_parsed_time = Some(now);
    // Written without reading the row back: sea-orm would re-select it on SQLite.
    if is_new {
        report.new_dags.push(parsed.dag_id.clone());
        dag::Entity::insert(row.clone().into_active_model().reset_all())
            .exec_without_returning(txn)
            .await?;
    } else {
        let mut active = row.clone().into_active_model().reset_all();
        active.is_paused = sea_orm::ActiveValue::NotSet;
        active.created_at = sea_orm::ActiveValue::NotSet;
        active.current_version_id = sea_orm::ActiveValue::NotSet;
        active.next_dagrun = sea_orm::ActiveValue::NotSet;
        active.next_dagrun_data_interval_start = sea_orm::ActiveValue::NotSet;
        active.next_dagrun_data_interval_end = sea_orm::ActiveValue::NotSet;
        active.next_dagrun_create_after = sea_orm::ActiveValue::NotSet;
        active.dag_id = sea_orm::ActiveValue::NotSet;
        dag::Entity::update_many()
            .set(active)
            .filter(dag::Column::DagId.eq(&row.dag_id))
            .exec(txn)
            .await?;
    }
    Ok(row)
}

/// Every DAG with its current version number, for listings.
pub async fn list(db: &Db, include_stale: bool) -> Result<Vec<dag::Model>, StoreError> {
    let mut q = dag::Entity::find().order_by_asc(dag::Column::DagId);
    if !include_stale {
        q = q.filter(dag::Column::IsStale.eq(false));
    }
    Ok(q.all(db.conn()).await?)
}

pub async fn versions(db: &Db, dag_id: &str) -> Result<Vec<dag_version::Model>, StoreError> {
    Ok(dag_version::Entity::find()
        .filter(dag_version::Column::DagId.eq(dag_id))
        .order_by_asc(dag_version::Column::VersionNumber)
        .all(db.conn())
        .await?)
}

pub async fn import_errors(db: &Db) -> Result<Vec<import_error::Model>, StoreError> {
    Ok(import_error::Entity::find()
        .order_by_asc(import_error::Column::Filename)
        .all(db.conn())
        .await?)
}
