//! A stateful fake of the GitHub REST API on loopback: one repository (`acme/app`) with
//! incident issues and comments, Actions secrets at repository, environment and organisation
//! scope (stored as ciphertext only, with each scope's private key kept for tests to open
//! them), a `deploy.yml` workflow whose dispatched runs queue, run and conclude on the clock
//! and record deployments, commits, pull requests, releases, webhooks, collaborators and deploy
//! keys; `Link` pagination, ETags, rate-limit headers, GitHub App installation tokens, and
//! fault injection.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ops_core::Result<()> {
//! use std::time::Duration;
//! use ops_core::contracts::{Deployer, DeployRequest, InitialTraffic};
//! use ops_github::sim::GithubSim;
//!
//! let sim = GithubSim::builder().run_time(Duration::from_millis(40)).start().await;
//! let deployer = sim.deployer(Duration::from_millis(10))?;
//! let release = deployer
//!     .deploy(&DeployRequest { traffic: InitialTraffic::All, ..DeployRequest::new("v1.4.0") })
//!     .await?;
//! assert_eq!(deployer.current().await?.primary_release(), Some(release.id.as_str()));
//! # Ok(()) }
//! ```

mod actions;
mod issues;
mod replies;
mod routes;
mod secrets;
mod security_alerts;
mod seed;
mod workflows;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::Result;
use ops_core::clock::{SharedClock, system_clock};
use serde_json::Value;

pub use ops_core::sim::{Fault, Simulator};
use ops_core::sim::{Ledger, SimServer};

use crate::actions::{WorkflowDeployer, WorkflowInputs};
use crate::client::{GithubClient, GithubConfig};
use crate::secrets::{ActionsSecrets, OrgVisibility, SecretScope};

/// The token the simulator accepts.
pub const SIM_TOKEN: &str = "ghp_simSIMsimSIMsimSIMsimSIMsimSIM0000";
/// The simulated repository.
pub const SIM_REPO: &str = "acme/app";
/// The simulated organisation.
pub const SIM_ORG: &str = "acme";
/// The simulated deployment environment.
pub const SIM_ENVIRONMENT: &str = "production";
/// The simulated deploy workflow's file.
pub const SIM_WORKFLOW: &str = "deploy.yml";
/// The simulated GitHub App's id.
pub const SIM_APP_ID: &str = "424242";
/// The simulated App installation.
pub const SIM_INSTALLATION: u64 = 77;

#[derive(Debug, Clone)]
struct SimIssue {
    number: u64,
    title: String,
    body: String,
    labels: Vec<String>,
    assignees: Vec<String>,
    state: String,
    state_reason: Option<String>,
    comments: Vec<(u64, String, DateTime<Utc>)>,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    pull_request: bool,
}

struct ScopeKey {
    key_id: String,
    secret: crypto_box::SecretKey,
}

impl std::fmt::Debug for ScopeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScopeKey({})", self.key_id)
    }
}

#[derive(Debug, Clone)]
struct SimSecret {
    ciphertext: Vec<u8>,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    visibility: Option<String>,
}

#[derive(Debug, Clone)]
struct SimRun {
    id: u64,
    workflow: String,
    git_ref: String,
    event: String,
    inputs: BTreeMap<String, String>,
    created: DateTime<Utc>,
    attempt: u32,
    attempt_started: DateTime<Utc>,
    fails: bool,
    /// Its deployment was recorded when it concluded.
    settled: bool,
}

#[derive(Debug, Clone)]
struct SimDeployment {
    id: u64,
    environment: String,
    version: String,
    sha: String,
    created: DateTime<Utc>,
    /// Newest last: (state, environment_url, at).
    statuses: Vec<(String, Option<String>, DateTime<Utc>)>,
}

#[derive(Debug)]
struct State {
    clock: SharedClock,
    run_time: Duration,
    issues: Vec<SimIssue>,
    next_id: u64,
    scope_keys: BTreeMap<String, ScopeKey>,
    secrets: BTreeMap<(String, String), SimSecret>,
    runs: Vec<SimRun>,
    deployments: Vec<SimDeployment>,
    failing_versions: BTreeSet<String>,
    commits: Vec<Value>,
    pulls: Vec<Value>,
    releases: Vec<Value>,
    hooks: Vec<Value>,
    collaborators: Vec<Value>,
    keys: Vec<Value>,
    ledger: Ledger,
    app_tokens: Vec<(String, DateTime<Utc>)>,
    rate_remaining: u64,
    rate_reset: DateTime<Utc>,
    not_modified: u64,
    return_run_details: bool,
    workflows: BTreeMap<String, workflows::SimWorkflow>,
    dependabot_alerts: Vec<Value>,
    code_scanning_alerts: Vec<Value>,
    /// Dependabot alerts switched off for the repository: listing them is 403.
    dependabot_off: bool,
}

