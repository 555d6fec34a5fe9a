//! GitHub Actions as the control plane of seed 004: every failed workflow run of the last hour
//! is one Slack alert with its failing jobs and the end of their logs; when a writer workflow
//! (the scheduled agents) failed on a corrupt database, the writers are stopped — their
//! workflows disabled, so no schedule starts them — until `--resume-writers` enables them again.
//!
//! ```sh
//! cargo run -p ops-examples --example github_actions                         # rehearsal
//! cargo run -p ops-examples --example github_actions -- --fault workflow-fails
//! cargo run -p ops-examples --example github_actions -- --resume-writers
//! GITHUB_TOKEN=… SLACK_WEBHOOK_URL=… cargo run -p ops-examples --example github_actions -- \
//!     --live --repo acme/app --writers agents.yml
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use ops_core::runbooks::Procedure;
use ops_examples::providers::{github_client, github_sim, slack};
use ops_examples::{Common, Failure, Session};
use ops_github::{
    FailedRun, FailureAlertsConfig, SwitchWorkflows, WorkflowFailureAlerts, Workflows,
};

/// alert on failed workflow runs with their log tails; stop the writer workflows on database
/// corruption, and resume them
#[derive(Parser)]
#[command(name = "github_actions")]
struct Flags {
    #[command(flatten)]
    common: Common,
    /// the GitHub repository, OWNER/NAME
    #[arg(long, env = "GITHUB_REPOSITORY", default_value = "acme/app")]
    repo: String,
    /// the workflows that write to the database, comma-separated (stopped on corruption)
    #[arg(long, env = "OPS_WRITER_WORKFLOWS", default_value = "agents.yml")]
    writers: String,
    /// how far back to look for failed runs [default: 1h]
    #[arg(long, value_parser = ops_examples::args::duration)]
    window: Option<Duration>,
    /// log lines that mean the database is corrupt, `|`-separated [default:
    /// SQLITE_CORRUPT|database disk image is malformed|invalid page header]
    #[arg(long)]
    corruption: Option<String>,
    /// enable the writer workflows again (after the database is repaired), and nothing else
    #[arg(long)]
    resume_writers: bool,
    /// inject a named failure into the rehearsal
    #[arg(long, value_enum, value_name = "NAME")]
    fault: Option<Fault>,
}

/// The failures a rehearsal can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Fault {
    /// the scheduled agents run fails on a corrupt database: Slack hears it with the log's
    /// end, and the writers are stopped
    #[value(name = "workflow-fails")]
    WorkflowFails,
}

#[tokio::main]
async fn main() -> ExitCode {
    ops_examples::run(example).await
}

/// Whether a failed run's logs show a corrupt database.
fn shows_corruption(failed: &FailedRun, patterns: &[&str]) -> bool {
    failed.jobs.iter().any(|j| {
        j.log_tail
            .iter()
            .any(|line| patterns.iter().any(|p| line.contains(p)))
    })
}

async fn example(mut session: Session, flags: Flags) -> Result<ExitCode, Failure> {
    let writers: Vec<String> = flags
        .writers
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    if writers.is_empty() {
        return Err(Failure::usage("--writers names no workflow"));
    }
    let corruption = flags.corruption.clone().unwrap_or_else(|| {
        "SQLITE_CORRUPT|database disk image is malformed|invalid page header".into()
    });
    let patterns: Vec<&str> = corruption.split('|').filter(|p| !p.is_empty()).collect();

    let sim = github_sim(&session).await;
    let client = github_client(&session, sim.as_ref())?;
    let workflows = Workflows::new(client, &flags.repo)?;

    if flags.resume_writers {
        if let Some(sim) = &sim {
            // The state a stop left behind.
            for w in &writers {
                workflows.disable(w).await?;
            }
            session.check(
                "the writers start stopped",
                sim.trigger_workflow(&writers[0], "schedule", false)
                    .is_none(),
            );
        }
        let resume = SwitchWorkflows::resume(workflows.clone(), writers.clone());
        let report = session.run(&resume.runbook()?).await;
        if let (Some(sim), Some(_)) = (&sim, report)
            && !flags.common.dry_run
        {
            session.check(
                "the writers run on their schedule again",
                sim.trigger_workflow(&writers[0], "schedule", false)
                    .is_some(),
            );
        }
        return Ok(session.finish().await);
    }

    if let Some(sim) = &sim {
        // An hour of the agents' schedule: a run every 20 minutes, the last one failing when
        // the fault is injected; a CI run on a push meanwhile.
        let fail_last = flags.fault == Some(Fault::WorkflowFails);
        for i in 0..3 {
            sim.trigger_workflow(&writers[0], "schedule", fail_last && i == 2);
            if i == 1 {
                sim.trigger_workflow("ci.yml", "push", false);
            }
            session.clock().sleep(Duration::from_secs(20 * 60)).await;
        }
    }
    let (slack, slack_sim) = slack(&session).await?;
    let alerts = WorkflowFailureAlerts::new(
        workflows.clone(),
        FailureAlertsConfig {
            window: flags.window.unwrap_or(Duration::from_secs(3600)),
            ..FailureAlertsConfig::default()
        },
        slack,
    );
    let Some(report) = session.run(&alerts.runbook()?).await else {
        return Ok(session.finish().await);
    };
    let failed = alerts.summary(&report).unwrap_or_default();
    for f in &failed {
        eprintln!(
            "\nfailed: {} run {} ({})",
            f.run.name.as_deref().unwrap_or("workflow"),
            f.run.id,
            f.run.html_url
        );
        for j in &f.jobs {
            eprintln!("  job {} failed at {:?}", j.job.name, j.failed_steps);
            for line in j.log_tail.iter().rev().take(3).rev() {
                eprintln!("    {line}");
            }
        }
    }
    let corrupt_writer = failed.iter().any(|f| {
        f.run
            .workflow_file()
            .is_some_and(|file| writers.iter().any(|w| w == file))
            && shows_corruption(f, &patterns)
    });
    if corrupt_writer {
        eprintln!("\nthe database is corrupt: stopping the writers {writers:?}");
        let stop = SwitchWorkflows::stop(workflows.clone(), writers.clone());
        session.run(&stop.runbook()?).await;
    }

    if let Some(sim) = &sim
        && !flags.common.dry_run
    {
        let told = slack_sim.map(|s| s.webhook_posts()).unwrap_or_default();
        let stopped = sim.workflow_state(&writers[0]).as_deref() == Some("disabled_manually");
        if flags.fault.is_some() {
            session.check(
                "Slack heard of the failed run, with the end of its log",
                told.len() == 1 && told[0].to_string().contains("SQLITE_CORRUPT"),
            );
            session.check("the writers are stopped", stopped);
            session.check(
                "their schedule starts nothing",
                sim.trigger_workflow(&writers[0], "schedule", false)
                    .is_none(),
            );
        } else {
            session.check("Slack was left alone", told.is_empty());
            session.check("the writers still run", !stopped);
        }
    }
    Ok(session.finish().await)
}
