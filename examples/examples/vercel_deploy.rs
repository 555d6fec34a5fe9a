//! Vercel: deploy `main` to production and verify it (the production deployment READY, the site
//! answering, no ERROR in its runtime logs for the watch period), rolling back instantly to the
//! previous production deployment on any failure.
//! `--rollback` runs the instant rollback on its own: production back to the previous READY
//! deployment at once, then verified.
//!
//! ```sh
//! cargo run -p ops-examples --example vercel_deploy                         # rehearsal
//! cargo run -p ops-examples --example vercel_deploy -- --fault build-fails
//! cargo run -p ops-examples --example vercel_deploy -- --fault errors-after-deploy
//! cargo run -p ops-examples --example vercel_deploy -- --rollback
//! VERCEL_TOKEN=… cargo run -p ops-examples --example vercel_deploy -- --live --project site \
//!     --repo acme/site --ref main
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use std::sync::Arc;
use std::time::Duration;

use ops_core::contracts::{DeployRequest, Deployer, InitialTraffic, Release};
use ops_core::runbooks::Procedure;
use ops_core::runbooks::{
    DeployAndVerify, DeployVerifyConfig, Rollback, RollbackConfig, RollbackTo,
};
use ops_examples::providers::{vercel_client, vercel_sim};
use ops_examples::{Common, Failure, Session};
use ops_vercel::{GitRepo, VercelDeployer, VercelHealth, VercelLogs, VercelLogsConfig};

/// deploy a git ref to Vercel production and verify it; instant rollback on failure
#[derive(Parser)]
#[command(name = "vercel_deploy")]
struct Flags {
    #[command(flatten)]
    common: Common,
    /// the Vercel project (id or name)
    #[arg(long, env = "VERCEL_PROJECT", default_value = "site")]
    project: String,
    /// the GitHub repository, OWNER/NAME
    #[arg(long, env = "VERCEL_GIT_REPO", default_value = "acme/site")]
    repo: String,
    /// the branch or commit to deploy
    #[arg(long = "ref", env = "VERCEL_GIT_REF", default_value = "main")]
    git_ref: String,
    /// roll production back to the previous deployment instead
    #[arg(long)]
    rollback: bool,
    /// the runbook config, TOML (defaults when absent)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// inject a named failure into the rehearsal
    #[arg(long, value_enum, value_name = "NAME")]
    fault: Option<Fault>,
}

/// The failures a rehearsal can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Fault {
    /// the build fails: production never moves
    #[value(name = "build-fails")]
    BuildFails,
    /// the new deployment builds but fails requests: its runtime logs show errors
    #[value(name = "errors-after-deploy")]
    ErrorsAfterDeploy,
}

#[tokio::main]
async fn main() -> ExitCode {
    ops_examples::run(example).await
}

async fn example(mut session: Session, flags: Flags) -> Result<ExitCode, Failure> {
    let (project, repo, git_ref) = (&flags.project, &flags.repo, &flags.git_ref);
    let Some((org, name)) = repo.split_once('/') else {
        return Err(Failure::usage(format!("--repo {repo}: give OWNER/NAME")));
    };
    let git = GitRepo {
        org: org.into(),
        repo: name.into(),
        branch: git_ref.clone(),
    };
    let sim = vercel_sim(&session, &flags.project).await;
    let client = vercel_client(&session, sim.as_ref())?;
    let deployer = VercelDeployer::new(client, project, Some(git))?
        .with_polling(Duration::from_secs(5), Duration::from_secs(300));
    // In a rehearsal the simulator answers as the site itself.
    let site = sim.as_ref().map(|s| s.uri());
    let probe = Arc::new(VercelHealth::new(deployer.clone(), site));
    let deployer = Arc::new(deployer);

    if flags.rollback {
        if sim.is_some() {
            // The release being regretted.
            let req = DeployRequest {
                traffic: InitialTraffic::All,
                ..DeployRequest::new(git_ref)
            };
            deployer.deploy(&req).await?;
        }
        let before = deployer.current().await?;
        let rollback = Rollback::new(
            RollbackTo::Previous,
            deployer.clone(),
            session.config::<RollbackConfig>(flags.config.as_deref())?,
        )
        .emergency()
        .probe(probe);
        let runbook = rollback.runbook()?;
        if session.run(&runbook).await.is_some() && session.rehearsal() && !flags.common.dry_run {
            let now = deployer.current().await?;
            session.check(
                "production moved off the regretted deployment",
                now.primary_release().is_some()
                    && now.primary_release() != before.primary_release(),
            );
        }
        return Ok(session.finish().await);
    }

    match (&sim, flags.fault) {
        (Some(sim), Some(Fault::BuildFails)) => sim.fail_builds_of(git_ref),
        (Some(sim), Some(Fault::ErrorsAfterDeploy)) => sim.fail_requests_of(git_ref),
        _ => {}
    }
    // The new deployment's build output and live runtime logs, watched for errors.
    let logs = VercelLogs::new((*deployer).clone(), VercelLogsConfig::default())?;
    let before = deployer.current().await?;
    let deploy = DeployAndVerify::new(
        git_ref,
        deployer.clone(),
        session.config::<DeployVerifyConfig>(flags.config.as_deref())?,
    )
    .probe(probe)
    .logs(Arc::new(logs));
    let runbook = deploy.runbook()?;
    let Some(report) = session.run(&runbook).await else {
        return Ok(session.finish().await);
    };
    if session.rehearsal() && !flags.common.dry_run {
        let now = deployer.current().await?;
        if flags.fault.is_some() {
            session.check(
                "production is still the previous deployment",
                now.primary_release() == before.primary_release(),
            );
        } else {
            let new = report.output::<Release>("deploy").map(|r| r.id);
            session.check(
                "the new deployment is production",
                new.is_some() && now.primary_release() == new.as_deref(),
            );
        }
    }
    Ok(session.finish().await)
}
