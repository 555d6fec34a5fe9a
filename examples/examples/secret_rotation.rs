//! Secret rotation: a new random value as a new Secret Manager version, validated, the Cloud
//! Run service redeployed so it reads it, a 24-hour grace period, then the old version
//! disabled. `--github` rotates a GitHub Actions repository secret instead (sealed to the
//! repository's key) and redeploys through the deploy workflow.
//!
//! ```sh
//! cargo run -p ops-examples --example secret_rotation                      # rehearsal
//! cargo run -p ops-examples --example secret_rotation -- --fault validation-fails
//! cargo run -p ops-examples --example secret_rotation -- --github
//! cargo run -p ops-examples --example secret_rotation -- --live --project P --region R \
//!     --secret db-password --service api
//! ```
//!
//! The validator here only checks the value's shape. Replace it with what proves the value
//! works for you: a login to the database with it, an API call.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use ops_core::contracts::{Deployer, SecretStore, SecretValue, VersionState};
use ops_core::runbooks::Procedure;
use ops_core::runbooks::{GenerateSecret, RotateConfig, RotateSecret, ValidateSecret};
use ops_core::{Error, ErrorKind};
use ops_examples::providers::{gcp_client, gcp_sim, github_client, github_sim};
use ops_examples::{Common, Failure, GcpArgs, Session};
use ops_gcp::{CloudRun, SecretManager};
use ops_github::sim::{SIM_ENVIRONMENT, SIM_REPO, SIM_WORKFLOW};
use ops_github::{ActionsSecrets, WorkflowDeployer, WorkflowInputs};
use ring::rand::SecureRandom;

/// rotate a secret, redeploy its consumer, retire the old value after a grace period
#[derive(Parser)]
#[command(name = "secret_rotation")]
struct Flags {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    gcp: GcpArgs,
    /// the secret to rotate (rehearsal: db-password, with --github DB_PASSWORD)
    #[arg(long, env = "OPS_SECRET")]
    secret: Option<String>,
    /// the Cloud Run service using it
    #[arg(long, env = "OPS_SERVICE", default_value = "api")]
    service: String,
    /// rotate a GitHub Actions repository secret instead (Google Cloud is left alone)
    #[arg(long, conflicts_with_all = ["project", "region", "service"])]
    github: bool,
    // The flags of `--github` have their rehearsal values in code: without `--github` they
    // are not needed, even with `--live`.
    /// the GitHub repository, OWNER/NAME (with --github)
    #[arg(long, env = "GITHUB_REPOSITORY", requires = "github")]
    repo: Option<String>,
    /// the deploy workflow (with --github)
    #[arg(long, env = "OPS_WORKFLOW", requires = "github")]
    workflow: Option<String>,
    /// the deployment environment (with --github)
    #[arg(long, env = "OPS_ENVIRONMENT", requires = "github")]
    environment: Option<String>,
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
    /// the new value is refused: it is disabled again and nothing is redeployed
    #[value(name = "validation-fails")]
    ValidationFails,
}

/// 32 random bytes from the OS, base64url: 43 characters. A rehearsal keeps what it made in
/// `made`, to prove afterwards that no value reached the journal or the report.
fn generator(made: Option<Arc<Mutex<Vec<String>>>>) -> GenerateSecret {
    Arc::new(move || {
        let made = made.clone();
        Box::pin(async move {
            let mut bytes = [0u8; 32];
            ring::rand::SystemRandom::new()
                .fill(&mut bytes)
                .map_err(|_| {
                    Error::new(
                        "example",
                        "generate",
                        ErrorKind::Unavailable { retry_after: None },
                    )
                })?;
            let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            if let Some(made) = made {
                made.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(value.clone());
            }
            Ok(SecretValue::from(value))
        })
    })
}

/// Checks the value's shape; `refuse` stands for a database that rejects it.
fn validator(refuse: bool) -> ValidateSecret {
    Arc::new(move |value: SecretValue| {
        Box::pin(async move {
            if refuse {
                return Err(Error::new("example", "validate", ErrorKind::Unauthorized));
            }
            if value.expose_bytes().len() < 32 {
                return Err(Error::invalid_input(
                    "example",
                    "validate",
                    "value",
                    "shorter than 32 characters",
                ));
            }
            Ok(())
        })
    })
}

