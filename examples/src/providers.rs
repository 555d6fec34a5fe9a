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
use ops_notify::sim::{PagerDutySim, SlackSim, StatuspageSim};
use ops_notify::{
    PagerDuty, PagerDutyConfig, SlackWebhook, SlackWebhookConfig, Statuspage, StatuspageConfig,
};
use ops_postgres::cluster::TestCluster;
use ops_postgres::{PgConfig, Postgres};
use ops_vercel::sim::VercelSim;
use ops_vercel::{VercelClient, VercelConfig};

use crate::args::GcpArgs;
use crate::failure::Failure;
use crate::session::{Session, env_var};

/// A Google Cloud simulator on the session's clock (rehearsals only).
pub async fn gcp_sim(session: &Session, gcp: &GcpArgs) -> Option<GcpSim> {
    if !session.rehearsal() {
        return None;
    }
    let sim = GcpSim::builder()
        .project(&gcp.project)
        .region(&gcp.region)
        .clock(session.clock())
        .start()
        .await;
    Some(sim)
}

/// A Google Cloud client: the simulator's, or (with `--live`) Application Default
/// Credentials for `--project` in `--region`.
pub async fn gcp_client(
    session: &Session,
    gcp: &GcpArgs,
    sim: Option<&GcpSim>,
) -> Result<GcpClient, Failure> {
    if let Some(sim) = sim {
        return Ok(sim.client()?);
    }
    let auth = ops_gcp::auth::application_default()
        .await
        .map_err(|e| Failure::usage(format!("--live needs Google credentials: {e}")))?;
    // STORAGE_EMULATOR_HOST moves Cloud Storage to an emulator, as in Google's libraries.
    let mut config = GcpConfig::new(&gcp.project, &gcp.region);
    config.endpoints = ops_gcp::Endpoints::from_env()?;
    let client = GcpClient::new(config, Arc::new(auth))?;
    Ok(client.with_clock(session.clock()))
}

/// An HTTP client for a notifier, on the session's clock.
fn http(session: &Session, provider: &'static str) -> Result<HttpClient, Failure> {
    Ok(HttpClient::new(provider, &HttpConfig::default())?.with_clock(session.clock()))
}

/// Slack through an incoming webhook: the simulator's, or `SLACK_WEBHOOK_URL` with `--live`.
pub async fn slack(session: &Session) -> Result<(Arc<dyn Notifier>, Option<SlackSim>), Failure> {
    if session.rehearsal() {
        let sim = SlackSim::start().await;
        let hook = SlackWebhook::new(SlackWebhookConfig::new("slack", sim.webhook_url()))?;
        return Ok((Arc::new(hook.with_http(http(session, "slack")?)), Some(sim)));
    }
    let url = session.credential("SLACK_WEBHOOK_URL", "a Slack incoming-webhook URL")?;
    let hook = SlackWebhook::new(SlackWebhookConfig::new("slack", url))?;
    Ok((Arc::new(hook.with_http(http(session, "slack")?)), None))
}

/// The public status page on Atlassian Statuspage: the simulator's, or `STATUSPAGE_API_KEY`
/// and `STATUSPAGE_PAGE_ID` (with optional `STATUSPAGE_COMPONENT_IDS`) with `--live`.
pub async fn statuspage(
    session: &Session,
) -> Result<(Arc<dyn Notifier>, Option<StatuspageSim>), Failure> {
    if session.rehearsal() {
        let sim = StatuspageSim::start_on(session.clock()).await;
        let config = StatuspageConfig::new(
            ops_notify::sim::statuspage_key(),
            ops_notify::sim::statuspage_page(),
        )
        .components(ops_notify::sim::statuspage_components());
        let page = Statuspage::new(config)?.with_base(&sim.uri(), http(session, "statuspage")?)?;
        return Ok((Arc::new(page), Some(sim)));
    }
    session.credential(
        "STATUSPAGE_API_KEY",
        "an API key of the status page's organisation",
    )?;
    let page = Statuspage::new(StatuspageConfig::from_env()?)?.with_clock(session.clock());
    Ok((Arc::new(page), None))
}

/// PagerDuty Events v2: the simulator, or `PAGERDUTY_ROUTING_KEY` with `--live`; alerts name
/// `source`.
pub async fn pagerduty(
    session: &Session,
    source: &str,
) -> Result<(Arc<dyn Notifier>, Option<PagerDutySim>), Failure> {
    if session.rehearsal() {
        let sim = PagerDutySim::start().await;
        let config = PagerDutyConfig::new("pagerduty", ops_notify::sim::pagerduty_key(), source);
        let pd = PagerDuty::new(config)?.with_base(&sim.uri(), http(session, "pagerduty")?)?;
        return Ok((Arc::new(pd), Some(sim)));
    }
    let key = session.credential(
        "PAGERDUTY_ROUTING_KEY",
        "a PagerDuty Events v2 integration key",
    )?;
    let pd = PagerDuty::new(PagerDutyConfig::new("pagerduty", key, source))?;
    Ok((Arc::new(pd), None))
}

