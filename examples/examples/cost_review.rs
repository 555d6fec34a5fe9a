//! Seed 000's cost procedures on Google Cloud: the daily check of yesterday's cost with alert 3
//! ("daily cost > $50 (2× normal) → notify on-call and finance, P1"), the weekly cost by
//! service, and the mid-month review of 30 days against the expected shares (Cloud Run
//! 15–25 %, Cloud SQL 20–30 %, Storage 5–10 %) with the month-end projection and the budget kept
//! current. Cost comes from the Cloud Billing export in BigQuery, exact to 10⁻⁹ and net of
//! credits; budgets from the Cloud Billing Budget API. The numbers are the `code-developer`
//! preset's unless `--preset` or `--config` say otherwise.
//!
//! ```sh
//! cargo run -p ops-examples --example cost_review                          # rehearsal
//! cargo run -p ops-examples --example cost_review -- --fault cost-spike    # pages on-call and finance
//! cargo run -p ops-examples --example cost_review -- --fault export-missing
//! cargo run -p ops-examples --example cost_review -- --update-budget --dry-run
//! cargo run -p ops-examples --example cost_review -- --live --project P \
//!     --table billing-admin.billing.gcp_billing_export_v1_0123AB_4567CD_89EF01 \
//!     --billing-account 0123AB-4567CD-89EF01 --budget "P monthly"
//! ```
//! With `--live`, alerts go to PagerDuty (`PAGERDUTY_ROUTING_KEY`, on-call) and Slack
//! (`SLACK_WEBHOOK_URL`, finance).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use clap::{Parser, ValueEnum};
use ops_core::contracts::CostSource;
use ops_core::money::{Currency, Money};
use ops_core::presets::Preset;
use ops_core::runbooks::{
    BudgetPolicy, CostReview, CostReviewConfig, CostSummary, CostView, Procedure,
};
use ops_examples::providers::{gcp_client, gcp_sim, pagerduty, slack};
use ops_examples::{Common, Failure, GcpArgs, Session};
use ops_gcp::billing::{BillingExport, BillingExportConfig};
use ops_gcp::sim::{GcpSim, Usage};

/// the daily, weekly and monthly cost reviews, and the cost spike alert
#[derive(Parser)]
#[command(name = "cost_review")]
struct Flags {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    gcp: GcpArgs,
    /// which review [default: all three, daily first]
    #[arg(long, value_enum)]
    view: Option<ViewFlag>,
    /// the billing export table, project.dataset.table (rehearsal: a simulated one)
    #[arg(long, env = "OPS_BILLING_TABLE")]
    table: Option<String>,
    /// the dataset's location (US, EU, a region) when not BigQuery's default
    #[arg(long)]
    location: Option<String>,
    /// the billing account whose budgets are read (rehearsal: a simulated one)
    #[arg(long, env = "OPS_BILLING_ACCOUNT")]
    billing_account: Option<String>,
    /// the budget the monthly review checks against its projection (none when not given;
    /// rehearsal: "code-developer monthly")
    #[arg(long)]
    budget: Option<String>,
    /// raise the budget when the projection exceeds it (with 10 % headroom)
    #[arg(long)]
    update_budget: bool,
    /// the cost review config, TOML (the code-developer preset's when absent)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// inject a named failure into the rehearsal
    #[arg(long, value_enum, value_name = "NAME")]
    fault: Option<Fault>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ViewFlag {
    Daily,
    Weekly,
    Monthly,
}

/// The failures a rehearsal can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Fault {
    /// yesterday cost twice a normal day: on-call and finance are paged, once each
    #[value(name = "cost-spike")]
    CostSpike,
    /// the billing export was never turned on: the review fails, saying how to turn it on
    #[value(name = "export-missing")]
    ExportMissing,
    /// BigQuery answers with a job still running and throttles the first query: the review
    /// waits and retries, and reads the same figures
    #[value(name = "slow-bigquery")]
    SlowBigquery,
}

const REHEARSAL_ACCOUNT: &str = "0123AB-4567CD-89EF01";
const REHEARSAL_BUDGET: &str = "code-developer monthly";