/// An issue as the simulator holds it, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueView {
    /// The title.
    pub title: String,
    /// The Markdown body.
    pub body: String,
    /// Label names.
    pub labels: Vec<String>,
    /// `open` or `closed`.
    pub state: String,
    /// Why it was closed.
    pub state_reason: Option<String>,
    /// Comment bodies, oldest first.
    pub comments: Vec<String>,
}

/// Builds a [`GithubSim`].
#[derive(Debug)]
pub struct GithubSimBuilder {
    clock: SharedClock,
    run_time: Duration,
    return_run_details: bool,
}

impl GithubSimBuilder {
    /// The clock runs progress on (share it with the client).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// How long a workflow run takes (default 2 min).
    pub fn run_time(mut self, d: Duration) -> Self {
        self.run_time = d;
        self
    }

    /// Answer dispatches with `204 No Content` and no run id, as GitHub Enterprise Server
    /// versions before `return_run_details` do.
    pub fn without_run_details(mut self) -> Self {
        self.return_run_details = false;
        self
    }

    /// Starts the server with `v1.0.0` deployed to production, and a week of activity.
    pub async fn start(self) -> GithubSim {
        let now = self.clock.now();
        let mut state = State {
            clock: self.clock,
            run_time: self.run_time,
            issues: Vec::new(),
            next_id: 1000,
            scope_keys: BTreeMap::new(),
            secrets: BTreeMap::new(),
            runs: Vec::new(),
            deployments: Vec::new(),
            failing_versions: BTreeSet::new(),
            commits: Vec::new(),
            pulls: Vec::new(),
            releases: Vec::new(),
            hooks: Vec::new(),
            collaborators: Vec::new(),
            keys: Vec::new(),
            ledger: Ledger::default(),
            app_tokens: Vec::new(),
            rate_remaining: 5000,
            rate_reset: now + chrono::Duration::hours(1),
            not_modified: 0,
            return_run_details: self.return_run_details,
            workflows: workflows::seeded(now),
            dependabot_alerts: Vec::new(),
            code_scanning_alerts: Vec::new(),
            dependabot_off: false,
        };
        seed::seed(&mut state, now);
        GithubSim {
            sim: SimServer::start(state).await,
        }
    }
}

/// A running simulator.
#[derive(Debug)]
pub struct GithubSim {
    sim: SimServer<State>,
}

