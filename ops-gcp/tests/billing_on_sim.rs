//! Cost from the billing export and budgets, on the simulator: exact sums of many small
//! `FLOAT64` lines with their credits, one project and the days asked for only, pages, a job
//! still running, BigQuery's throttling, a missing export table, a second currency, and
//! budgets read and raised under their etag.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use ops_core::ErrorKind;
use ops_core::clock::{Clock, ManualClock};
use ops_core::contracts::{CostSource, DayRange};
use ops_core::money::{Currency, Money};
use ops_gcp::billing::{BillingExport, BillingExportConfig};
use ops_gcp::sim::{GcpSim, Usage};

const TABLE: &str = "billing-admin.billing.gcp_billing_export_v1_0123AB_4567CD_89EF01";
const ACCOUNT: &str = "0123AB-4567CD-89EF01";

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

fn usd(s: &str) -> Money {
    Money::parse(Currency::USD, s).unwrap()
}

async fn sim() -> (GcpSim, Arc<ManualClock>) {
    let clock = support::clock();
    let sim = GcpSim::builder()
        .project("acme-prod")
        .clock(clock.clone())
        .start()
        .await;
    (sim, clock)
}

fn export(sim: &GcpSim, config: BillingExportConfig) -> BillingExport {
    BillingExport::new(sim.client().unwrap(), config.billing_account(ACCOUNT)).unwrap()
}

fn usage<'a>(
    project: &'a str,
    d: u32,
    service: &'a str,
    cost: &'a str,
    credits: &'a [&'a str],
) -> Usage<'a> {
    Usage {
        project,
        day: day(d),
        service,
        currency: "USD",
        cost,
        credits,
    }
}

/// Three days of `acme-prod`: Cloud Run in 1000 lines of 0.0123 a day with a 0.0001 credit
/// each, Cloud SQL in one line of 6.25; another project and the day after are also there.
fn fill(sim: &GcpSim) {
    for d in 20..=22 {
        for _ in 0..1000 {
            sim.add_usage(
                TABLE,
                usage("acme-prod", d, "Cloud Run", "0.0123", &["-0.0001"]),
            );
        }
        sim.add_usage(TABLE, usage("acme-prod", d, "Cloud SQL", "6.25", &[]));
        sim.add_usage(TABLE, usage("other-project", d, "Cloud Run", "99", &[]));
    }
    sim.add_usage(TABLE, usage("acme-prod", 23, "Cloud SQL", "1.5E+2", &[]));
}

#[tokio::test]
async fn many_small_lines_sum_exactly_for_one_project_and_the_days_asked() {
    let (sim, _) = sim().await;
    fill(&sim);
    let bill = export(&sim, BillingExportConfig::new(TABLE));
    let costs = bill
        .costs(&DayRange::new(day(20), day(22)).unwrap())
        .await
        .unwrap();
    assert_eq!(costs.currency(), Currency::USD);
    assert_eq!(costs.lines().len(), 6);
    let run = &costs.lines()[0];
    assert_eq!((run.day, run.service.as_str()), (day(20), "Cloud Run"));
    assert_eq!((run.cost, run.credits), (usd("12.3"), usd("-0.1")));
    // 3 × (12.3 − 0.1 + 6.25) = 55.35, exactly; nothing of other-project or the 23rd.
    assert_eq!(costs.total().unwrap(), usd("55.35"));
    let float: f64 = (0..3000).map(|_| 0.0123f64 - 0.0001).sum::<f64>() + 3.0 * 6.25;
    assert_ne!(float, 55.35, "what summing the FLOAT64 column would give");
}

#[tokio::test]
async fn pages_are_followed_and_counted() {
    let (sim, _) = sim().await;
    fill(&sim);
    let mut config = BillingExportConfig::new(TABLE);
    config.page_size = 2;
    let costs = export(&sim, config)
        .costs(&DayRange::new(day(20), day(23)).unwrap())
        .await
        .unwrap();
    assert_eq!(costs.lines().len(), 7, "four pages of two");
    assert_eq!(costs.total().unwrap(), usd("205.35"));
}

#[tokio::test]
async fn a_job_still_running_is_polled_until_it_finishes_or_the_deadline() {
    let (sim, clock) = sim().await;
    fill(&sim);
    let days = DayRange::new(day(20), day(22)).unwrap();
    sim.hold_next_query(3);
    let start = clock.now();
    let costs = export(&sim, BillingExportConfig::new(TABLE))
        .costs(&days)
        .await
        .unwrap();
    assert_eq!(costs.total().unwrap(), usd("55.35"));
    assert!(
        clock.now() - start >= chrono::Duration::seconds(4),
        "waited between looks"
    );

    sim.hold_next_query(1000);
    let mut config = BillingExportConfig::new(TABLE);
    config.query_deadline = Duration::from_secs(30);
    let err = export(&sim, config).costs(&days).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn throttling_is_retried_and_a_spent_quota_is_a_rate_limit() {
    let (sim, _) = sim().await;
    fill(&sim);
    let days = DayRange::new(day(20), day(22)).unwrap();
    let bill = export(&sim, BillingExportConfig::new(TABLE));
    sim.throttle_queries(1);
    assert_eq!(
        bill.costs(&days).await.unwrap().total().unwrap(),
        usd("55.35")
    );

    sim.spend_query_quota(true);
    let err = bill.costs(&days).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::RateLimited { .. }), "{err}");
}

