//! Emergency shutdown of a Cloud Run service: record its state, stop it serving and pin its
//! instances at zero (a daemon kept up by minimum instances stops too), confirm from the
//! instance-count metric that nothing runs, disable the exposed Secret Manager versions, capture
//! the last hour's error logs as evidence, page on-call through PagerDuty, and write the
//! incident report.
//!
//! ```sh
//! cargo run -p ops-examples --example emergency_shutdown                       # rehearsal
//! cargo run -p ops-examples --example emergency_shutdown -- --dry-run          # the plan only
//! PAGERDUTY_ROUTING_KEY=… cargo run -p ops-examples --example emergency_shutdown -- --live \
//!     --project P --region R --service api --reason "API key leaked in a public gist" \
//!     --disable stripe-key:3
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use std::sync::Arc;
use std::time::Duration;

use ops_core::contracts::{Deployer, Metric, ScaleSpec, SecretStore, VersionState};
use ops_core::runbooks::Procedure;
use ops_core::runbooks::{EmergencyShutdown, ShutdownConfig};
use ops_core::sim::Simulator;
use ops_examples::providers::{gcp_client, gcp_sim, pagerduty};
use ops_examples::{Common, Failure, GcpArgs, Session};
use ops_gcp::monitoring::INSTANCE_COUNT;
use ops_gcp::sim::{Behaviour, Fault as SimFault};
use ops_gcp::{CloudLogging, CloudMonitoring, CloudRun, SecretManager};

/// stop a service at once, disable exposed secrets, keep the evidence, page on-call
#[derive(Parser)]
#[command(name = "emergency_shutdown")]
struct Flags {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    gcp: GcpArgs,
    /// the Cloud Run service to stop
    #[arg(long, env = "OPS_SERVICE", default_value = "api")]
    service: String,
    /// why: it goes into the page and the report
    #[arg(
        long,
        env = "OPS_REASON",
        default_value = "API key leaked in a public gist"
    )]
    reason: String,
    /// exposed secret versions, SECRET:VERSION[,SECRET:VERSION…]
    #[arg(
        long,
        env = "OPS_DISABLE",
        default_value = "stripe-key:1",
        value_delimiter = ',',
        value_parser = secret_version
    )]
    disable: Vec<(String, String)>,
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
    /// Secret Manager refuses to disable the version (403): the service still stops, on-call is paged, and the run fails naming the version left enabled
    #[value(name = "disable-denied")]
    DisableDenied,
}

/// `SECRET:VERSION`.
fn secret_version(item: &str) -> Result<(String, String), String> {
    match item.split_once(':') {
        Some((secret, version)) if !secret.is_empty() && !version.is_empty() => {
            Ok((secret.to_string(), version.to_string()))
        }
        _ => Err("give SECRET:VERSION".into()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    ops_examples::run(example).await
}

async fn example(mut session: Session, flags: Flags) -> Result<ExitCode, Failure> {
    let (service, reason) = (flags.service.clone(), flags.reason.clone());
    let exposed = flags.disable.clone();
    let config: ShutdownConfig = session.config(flags.config.as_deref())?;

    let sim = gcp_sim(&session, &flags.gcp).await;
    if let Some(sim) = &sim {
        // A service in trouble: the running image fails a fifth of its requests.
        sim.create_service(&service, "registry.example/api:1.0");
        sim.set_behaviour("registry.example/api:1.0", Behaviour::failing(0.2));
        sim.put_secret("stripe-key", b"sk_live_exposed");
        if flags.fault == Some(Fault::DisableDenied) {
            let denied = SimFault::Status {
                status: 403,
                retry_after: None,
            };
            sim.inject(Some("POST"), ":disable", 5, denied);
        }
        // Ten minutes of failing traffic before someone pulls the plug.
        session.clock().sleep(Duration::from_secs(600)).await;
    }
    let (pager, pd_sim) = pagerduty(&session, &service).await?;
    let client = gcp_client(&session, &flags.gcp, sim.as_ref()).await?;
    let run = Arc::new(CloudRun::new(client.clone(), &service)?);
    let secrets = Arc::new(SecretManager::new(client.clone()));
    let logs = Arc::new(CloudLogging::new(client.clone(), &service)?);
    let metrics = Arc::new(CloudMonitoring::new(client, &service)?);
    if sim.is_some() {
        // Kept up by a minimum instance, like seed 000's daemon.
        run.scale(&ScaleSpec {
            min_instances: Some(1),
            ..ScaleSpec::default()
        })
        .await?;
    }

    let instances = Metric::Named {
        name: INSTANCE_COUNT.into(),
    };
    let shutdown = EmergencyShutdown::new(&reason, run.clone(), config)
        .confirm_stopped(metrics, instances)
        .disable_secrets(secrets.clone(), exposed.clone())
        .logs(logs)
        .notifier(pager);
    let runbook = shutdown.runbook()?;
    let Some(report) = session.run(&runbook).await else {
        return Ok(session.finish().await);
    };

    if let Some(md) = report.output::<String>("incident-report") {
        let path = flags
            .common
            .journal_dir
            .join(format!("{}-incident.md", report.run_id));
        std::fs::write(&path, &md)?;
        if !flags.common.json {
            println!("{md}");
        }
        eprintln!("incident report: {}", path.display());
    }

    if session.rehearsal() && !flags.common.dry_run {
        let state = run.current().await?;
        session.check("the service serves nothing", !state.serving);
        let confirmed = report.output::<ops_core::runbooks::StopConfirmation>("confirm-stopped");
        session.check(
            "the instance count confirms nothing runs",
            matches!(
                confirmed,
                Some(ops_core::runbooks::StopConfirmation::Stopped { .. })
            ),
        );
        let mut all_disabled = true;
        for (secret, version) in &exposed {
            let versions = secrets.list_versions(secret).await?;
            all_disabled &= versions
                .iter()
                .any(|v| &v.id == version && v.state == VersionState::Disabled);
        }
        if flags.fault.is_some() {
            let named = report
                .error
                .as_ref()
                .is_some_and(|e| e.message.contains("stripe-key@1"));
            session.check(
                "the run fails naming the version left enabled",
                !all_disabled && named,
            );
        } else {
            session.check("the exposed secret versions are disabled", all_disabled);
        }
        let logs_kept = report
            .evidence
            .iter()
            .any(|e| e.key == "recent logs" && e.value.as_array().is_some_and(|a| !a.is_empty()));
        session.check("the error logs are kept as evidence", logs_kept);
        let paged = pd_sim.is_some_and(|pd| pd.alerts().iter().any(|a| a.status == "triggered"));
        session.check("on-call was paged", paged);
        let journal = std::fs::read_to_string(session.journal_path()).unwrap_or_default();
        let logs = session.logs();
        session.check(
            "the exposed value is in neither the journal, the report nor the logs",
            [journal, report.to_json(), logs]
                .iter()
                .all(|text| !text.contains("sk_live_exposed")),
        );
    }
    Ok(session.finish().await)
}
