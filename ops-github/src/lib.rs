//! GitHub for `ops`, over the REST API (`X-GitHub-Api-Version: 2022-11-28`) with a token or a
//! GitHub App installation:
//!
//! | Type | Contract | What it does |
//! |---|---|---|
//! | [`GithubIssues`] | `Notifier` | an incident is an issue; updates are comments; resolution closes it |
//! | [`ActionsSecrets`] | `SecretStore` | Actions secrets of a repository, environment or organisation, sealed with `crypto_box` |
//! | [`WorkflowDeployer`] | `Deployer` | deploy = dispatch a workflow and await its run; current = the Deployments API |
//! | [`RepoActivity`] | — | commits, merged pull requests, workflow runs, releases with generated notes |
//! | [`RepoAudit`] | `SecurityAuditor` | webhooks, outside collaborators and deploy keys as findings |
//! | [`DependencyAlerts`] | `SecurityAuditor` | open Dependabot and code-scanning alerts by severity, age and fix |
//! | [`Workflows`] | — | workflows disabled and enabled, runs listed, failed runs with their failing jobs and log tails |
//!
//! The client core ([`client`]) follows `Link` pagination up to a cap, revalidates GETs with
//! their ETag (a `304` costs no quota), waits out an exhausted primary rate limit, retries
//! secondary limits after `retry-after`, and maps GitHub's error bodies to typed errors in one
//! place. The `sim` feature adds a stateful simulator of the same API.
//!
//! ```no_run
//! # async fn f() -> ops_core::Result<()> {
//! use ops_core::contracts::{Notification, NotificationEvent, Notifier, Severity};
//! use ops_github::{GithubClient, GithubConfig, GithubIssues};
//!
//! let client = GithubClient::new(GithubConfig::from_env()?)?; // GITHUB_TOKEN
//! let incidents = GithubIssues::new(client, "acme/app")?;
//! let declared = Notification::new(Severity::Critical, "api returns 503")
//!     .body("Error rate 12 % since 09:02 UTC.")
//!     .dedup_key("inc-2026-11-23-api");
//! incidents.send(&declared).await?; // opens the issue
//! let resolved = Notification::new(Severity::Info, "error rate back to 0.1 %")
//!     .dedup_key("inc-2026-11-23-api")
//!     .event(NotificationEvent::Resolve);
//! incidents.send(&resolved).await?; // comments and closes it, even after a restart
//! # Ok(()) }
//! ```

pub mod actions;
pub mod activity;
mod api;
pub mod audit;
pub mod auth;
pub mod client;
pub mod dependency_alerts;
pub mod issues;
pub mod model;
pub mod secrets;
#[cfg(feature = "sim")]
pub mod sim;
pub mod workflow_runbooks;
pub mod workflows;

pub use actions::{WorkflowDeployer, WorkflowInputs};
pub use activity::RepoActivity;
pub use audit::RepoAudit;
pub use auth::GithubApp;
pub use client::{Credentials, GithubClient, GithubConfig, Repo};
pub use dependency_alerts::DependencyAlerts;
pub use issues::GithubIssues;
pub use secrets::{ActionsSecrets, SecretScope};
pub use workflow_runbooks::{
    FailureAlertsConfig, SwitchWorkflows, Switched, WorkflowFailureAlerts,
};
pub use workflows::{FailedJob, FailedRun, RunFilter, Workflows};
