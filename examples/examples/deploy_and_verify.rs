//! Deploy and verify on Cloud Run: deploy the new image with all traffic, wait 30 s, probe the
//! service, watch the new revision's ERROR logs for 5 minutes, and on any failure put all
//! traffic back on the previous revision. Slack hears the start and the outcome.
//!
//! ```sh
//! cargo run -p ops-examples --example deploy_and_verify                         # rehearsal
//! cargo run -p ops-examples --example deploy_and_verify -- --fault errors-after-deploy
//! cargo run -p ops-examples --example deploy_and_verify -- --live --project P --region R \
//!     --service api --image europe-docker.pkg.dev/P/app/api:1.1      # + SLACK_WEBHOOK_URL
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use std::sync::Arc;

use ops_core::contracts::{Deployer, Release};
use ops_core::runbooks::Procedure;
use ops_core::runbooks::{DeployAndVerify, DeployVerifyConfig};
use ops_examples::providers::{gcp_client, gcp_sim, slack};
use ops_examples::{Common, Failure, GcpArgs, Session};
use ops_gcp::sim::Behaviour;
use ops_gcp::{CloudLogging, CloudRun};

/// deploy a new image, probe it, watch its error logs, roll back on any failure
#[derive(Parser)]
#[command(name = "deploy_and_verify")]
struct Flags {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    gcp: GcpArgs,
    /// the Cloud Run service
    #[arg(long, env = "OPS_SERVICE", default_value = "api")]
    service: String,
    /// the image to deploy
    #[arg(long, env = "OPS_IMAGE", default_value = "registry.example/api:1.1")]
    image: String,
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
    /// the new revision starts but fails 5 % of requests: its ERROR logs trigger the rollback
    #[value(name = "errors-after-deploy")]
    ErrorsAfterDeploy,
    /// the new container never starts: the deploy fails and traffic never moves
    #[value(name = "crash-on-start")]
    CrashOnStart,
}

#[tokio::main]
async fn main() -> ExitCode {
    ops_examples::run(example).await
}

async fn example(mut session: Session, flags: Flags) -> Result<ExitCode, Failure> {
    let service = flags.service.clone();
    let image = flags.image.clone();
    let config: DeployVerifyConfig = session.config(flags.config.as_deref())?;

    let sim = gcp_sim(&session, &flags.gcp).await;
    if let Some(sim) = &sim {
        sim.create_service(&service, "registry.example/api:1.0");
        if flags.fault == Some(Fault::ErrorsAfterDeploy) {
            sim.set_behaviour(&image, Behaviour::failing(0.05));
        } else if flags.fault == Some(Fault::CrashOnStart) {
            sim.set_behaviour(&image, Behaviour::crashing());
        } else {
            // A clean release: not one failed request (the runbook tolerates no ERROR entry).
            sim.set_behaviour(&image, Behaviour::failing(0.0));
        }
    }
    let (notifier, slack_sim) = slack(&session).await?;
    let client = gcp_client(&session, &flags.gcp, sim.as_ref()).await?;
    let run = Arc::new(CloudRun::new(client.clone(), &service)?);
    let logs = Arc::new(CloudLogging::new(client, &service)?);
    let before = run.current().await?;

    let deploy = DeployAndVerify::new(&image, run.clone(), config)
        .probe(Arc::new(run.health_probe()))
        .logs(logs)
        .notifier(notifier);
    let runbook = deploy.runbook()?;
    let Some(report) = session.run(&runbook).await else {
        return Ok(session.finish().await);
    };

    if session.rehearsal() && !flags.common.dry_run {
        let now = run.current().await?;
        if flags.fault.is_some() {
            session.check(
                "all traffic is on the previous revision",
                now.primary_release() == before.primary_release()
                    && now
                        .traffic
                        .iter()
                        .all(|t| t.percent == 0 || t.percent == 100),
            );
        } else {
            let new = report.output::<Release>("deploy").map(|r| r.id);
            session.check(
                "the new revision takes all traffic",
                new.is_some() && now.primary_release() == new.as_deref(),
            );
        }
        let posts = slack_sim.map(|s| s.webhook_posts().len()).unwrap_or(0);
        session.check("Slack heard the start and the outcome", posts >= 2);
    }
    Ok(session.finish().await)
}
