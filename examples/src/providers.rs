//! Where each provider's client comes from: its simulator in a rehearsal, the standard
//! credentials with `--live`. Nothing else in an example differs between the two.

use std::sync::Arc;

use ops_gcp::sim::GcpSim;
use ops_gcp::{GcpClient, GcpConfig};

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
        .unwrap_or_else(|e| {
            session.usage_error(format!(
                "--live needs Application Default Credentials (run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS): {e}"
            ))
        });
    let client = session.or_exit(GcpClient::new(
        GcpConfig::new(project, region),
        Arc::new(auth),
    ));
    client.with_clock(session.clock())
}
