//! Where each provider's client comes from: its simulator in a rehearsal, the standard
//! credentials with `--live`. Nothing else in an example differs between the two.

use std::sync::Arc;
use std::time::Duration;

use ops_core::contracts::Notifier;
use ops_core::http::{HttpClient, HttpConfig};
use ops_gcp::sim::GcpSim;
use ops_gcp::{GcpClient, GcpConfig};
use ops_github::sim::GithubSim;
use ops_github::{GithubClient, GithubConfig};
use ops_notify::sim::{PagerDutySim, SlackSim};
use ops_notify::{PagerDuty, PagerDutyConfig, SlackWebhook, SlackWebhookConfig};
use ops_postgres::cluster::TestCluster;
use ops_postgres::{PgConfig, Postgres};
use ops_vercel::sim::VercelSim;
use ops_vercel::{VercelClient, VercelConfig};

use crate::cli::Opt;
use crate::session::Session;

/// `--project` / `GOOGLE_CLOUD_PROJECT`.
pub const PROJECT: Opt = Opt::value(
    "project",
    "GOOGLE_CLOUD_PROJECT",
    "the Google Cloud project",
    "sim-project",
);

/// `--region` / `GOOGLE_CLOUD_REGION`.
pub const REGION: Opt = Opt::value(
    "region",
    "GOOGLE_CLOUD_REGION",
    "the Google Cloud region",
    "europe-west1",
);

/// A Google Cloud simulator on the session's clock (rehearsals only).
pub async fn gcp_sim(session: &Session) -> Option<GcpSim> {
    if !session.rehearsal() {
        return None;
    }
    let sim = GcpSim::builder()
        .project(session.value("project"))
        .region(session.value("region"))
        .clock(session.clock())
        .start()
        .await;
    Some(sim)
}

/// A Google Cloud client: the simulator's, or (with `--live`) Application Default
/// Credentials for `--project` in `--region`.
pub async fn gcp_client(session: &Session, sim: Option<&GcpSim>) -> GcpClient {
    if let Some(sim) = sim {
        return session.or_exit(sim.client());
    }
    let project = session.value("project");
    let region = session.value("region");
    let auth = ops_gcp::auth::application_default()
        .await
        .unwrap_or_else(|e| session.usage_error(format!("--live needs Google credentials: {e}")));
    // STORAGE_EMULATOR_HOST moves Cloud Storage to an emulator, as in Google's libraries.
    let mut config = GcpConfig::new(project, region);
    config.endpoints = session.or_exit(ops_gcp::Endpoints::from_env());
    let client = session.or_exit(GcpClient::new(config, Arc::new(auth)));
    client.with_clock(session.clock())
}

/// An HTTP client for a notifier, on the session's clock.
fn http(session: &Session, provider: &'static str) -> HttpClient {
    session
        .or_exit(HttpClient::new(provider, &HttpConfig::default()))
        .with_clock(session.clock())
}

/// Slack through an incoming webhook: the simulator's, or `SLACK_WEBHOOK_URL` with `--live`.
pub async fn slack(session: &Session) -> (Arc<dyn Notifier>, Option<SlackSim>) {
    if session.rehearsal() {
        let sim = SlackSim::start().await;
        let hook = session.or_exit(SlackWebhook::new(SlackWebhookConfig::new(
            "slack",
            sim.webhook_url(),
        )));
        return (Arc::new(hook.with_http(http(session, "slack"))), Some(sim));
    }
    let url = session
        .cli
        .credential("SLACK_WEBHOOK_URL", "a Slack incoming-webhook URL")
        .unwrap_or_else(|e| session.usage_error(e));
    let hook = session.or_exit(SlackWebhook::new(SlackWebhookConfig::new("slack", url)));
    (Arc::new(hook.with_http(http(session, "slack"))), None)
}

