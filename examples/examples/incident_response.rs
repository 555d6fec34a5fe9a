//! An incident from declaration to postmortem: declare a P1, tell the team in Slack and open a
//! GitHub issue as the record, escalate to PagerDuty when nobody acknowledges within the
//! response time (15 minutes for a P1), post status updates, resolve, and write the postmortem.
//!
//! The same script is an incident drill with `--live`: it really posts to Slack, opens and
//! closes the issue and pages on-call, so keep `[DRILL]` in the title.
//!
//! ```sh
//! cargo run -p ops-examples --example incident_response                        # rehearsal
//! cargo run -p ops-examples --example incident_response -- --fault pagerduty-down
//! SLACK_WEBHOOK_URL=… PAGERDUTY_ROUTING_KEY=… GITHUB_TOKEN=… \
//!   cargo run -p ops-examples --example incident_response -- --live --repo acme/app
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ops_core::Result;
use ops_core::contracts::{Notification, Notifier, Receipt};
use ops_core::engine::RunOutcome;
use ops_core::runbooks::{IncidentConfig, IncidentResponse, Priority, Trigger};
use ops_core::sim::{Fault as SimFault, Simulator};
use ops_examples::providers::{github_client, github_sim, pagerduty, slack, statuspage};
use ops_examples::{Common, Failure, Session};
use ops_github::GithubIssues;

/// declare an incident, escalate when unacknowledged, update, resolve, write the postmortem
#[derive(Parser)]
#[command(name = "incident_response")]
struct Flags {
    #[command(flatten)]
    common: Common,
    /// the GitHub repository, OWNER/NAME
    #[arg(long, env = "GITHUB_REPOSITORY", default_value = ops_github::sim::SIM_REPO)]
    repo: String,
    /// one line on what is wrong
    #[arg(
        long,
        env = "OPS_INCIDENT_TITLE",
        default_value = "[DRILL] Checkout fails"
    )]
    title: String,
    /// who is affected and how
    #[arg(
        long,
        env = "OPS_INCIDENT_IMPACT",
        default_value = "Customers cannot pay; about 30 % of checkouts fail"
    )]
    impact: String,
    /// P0, P1, P2 or P3
    #[arg(long, env = "OPS_INCIDENT_PRIORITY", default_value = "P1")]
    priority: String,
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
    /// PagerDuty answers 503 when the incident escalates: the error is reported, the response goes on
    #[value(name = "pagerduty-down")]
    PagerdutyDown,
    /// the status page answers 503 when the incident is declared (with seed 001's preset and
    /// a P0): the failed delivery is reported, the response goes on
    #[value(name = "status-page-down")]
    StatusPageDown,
}

/// The team's first level: Slack for people, a GitHub issue as the record.
struct TeamChannel {
    slack: Arc<dyn Notifier>,
    issues: GithubIssues,
    /// The issue's number, once opened.
    issue: Mutex<Option<u64>>,
}

