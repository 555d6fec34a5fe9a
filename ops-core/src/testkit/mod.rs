//! Conformance suites: every implementation of a contract runs the suite for its trait, and the
//! suite checks every documented behaviour, errors included, choosing by the implementation's
//! declared capabilities (as OpenDAL's behaviour tests do).
//!
//! A suite panics with a message naming the broken behaviour, so it is called from a test:
//!
//! ```no_run
//! # async fn f() {
//! use ops_core::adapters::FsBackupStore;
//! use ops_core::testkit::{self, BackupFixture};
//! let dir = tempfile::tempdir().unwrap();
//! let store = FsBackupStore::open(dir.path()).await.unwrap();
//! testkit::backup_store(&store, &BackupFixture::new("suite")).await;
//! # }
//! ```

mod backup_store;
mod config_loader;
mod deployer;
mod health_probe;
mod journal;
mod log_source;
mod metrics_source;
mod notifier;
mod run_lock;
mod secret_store;
mod security_auditor;

pub use backup_store::{BackupFixture, backup_store};
pub use config_loader::{config_loader, config_loader_from};
pub use deployer::{DeployerFixture, deployer};
pub use health_probe::health_probe;
pub use journal::journal;
pub use log_source::{LogFixture, log_source};
pub use metrics_source::{MetricsFixture, metrics_source};
pub use notifier::notifier;
pub use run_lock::run_lock;
pub use secret_store::{SecretFixture, secret_store};
pub use security_auditor::{AuditFixture, security_auditor};

use crate::{Error, ErrorKind, Result};

/// Asserts `result` failed with a kind `matches` accepts; `what` names the behaviour.
#[track_caller]
fn expect_kind<T: std::fmt::Debug>(
    what: &str,
    result: Result<T>,
    matches: fn(&ErrorKind) -> bool,
) -> Error {
    match result {
        Ok(v) => panic!("{what}: expected an error, got Ok({v:?})"),
        Err(e) if matches(e.kind()) => e,
        Err(e) => panic!("{what}: wrong error kind: {e}"),
    }
}

#[track_caller]
fn expect_ok<T>(what: &str, result: Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}"))
}