/// A normal rehearsal day: 25.05 USD net, about the "normal" of the seed's "$50 (2× normal)",
/// in the shares of its expected distribution (its model API share is Vertex AI here). Each
/// service's cost comes in 24 hourly lines, Cloud Run's with a free-tier credit.
const NORMAL_DAY: [(&str, &str, &str); 4] = [
    // (service, cost per hourly line, credit per hourly line)
    ("Cloud Run", "0.21875", "-0.01"),
    ("Cloud SQL", "0.26", "0"),
    ("Cloud Storage", "0.085", "0"),
    ("Vertex AI", "0.49", "0"),
];

#[tokio::main]
async fn main() -> ExitCode {
    ops_examples::run(example).await
}

async fn example(mut session: Session, flags: Flags) -> Result<ExitCode, Failure> {
    let mut config: CostReviewConfig = match (&flags.config, session.preset()) {
        (None, None) => Preset::load("code-developer")?.cost,
        (file, _) => session.config(file.as_deref())?,
    };
    let rehearsal_table = format!(
        "{}.billing.gcp_billing_export_v1_0123AB_4567CD_89EF01",
        flags.gcp.project
    );
    let table = session.or_rehearsal(flags.table.clone(), "--table", &rehearsal_table)?;
    let account = session.or_rehearsal(
        flags.billing_account.clone(),
        "--billing-account",
        REHEARSAL_ACCOUNT,
    )?;
    let budget = match (&flags.budget, session.rehearsal()) {
        (Some(b), _) => Some(b.clone()),
        (None, true) => Some(REHEARSAL_BUDGET.to_string()),
        (None, false) => None,
    };
    let sim = gcp_sim(&session, &flags.gcp).await;
    let client = gcp_client(&session, &flags.gcp, sim.as_ref()).await?;
    let today = session.clock().now().date_naive();
    let yesterday = today.pred_opt().unwrap_or(today);
    if let Some(sim) = &sim {
        rehearse_bill(sim, &flags, &table, yesterday);
    }
    let mut export = BillingExportConfig::new(&table).billing_account(&account);
    export.location = flags.location.clone();
    let bill: Arc<dyn CostSource> = Arc::new(BillingExport::new(client, export)?);
    let (on_call, pd_sim) = pagerduty(&session, "billing").await?;
    let (finance, slack_sim) = slack(&session).await?;

    let views = match flags.view {
        Some(ViewFlag::Daily) => vec![CostView::Daily],
        Some(ViewFlag::Weekly) => vec![CostView::Weekly],
        Some(ViewFlag::Monthly) => vec![CostView::Monthly],
        None => vec![CostView::Daily, CostView::Weekly, CostView::Monthly],
    };
    let mut summaries: Vec<CostSummary> = Vec::new();
    for view in views {
        config.view = view;
        config.budget = budget
            .clone()
            .filter(|_| view == CostView::Monthly)
            .map(|name| BudgetPolicy {
                name,
                headroom_percent: 10.0,
                update: flags.update_budget,
            });
        let review = CostReview::new(&flags.gcp.project, bill.clone(), config.clone())
            .notifier(on_call.clone())
            .notifier(finance.clone());
        let report = session.run(&review.runbook()?).await;
        if let Some(s) = report.as_ref().and_then(|r| review.summary(r)) {
            eprintln!("\n{view:?} review\n{}", s.to_markdown());
            for odd in s.unexpected() {
                eprintln!(
                    "  {} takes {:.1} % (expected {:?})",
                    odd.service,
                    odd.percent.unwrap_or_default(),
                    odd.expected
                );
            }
            summaries.push(s);
        }
    }

    if let Some(sim) = &sim {
        check_rehearsal(&mut session, &flags, sim, &summaries, yesterday);
        let paged = pd_sim.map_or(0, |p| p.alerts().len());
        let told = slack_sim.map_or(0, |s| s.webhook_posts().len());
        let spike = flags.fault == Some(Fault::CostSpike);
        if flags.fault != Some(Fault::ExportMissing) && !flags.common.dry_run {
            session.check(
                "a spike pages on-call and tells finance, once each; a normal day nobody",
                (paged, told) == if spike { (1, 1) } else { (0, 0) },
            );
        }
    }
    Ok(session.finish().await)
}

