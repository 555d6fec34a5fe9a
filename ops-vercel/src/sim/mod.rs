//! A stateful fake of the Vercel REST API on loopback: a project with deployments that move
//! QUEUED → BUILDING → READY (or ERROR) over time, a production pointer that promote and
//! rollback move, pause, environment variables, build events, and fault injection. `GET /`
//! answers as the site itself, for health probes.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ops_core::Result<()> {
//! use std::time::Duration;
//! use ops_core::contracts::{Deployer, DeployRequest, InitialTraffic, TrafficSplit};
//! use ops_vercel::sim::VercelSim;
//!
//! let sim = VercelSim::builder().build_time(Duration::from_millis(50)).start().await;
//! let site = sim.deployer(Duration::from_millis(10))?;
//! let old = site.current().await?.primary_release().unwrap().to_string();
//! let new = site.deploy(&DeployRequest { traffic: InitialTraffic::All, ..DeployRequest::new("main") }).await?;
//! assert_eq!(site.current().await?.primary_release(), Some(new.id.as_str()));
//! site.set_traffic(&TrafficSplit::all_to(old.as_str())?).await?; // instant rollback
//! assert_eq!(site.current().await?.primary_release(), Some(old.as_str()));
//! # Ok(()) }
//! ```

mod env;
mod logs;
mod render;
mod routes;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::Result;
use ops_core::clock::{SharedClock, system_clock};

use crate::client::{VercelClient, VercelConfig};
use crate::deployer::{GitRepo, VercelDeployer};

/// The token the simulator accepts.
pub const SIM_TOKEN: &str = "vercel-sim-token";
/// The simulated team.
pub const SIM_TEAM: &str = "team_sim0000000000000000";
/// The simulated project's id.
pub const SIM_PROJECT_ID: &str = "prj_sim00000000000000000000";

pub use ops_core::sim::{Fault, Simulator};
use ops_core::sim::{Ledger, SimServer};

#[derive(Debug, Clone)]
struct SimDeployment {
    id: String,
    url: String,
    target: Option<String>,
    created: DateTime<Utc>,
    meta: BTreeMap<String, String>,
    fails: bool,
    /// Was production at some point (eligible for instant rollback).
    was_production: bool,
    /// Its finished build was looked at once for automatic promotion.
    settled: bool,
}

#[derive(Clone)]
struct SimEnv {
    id: String,
    key: String,
    value: String,
    kind: String,
    target: Vec<String>,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
}

impl std::fmt::Debug for SimEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SimEnv({})", self.key)
    }
}

#[derive(Debug)]
struct State {
    clock: SharedClock,
    build_time: Duration,
    name: String,
    paused: bool,
    production: Option<String>,
    deployments: Vec<SimDeployment>,
    envs: Vec<SimEnv>,
    failing_refs: BTreeSet<String>,
    /// Runtime-log rows per deployment.
    runtime: BTreeMap<String, Vec<serde_json::Value>>,
    /// The site answers 500 (its request rows say so too).
    site_fails: bool,
    /// Deployments of these git refs log a failed request each time their logs are read.
    erroring_refs: BTreeSet<String>,
    ledger: Ledger,
}

/// Builds a [`VercelSim`].
#[derive(Debug)]
pub struct VercelSimBuilder {
    clock: SharedClock,
    build_time: Duration,
    name: String,
}

impl VercelSimBuilder {
    /// The clock deployments progress on (share it with the client).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// How long a build takes (default 30 s).
    pub fn build_time(mut self, d: Duration) -> Self {
        self.build_time = d;
        self
    }

