//! Kubernetes: the Monkeytown runbook's "Event Stream Failure" procedure (seed 004, 2.1) as one
//! call, [`RecoverDeployment`]: check health and `kubectl logs -l app=event-stream --tail=100 |
//! grep ERROR`; verify the Redis credentials in the Secret; if OOM, more memory; if down,
//! restart; if it persists, `kubectl rollout undo deployment/event-stream`; then `kubectl
//! rollout status`.
//!
//! ```sh
//! cargo run -p ops-examples --example kubernetes_rollback                       # rehearsal
//! cargo run -p ops-examples --example kubernetes_rollback -- --fault crash-loop
//! cargo run -p ops-examples --example kubernetes_rollback -- --fault oom
//! cargo run -p ops-examples --example kubernetes_rollback -- --fault image-pull
//! cargo run -p ops-examples --example kubernetes_rollback -- --fault crash-loop --dry-run
//! cargo run -p ops-examples --example kubernetes_rollback -- --preset monkeytown  # seed 004's numbers
//! cargo run -p ops-examples --example kubernetes_rollback -- --live --deployment event-stream \
//!     --namespace prod --secret redis/password     # kubeconfig's current context
//! ```
//!
//! A rehearsal runs against the Kubernetes simulator: a Deployment of three pods, and with
//! `--fault` a release that fails the way its name says rolled out over it.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use ops_core::contracts::{DeployRequest, Deployer, InitialTraffic};
use ops_core::runbooks::Procedure;
use ops_examples::providers::kube_client;
use ops_examples::{Common, Failure, Session};
use ops_kubernetes::recover::{Recovery, Remedy};
use ops_kubernetes::sim::KubeSim;
use ops_kubernetes::{KubeDeployment, KubeLogs, KubeSecrets, RecoverConfig, RecoverDeployment};

/// diagnose a failing Deployment and take the remedy it needs: more memory, a restart, a rollback
#[derive(Parser)]
#[command(name = "kubernetes_rollback")]
struct Flags {
    #[command(flatten)]
    common: Common,
    /// the Deployment
    #[arg(long, default_value = "event-stream")]
    deployment: String,
    /// the namespace (default: the kubeconfig context's)
    #[arg(long)]
    namespace: Option<String>,
    /// the pods' label selector (default: app=DEPLOYMENT)
    #[arg(long)]
    selector: Option<String>,
    /// a Secret key that must hold a value, SECRET/KEY (repeatable; rehearsal: redis/password)
    #[arg(long = "secret", value_name = "SECRET/KEY")]
    secrets: Vec<String>,
    /// the runbook config, TOML (defaults, or --preset's `[providers.kubernetes.recover]`)
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// inject a named failure into the rehearsal
    #[arg(long, value_enum, value_name = "NAME")]
    fault: Option<Fault>,
}

/// The failures a rehearsal can inject: a new release whose pods…
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Fault {
    /// …exit at once (CrashLoopBackOff): a restart does not help, the rollback does
    #[value(name = "crash-loop")]
    CrashLoop,
    /// …are killed for memory (OOMKilled): more memory helps, no rollback
    #[value(name = "oom")]
    Oom,
    /// …cannot pull their image (ImagePullBackOff): the rollback helps
    #[value(name = "image-pull")]
    ImagePull,
}

const IMAGE: &str = "registry.local/event-stream";

#[tokio::main]
async fn main() -> ExitCode {
    ops_examples::run(example).await
}