impl GithubSim {
    /// A simulator with the defaults, on the system clock.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// A builder.
    pub fn builder() -> GithubSimBuilder {
        GithubSimBuilder {
            clock: system_clock(),
            run_time: Duration::from_secs(120),
            return_run_details: true,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.sim.state()
    }

    /// The base URL.
    pub fn uri(&self) -> String {
        self.sim.uri()
    }

    /// A config for the simulator (its token).
    pub fn config(&self) -> Result<GithubConfig> {
        GithubConfig::token(SIM_TOKEN).base_url(&self.sim.uri())
    }

    /// A client on the simulator's clock.
    pub fn client(&self) -> Result<GithubClient> {
        let clock = self.state().clock.clone();
        Ok(GithubClient::new(self.config()?)?.with_clock(clock))
    }

    /// A deployer for `deploy.yml` → `production`, with a `promote` input, polling every `poll`.
    pub fn deployer(&self, poll: Duration) -> Result<WorkflowDeployer> {
        Ok(
            WorkflowDeployer::new(self.client()?, SIM_REPO, SIM_WORKFLOW, SIM_ENVIRONMENT)?
                .inputs(WorkflowInputs {
                    promote: Some("promote".into()),
                    ..WorkflowInputs::default()
                })
                .with_polling(poll),
        )
    }

    /// The repository's Actions secrets.
    pub fn repo_secrets(&self) -> Result<ActionsSecrets> {
        ActionsSecrets::repository(self.client()?, SIM_REPO)
    }

    /// The `production` environment's secrets.
    pub fn environment_secrets(&self) -> Result<ActionsSecrets> {
        ActionsSecrets::new(
            self.client()?,
            SecretScope::Environment {
                repo: crate::client::Repo::parse(SIM_REPO)?,
                environment: SIM_ENVIRONMENT.into(),
            },
        )
    }

    /// The organisation's secrets, written for private repositories.
    pub fn org_secrets(&self) -> Result<ActionsSecrets> {
        ActionsSecrets::new(
            self.client()?,
            SecretScope::Organization {
                org: SIM_ORG.into(),
                visibility: OrgVisibility::Private,
            },
        )
    }

    /// Runs dispatched for `version` fail from now on (until [`GithubSim::heal_version`]).
    pub fn fail_version(&self, version: &str) {
        self.state().failing_versions.insert(version.to_string());
    }

    /// Runs of `version` succeed again (a re-run of failed jobs then passes).
    pub fn heal_version(&self, version: &str) {
        self.state().failing_versions.remove(version);
    }

    /// The stored ciphertext of a secret, where `scope` is the API path of the scope's secrets
    /// (`repos/acme/app/actions/secrets`, `repos/acme/app/environments/production/secrets`,
    /// `orgs/acme/actions/secrets`).
    pub fn sealed_secret(&self, scope: &str, name: &str) -> Option<Vec<u8>> {
        self.state()
            .secrets
            .get(&(scope.to_string(), name.to_string()))
            .map(|s| s.ciphertext.clone())
    }

    /// The private X25519 key of `scope`, to open what [`GithubSim::sealed_secret`] returns.
    pub fn scope_private_key(&self, scope: &str) -> Option<crypto_box::SecretKey> {
        self.state().scope_keys.get(scope).map(|k| k.secret.clone())
    }

    /// The issue `number` as the simulator holds it.
    pub fn issue(&self, number: u64) -> Option<IssueView> {
        self.state()
            .issues
            .iter()
            .find(|i| i.number == number)
            .map(|i| IssueView {
                title: i.title.clone(),
                body: i.body.clone(),
                labels: i.labels.clone(),
                state: i.state.clone(),
                state_reason: i.state_reason.clone(),
                comments: i.comments.iter().map(|c| c.1.clone()).collect(),
            })
    }

    /// Adds `n` open, unrelated issues labelled `label` (every seventh a pull request), to
    /// exercise paging and the pull-request filter.
    pub fn add_noise_issues(&self, label: &str, n: usize) {
        let mut s = self.state();
        let now = s.clock.now();
        for i in 0..n {
            let number = s.next_number();
            s.issues.push(SimIssue {
                number,
                title: format!("unrelated incident {i}"),
                body: format!("noise {i}"),
                labels: vec![label.to_string()],
                assignees: Vec::new(),
                state: "open".into(),
                state_reason: None,
                comments: Vec::new(),
                created: now,
                updated: now,
                pull_request: i % 7 == 0,
            });
        }
    }

    /// The next response reports `remaining` requests left in a window that resets in
    /// `reset_in`.
    pub fn set_rate_limit(&self, remaining: u64, reset_in: Duration) {
        let mut s = self.state();
        s.rate_remaining = remaining;
        s.rate_reset = s.clock.now() + reset_in;
    }

    /// Starts a run of `workflow` (`ci.yml`, `agents.yml`) as its trigger would (`schedule`,
    /// `push`), failing its test job when `fails`; `None` when the workflow is disabled (or
    /// unknown), since a disabled workflow starts nothing.
    pub fn trigger_workflow(&self, workflow: &str, event: &str, fails: bool) -> Option<u64> {
        let mut s = self.state();
        let now = s.clock.now();
        s.trigger(workflow, event, fails, now)
    }

    /// Switches Dependabot alerts off for the repository: listing them answers 403, as GitHub
    /// does.
    pub fn disable_dependabot_alerts(&self) {
        self.state().dependabot_off = true;
    }

    /// A workflow's state (`active`, `disabled_manually`).
    pub fn workflow_state(&self, workflow: &str) -> Option<String> {
        self.state()
            .workflows
            .get(workflow)
            .map(|w| w.state.clone())
    }

    /// `304 Not Modified` answers so far.
    pub fn not_modified(&self) -> u64 {
        self.state().not_modified
    }
}

impl State {
    fn next_number(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

impl Simulator for GithubSim {
    fn with_ledger<R>(&self, f: impl FnOnce(&mut Ledger) -> R) -> R {
        self.sim.with_ledger(f)
    }
}
