//! PostgreSQL provider for `ops`: connection pool over rustls ([`Postgres`]), one error mapping
//! by SQLSTATE, the run journal ([`PgJournal`]), run locks ([`PgRunLock`]) and the
//! schedulers' occurrence store ([`PgOccurrenceStore`]) shared by runners on several machines, and a throwaway test cluster (feature `cluster`).

mod backup;
#[cfg(feature = "cluster")]
pub mod cluster;
mod connect;
pub mod counts;
mod dump;
pub mod error;
mod health;
mod journal;
mod lock;
mod maintenance;
mod retention;
mod schedule;
pub mod scratch;
mod sql;
pub mod tls;

pub use backup::{PgBackupStore, PgSource};
pub use connect::{PgConfig, Postgres};
pub use counts::row_counts;
pub use dump::{PgTools, dump_into, dump_into_labelled, restore_from};
pub use health::{PgHealth, PgHealthConfig};
pub use journal::PgJournal;
pub use lock::PgRunLock;
pub use maintenance::{
    IdleSince, MaintenanceConfig, PgMaintenance, Sizes, SlowStatement, SlowStatements, SlowestBy,
};
pub use retention::{
    Condition, ConditionOp, ConditionValue, MAX_CONDITIONS, MAX_LIST, RetentionRule,
};
pub use schedule::PgOccurrenceStore;
