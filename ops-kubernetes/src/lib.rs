//! Kubernetes provider for `ops`: a Deployment as a [`Deployer`](ops_core::contracts::Deployer)
//! the way `kubectl rollout` drives it ([`KubeDeployment`]: set image and follow the rollout,
//! undo, restart, scale, pause), canary and blue-green releases split between slot Deployments
//! by Gateway API weights or a replica ratio ([`KubeCanary`]), and a simulator of the API
//! (feature `sim`).
//!
//! Configuration comes from a kubeconfig or the pod's service account, read by kube-rs's own
//! loader ([`KubeConfig::infer`]); requests and replies are k8s-openapi's types, generated
//! from Kubernetes' OpenAPI description, sent through `ops-core`'s HTTP client (one retry
//! policy honouring `Retry-After` from API priority and fairness, one error mapping of the
//! server's `Status` objects, [`client::parse_error`]). Object names are checked before any
//! request is made.
//!
//! Layout, as in every provider crate: [`client`] (configuration, the one error mapping), one
//! module per API area ([`deployment`], [`rollout`]), and `sim`.
//!
//! Cold build cost: k8s-openapi compiles every API type of one Kubernetes version (about
//! 30 s of CPU in a debug build); kube contributes only its `config` feature.

pub mod canary;
pub mod client;
pub mod deployment;
pub mod health;
pub mod logs;
pub mod metrics;
pub mod recover;
pub mod rollout;
pub mod secrets;
#[cfg(feature = "sim")]
pub mod sim;

pub use canary::{CanaryMetrics, CanaryTraffic, HttpRoute, KubeCanary};
pub use client::{KubeClient, KubeConfig};
pub use deployment::KubeDeployment;
pub use health::KubeHealth;
pub use logs::KubeLogs;
pub use metrics::KubeMetrics;
pub use recover::{RecoverConfig, RecoverDeployment};
pub use secrets::KubeSecrets;
