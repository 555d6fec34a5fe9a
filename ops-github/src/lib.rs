//! GitHub for `ops`: incidents as issues ([`GithubIssues`], a `Notifier`), Actions secrets
//! ([`ActionsSecrets`], a `SecretStore`), deploys through a workflow ([`WorkflowDeployer`], a
//! `Deployer`), repository activity for reviews and incident evidence ([`RepoActivity`]), and a
//! repository audit ([`RepoAudit`], a `SecurityAuditor`), over the REST API with a token or a
//! GitHub App.

pub mod actions;
pub mod activity;
pub mod audit;
pub mod auth;
pub mod client;
pub mod issues;
pub mod model;
pub mod secrets;
#[cfg(feature = "sim")]
pub mod sim;

pub use actions::{WorkflowDeployer, WorkflowInputs};
pub use activity::RepoActivity;
pub use audit::RepoAudit;
pub use auth::GithubApp;
pub use client::{Credentials, GithubClient, GithubConfig, Repo};
pub use issues::GithubIssues;
pub use secrets::{ActionsSecrets, SecretScope};
