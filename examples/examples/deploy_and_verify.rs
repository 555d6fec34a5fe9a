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

use std::process::ExitCode;
use std::sync::Arc;

use ops_core::contracts::{Deployer, Release};
use ops_core::runbooks::Procedure;
use ops_core::runbooks::{DeployAndVerify, DeployVerifyConfig};
use ops_examples::providers::{PROJECT, REGION, gcp_client, gcp_sim, slack};
use ops_examples::{Opt, Session, Spec};
use ops_gcp::sim::Behaviour;
use ops_gcp::{CloudLogging, CloudRun};

const SPEC: Spec = Spec {
    name: "deploy_and_verify",
    about: "deploy a new image, probe it, watch its error logs, roll back on any failure",
    options: &[
        PROJECT,
        REGION,
        Opt::value("service", "OPS_SERVICE", "the Cloud Run service", "api"),
        Opt::value(
            "image",
            "OPS_IMAGE",
            "the image to deploy",
            "registry.example/api:1.1",
        ),
        Opt::config(),
    ],
    faults: &[
        (
            "errors-after-deploy",
            "the new revision starts but fails 5 % of requests: its ERROR logs trigger the rollback",
        ),
        (
            "crash-on-start",
            "the new container never starts: the deploy fails and traffic never moves",
        ),
    ],
};

#[tokio::main]
async fn main() -> ExitCode {
    let mut session = Session::start(SPEC).await;
    let service = session.value("service");
    let image = session.value("image");
    let config: DeployVerifyConfig = session.config();

    let sim = gcp_sim(&session).await;
    if let Some(sim) = &sim {
        sim.create_service(&service, "registry.example/api:1.0");
        if session.cli.fault_is("errors-after-deploy") {
            sim.set_behaviour(&image, Behaviour::failing(0.05));
        } else if session.cli.fault_is("crash-on-start") {
            sim.set_behaviour(&image, Behaviour::crashing());
        } else {
            // A clean release: not one failed request (the runbook tolerates no ERROR entry).
            sim.set_behaviour(&image, Behaviour::failing(0.0));
        }
    }
    let (notifier, slack_sim) = slack(&session).await;
    let client = gcp_client(&session, sim.as_ref()).await;
    let run = Arc::new(session.or_exit(CloudRun::new(client.clone(), &service)));
    let logs = Arc::new(session.or_exit(CloudLogging::new(client, &service)));
    let before = session.or_exit(run.current().await);

    let deploy = DeployAndVerify::new(&image, run.clone(), config)
        .probe(Arc::new(run.health_probe()))
        .logs(logs)
        .notifier(notifier);
    let runbook = session.or_exit(deploy.runbook());
    let Some(report) = session.run(&runbook).await else {
        return session.finish().await;
    };

    if session.rehearsal() && !session.cli.dry_run {
        let now = session.or_exit(run.current().await);
        if session.cli.fault.is_some() {
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
    session.finish().await
}
