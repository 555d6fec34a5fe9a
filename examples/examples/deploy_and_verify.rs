//! Deploy and verify on Cloud Run: deploy the new image with all traffic, wait 30 s, probe the
//! service, watch the new revision's ERROR logs for 5 minutes, and on any failure put all
//! traffic back on the previous revision. Slack hears the start and the outcome.
//!
//! A configuration change is the same deploy: `--set-env NAME=VALUE`, `--set-secret
//! NAME=SECRET[:VERSION]` (a Secret Manager reference; a secret is never plain env) and
//! `--remove-env NAME` make a new revision of the serving image with those settings, verified
//! and rolled back like an image change.
//!
//! ```sh
//! cargo run -p ops-examples --example deploy_and_verify                         # rehearsal
//! cargo run -p ops-examples --example deploy_and_verify -- --fault errors-after-deploy
//! cargo run -p ops-examples --example deploy_and_verify -- --set-env LOG_LEVEL=debug \
//!     --set-secret DB_PASSWORD=db-password:latest
//! cargo run -p ops-examples --example deploy_and_verify -- --fault broken-setting
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
use ops_gcp::run::env::{EnvChange, EnvValue};
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
    /// change a setting instead of the image: NAME=VALUE (repeatable)
    #[arg(long, value_name = "NAME=VALUE", conflicts_with = "image")]
    set_env: Vec<String>,
    /// set a variable to a Secret Manager secret: NAME=SECRET[:VERSION] (repeatable; version
    /// `latest` when not given)
    #[arg(long, value_name = "NAME=SECRET[:VERSION]", conflicts_with = "image")]
    set_secret: Vec<String>,
    /// remove a variable (repeatable)
    #[arg(long, value_name = "NAME", conflicts_with = "image")]
    remove_env: Vec<String>,
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
    /// a configuration change sets LOG_LEVEL=verbose, which the service cannot start with: the
    /// deploy fails and the revision with the old settings keeps serving
    #[value(name = "broken-setting")]
    BrokenSetting,
}

/// The configuration change the flags ask for, if any.
fn env_change(flags: &Flags) -> Result<Option<EnvChange>, Failure> {
    let mut change = EnvChange::default();
    for pair in &flags.set_env {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| Failure::usage(format!("--set-env {pair}: give NAME=VALUE")))?;
        change = change.set(name, value);
    }
    for pair in &flags.set_secret {
        let (name, reference) = pair.split_once('=').ok_or_else(|| {
            Failure::usage(format!("--set-secret {pair}: give NAME=SECRET[:VERSION]"))
        })?;
        let (secret, version) = reference.split_once(':').unwrap_or((reference, "latest"));
        change = change.secret(name, secret, version);
    }
    for name in &flags.remove_env {
        change = change.remove(name);
    }
    if flags.fault == Some(Fault::BrokenSetting) {
        change = change.set("LOG_LEVEL", "verbose");
    }
    if change.is_empty() {
        return Ok(None);
    }
    change
        .validate()
        .map_err(|e| Failure::usage(format!("the configuration change: {e}")))?;
    Ok(Some(change))
}

#[tokio::main]
async fn main() -> ExitCode {
    ops_examples::run(example).await
}

async fn example(mut session: Session, flags: Flags) -> Result<ExitCode, Failure> {
    let service = flags.service.clone();
    let change = env_change(&flags)?;
    let mut image = flags.image.clone();
    let config: DeployVerifyConfig = session.config(flags.config.as_deref())?;

    let sim = gcp_sim(&session, &flags.gcp).await;
    if let Some(sim) = &sim {
        sim.create_service(&service, "registry.example/api:1.0");
        if flags.fault == Some(Fault::ErrorsAfterDeploy) {
            sim.set_behaviour(&image, Behaviour::failing(0.05));
        } else if flags.fault == Some(Fault::CrashOnStart) {
            sim.set_behaviour(&image, Behaviour::crashing());
        } else if flags.fault == Some(Fault::BrokenSetting) {
            sim.crash_when_env("LOG_LEVEL", "verbose");
        } else {
            // A clean release: not one failed request (the runbook tolerates no ERROR entry).
            sim.set_behaviour(&image, Behaviour::failing(0.0));
        }
    }
    let (notifier, slack_sim) = slack(&session).await?;
    let client = gcp_client(&session, &flags.gcp, sim.as_ref()).await?;
    let mut run = CloudRun::new(client.clone(), &service)?;
    if let Some(change) = &change {
        if let Some(sim) = &sim {
            sim.set_behaviour("registry.example/api:1.0", Behaviour::failing(0.0));
            // The secrets the change refers to exist in the rehearsal's Secret Manager.
            for value in change.set.values() {
                if let EnvValue::Secret { secret, .. } = value {
                    sim.put_secret(secret, b"rehearsal-secret-value");
                }
            }
        }
        // The serving image, with new settings.
        image = run.current_image().await?;
        eprintln!("configuration change of {service} on {image}");
        run = run.with_env_change(change.clone())?;
    }
    let run = Arc::new(run);
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
            if let Some(change) = &change {
                let env = run.service().await?.template["containers"][0]["env"].clone();
                session.check(
                    "the serving template has the new settings",
                    change
                        .set
                        .keys()
                        .all(|k| env.to_string().contains(&format!("\"{k}\"")))
                        && !env.to_string().contains("rehearsal-secret-value"),
                );
            }
        }
        let posts = slack_sim.map(|s| s.webhook_posts().len()).unwrap_or(0);
        session.check("Slack heard the start and the outcome", posts >= 2);
    }
    Ok(session.finish().await)
}
