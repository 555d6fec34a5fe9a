//! Vercel: deploy `main` to production and verify it (the production deployment READY, the site
//! answering), rolling back instantly to the previous production deployment on any failure.
//! `--rollback` runs the instant rollback on its own: production back to the previous READY
//! deployment at once, then verified.
//!
//! ```sh
//! cargo run -p ops-examples --example vercel_deploy                         # rehearsal
//! cargo run -p ops-examples --example vercel_deploy -- --fault build-fails
//! cargo run -p ops-examples --example vercel_deploy -- --rollback
//! VERCEL_TOKEN=… cargo run -p ops-examples --example vercel_deploy -- --live --project site \
//!     --repo acme/site --ref main
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use ops_core::contracts::{DeployRequest, Deployer, InitialTraffic, Release};
use ops_core::runbooks::Procedure;
use ops_core::runbooks::{
    DeployAndVerify, DeployVerifyConfig, Rollback, RollbackConfig, RollbackTo,
};
use ops_examples::providers::{VERCEL_PROJECT, vercel_client, vercel_sim};
use ops_examples::{Opt, Session, Spec};
use ops_vercel::{GitRepo, VercelDeployer, VercelHealth};

const SPEC: Spec = Spec {
    name: "vercel_deploy",
    about: "deploy a git ref to Vercel production and verify it; instant rollback on failure",
    options: &[
        VERCEL_PROJECT,
        Opt::value(
            "repo",
            "VERCEL_GIT_REPO",
            "the GitHub repository, OWNER/NAME",
            "acme/site",
        ),
        Opt::value(
            "ref",
            "VERCEL_GIT_REF",
            "the branch or commit to deploy",
            "main",
        ),
        Opt::switch(
            "rollback",
            "roll production back to the previous deployment instead",
        ),
        Opt::config(),
    ],
    faults: &[("build-fails", "the build fails: production never moves")],
};

#[tokio::main]
async fn main() -> ExitCode {
    let mut session = Session::start(SPEC).await;
    let (project, repo, git_ref) = (
        session.value("project"),
        session.value("repo"),
        session.value("ref"),
    );
    let Some((org, name)) = repo.split_once('/') else {
        session.usage_error(format!("--repo {repo}: give OWNER/NAME"));
    };
    let git = GitRepo {
        org: org.into(),
        repo: name.into(),
        branch: git_ref.clone(),
    };
    let sim = vercel_sim(&session).await;
    let client = vercel_client(&session, sim.as_ref());
    let deployer = session
        .or_exit(VercelDeployer::new(client, &project, Some(git)))
        .with_polling(Duration::from_secs(5), Duration::from_secs(300));
    // In a rehearsal the simulator answers as the site itself.
    let site = sim.as_ref().map(|s| s.uri());
    let probe = Arc::new(VercelHealth::new(deployer.clone(), site));
    let deployer = Arc::new(deployer);

    if session.cli.switch("rollback") {
        if sim.is_some() {
            // The release being regretted.
            let req = DeployRequest {
                traffic: InitialTraffic::All,
                ..DeployRequest::new(&git_ref)
            };
            session.or_exit(deployer.deploy(&req).await);
        }
        let before = session.or_exit(deployer.current().await);
        let rollback = Rollback::new(
            RollbackTo::Previous,
            deployer.clone(),
            session.config::<RollbackConfig>(),
        )
        .emergency()
        .probe(probe);
        let runbook = session.or_exit(rollback.runbook());
        if session.run(&runbook).await.is_some() && session.rehearsal() && !session.cli.dry_run {
            let now = session.or_exit(deployer.current().await);
            session.check(
                "production moved off the regretted deployment",
                now.primary_release().is_some()
                    && now.primary_release() != before.primary_release(),
            );
        }
        return session.finish().await;
    }

    if let Some(sim) = &sim
        && session.cli.fault_is("build-fails")
    {
        sim.fail_builds_of(&git_ref);
    }
    let before = session.or_exit(deployer.current().await);
    let deploy = DeployAndVerify::new(
        &git_ref,
        deployer.clone(),
        session.config::<DeployVerifyConfig>(),
    )
    .probe(probe);
    let runbook = session.or_exit(deploy.runbook());
    let Some(report) = session.run(&runbook).await else {
        return session.finish().await;
    };
    if session.rehearsal() && !session.cli.dry_run {
        let now = session.or_exit(deployer.current().await);
        if session.cli.fault.is_some() {
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
    session.finish().await
}
