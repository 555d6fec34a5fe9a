//! Vercel provider for `ops`: deployments ([`VercelDeployer`], a `Deployer`), promote and
//! instant rollback, project environment variables ([`VercelEnv`], a `SecretStore`), a
//! production health probe ([`VercelHealth`]), and a simulator (feature `sim`).
//!
//! Every call carries the bearer token and, when configured, the team scope (`teamId`).
//! Vercel's error bodies (`{"error":{"code","message"}}`) become typed errors with the code
//! kept; `429` and the `x-ratelimit-reset` header are honoured by the shared retry policy.
//!
//! Layout, as in every provider crate: [`client`] (configuration, the one error mapping),
//! one module per API area, and `sim`.

pub mod client;
pub mod deployer;
pub mod env;
pub mod health;
pub mod model;
#[cfg(feature = "sim")]
pub mod sim;

pub use client::{VercelClient, VercelConfig};
pub use deployer::{GitRepo, VercelDeployer};
pub use env::VercelEnv;
pub use health::VercelHealth;