/// Each release's identity (a GitHub redeploy keeps the version but is a new deployment).
async fn releases(d: &dyn Deployer) -> Result<BTreeSet<(String, Option<String>)>, Failure> {
    let releases = d.releases().await?;
    Ok(releases
        .into_iter()
        .map(|r| (r.id, r.labels.get("deployment_id").cloned()))
        .collect())
}

#[tokio::main]
async fn main() -> ExitCode {
    ops_examples::run(example).await
}

async fn example(mut session: Session, flags: Flags) -> Result<ExitCode, Failure> {
    let github = flags.github;
    // GitHub secret names are letters, digits and underscores.
    let rehearsal_secret = if github { "DB_PASSWORD" } else { "db-password" };
    let secret = session.or_rehearsal(flags.secret, "--secret or OPS_SECRET", rehearsal_secret)?;
    let refuse = flags.fault == Some(Fault::ValidationFails);
    let config: RotateConfig = session.config(flags.config.as_deref())?;

    let (store, consumer, _gcp, _github): (Arc<dyn SecretStore>, Arc<dyn Deployer>, _, _) =
        if github {
            let sim = github_sim(&session).await;
            let client = github_client(&session, sim.as_ref())?;
            let repo = session.or_rehearsal(flags.repo, "--repo or GITHUB_REPOSITORY", SIM_REPO)?;
            let workflow =
                session.or_rehearsal(flags.workflow, "--workflow or OPS_WORKFLOW", SIM_WORKFLOW)?;
            let environment = session.or_rehearsal(
                flags.environment,
                "--environment or OPS_ENVIRONMENT",
                SIM_ENVIRONMENT,
            )?;
            let store = ActionsSecrets::repository(client.clone(), &repo)?;
            let deployer = WorkflowDeployer::new(client, &repo, workflow, environment)?
                .inputs(WorkflowInputs {
                    promote: Some("promote".into()),
                    ..WorkflowInputs::default()
                })
                .with_polling(Duration::from_secs(15));
            if sim.is_some() {
                store.add_version(&secret, &"the-old-value".into()).await?;
            }
            (Arc::new(store), Arc::new(deployer), None, sim)
        } else {
            let sim = gcp_sim(&session, &flags.gcp).await;
            if let Some(sim) = &sim {
                sim.create_service(&flags.service, "registry.example/api:1.0");
                sim.put_secret(&secret, b"the-old-value");
            }
            let client = gcp_client(&session, &flags.gcp, sim.as_ref()).await?;
            let run = CloudRun::new(client.clone(), &flags.service)?;
            (
                Arc::new(SecretManager::new(client)),
                Arc::new(run),
                sim,
                None,
            )
        };

    let made = session.rehearsal().then(Arc::default);
    let mut rotate = RotateSecret::new(store.clone(), &secret, generator(made.clone()), config)
        .consumer(consumer.clone());
    if store.capabilities().read {
        rotate = rotate.validate(validator(refuse));
    } else if refuse {
        return Err(Failure::usage(
            "validation-fails needs a store that can read values back: leave out --github",
        ));
    }
    let before = releases(consumer.as_ref()).await?;
    let runbook = rotate.runbook()?;
    let Some(report) = session.run(&runbook).await else {
        return Ok(session.finish().await);
    };

    if session.rehearsal() && !flags.common.dry_run {
        let versions = store.list_versions(&secret).await?;
        let now = releases(consumer.as_ref()).await?;
        let enabled = versions
            .iter()
            .filter(|v| v.state == VersionState::Enabled)
            .count();
        if refuse {
            session.check(
                "the refused version is disabled, the old one still enabled",
                enabled == 1
                    && versions.len() == 2
                    && versions.iter().any(|v| v.state == VersionState::Disabled),
            );
            session.check("the service was not redeployed", now == before);
        } else {
            session.check("exactly one version is enabled", enabled == 1);
            session.check(
                "the service was redeployed",
                now.difference(&before).count() == 1,
            );
            let journal = std::fs::read_to_string(session.journal_path()).unwrap_or_default();
            let (report, made) = (report.to_json(), made.unwrap_or_default());
            let made = made.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let logs = session.logs();
            session.check(
                "no value reached the journal, the report or the logs",
                made.len() == 1
                    && ["the-old-value", made[0].as_str()]
                        .iter()
                        .all(|v| !journal.contains(v) && !report.contains(v) && !logs.contains(v)),
            );
        }
    }
    Ok(session.finish().await)
}
