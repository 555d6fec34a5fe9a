//! [`Procedure`]: what every runbook of this library is — an engine runbook built from its
//! settings, and a typed summary of a finished run — so that they all run the same way.

use async_trait::async_trait;

use crate::Result;
use crate::engine::{Mode, RunReport, Runbook, Runner};

/// A finished run of a [`Procedure`]: the report, and the procedure's summary of it. Derefs to
/// the report.
#[derive(Debug, Clone)]
pub struct Finished<S> {
    /// The run's report.
    pub report: RunReport,
    /// The procedure's summary (a verdict, alerts, an incident report); `None` when the run did
    /// not get far enough to produce it.
    pub summary: Option<S>,
}

impl<S> std::ops::Deref for Finished<S> {
    type Target = RunReport;

    fn deref(&self) -> &RunReport {
        &self.report
    }
}

/// One of the runbooks of this library.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> ops_core::Result<()> {
/// use std::sync::Arc;
/// use ops_core::memory::MemoryDeployer;
/// use ops_core::contracts::{DeployRequest, Deployer};
/// use ops_core::engine::{Category, Mode, Runner};
/// use ops_core::runbooks::{DeployAndVerify, DeployVerifyConfig, Procedure};
/// let deployer = Arc::new(MemoryDeployer::new("api"));
/// deployer.deploy(&DeployRequest::new("api:1.0")).await?;
/// let deploy = DeployAndVerify::new("api:1.1", deployer, DeployVerifyConfig::default());
/// assert_eq!(deploy.runbook()?.category(), Category::Deploy);
/// let finished = deploy.run(&Runner::new(), Mode::DryRun).await?;
/// assert!(finished.is_success());
/// # Ok(()) }
/// ```
#[async_trait]
pub trait Procedure: Send + Sync {
    /// What a run yields besides its report; `()` when the report says it all.
    type Summary: Send;

    /// The engine runbook, its settings validated first (an invalid setting is an
    /// `InvalidInput` error naming it).
    fn runbook(&self) -> Result<Runbook>;

    /// The summary of a finished run; `None` when the run did not get that far.
    fn summary(&self, report: &RunReport) -> Option<Self::Summary>;

    /// Runs it through `runner` (journal, lock, approvals, dry run as `mode` says).
    async fn run(&self, runner: &Runner, mode: Mode) -> Result<Finished<Self::Summary>> {
        let report = runner.run(&self.runbook()?, mode).await?;
        let summary = self.summary(&report);
        Ok(Finished { report, summary })
    }
}
