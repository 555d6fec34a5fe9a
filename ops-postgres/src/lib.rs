//! PostgreSQL provider for `ops`: connection pool over rustls ([`Postgres`]), one error mapping
//! by SQLSTATE, the run journal ([`PgJournal`]) and run locks ([`PgRunLock`]) shared by
//! runners on several machines, and a throwaway test cluster (feature `cluster`).

#[cfg(feature = "cluster")]
pub mod cluster;
mod connect;
pub mod error;
mod health;
mod journal;
mod lock;

pub use connect::{PgConfig, Postgres};
pub use health::{PgHealth, PgHealthConfig};
pub use journal::PgJournal;
pub use lock::PgRunLock;
