//! Weekly review: the week's ERROR logs from Cloud Logging grouped by fingerprint (numbers,
//! ids and addresses masked, so one bug is one line however often it fired), the deploys and
//! rollbacks the run journals recorded, the repository's open Dependabot and code-scanning
//! alerts ("check dependency vulnerabilities"), and the week's errors archived as JSON lines in
//! Cloud Storage.
//!
//! ```sh
//! cargo run -p ops-examples --example weekly_review                          # rehearsal
//! GITHUB_TOKEN=… cargo run -p ops-examples --example weekly_review -- --live --project P \
//!     --region R --service api --bucket app-archive --repo acme/app
//! ```
//!
//! Deploys and rollbacks are counted from every journal in `--journal-dir`, so after the other
//! examples have run there, the review counts their runs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use std::sync::Arc;
use std::time::Duration;

use ops_core::contracts::{AuditFinding, Severity};
use ops_core::engine::{FileJournal, FsyncPolicy, Journal, JournalFilter, MemoryJournal};
use ops_core::runbooks::Procedure;
use ops_core::runbooks::{ChangeCounts, ErrorSummary, WeeklyReview, WeeklyReviewConfig};
use ops_examples::providers::{gcp_client, gcp_sim, github_client, github_sim};
use ops_examples::{Common, Failure, GcpArgs, Session};
use ops_gcp::CloudLogging;
use ops_gcp::storage::CloudStorage;
use ops_github::DependencyAlerts;

/// group the week's errors, count deploys and rollbacks, archive the errors
#[derive(Parser)]
#[command(name = "weekly_review")]
struct Flags {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    gcp: GcpArgs,
    /// the Cloud Run service
    #[arg(long, env = "OPS_SERVICE", default_value = "api")]
    service: String,
    /// the bucket for the error archive
    #[arg(long, env = "OPS_ARCHIVE_BUCKET", default_value = "app-archive")]
    bucket: String,
    /// the GitHub repository whose Dependabot and code-scanning alerts join the review,
    /// OWNER/NAME (rehearsal: the simulator's; live: left out unless given)
    #[arg(long, env = "GITHUB_REPOSITORY")]
    repo: Option<String>,
    /// the runbook config, TOML (defaults when absent)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// inject a named failure into the rehearsal
    #[arg(long, value_enum, value_name = "NAME")]
    fault: Option<Fault>,
}

/// The failures a rehearsal can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Fault {
    /// Dependabot alerts are switched off for the repository: the review says so, and still
    /// lists the code-scanning alerts
    #[value(name = "dependabot-off")]
    DependabotOff,
}

/// A week of errors: a few bugs, each firing many times with different numbers in it.
const SEED: [(&str, u32); 4] = [
    ("timeout connecting to db host=10.0.0.{n} after {n}ms", 240),
    ("payment provider returned 502 for order {n}", 90),
    ("user {n} not found in session cache", 35),
    ("panic: index out of range [{n}] with length 3", 4),
];

/// Every journal in the directory, read into one.
async fn all_journals(dir: &Path) -> Result<Arc<dyn Journal>, Failure> {
    let all = MemoryJournal::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            let journal = FileJournal::open(&path, FsyncPolicy::Never).await?;
            for event in journal.events(&JournalFilter::default()).await? {
                all.append(&event).await?;
            }
        }
    }
    Ok(Arc::new(all))
}

#[tokio::main]
async fn main() -> ExitCode {
    ops_examples::run(example).await
}

