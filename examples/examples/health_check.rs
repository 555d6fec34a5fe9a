//! The daily health check: the Cloud Run service's conditions and traffic, the database
//! (connections, replication, long transactions), the last 24 hours' ERROR count (warn above
//! 10), recent activity, last night's backup (the newest verified one in the bucket must be
//! younger than `--max-backup-age`), Redis (`--redis`: AUTH with the password in Secret Manager,
//! PING, memory, hit rate), an authenticated status endpoint (`--status-url` with a bearer
//! token from Secret Manager), this host's disk and memory (`--host`), and any extra HTTP
//! endpoints — one verdict, and Slack hears about it when it is not healthy.
//!
//! ```sh
//! cargo run -p ops-examples --example health_check                            # rehearsal
//! cargo run -p ops-examples --example health_check -- --fault error-spike
//! cargo run -p ops-examples --example health_check -- --fault stale-backup
//! cargo run -p ops-examples --example health_check -- --redis local     # a real redis-server
//! cargo run -p ops-examples --example health_check -- --redis local --fault redis-password-rotated
//! DATABASE_URL=… SLACK_WEBHOOK_URL=… cargo run -p ops-examples --example health_check -- \
//!     --live --project P --region R --service api --url https://api.example.com/health
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use std::sync::Arc;
use std::time::Duration;

use ops_core::adapters::redis_probe::RedisTestServer;
use ops_core::adapters::{
    BackupFreshness, HostResources, HostResourcesConfig, HttpProbe, RedisProbe,
};
use ops_core::contracts::{BackupStore, HealthStatus, PutArtifact, SecretStore, Verification};
use ops_core::presets::PresetSection;
use ops_core::runbooks::Procedure;
use ops_core::runbooks::{HealthCheck, HealthCheckConfig, HealthSummary};
use ops_examples::providers::{gcp_client, gcp_sim, postgres, slack};
use ops_examples::{Common, Failure, GcpArgs, Session};
use ops_gcp::sim::Behaviour;
use ops_gcp::storage::CloudStorage;
use ops_gcp::{CloudLogging, CloudRun, SecretManager};
use ops_postgres::{PgHealth, PgHealthConfig};

/// check the service, its database, its errors and activity; one verdict
#[derive(Parser)]
#[command(name = "health_check")]
struct Flags {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    gcp: GcpArgs,
    /// the Cloud Run service
    #[arg(long, env = "OPS_SERVICE", default_value = "api")]
    service: String,
    /// extra endpoints to probe, comma-separated (JSON with status \"healthy\")
    #[arg(long, env = "OPS_HEALTH_URLS")]
    url: Option<String>,
    /// the bucket the nightly backups go to (checked for freshness when given; always in a
    /// rehearsal)
    #[arg(long, env = "OPS_BACKUP_BUCKET")]
    backup_bucket: Option<String>,
    /// where in the bucket the backups are [default: backups/]
    #[arg(long)]
    backup_prefix: Option<String>,
    /// the newest verified backup must be younger than this [default: 26h, a night and two
    /// hours' slack]
    #[arg(long, value_parser = ops_examples::args::duration)]
    max_backup_age: Option<Duration>,
    /// the Redis to check, HOST:PORT (rehearsal: `local` starts a redis-server)
    #[arg(long, env = "OPS_REDIS")]
    redis: Option<String>,
    /// the Secret Manager secret holding the Redis password [default: redis-password]
    #[arg(long)]
    redis_secret: Option<String>,
    /// a status endpoint that wants `Authorization: Bearer <token>` (seed 000's
    /// /api/daemon/status), JSON with status "healthy" (rehearsal: `local` serves one)
    #[arg(long)]
    status_url: Option<String>,
    /// the Secret Manager secret holding that token [default: daemon-status-token]
    #[arg(long, requires = "status_url")]
    status_token_secret: Option<String>,
    /// also check this host's disk space, inodes and memory (a self-hosted service, seed 003:
    /// `df -h`, `free -h`), at the preset's `[providers.host.resources]` levels
    #[arg(long)]
    host: bool,
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
    /// the service failed 2 % of its requests in the last ten minutes: the verdict drops and Slack is told
    #[value(name = "error-spike")]
    ErrorSpike,
    /// last night's backup did not run: the newest verified one is 30 hours old
    #[value(name = "stale-backup")]
    StaleBackup,
    /// the Redis password was changed on the server but not in Secret Manager: the check
    /// finds the credentials refused (with --redis local)
    #[value(name = "redis-password-rotated")]
    RedisPasswordRotated,
    /// the status endpoint's token was rotated but Secret Manager still holds the old one:
    /// the endpoint refuses the probe (with --status-url local)
    #[value(name = "status-token-stale")]
    StatusTokenStale,
}

#[tokio::main]
async fn main() -> ExitCode {
    ops_examples::run(example).await
}