    /// The project's name (default `site`).
    pub fn project(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Starts the server with one READY production deployment of `main`.
    pub async fn start(self) -> VercelSim {
        let now = self.clock.now();
        let mut state = State {
            clock: self.clock,
            build_time: self.build_time,
            name: self.name,
            paused: false,
            production: None,
            deployments: Vec::new(),
            envs: Vec::new(),
            failing_refs: BTreeSet::new(),
            runtime: BTreeMap::new(),
            site_fails: false,
            erroring_refs: BTreeSet::new(),
            ledger: Ledger::default(),
        };
        let first = state.new_deployment(
            Some("production".into()),
            "main",
            Some(&"0".repeat(40)),
            now - chrono::Duration::days(1),
        );
        state.production = Some(first.clone());
        if let Some(d) = state.deployments.iter_mut().find(|d| d.id == first) {
            d.was_production = true;
        }
        VercelSim {
            sim: SimServer::start(state).await,
        }
    }
}

/// A running simulator.
#[derive(Debug)]
pub struct VercelSim {
    sim: SimServer<State>,
}

impl VercelSim {
    /// A simulator with the defaults, on the system clock.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// A builder.
    pub fn builder() -> VercelSimBuilder {
        VercelSimBuilder {
            clock: system_clock(),
            build_time: Duration::from_secs(30),
            name: "site".into(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.sim.state()
    }

    /// The base URL.
    pub fn uri(&self) -> String {
        self.sim.uri()
    }

    /// A config for the simulator (its token and team).
    pub fn config(&self) -> Result<VercelConfig> {
        VercelConfig::new(SIM_TOKEN)
            .team(SIM_TEAM)
            .base_url(&self.sim.uri())
    }

    /// A client on the simulator's clock.
    pub fn client(&self) -> Result<VercelClient> {
        let clock = self.state().clock.clone();
        Ok(VercelClient::new(self.config()?)?.with_clock(clock))
    }

    /// A deployer for the simulated project (repository `acme/site`), polling every `poll`.
    pub fn deployer(&self, poll: Duration) -> Result<VercelDeployer> {
        let name = self.state().name.clone();
        let git = GitRepo {
            org: "acme".into(),
            repo: "site".into(),
            branch: "main".into(),
        };
        Ok(VercelDeployer::new(self.client()?, name, Some(git))?
            .with_polling(poll, Duration::from_secs(60)))
    }

    /// Deployments of `git_ref` fail their build from now on.
    pub fn fail_builds_of(&self, git_ref: &str) {
        self.state().failing_refs.insert(git_ref.to_string());
    }

    /// Sets an environment variable directly (test set-up).
    pub fn put_env(&self, key: &str, value: &str, targets: &[&str]) {
        let mut s = self.state();
        let now = s.fresh_env_time();
        let id = format!("env_{:016x}", fastrand::u64(..));
        s.envs.push(SimEnv {
            id,
            key: key.into(),
            value: value.into(),
            kind: "encrypted".into(),
            target: targets.iter().map(|t| t.to_string()).collect(),
            created: now,
            updated: now,
        });
    }

    /// A request `deployment` served now at `path` with `status`, in its runtime logs (one
    /// `request` row, and an `error` row from the function for a server error).
    pub fn log_request(&self, deployment: &str, path: &str, status: u16) {
        let mut s = self.state();
        let now = s.clock.now();
        let line = format!("GET {path} {status}");
        s.log_row(
            deployment,
            now,
            "info",
            "request",
            &line,
            Some((path, status)),
        );
        if status >= 500 {
            let msg = format!("Error: handler for {path} threw");
            s.log_row(
                deployment,
                now,
                "error",
                "serverless",
                &msg,
                Some((path, status)),
            );
        }
    }

    /// A line `deployment`'s function logged now at `level` (`info`, `warning`, `error`, …).
    pub fn log_line(&self, deployment: &str, level: &str, message: &str) {
        let mut s = self.state();
        let now = s.clock.now();
        s.log_row(deployment, now, level, "serverless", message, None);
    }

    /// Deployments of `git_ref` fail requests once running: each read of their runtime logs
    /// finds a new 500 and its error line.
    pub fn fail_requests_of(&self, git_ref: &str) {
        self.state().erroring_refs.insert(git_ref.to_string());
    }

    /// From now on the site (`GET /`) answers 500, or again 200 with `false`.
    pub fn fail_site(&self, fails: bool) {
        self.state().site_fails = fails;
    }

    /// The current value of an environment variable for `target`.
    pub fn env_value(&self, key: &str, target: &str) -> Option<String> {
        self.state()
            .envs
            .iter()
            .find(|e| e.key == key && e.target.iter().any(|t| t == target))
            .map(|e| e.value.clone())
    }
}

impl Simulator for VercelSim {
    fn with_ledger<R>(&self, f: impl FnOnce(&mut Ledger) -> R) -> R {
        self.sim.with_ledger(f)
    }
}