/// 45 days of usage ending yesterday, a monthly budget of 700 USD, and the fault's twist.
fn rehearse_bill(sim: &GcpSim, flags: &Flags, table: &str, yesterday: NaiveDate) {
    let fault = flags.fault;
    if fault == Some(Fault::ExportMissing) {
        return;
    }
    sim.create_budget(REHEARSAL_ACCOUNT, REHEARSAL_BUDGET, "700", "USD");
    for back in 0..45u64 {
        let Some(day) = yesterday.checked_sub_days(Days::new(back)) else {
            continue;
        };
        let spike = back == 0 && fault == Some(Fault::CostSpike);
        for (service, cost, credit) in NORMAL_DAY {
            for _ in 0..if spike { 48 } else { 24 } {
                let credits = [credit];
                sim.add_usage(
                    table,
                    Usage {
                        project: &flags.gcp.project,
                        day,
                        service,
                        currency: "USD",
                        cost,
                        credits: if credit == "0" { &[] } else { &credits },
                    },
                );
            }
        }
        // Another project on the same billing account: never in this project's figures.
        sim.add_usage(
            table,
            Usage {
                project: "another-project",
                day,
                service: "Compute Engine",
                currency: "USD",
                cost: "400",
                credits: &[],
            },
        );
    }
    if fault == Some(Fault::SlowBigquery) {
        sim.hold_next_query(3);
        sim.throttle_queries(1);
    }
}

fn usd(text: &str) -> Money {
    Money::parse(Currency::USD, text).unwrap_or(Money::zero(Currency::USD))
}

/// What the rehearsal's figures must be, computed here from the lines written.
fn check_rehearsal(
    session: &mut Session,
    flags: &Flags,
    sim: &GcpSim,
    summaries: &[CostSummary],
    yesterday: NaiveDate,
) {
    if flags.fault == Some(Fault::ExportMissing) {
        session.check(
            "the review found no export and said so",
            summaries.is_empty(),
        );
        return;
    }
    // 24 × (0.21875 − 0.01 + 0.26 + 0.085 + 0.49) = 25.05 a day.
    let hourly: Money = NORMAL_DAY
        .iter()
        .flat_map(|(_, cost, credit)| [usd(cost), usd(credit)])
        .fold(Money::zero(Currency::USD), |a, m| {
            a.checked_add(&m).unwrap_or(a)
        });
    let normal_day = hourly.scaled(24, 1).unwrap_or(hourly);
    let spike = flags.fault == Some(Fault::CostSpike);
    let expected_yesterday = if spike {
        normal_day.scaled(2, 1).unwrap_or(normal_day)
    } else {
        normal_day
    };
    if let Some(daily) = summaries.iter().find(|s| s.view == CostView::Daily) {
        session.check(
            "yesterday's cost is the exact sum of its lines, net of credits, for this project only",
            daily.total == expected_yesterday && daily.range.last() == yesterday,
        );
        session.check(
            "the spike rule fires exactly when yesterday doubled",
            daily.spike.is_some() == spike,
        );
    }
    if let Some(weekly) = summaries.iter().find(|s| s.view == CostView::Weekly) {
        session.check(
            "the weekly view covers 7 days by service",
            weekly.daily.len() == 7 && weekly.services.len() == NORMAL_DAY.len(),
        );
    }
    if let Some(monthly) = summaries.iter().find(|s| s.view == CostView::Monthly) {
        let projected = monthly.projection.as_ref().map(|p| p.projected);
        session.check(
            "the monthly view projects the month from its 1st",
            projected.is_some_and(|p| p.nanos() > 0),
        );
        let raised = monthly.budget.as_ref().and_then(|b| b.proposed).is_some();
        let budget_name = monthly.budget.as_ref().map(|b| b.budget.id.clone());
        let stored = budget_name.and_then(|n| sim.budget_amount(&n));
        if flags.update_budget && raised && !flags.common.dry_run {
            session.check(
                "the budget was raised to the proposal",
                stored.map(|(u, _)| u) != Some(700),
            );
        } else {
            session.check(
                "the budget is untouched without --update-budget (or in a dry run)",
                stored == Some((700, 0)),
            );
        }
    }
}