async fn example(mut session: Session, flags: Flags) -> Result<ExitCode, Failure> {
    ops_kubernetes::client::check_name("flags", "deployment", &flags.deployment)
        .map_err(|e| Failure::usage(format!("--deployment: {e}")))?;
    let sim = if session.rehearsal() {
        let sim = KubeSim::builder().clock(session.clock()).start().await;
        sim.add_deployment(&flags.deployment, &format!("{IMAGE}:1.0.0"), 3);
        sim.put_secret(
            "redis",
            &[
                ("password", "rehearsal-redis-password"),
                ("username", "default"),
                ("url", "redis://default:rehearsal-redis-password@redis:6379"),
            ],
        );
        Some(sim)
    } else {
        None
    };
    let client = kube_client(&session, sim.as_ref(), flags.namespace.as_deref()).await?;
    let deployment = KubeDeployment::new(client.clone(), &flags.deployment)?;
    if let (Some(_), Some(fault)) = (&sim, flags.fault) {
        // The incident: a release that fails as the fault says, rolled out over the stable one.
        let tag = match fault {
            Fault::CrashLoop => "1.1.0-crash-loop",
            Fault::Oom => "1.1.0-oom",
            Fault::ImagePull => "1.1.0-image-pull",
        };
        let request = DeployRequest {
            traffic: InitialTraffic::All,
            deadline: Duration::from_secs(300),
            ..DeployRequest::new(format!("{IMAGE}:{tag}"))
        };
        if let Err(e) = deployment.deploy(&request).await {
            println!("incident: {e}");
        }
    }
    let selector = flags
        .selector
        .clone()
        .unwrap_or_else(|| format!("app={}", flags.deployment));
    let mut config: RecoverConfig = session.config(flags.config.as_deref())?;
    if !flags.secrets.is_empty() {
        config.required_secrets = flags.secrets.clone();
    } else if sim.is_some() && config.required_secrets.is_empty() {
        config.required_secrets.push("redis/password".into());
    }
    let recover = RecoverDeployment::new(
        deployment.clone(),
        KubeLogs::new(client.clone(), &selector)?,
        config,
    )
    .secrets(KubeSecrets::new(client));
    let runbook = recover.runbook()?;
    let Some(report) = session.run(&runbook).await else {
        return Ok(session.finish().await);
    };
    let summary: Option<Recovery> = recover.summary(&report);
    if let Some(r) = &summary {
        let d = &r.diagnosis;
        println!(
            "diagnosis: {:?}, {} ERROR lines{}{}",
            d.status,
            d.error_lines,
            if d.oom_killed { ", OOM-killed" } else { "" },
            if d.down { ", down" } else { "" }
        );
        for (step, remedy) in &r.remedies {
            println!("  {step}: {remedy:?}");
        }
    }
    if session.rehearsal() && !flags.common.dry_run {
        let remedy = |step: &str| {
            summary
                .as_ref()
                .and_then(|r| r.remedies.iter().find(|(s, _)| s == step))
                .map(|(_, r)| r.clone())
        };
        let serving = deployment
            .current()
            .await?
            .primary_release()
            .map(str::to_owned);
        let version = deployment
            .releases()
            .await?
            .into_iter()
            .find(|r| Some(&r.id) == serving.as_ref())
            .map(|r| r.version)
            .unwrap_or_default();
        let status = deployment.rollout_status().await?;
        session.check(
            "the rollout is complete",
            status.rollout == ops_kubernetes::rollout::Rollout::Complete,
        );
        match flags.fault {
            None => session.check(
                "a healthy Deployment is left alone",
                summary
                    .as_ref()
                    .is_some_and(|r| r.remedies.iter().all(|(_, x)| *x == Remedy::NotNeeded)),
            ),
            Some(Fault::Oom) => {
                session.check(
                    "the memory limit was raised",
                    matches!(remedy("more-memory"), Some(Remedy::Done(_))),
                );
                session.check(
                    "the release stays (no rollback)",
                    version.ends_with("1.1.0-oom"),
                );
            }
            Some(_) => {
                session.check(
                    "the restart did not help",
                    matches!(remedy("restart"), Some(Remedy::Failed(_))),
                );
                session.check("rolled back to 1.0.0", version.ends_with(":1.0.0"));
            }
        }
    }
    Ok(session.finish().await)
}