/// PagerDuty Events v2: the simulator, or `PAGERDUTY_ROUTING_KEY` with `--live`; alerts name
/// `source`.
pub async fn pagerduty(
    session: &Session,
    source: &str,
) -> (Arc<dyn Notifier>, Option<PagerDutySim>) {
    if session.rehearsal() {
        let sim = PagerDutySim::start().await;
        let pd = session.or_exit(PagerDuty::new(PagerDutyConfig::new(
            "pagerduty",
            ops_notify::sim::pagerduty_key(),
            source,
        )));
        let pd = session.or_exit(pd.with_base(&sim.uri(), http(session, "pagerduty")));
        return (Arc::new(pd), Some(sim));
    }
    let key = session
        .cli
        .credential(
            "PAGERDUTY_ROUTING_KEY",
            "a PagerDuty Events v2 integration key",
        )
        .unwrap_or_else(|e| session.usage_error(e));
    let pd = session.or_exit(PagerDuty::new(PagerDutyConfig::new(
        "pagerduty",
        key,
        source,
    )));
    (Arc::new(pd), None)
}

/// `--project` for Vercel / `VERCEL_PROJECT`.
pub const VERCEL_PROJECT: Opt = Opt::value(
    "project",
    "VERCEL_PROJECT",
    "the Vercel project (id or name)",
    "site",
);

/// A Vercel simulator on the session's clock (rehearsals only), its builds taking 90 s.
pub async fn vercel_sim(session: &Session) -> Option<VercelSim> {
    if !session.rehearsal() {
        return None;
    }
    let sim = VercelSim::builder()
        .clock(session.clock())
        .project(session.value("project"))
        .build_time(Duration::from_secs(90))
        .start()
        .await;
    Some(sim)
}

/// A Vercel client: the simulator's, or `VERCEL_TOKEN` (and `VERCEL_TEAM_ID`) with `--live`.
pub fn vercel_client(session: &Session, sim: Option<&VercelSim>) -> VercelClient {
    if let Some(sim) = sim {
        return session.or_exit(sim.client());
    }
    let token = session
        .cli
        .credential(
            "VERCEL_TOKEN",
            "a Vercel access token from vercel.com/account/tokens",
        )
        .unwrap_or_else(|e| session.usage_error(e));
    let mut config = VercelConfig::new(token);
    if let Some(team) = session.cli.env_var("VERCEL_TEAM_ID") {
        config = config.team(team);
    }
    session
        .or_exit(VercelClient::new(config))
        .with_clock(session.clock())
}

/// `--repo` / `GITHUB_REPOSITORY`.
pub const GITHUB_REPO: Opt = Opt::value(
    "repo",
    "GITHUB_REPOSITORY",
    "the GitHub repository, OWNER/NAME",
    ops_github::sim::SIM_REPO,
);

/// A GitHub simulator on the session's clock, its workflow runs taking 3 minutes (rehearsals
/// only).
pub async fn github_sim(session: &Session) -> Option<GithubSim> {
    if !session.rehearsal() {
        return None;
    }
    let sim = GithubSim::builder()
        .clock(session.clock())
        .run_time(Duration::from_secs(180))
        .start()
        .await;
    Some(sim)
}

/// A GitHub client: the simulator's, or `GITHUB_TOKEN` with `--live`.
pub fn github_client(session: &Session, sim: Option<&GithubSim>) -> GithubClient {
    if let Some(sim) = sim {
        return session.or_exit(sim.client());
    }
    let token = session
        .cli
        .credential(
            "GITHUB_TOKEN",
            "a GitHub token allowed to write the repository's secrets, issues and actions",
        )
        .unwrap_or_else(|e| session.usage_error(e));
    session
        .or_exit(GithubClient::new(GithubConfig::token(token)))
        .with_clock(session.clock())
}

/// A PostgreSQL database: a throwaway cluster's database `rehearsal_db` in a rehearsal (kept
/// alive by the returned cluster), or `DATABASE_URL` with `--live`.
pub async fn postgres(session: &Session, rehearsal_db: &str) -> (Postgres, Option<TestCluster>) {
    if session.rehearsal() {
        // initdb and pg_ctl block: start the cluster off the runtime's threads.
        let cluster = tokio::task::spawn_blocking(TestCluster::start).await;
        let cluster = session.or_exit(session.or_exit(cluster));
        let db = session.or_exit(cluster.database(rehearsal_db).await);
        return (db, Some(cluster));
    }
    let url = session
        .cli
        .credential("DATABASE_URL", "postgres://user:password@host:5432/db")
        .unwrap_or_else(|e| session.usage_error(e));
    let config = PgConfig::new(url).unwrap_or_else(|e| session.usage_error(e));
    (session.or_exit(Postgres::new(config)), None)
}
