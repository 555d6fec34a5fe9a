//! Canary rollout on Cloud Run: 1 % → 5 % → 25 % → 100 % with bakes of 15, 30 and 60 minutes.
//! Every minute of a bake, the new revision's requests, errors and latencies from Cloud
//! Monitoring are judged against the stable revision's (the sequential canary judge), and all
//! traffic goes back on the stable revision at the look that finds a regression.
//! `--blue-green` runs 0 % → 10 % → 100 % instead.
//!
//! ```sh
//! cargo run -p ops-examples --example canary_rollout                            # rehearsal
//! cargo run -p ops-examples --example canary_rollout -- --fault error-rate-at-25
//! cargo run -p ops-examples --example canary_rollout -- --live --project P --region R \
//!     --service api --image europe-docker.pkg.dev/P/app/api:1.1
//! ```
//!
//! A rehearsal runs against the Google Cloud simulator on a clock 600 times faster than real
//! time, so the 105 minutes of bakes take about ten seconds.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use std::sync::Arc;

use ops_core::contracts::Deployer;
use ops_core::runbooks::Procedure;
use ops_core::runbooks::{
    Analysis, JudgedBy, Rollout, RolloutConfig, RolloutSummary, Strategy, Verdict,
};
use ops_examples::providers::{gcp_client, gcp_sim};
use ops_examples::{Common, Failure, GcpArgs, Session};
use ops_gcp::sim::Behaviour;
use ops_gcp::{CloudMonitoring, CloudRun};

/// roll a new image out in stages, judged by Cloud Monitoring, rolled back on failure
#[derive(Parser)]
#[command(name = "canary_rollout")]
struct Flags {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    gcp: GcpArgs,
    /// the Cloud Run service
    #[arg(long, env = "OPS_SERVICE", default_value = "api")]
    service: String,
    /// the image to roll out
    #[arg(long, env = "OPS_IMAGE", default_value = "registry.example/api:1.1")]
    image: String,
    /// blue-green (0 → 10 → 100 %) instead of canary stages
    #[arg(long)]
    blue_green: bool,
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
    /// the new revision fails 8 % of requests once it takes 25 % of traffic
    #[value(name = "error-rate-at-25")]
    ErrorRateAt25,
}

/// What the stable revision runs in a rehearsal.
const STABLE_IMAGE: &str = "registry.example/api:1.0";

#[tokio::main]
async fn main() -> ExitCode {
    ops_examples::run(example).await
}

async fn example(mut session: Session, flags: Flags) -> Result<ExitCode, Failure> {
    let service = flags.service.clone();
    let image = flags.image.clone();
    let mut config: RolloutConfig = session.config(flags.config.as_deref())?;
    if flags.blue_green {
        config.strategy = Strategy::BlueGreen;
        config.stages = None;
    }

    let sim = gcp_sim(&session, &flags.gcp).await;
    if let Some(sim) = &sim {
        sim.create_service(&service, STABLE_IMAGE);
        if flags.fault == Some(Fault::ErrorRateAt25) {
            // A bug that hides under light load: fine at 1 % and 5 %, failing at 25 %.
            sim.set_behaviour(&image, Behaviour::failing_from_share(25, 0.08));
        }
    }
    let client = gcp_client(&session, &flags.gcp, sim.as_ref()).await?;
    let run = Arc::new(CloudRun::new(client.clone(), &service)?);
    let metrics = Arc::new(CloudMonitoring::new(client, &service)?);
    let stable = run.current().await?;

    let rollout = Rollout::new(&image, run.clone(), metrics, config);
    let runbook = rollout.runbook()?;
    let Some(report) = session.run(&runbook).await else {
        return Ok(session.finish().await);
    };

    // How each stage was judged, and why the rollout went on or stopped.
    let summary = RolloutSummary::from_report(&report);
    if !flags.common.json && !flags.common.dry_run {
        for line in summary.lines() {
            eprintln!("  {line}");
        }
    }

    if session.rehearsal() && !flags.common.dry_run {
        let now = run.current().await?;
        let new_release = report
            .output::<ops_core::contracts::Release>("deploy")
            .map(|r| r.id);
        if flags.fault.is_some() {
            // The watched bake failed at a look; every look is in the evidence.
            let failed_at_25 = report.evidence.iter().any(|e| {
                e.step == "bake-25"
                    && e.value["decision"] == "fail"
                    && e.value["why"]
                        .as_str()
                        .is_some_and(|w| w.starts_with("errors"))
            });
            session.check(
                "the judge aborted the 25 % bake on the errors",
                failed_at_25,
            );
            let bake = report.steps.iter().find(|s| s.name == "bake-25");
            let took = bake.and_then(|s| s.duration).unwrap_or(Duration::MAX);
            let (_, failed) = match (&sim, &new_release) {
                (Some(sim), Some(id)) => sim.served_by(id),
                _ => (0.0, f64::INFINITY),
            };
            eprintln!(
                "  caught {}s into the 25 % stage; {failed:.0} failed requests reached users",
                took.as_secs()
            );
            session.check(
                "caught within 3 minutes of the 25 % stage",
                took <= Duration::from_secs(180),
            );
            session.check("at most 100 failed requests reached users", failed <= 100.0);
            session.check(
                "the analyses at 1 % and 5 % passed",
                ["analyze-1", "analyze-5"].iter().all(|s| {
                    report
                        .output::<Analysis>(s)
                        .is_some_and(|a| a.verdict == Verdict::Pass)
                }),
            );
            session.check(
                "all traffic is back on the stable revision",
                now.primary_release() == stable.primary_release()
                    && now
                        .traffic
                        .iter()
                        .all(|t| t.percent == 0 || t.percent == 100),
            );
        } else {
            session.check(
                "the judge passed every stage, canary against stable",
                summary.stages.iter().all(|s| {
                    s.judged_by == JudgedBy::Sequential && s.verdict == Some(Verdict::Pass)
                }) && !summary.stages.is_empty(),
            );
            session.check(
                "the new revision takes all traffic",
                new_release.is_some() && now.primary_release() == new_release.as_deref(),
            );
        }
    }
    Ok(session.finish().await)
}
