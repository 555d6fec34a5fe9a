//! Conformance suites: every implementation of a contract runs the suite for its trait, and the
//! suite checks every documented behaviour, errors included, choosing by the implementation's
//! declared capabilities (as OpenDAL's behaviour tests do).
//!
//! A suite is a list of small named cases ([`Case`]), each one behaviour checked on its own
//! with ids of its own, and each declaring when it applies (a capability the implementation
//! declares). [`check_cases`] runs every case that applies, prints the ones skipped and why,
//! and fails naming every broken behaviour, not only the first. A provider that wants one test
//! per behaviour runs [`check_case`] by name. The suite function (`backup_store`, …) runs them
//! all; it panics with the report, so it is called from a test:
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
mod cost_source;
mod deployer;
mod health_probe;
mod journal;
mod log_source;
mod metrics_source;
mod notifier;
mod occurrence_store;
mod run_lock;
mod secret_store;
mod security_auditor;

pub use backup_store::{BackupFixture, backup_store, backup_store_cases};
pub use config_loader::{config_loader, config_loader_from};
pub use cost_source::{CostFixture, cost_source, cost_source_cases};
pub use deployer::{DeployerFixture, deployer, deployer_cases};
pub use health_probe::{HealthExpectation, health_probe, health_report_cases};
pub use journal::{journal, journal_cases};
pub use log_source::{LogFixture, log_source, log_source_cases};
pub use metrics_source::{CountsFixture, MetricsFixture, metrics_source, metrics_source_cases};
pub use notifier::{notifier, notifier_cases};
pub use occurrence_store::{occurrence_store, occurrence_store_cases};
pub use run_lock::{run_lock, run_lock_cases};
pub use secret_store::{SecretFixture, secret_store, secret_store_cases};
pub use security_auditor::{AuditFixture, security_auditor, security_auditor_cases};

use std::future::Future;
use std::pin::Pin;

use futures_util::FutureExt;

use crate::{Error, ErrorKind, Result};

/// The future a [`Case`] runs.
pub type CaseFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// One behaviour of a contract, checked on its own.
pub struct Case<T: ?Sized, X> {
    /// What it checks, as a test name (`an_existing_id_is_never_overwritten`).
    pub name: &'static str,
    /// Why it does not apply to `T` (a capability it does not declare); `None` when it does.
    pub skip: fn(&T) -> Option<&'static str>,
    /// The check: panics, naming what broke, when the behaviour does not hold.
    pub check: for<'a> fn(&'a T, &'a X) -> CaseFuture<'a>,
}

impl<T: ?Sized, X> std::fmt::Debug for Case<T, X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case").field("name", &self.name).finish()
    }
}

/// The [`Case`]s of a suite: each `check` (an `async fn(&Subject, &Fixture)`, named for the
/// behaviour) skipped when its `skip` function says why.
macro_rules! cases {
    ($subject:ty, $fixture:ty; $($check:ident unless $skip:expr),* $(,)?) => {
        vec![$(
            $crate::testkit::Case {
                name: stringify!($check),
                skip: $skip,
                check: {
                    fn boxed<'a>(
                        s: &'a $subject,
                        f: &'a $fixture,
                    ) -> $crate::testkit::CaseFuture<'a> {
                        Box::pin($check(s, f))
                    }
                    boxed
                },
            }
        ),*]
    };
}
pub(crate) use cases;

/// Applies to everything.
fn always<T: ?Sized>(_: &T) -> Option<&'static str> {
    None
}

/// Runs every case of `cases` that applies to `subject`, each whatever the others did, and
/// panics listing every case that failed with its message. Skipped cases are printed with the
/// reason.
pub async fn check_cases<T: ?Sized, X>(
    suite: &str,
    subject: &T,
    fixture: &X,
    cases: &[Case<T, X>],
) {
    let mut failed = Vec::new();
    for case in cases {
        if let Some(why) = (case.skip)(subject) {
            eprintln!("{suite}::{}: skipped, {why}", case.name);
            continue;
        }
        let outcome = std::panic::AssertUnwindSafe((case.check)(subject, fixture))
            .catch_unwind()
            .await;
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(no message)".into());
            failed.push(format!("{suite}::{}: {message}", case.name));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} behaviours broken:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
}

/// Runs the one case of `cases` named `name` (panicking if there is none, or if it does not
/// apply: a test written for it would otherwise pass without checking anything).
pub async fn check_case<T: ?Sized, X>(name: &str, subject: &T, fixture: &X, cases: &[Case<T, X>]) {
    let case = cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case named {name}"));
    if let Some(why) = (case.skip)(subject) {
        panic!("{name} does not apply: {why}");
    }
    (case.check)(subject, fixture).await;
}

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
