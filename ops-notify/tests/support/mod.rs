//! Set-up shared by the notifier tests.
#![allow(dead_code)]

use std::sync::Arc;

use ops_core::clock::ManualClock;
use ops_core::http::{HttpClient, HttpConfig};
use ops_notify::sim::SlackSim;
use ops_notify::{SlackApi, SlackApiConfig};

/// An HTTP client on a manual clock (retries wait on it, not on the wall).
pub fn http() -> HttpClient {
    let clock = Arc::new(ManualClock::starting_at(
        "2026-11-23T09:00:00Z".parse().unwrap(),
    ));
    HttpClient::new("test", &HttpConfig::default())
        .unwrap()
        .with_clock(clock)
}

/// The Web API client against a server whose methods live under `{base}/api/`.
pub fn slack_at(base: &str) -> SlackApi {
    SlackApi::new(SlackApiConfig::new(
        "slack-incidents",
        ops_notify::sim::slack_token(),
        ops_notify::sim::slack_channel(),
    ))
    .unwrap()
    .with_base(&format!("{base}/api/"), http())
    .unwrap()
}

/// The Web API client against the simulator.
pub fn slack_api(sim: &SlackSim) -> SlackApi {
    slack_at(&sim.uri())
}