#[tokio::test]
async fn a_missing_export_table_says_how_to_turn_the_export_on() {
    let (sim, _) = sim().await;
    let err = export(&sim, BillingExportConfig::new(TABLE))
        .costs(&DayRange::ending(day(22), 7).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotFound { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("Billing export → BigQuery export"), "{text}");
    assert!(text.contains("dataset billing"), "{text}");

    // An empty export (turned on today) is no error: zero in the configured currency.
    sim.create_billing_export(TABLE);
    let costs = export(&sim, BillingExportConfig::new(TABLE))
        .costs(&DayRange::ending(day(22), 7).unwrap())
        .await
        .unwrap();
    assert_eq!(costs.total().unwrap(), usd("0"));
}

#[tokio::test]
async fn two_currencies_are_refused_not_summed() {
    let (sim, _) = sim().await;
    fill(&sim);
    sim.add_usage(
        TABLE,
        Usage {
            currency: "EUR",
            ..usage("acme-prod", 21, "Cloud Storage", "1", &[])
        },
    );
    let err = export(&sim, BillingExportConfig::new(TABLE))
        .costs(&DayRange::new(day(20), day(22)).unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("USD and EUR"), "{err}");
}

#[tokio::test]
async fn budgets_are_read_and_raised_under_their_etag() {
    let (sim, _) = sim().await;
    let name = sim.create_budget(ACCOUNT, "acme monthly", "700", "USD");
    sim.create_budget("FFFFFF-FFFFFF-FFFFFF", "someone else's", "1", "USD");
    let bill = export(&sim, BillingExportConfig::new(TABLE));
    let budgets = bill.budgets().await.unwrap();
    assert_eq!(budgets.len(), 1);
    let b = &budgets[0];
    assert_eq!(
        (b.id.as_str(), b.display_name.as_str()),
        (name.as_str(), "acme monthly")
    );
    assert_eq!(b.amount, Some(usd("700")));
    assert_eq!(b.thresholds_percent, vec![50.0, 90.0, 100.0]);

    let raised = bill.set_budget_amount(b, &usd("825.5")).await.unwrap();
    assert_eq!(raised.amount, Some(usd("825.5")));
    assert_eq!(sim.budget_amount(&name), Some((825, 500_000_000)));

    // Changed in the console since it was read: the stale write is refused.
    sim.change_budget_now(&name, 1000);
    let err = bill
        .set_budget_amount(&raised, &usd("900"))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Conflict { .. }), "{err}");
    assert_eq!(sim.budget_amount(&name), Some((1000, 0)));
    let eur = Money::parse(Currency::parse("EUR").unwrap(), "900").unwrap();
    assert!(bill.set_budget_amount(&raised, &eur).await.is_err());

    let no_account =
        BillingExport::new(sim.client().unwrap(), BillingExportConfig::new(TABLE)).unwrap();
    let err = no_account.budgets().await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn the_billing_export_passes_the_cost_source_suite() {
    let (sim, _) = sim().await;
    fill(&sim);
    sim.create_budget(ACCOUNT, "acme monthly", "700", "USD");
    let fixture = ops_core::testkit::CostFixture {
        days: DayRange::new(day(20), day(22)).unwrap(),
        total: usd("55.35"),
        quiet: DayRange::new(day(1), day(19)).unwrap(),
    };
    ops_core::testkit::cost_source(&export(&sim, BillingExportConfig::new(TABLE)), &fixture).await;
}

/// A reply whose rows do not fit the question (a day not asked for) is a decode error: a
/// server's mistake is never summed into a cost.
#[tokio::test]
async fn a_row_for_a_day_not_asked_for_is_a_decode_error() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let field = |name: &str, kind: &str| serde_json::json!({"name": name, "type": kind});
    let row = |v: [&str; 5]| serde_json::json!({"f": v.iter().map(|x| serde_json::json!({"v": x})).collect::<Vec<_>>()});
    Mock::given(method("POST"))
        .and(path("/bigquery/v2/projects/acme-prod/queries"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "kind": "bigquery#queryResponse",
            "jobComplete": true,
            "totalRows": "2",
            "schema": {"fields": [
                field("day", "DATE"), field("service", "STRING"), field("currency", "STRING"),
                field("cost", "NUMERIC"), field("credits", "NUMERIC"),
            ]},
            "rows": [
                row(["2026-11-02", "Cloud Run", "USD", "1.5", "0"]),
                row(["2026-10-31", "Cloud Run", "USD", "9.5", "0"]),
            ],
        })))
        .mount(&server)
        .await;
    let client = support::client_at(&server.uri(), support::clock());
    let bill = BillingExport::new(client, BillingExportConfig::new(TABLE)).unwrap();
    let err = bill
        .costs(&DayRange::new(day(1), day(7)).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Decode { .. }), "{err}");
    assert!(err.to_string().contains("2026-10-31"), "{err}");
}
