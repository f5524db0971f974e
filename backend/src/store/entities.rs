//! sea-orm entities of the engine's tables (see migrations `m20261121_000003_create_engine`
//! and `m20261121_000004_create_auth`).
//! Hot paths use hand-written statements in `store::runs`; these serve the rest.

pub mod dag_run {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "dag_run")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub dag_id: String,
        pub run_id: String,
        pub run_type: String,
        pub state: String,
        pub logical_date: Option<DateTimeUtc>,
        pub data_interval_start: Option<DateTimeUtc>,
        pub data_interval_end: Option<DateTimeUtc>,
        pub run_after: DateTimeUtc,
        pub queued_at: Option<DateTimeUtc>,
        pub start_date: Option<DateTimeUtc>,
        pub end_date: Option<DateTimeUtc>,
        /// JSON object.
        pub conf: String,
        pub note: Option<String>,
        pub triggered_by: Option<String>,
        pub dag_version_id: i64,
        pub backfill_id: Option<i64>,
        pub clear_number: i32,
        pub last_scheduling_decision: Option<DateTimeUtc>,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod task_instance {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "task_instance")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub dag_run_id: i64,
        pub dag_id: String,
        pub run_id: String,
        pub task_id: String,
        pub map_index: i32,
        pub state: Option<String>,
        pub try_number: i32,
        pub max_tries: i32,
        pub start_date: Option<DateTimeUtc>,
        pub end_date: Option<DateTimeUtc>,
        pub duration: Option<f64>,
        pub operator: String,
        pub pool: String,
        pub pool_slots: i32,
        pub queue: String,
        pub priority_weight: i32,
        pub hostname: String,
        pub queued_dttm: Option<DateTimeUtc>,
        pub scheduled_dttm: Option<DateTimeUtc>,
        pub next_retry_at: Option<DateTimeUtc>,
        pub lease_owner: Option<i64>,
        pub lease_expires_at: Option<DateTimeUtc>,
        /// JSON object: template field → rendered value, for the try that ran last.
        pub rendered_fields: Option<String>,
        pub dag_version_id: i64,
        pub updated_at: DateTimeUtc,
        pub note: Option<String>,
        /// Times this try went back to the queue because its worker died.
        pub reclaims: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod task_instance_history {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "task_instance_history")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub task_instance_id: i64,
        pub dag_run_id: i64,
        pub dag_id: String,
        pub run_id: String,
        pub task_id: String,
        pub map_index: i32,
        pub try_number: i32,
        pub max_tries: i32,
        pub state: Option<String>,
        pub start_date: Option<DateTimeUtc>,
        pub end_date: Option<DateTimeUtc>,
        pub duration: Option<f64>,
        pub operator: String,
        pub pool: String,
        pub pool_slots: i32,
        pub queue: String,
        pub priority_weight: i32,
        pub hostname: String,
        pub rendered_fields: Option<String>,
        pub dag_version_id: i64,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod xcom {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "xcom")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub dag_run_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub task_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub map_index: i32,
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub dag_id: String,
        pub run_id: String,
        /// JSON.
        pub value: String,
        pub timestamp: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod slot_pool {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "slot_pool")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub pool: String,
        pub slots: i32,
        pub description: Option<String>,
        pub include_deferred: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod variable {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "variable")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub key: String,
        pub val: String,
        pub description: Option<String>,
        pub is_encrypted: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod connection {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "connection")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub conn_id: String,
        pub conn_type: String,
        pub description: Option<String>,
        pub host: Option<String>,
        pub schema: Option<String>,
        pub login: Option<String>,
        pub password: Option<String>,
        pub port: Option<i32>,
        pub extra: Option<String>,
        pub is_encrypted: bool,
        pub is_extra_encrypted: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod user {
    use sea_orm::entity::prelude::*;

    /// A user of the API and UI (Airflow's FAB table name). `password_hash` is an argon2id PHC
    /// string; it never leaves the auth module.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ab_user")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub username: String,
        pub password_hash: String,
        pub role: String,
        pub first_name: String,
        pub last_name: String,
        pub email: String,
        pub active: bool,
        pub created_on: DateTimeUtc,
        pub changed_on: DateTimeUtc,
        pub last_login: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod audit_log {
    use sea_orm::entity::prelude::*;

    /// One audited event (Airflow's `log` table): who did what, when, to which DAG/run/task.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "log")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub dttm: DateTimeUtc,
        pub event: String,
        pub owner: Option<String>,
        pub dag_id: Option<String>,
        pub task_id: Option<String>,
        pub run_id: Option<String>,
        pub map_index: Option<i32>,
        pub try_number: Option<i32>,
        pub logical_date: Option<DateTimeUtc>,
        /// JSON with the request's details, secrets masked.
        pub extra: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod backfill {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "backfill")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub dag_id: String,
        pub from_date: DateTimeUtc,
        pub to_date: DateTimeUtc,
        /// JSON object.
        pub dag_run_conf: String,
        pub is_paused: bool,
        /// `none`, `failed` or `completed` (Airflow's `ReprocessBehavior`).
        pub reprocess_behavior: String,
        pub max_active_runs: i32,
        pub run_backwards: bool,
        pub created_at: DateTimeUtc,
        pub completed_at: Option<DateTimeUtc>,
        pub updated_at: DateTimeUtc,
        pub triggering_user: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