async fn example(mut session: Session, flags: Flags) -> Result<ExitCode, Failure> {
    let service = flags.service.clone();
    let urls = flags.url.clone().unwrap_or_default();
    let config: HealthCheckConfig = session.config(flags.config.as_deref())?;

    let backup_prefix = flags.backup_prefix.as_deref().unwrap_or("backups/");
    let max_backup_age = flags
        .max_backup_age
        .unwrap_or(Duration::from_secs(26 * 3600));
    let sim = gcp_sim(&session, &flags.gcp).await;
    let backup_bucket = match (&sim, &flags.backup_bucket) {
        (Some(_), None) => Some("app-backups".to_string()),
        (_, given) => given.clone(),
    };
    if let Some(sim) = &sim {
        let image = "registry.example/api:1.0";
        sim.create_service(&service, image);
        let ratio = if flags.fault == Some(Fault::ErrorSpike) {
            0.02
        } else {
            0.0
        };
        sim.set_behaviour(image, Behaviour::failing(ratio));
        // Last night's backup, taken and verified through the store itself; the check runs
        // six hours later (thirty when the night's run was missed).
        let client = gcp_client(&session, &flags.gcp, Some(sim)).await?;
        let store = CloudStorage::new(client, "app-backups", backup_prefix)?;
        nightly_backup(&store, session.clock().now()).await?;
        let hours = if flags.fault == Some(Fault::StaleBackup) {
            30
        } else {
            6
        };
        session
            .clock()
            .sleep(Duration::from_secs(hours * 3600))
            .await;
        // Ten minutes of traffic before the check, with its request logs.
        let now = session.clock().now();
        for i in 0..50 {
            let at = now + chrono::Duration::seconds(i * 12);
            sim.push_log(at, "INFO", "GET /orders 200", None);
        }
        session.clock().sleep(Duration::from_secs(600)).await;
    }
    let (db, _cluster) = postgres(&session, "app").await?;
    let (notifier, slack_sim) = slack(&session).await?;
    let client = gcp_client(&session, &flags.gcp, sim.as_ref()).await?;
    let run = Arc::new(CloudRun::new(client.clone(), &service)?);
    let logs = Arc::new(CloudLogging::new(client.clone(), &service)?);

    let mut check = HealthCheck::new(&service, config)
        .probe(Arc::new(run.health_probe()))
        .deployer(run)
        .database(Arc::new(
            PgHealth::new(db, PgHealthConfig::default()).with_clock(session.clock()),
        ))
        .logs(logs)
        .notifier(notifier);
    if let Some(bucket) = &backup_bucket {
        let store = Arc::new(CloudStorage::new(client.clone(), bucket, backup_prefix)?);
        check = check.probe(Arc::new(
            BackupFreshness::new("backups")
                .watch(store, max_backup_age)
                .with_clock(session.clock()),
        ));
    }
    let secrets: Arc<dyn SecretStore> = Arc::new(SecretManager::new(client.clone()));
    let mut _redis_server = None;
    if let Some(address) = &flags.redis {
        let secret = flags.redis_secret.as_deref().unwrap_or("redis-password");
        let address = match (&sim, address.as_str()) {
            (Some(sim), "local") => {
                // A real redis-server with the password Secret Manager holds.
                let password = "rehearsal-redis-pw-5c1e";
                sim.put_secret(secret, password.as_bytes());
                let mut server = RedisTestServer::start(password, "64mb").await?;
                if flags.fault == Some(Fault::RedisPasswordRotated) {
                    server.set_password("rotated-on-the-server-only").await?;
                }
                let address = server.address().to_string();
                _redis_server = Some(server);
                address
            }
            (_, given) => given.to_string(),
        };
        let probe = RedisProbe::new(&address)
            .map_err(|e| Failure::usage(format!("--redis {address}: {e}")))?
            .password_from_secret(secrets.clone(), secret)
            .with_clock(session.clock());
        check = check.probe(Arc::new(probe));
    }
    let mut _status_server = None;
    if let Some(url) = &flags.status_url {
        let secret = flags
            .status_token_secret
            .as_deref()
            .unwrap_or("daemon-status-token");
        let url = match (&sim, url.as_str()) {
            (Some(sim), "local") => {
                // An endpoint answering only the token Secret Manager holds.
                let token = "rehearsal-status-token-0b7d";
                sim.put_secret(secret, token.as_bytes());
                let expected = if flags.fault == Some(Fault::StatusTokenStale) {
                    "a-newer-token-the-store-lacks"
                } else {
                    token
                };
                let server = status_endpoint(expected).await;
                let url = format!("{}/api/daemon/status", server.uri());
                _status_server = Some(server);
                url
            }
            (_, given) => given.to_string(),
        };
        let url = &url;
        let probe = HttpProbe::new(url)
            .map_err(|e| Failure::usage(format!("--status-url {url}: {e}")))?
            .expect_field("status", "healthy")
            .bearer_from_secret(secrets.clone(), secret)?;
        check = check.probe(Arc::new(probe));
    }
    if flags.host {
        let levels = match session.preset() {
            Some(p) => HostResourcesConfig::from_preset(&p)?,
            None => HostResourcesConfig::default(),
        };
        check = check.probe(Arc::new(
            HostResources::new(levels)?.with_clock(session.clock()),
        ));
    }
    for url in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let probe = HttpProbe::new(url).map_err(|e| Failure::usage(format!("--url {url}: {e}")))?;
        check = check.probe(Arc::new(probe.expect_field("status", "healthy")));
    }
    let runbook = check.runbook()?;
    let report = session.run(&runbook).await;
    let summary = report
        .as_ref()
        .and_then(|r| r.output::<HealthSummary>("verdict"));
    if let Some(s) = &summary {
        eprintln!("\nverdict: {}", s.verdict);
        for f in &s.findings {
            eprintln!(
                "  {:<10} {:<22} {}",
                f.status.to_string(),
                f.check,
                f.detail
            );
        }
    }

    if session.rehearsal() && !flags.common.dry_run {
        let verdict = summary.as_ref().map(|s| s.verdict);
        let told = slack_sim.map(|s| s.webhook_posts().len()).unwrap_or(0);
        let backups = summary
            .as_ref()
            .and_then(|s| s.findings.iter().find(|f| f.check.starts_with("backups")))
            .map(|f| f.status);
        let redis = summary
            .as_ref()
            .and_then(|s| s.findings.iter().find(|f| f.check.starts_with("redis")))
            .map(|f| f.status);
        let status = summary
            .as_ref()
            .and_then(|s| {
                s.findings
                    .iter()
                    .find(|f| f.check.contains("/api/daemon/status"))
            })
            .map(|f| f.status);
        if flags.fault == Some(Fault::StatusTokenStale) {
            session.check(
                "the refused token makes the check unhealthy",
                status == Some(HealthStatus::Unhealthy),
            );
            session.check("Slack was told", told == 1);
        } else if flags.fault == Some(Fault::RedisPasswordRotated) {
            session.check(
                "the refused Redis credentials make the check unhealthy",
                redis == Some(HealthStatus::Unhealthy),
            );
            session.check("Slack was told", told == 1);
        } else if flags.fault == Some(Fault::StaleBackup) {
            session.check(
                "the missed backup makes the check unhealthy",
                backups == Some(HealthStatus::Unhealthy)
                    && verdict == Some(HealthStatus::Unhealthy),
            );
            session.check("Slack was told", told == 1);
        } else if flags.fault.is_some() {
            session.check(
                "the error spike lowers the verdict",
                verdict.is_some_and(|v| v != HealthStatus::Healthy)
                    && summary
                        .as_ref()
                        .and_then(|s| s.error_count)
                        .is_some_and(|n| n > 10),
            );
            session.check("Slack was told", told == 1);
        } else {
            // This machine's own disk and memory are real, not rehearsed: they are shown, not
            // held to the verdict.
            let rehearsed_healthy = summary.as_ref().is_some_and(|s| {
                s.findings
                    .iter()
                    .filter(|f| f.check != "host")
                    .all(|f| f.status == HealthStatus::Healthy)
            });
            session.check("healthy", rehearsed_healthy);
            if flags.host {
                session.check(
                    "the host's disk and memory were read",
                    summary
                        .as_ref()
                        .is_some_and(|s| s.findings.iter().any(|f| f.check == "host")),
                );
            }
            session.check(
                "last night's backup is fresh",
                backups == Some(HealthStatus::Healthy),
            );
            if flags.redis.is_some() {
                session.check(
                    "Redis accepted the credentials from Secret Manager",
                    redis == Some(HealthStatus::Healthy),
                );
            }
            if !flags.host {
                session.check("Slack was left alone", told == 0);
            }
        }
    }
    Ok(session.finish().await)
}

/// A status endpoint like seed 000's `/api/daemon/status`: healthy JSON for `Bearer <token>`,
/// 401 otherwise.
async fn status_endpoint(token: &str) -> wiremock::MockServer {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/daemon/status"))
        .and(header("authorization", format!("Bearer {token}").as_str()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"status": "healthy"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    server
}

/// Puts a small backup into the store and records it verified, as the nightly backup runbook
/// does after reading it back.
async fn nightly_backup(
    store: &CloudStorage,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Failure> {
    let info = store
        .put_artifact(
            &PutArtifact {
                id: format!("app-{}.db", now.format("%Y%m%d-%H%M%S")),
                source: Some("app.db".into()),
                labels: Default::default(),
            },
            Box::pin(&b"SQLite format 3\0 nightly"[..]),
        )
        .await?;
    store
        .record_verification(&info.id, &Verification::Verified { at: now })
        .await?;
    Ok(())
}
