//! PostgreSQL provider for `ops`: connection pool over rustls ([`Postgres`]), one error mapping
//! by SQLSTATE, and a throwaway test cluster (feature `cluster`).

#[cfg(feature = "cluster")]
pub mod cluster;
mod connect;
pub mod error;

pub use connect::{PgConfig, Postgres};
