//! Emergency shutdown of a Cloud Run service: record its state, stop it serving, disable the
//! exposed Secret Manager versions, capture the last hour's error logs as evidence, page
//! on-call through PagerDuty, and write the incident report.
//!
//! ```sh
//! cargo run -p ops-examples --example emergency_shutdown                       # rehearsal
//! cargo run -p ops-examples --example emergency_shutdown -- --dry-run          # the plan only
//! PAGERDUTY_ROUTING_KEY=… cargo run -p ops-examples --example emergency_shutdown -- --live \
//!     --project P --region R --service api --reason "API key leaked in a public gist" \
//!     --disable stripe-key:3
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use ops_core::contracts::{Deployer, SecretStore, VersionState};
use ops_core::runbooks::Procedure;
use ops_core::runbooks::{EmergencyShutdown, ShutdownConfig};
use ops_core::sim::Simulator;
use ops_examples::providers::{PROJECT, REGION, gcp_client, gcp_sim, pagerduty};
use ops_examples::{Opt, Session, Spec};
use ops_gcp::sim::{Behaviour, Fault};
use ops_gcp::{CloudLogging, CloudRun, SecretManager};

const SPEC: Spec = Spec {
    name: "emergency_shutdown",
    about: "stop a service at once, disable exposed secrets, keep the evidence, page on-call",
    options: &[
        PROJECT,
        REGION,
        Opt::value(
            "service",
            "OPS_SERVICE",
            "the Cloud Run service to stop",
            "api",
        ),
        Opt::value(
            "reason",
            "OPS_REASON",
            "why: it goes into the page and the report",
            "API key leaked in a public gist",
        ),
        Opt::value(
            "disable",
            "OPS_DISABLE",
            "exposed secret versions, SECRET:VERSION[,SECRET:VERSION…]",
            "stripe-key:1",
        ),
        Opt::config(),
    ],
    faults: &[(
        "disable-denied",
        "Secret Manager refuses to disable the version (403): the service still stops, on-call is paged, and the run fails naming the version left enabled",
    )],
};

#[tokio::main]
async fn main() -> ExitCode {
    let mut session = Session::start(SPEC).await;
    let (service, reason) = (session.value("service"), session.value("reason"));
    let mut exposed = Vec::new();
    for item in session
        .value("disable")
        .split(',')
        .filter(|s| !s.is_empty())
    {
        let Some((secret, version)) = item.split_once(':') else {
            session.usage_error(format!("--disable {item}: give SECRET:VERSION"));
        };
        exposed.push((secret.to_string(), version.to_string()));
    }
    let config: ShutdownConfig = session.config();

    let sim = gcp_sim(&session).await;
    if let Some(sim) = &sim {
        // A service in trouble: the running image fails a fifth of its requests.
        sim.create_service(&service, "registry.example/api:1.0");
        sim.set_behaviour("registry.example/api:1.0", Behaviour::failing(0.2));
        sim.put_secret("stripe-key", b"sk_live_exposed");
        if session.cli.fault_is("disable-denied") {
            let denied = Fault::Status {
                status: 403,
                retry_after: None,
            };
            sim.inject(Some("POST"), ":disable", 5, denied);
        }
        // Ten minutes of failing traffic before someone pulls the plug.
        session.clock().sleep(Duration::from_secs(600)).await;
    }
    let (pager, pd_sim) = pagerduty(&session, &service).await;
    let client = gcp_client(&session, sim.as_ref()).await;
    let run = Arc::new(session.or_exit(CloudRun::new(client.clone(), &service)));
    let secrets = Arc::new(SecretManager::new(client.clone()));
    let logs = Arc::new(session.or_exit(CloudLogging::new(client, &service)));

    let shutdown = EmergencyShutdown::new(&reason, run.clone(), config)
        .disable_secrets(secrets.clone(), exposed.clone())
        .logs(logs)
        .notifier(pager);
    let runbook = session.or_exit(shutdown.runbook());
    let Some(report) = session.run(&runbook).await else {
        return session.finish().await;
    };

    if let Some(md) = report.output::<String>("incident-report") {
        let path = session
            .cli
            .journal_dir
            .join(format!("{}-incident.md", report.run_id));
        session.or_exit(std::fs::write(&path, &md));
        if !session.cli.json {
            println!("{md}");
        }
        eprintln!("incident report: {}", path.display());
    }

    if session.rehearsal() && !session.cli.dry_run {
        let state = session.or_exit(run.current().await);
        session.check("the service serves nothing", !state.serving);
        let mut all_disabled = true;
        for (secret, version) in &exposed {
            let versions = session.or_exit(secrets.list_versions(secret).await);
            all_disabled &= versions
                .iter()
                .any(|v| &v.id == version && v.state == VersionState::Disabled);
        }
        if session.cli.fault.is_some() {
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
        let logs_kept = report.evidence.iter().any(|e| {
            e.key == "recent error logs" && e.value.as_array().is_some_and(|a| !a.is_empty())
        });
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
    session.finish().await
}