#[async_trait]
impl Notifier for TeamChannel {
    fn name(&self) -> &str {
        "slack+github"
    }
    async fn send(&self, n: &Notification) -> Result<Receipt> {
        // Both, even when one fails: the record must not depend on Slack being up.
        let (slack, issue) = tokio::join!(self.slack.send(n), self.issues.send(n));
        if let Some(number) = issue?.id.and_then(|id| id.parse().ok()) {
            *self.issue.lock().unwrap_or_else(|p| p.into_inner()) = Some(number);
        }
        slack
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    ops_examples::run(example).await
}

async fn example(mut session: Session, flags: Flags) -> Result<ExitCode, Failure> {
    let (title, impact) = (flags.title.clone(), flags.impact.clone());
    let priority = match flags.priority.as_str() {
        "P0" => Priority::P0,
        "P1" => Priority::P1,
        "P2" => Priority::P2,
        "P3" => Priority::P3,
        other => {
            return Err(Failure::usage(format!(
                "--priority {other}: give P0, P1, P2 or P3"
            )));
        }
    };
    let mut config: IncidentConfig = session.config(flags.config.as_deref())?;
    if !session.rehearsal() {
        // A metric rule (seed 000's cost) needs a cost source this template does not wire.
        config.escalation.retain(|r| {
            let keep = !matches!(r.when, Trigger::Metric { .. });
            if !keep {
                eprintln!(
                    "note: escalation to {} on a metric needs a metrics source: left out",
                    r.level
                );
            }
            keep
        });
    }

    let (slack, slack_sim) = slack(&session).await?;
    let (pager, pd_sim) = pagerduty(&session, "checkout").await?;
    let gh_sim = github_sim(&session).await;
    let client = github_client(&session, gh_sim.as_ref())?;
    let issues = GithubIssues::new(client, &flags.repo)?;
    if let Some(pd) = &pd_sim
        && flags.fault == Some(Fault::PagerdutyDown)
    {
        pd.inject(
            None,
            "/v2/enqueue",
            10,
            SimFault::Status {
                status: 503,
                retry_after: None,
            },
        );
    }

    let team = Arc::new(TeamChannel {
        slack,
        issues,
        issue: Mutex::new(None),
    });
    // The levels a preset's matrix names (leadership, finance …): a channel each. A rehearsal
    // keeps what they are sent; a live run logs it (wire your own notifiers here).
    let mut extra: Vec<(String, Arc<ops_core::memory::MemoryNotifier>)> = Vec::new();
    // The public status page (seed 001): Statuspage, told at declaration, with every update
    // and the resolution.
    let wants_page = config.escalation.iter().any(|r| r.level == "status-page");
    let (page, page_sim) = if wants_page {
        let (n, sim) = statuspage(&session).await?;
        if let Some(sim) = &sim
            && flags.fault == Some(Fault::StatusPageDown)
        {
            sim.inject(
                None,
                "/incidents",
                10,
                SimFault::Status {
                    status: 503,
                    retry_after: None,
                },
            );
        }
        (Some(n), sim)
    } else {
        (None, None)
    };
    for rule in &config.escalation {
        if !["team", "on-call", "status-page"].contains(&rule.level.as_str())
            && !extra.iter().any(|(n, _)| *n == rule.level)
        {
            extra.push((
                rule.level.clone(),
                Arc::new(ops_core::memory::MemoryNotifier::new(&rule.level)),
            ));
        }
    }
    let metric_rules = config
        .escalation
        .iter()
        .any(|r| matches!(r.when, Trigger::Metric { .. }));
    let mut response = IncidentResponse::new(config)
        .level("team", team.clone())
        .level("on-call", pager)
        .with_clock(session.clock());
    if let Some(page) = page {
        response = response.level("status-page", page);
    }
    for (name, n) in &extra {
        let channel: Arc<dyn Notifier> = if session.rehearsal() {
            n.clone()
        } else {
            Arc::new(ops_core::adapters::LogNotifier::new(name))
        };
        response = response.level(name, channel);
    }
    if metric_rules {
        // The rehearsal's cost: $640 over the last day, above seed 000's $500 line.
        let cost = Arc::new(ops_core::memory::MemoryMetricsSource::new("billing"));
        let at = session.clock().now() - chrono::Duration::hours(1);
        let metric = ops_core::contracts::Metric::Named {
            name: "daily_cost_usd".into(),
        };
        cost.record_sample(at, None, metric, 640.0)?;
        response = response.metrics(cost);
    }
    if flags.common.dry_run {
        response = response.dry_run();
    }
    let clock = session.clock();
    let say = |line: &str| eprintln!("  {} {line}", clock.now().format("%H:%M"));

    let mut inc = response.declare(&title, priority, &impact).await?;
    say(&format!("declared {} ({priority:?}): {title}", inc.id));
    let mut failed_deliveries = inc.failed_deliveries.len();
    for failed in &inc.failed_deliveries {
        say(&format!("declared, but could not notify {failed}"));
    }
    // A notification that fails is reported and the response goes on: people still act.
    let mut delivered = |what: &str, result: Result<()>| match result {
        Ok(()) => say(what),
        Err(e) => {
            say(&format!("{what}, but a notification failed: {e}"));
            failed_deliveries += 1;
        }
    };
    // Nobody answers: after the response time the next level is paged.
    for _ in 0..4 {
        clock.sleep(Duration::from_secs(5 * 60)).await;
        let did = response.tick(&mut inc).await;
        let what = match &did {
            Ok(did) if did.is_empty() => continue,
            Ok(did) => did.join("; "),
            Err(_) => "escalation due".to_string(),
        };
        delivered(&what, did.map(|_| ()));
    }
    response.acknowledge(&mut inc, "dana");
    say("acknowledged by dana");
    clock.sleep(Duration::from_secs(10 * 60)).await;
    let sent = response
        .update(&mut inc, "Rolled back api to api-00041; errors falling")
        .await;
    delivered("status update sent", sent);
    clock.sleep(Duration::from_secs(20 * 60)).await;
    let sent = response
        .resolve(
            &mut inc,
            "Rolled back api to api-00041; checkout error rate back under 0.1 %",
        )
        .await;
    delivered("resolved", sent);

    let postmortem = inc.postmortem();
    let path = flags
        .common
        .journal_dir
        .join(format!("{}-postmortem.md", inc.id));
    std::fs::create_dir_all(&flags.common.journal_dir)?;
    std::fs::write(&path, &postmortem)?;
    if flags.common.json {
        println!("{}", serde_json::to_string_pretty(&inc)?);
    } else {
        println!("{postmortem}");
    }
    eprintln!("\npostmortem: {}", path.display());
    let outcome = if failed_deliveries == 0 {
        RunOutcome::Succeeded
    } else {
        RunOutcome::Failed
    };
    session.outcome(&inc.id, outcome);

    if session.rehearsal() && !flags.common.dry_run {
        let slack_posts = slack_sim.map(|s| s.webhook_posts().len()).unwrap_or(0);
        session.check(
            "Slack heard the declaration, the update and the resolution",
            slack_posts >= 3,
        );
        let alerts = pd_sim.map(|p| p.alerts()).unwrap_or_default();
        for (name, n) in &extra {
            let told = inc.notified.contains(name);
            let heard_resolution = n
                .sent()
                .last()
                .is_some_and(|m| m.event == ops_core::contracts::NotificationEvent::Resolve);
            if told {
                session.check(
                    &format!("{name}, told by the preset's matrix, heard the resolution"),
                    heard_resolution,
                );
            }
        }
        if let Some(page) = &page_sim
            && inc.notified.iter().any(|n| n == "status-page")
            && flags.fault != Some(Fault::StatusPageDown)
        {
            let incidents = page.incidents();
            session.check(
                "the status page showed the incident, its updates and its resolution",
                incidents.len() == 1
                    && incidents[0].status == "resolved"
                    && incidents[0].updates.len() >= 3,
            );
        }
        let paged = inc.notified.iter().any(|n| n == "on-call");
        if flags.fault.is_some() {
            session.check("the failed escalation was reported", failed_deliveries > 0);
        } else if !paged {
            session.check(
                "the preset's matrix never pages on-call, and nothing was paged",
                alerts.is_empty(),
            );
        } else {
            session.check(
                "on-call was paged, then the alert resolved",
                alerts.len() == 1 && alerts[0].status == "resolved",
            );
        }
        let number = *team.issue.lock().unwrap_or_else(|p| p.into_inner());
        let issue = gh_sim.as_ref().zip(number).and_then(|(g, n)| g.issue(n));
        session.check(
            "the GitHub issue holds the timeline and is closed as completed",
            issue.is_some_and(|i| {
                i.state == "closed"
                    && i.state_reason.as_deref() == Some("completed")
                    && i.comments.len() >= 2
            }),
        );
        session.check(
            "the postmortem has a timeline",
            postmortem.contains("## Timeline"),
        );
    }
    Ok(session.finish().await)
}