/// A Vercel simulator for `project` on the session's clock (rehearsals only), its builds
/// taking 90 s.
pub async fn vercel_sim(session: &Session, project: &str) -> Option<VercelSim> {
    if !session.rehearsal() {
        return None;
    }
    let sim = VercelSim::builder()
        .clock(session.clock())
        .project(project)
        .build_time(Duration::from_secs(90))
        .start()
        .await;
    Some(sim)
}

/// A Vercel client: the simulator's, or `VERCEL_TOKEN` (and `VERCEL_TEAM_ID`) with `--live`.
pub fn vercel_client(session: &Session, sim: Option<&VercelSim>) -> Result<VercelClient, Failure> {
    if let Some(sim) = sim {
        return Ok(sim.client()?);
    }
    let token = session.credential(
        "VERCEL_TOKEN",
        "a Vercel access token from vercel.com/account/tokens",
    )?;
    let mut config = VercelConfig::new(token);
    if let Some(team) = env_var("VERCEL_TEAM_ID") {
        config = config.team(team);
    }
    Ok(VercelClient::new(config)?.with_clock(session.clock()))
}

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
pub fn github_client(session: &Session, sim: Option<&GithubSim>) -> Result<GithubClient, Failure> {
    if let Some(sim) = sim {
        return Ok(sim.client()?);
    }
    let token = session.credential(
        "GITHUB_TOKEN",
        "a GitHub token allowed to write the repository's secrets, issues and actions",
    )?;
    Ok(GithubClient::new(GithubConfig::token(token))?.with_clock(session.clock()))
}

/// A PostgreSQL database: a throwaway cluster's database `rehearsal_db` in a rehearsal (kept
/// alive by the returned cluster), or `DATABASE_URL` with `--live`.
pub async fn postgres(
    session: &Session,
    rehearsal_db: &str,
) -> Result<(Postgres, Option<TestCluster>), Failure> {
    if session.rehearsal() {
        // initdb and pg_ctl block: start the cluster off the runtime's threads.
        let cluster = tokio::task::spawn_blocking(TestCluster::start).await??;
        let db = cluster.database(rehearsal_db).await?;
        return Ok((db, Some(cluster)));
    }
    let url = session.credential("DATABASE_URL", "postgres://user:password@host:5432/db")?;
    let config = PgConfig::new(url).map_err(Failure::usage)?;
    Ok((Postgres::new(config)?, None))
}

/// A Prometheus simulator that counts each Deployment's requests from the Kubernetes
/// simulator: a query `…pod=~"DEPLOYMENT-…"…[Ns]…` is answered with the requests (with
/// `code=~"5.."`, the failed ones) the Deployment's pods served in the N seconds up to the
/// query's time; `errors / requests` with their ratio (rehearsals of a Kubernetes canary).
pub async fn prometheus_over_kube_sim(
    kube: Arc<ops_kubernetes::sim::KubeSim>,
) -> ops_prometheus::sim::PrometheusSim {
    let prom = ops_prometheus::sim::PrometheusSim::start().await;
    prom.answer_with(Box::new(move |query, time| {
        let deployment = query.split("pod=~\"").nth(1)?.split("-[a-z0-9]+").next()?;
        let secs: i64 = query.rsplit_once('[')?.1.split_once("s]")?.0.parse().ok()?;
        let end = chrono::DateTime::from_timestamp(time as i64, 0)?;
        let (requests, errors) =
            kube.requests_served(deployment, end - chrono::Duration::seconds(secs), end);
        let n = if query.contains(") / sum(") {
            if requests == 0 {
                return Some(Vec::new());
            }
            errors as f64 / requests as f64
        } else if query.contains("code=~\"5..\"") {
            errors as f64
        } else {
            requests as f64
        };
        Some(vec![(Default::default(), n)])
    }));
    prom
}

/// A Kubernetes client: the simulator's, or (with `--live`) the kubeconfig's current context
/// or the pod's service account, in `namespace` when given.
pub async fn kube_client(
    session: &Session,
    sim: Option<&ops_kubernetes::sim::KubeSim>,
    namespace: Option<&str>,
) -> Result<ops_kubernetes::KubeClient, Failure> {
    if let Some(sim) = sim {
        return Ok(sim.client()?);
    }
    let mut config = ops_kubernetes::KubeConfig::infer().await.map_err(|e| {
        Failure::usage(format!(
            "no cluster to reach ({e}): set KUBECONFIG or run inside a pod"
        ))
    })?;
    if let Some(ns) = namespace {
        config = config.namespace(ns)?;
    }
    Ok(ops_kubernetes::KubeClient::new(config)?.with_clock(session.clock()))
}