async fn example(mut session: Session, flags: Flags) -> Result<ExitCode, Failure> {
    let (service, bucket) = (flags.service.clone(), flags.bucket.clone());
    let config: WeeklyReviewConfig = session.config(flags.config.as_deref())?;

    let sim = gcp_sim(&session, &flags.gcp).await;
    let mut seeded = 0u64;
    if let Some(sim) = &sim {
        sim.create_service(&service, "registry.example/api:1.0");
        // Only the seeded errors: the running image fails nothing itself.
        sim.set_behaviour(
            "registry.example/api:1.0",
            ops_gcp::sim::Behaviour::failing(0.0),
        );
        let now = session.clock().now();
        for (text, times) in SEED {
            for i in 0..times {
                let at = now - chrono::Duration::minutes(i64::from(i) * 37 % (7 * 24 * 60));
                sim.push_log(
                    at,
                    "ERROR",
                    &text.replace("{n}", &(i * 13 + 7).to_string()),
                    None,
                );
                seeded += 1;
            }
        }
        // An entry older than the week, which the review must leave out.
        sim.push_log(now - chrono::Duration::days(9), "ERROR", "old news", None);
        session.clock().sleep(Duration::from_secs(1)).await;
    }
    let client = gcp_client(&session, &flags.gcp, sim.as_ref()).await?;
    let logs = Arc::new(CloudLogging::new(client.clone(), &service)?);
    let archive = Arc::new(CloudStorage::new(client, &bucket, "weekly-errors/")?);
    let mut review = WeeklyReview::new(&service, logs, config)
        .journal(all_journals(&flags.common.journal_dir).await?)
        .archive(archive);
    let github = github_sim(&session).await;
    let repo = match (&github, &flags.repo) {
        (Some(_), None) => Some(ops_github::sim::SIM_REPO.to_string()),
        (_, given) => given.clone(),
    };
    if let Some(g) = &github
        && flags.fault == Some(Fault::DependabotOff)
    {
        g.disable_dependabot_alerts();
    }
    if let Some(repo) = &repo {
        let client = github_client(&session, github.as_ref())?;
        review = review.auditor(Arc::new(DependencyAlerts::new(client, repo)?));
    }
    let runbook = review.runbook()?;
    let report = session.run(&runbook).await;

    // The findings, for people: the error groups and the changes.
    if let Some(report) = &report
        && !flags.common.json
    {
        if let Some(errors) = report.output::<ErrorSummary>("errors") {
            println!(
                "## Errors this week: {} in {} groups\n",
                errors.total, errors.distinct
            );
            println!("| count | last seen | example |\n|---:|---|---|");
            for g in &errors.top {
                let last = g
                    .last_seen
                    .map(|t| t.format("%a %H:%M").to_string())
                    .unwrap_or_default();
                println!(
                    "| {} | {last} | `{}` |",
                    g.count,
                    g.example.replace('|', "\\|")
                );
            }
        }
        if let Some(changes) = report.output::<serde_json::Value>("changes") {
            println!("\n## Changes this week\n\n```json\n{changes:#}\n```");
        }
        if let Some(findings) = report.output::<Vec<AuditFinding>>("security") {
            println!("\n## Dependency and code alerts: {}\n", findings.len());
            for f in &findings {
                println!("- **{}** {}: {}", f.severity, f.resource, f.issue);
            }
        }
    }

    if let (Some(sim), Some(report)) = (&sim, &report)
        && !flags.common.dry_run
    {
        let errors: Option<ErrorSummary> = report.output("errors");
        let groups = errors.as_ref().map(|e| e.top.clone()).unwrap_or_default();
        session.check(
            "four bugs, four groups, the noisiest first",
            groups.len() == 4 && groups[0].count == 240 && groups[3].count == 4,
        );
        session.check(
            &format!("every error of the week counted, none older ({seeded} seeded)"),
            errors.is_some_and(|e| e.total == seeded && e.distinct == 4),
        );
        session.check(
            "deploys and rollbacks counted",
            report.output::<ChangeCounts>("changes").is_some(),
        );
        let findings: Vec<AuditFinding> = report.output("security").unwrap_or_default();
        if flags.fault == Some(Fault::DependabotOff) {
            session.check(
                "the review says Dependabot alerts are off, and lists the code-scanning alerts",
                findings
                    .iter()
                    .any(|f| f.resource.ends_with("dependabot alerts"))
                    && findings
                        .iter()
                        .any(|f| f.resource.contains("code-scanning")),
            );
        } else {
            session.check(
                "the open Dependabot alert with a fix is in the review, worst first",
                findings.first().is_some_and(|f| {
                    f.severity == Severity::Critical
                        && f.resource.contains("lodash")
                        && f.issue.contains("fix available")
                }),
            );
        }
        let archived = sim.object_names(&bucket);
        session.check("the week's errors are archived", archived.len() == 1);
    }
    Ok(session.finish().await)
}
