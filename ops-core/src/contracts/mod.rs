//! The contracts: what a runbook talks to. Every trait is `Send + Sync`, object-safe and used as
//! `Arc<dyn Trait>`; with the `mock` feature each has a mockall mock (`MockDeployer`, ...).

mod audit;
mod backup;
mod common;
mod cost;
mod deploy;
mod health;
mod incident;
mod logs;
mod metrics;
mod notify;
mod on_call;
mod secret;

pub use audit::*;
pub use backup::*;
pub use common::*;
pub use cost::*;
pub use deploy::*;
pub use health::*;
pub use incident::*;
pub use logs::*;
pub use metrics::*;
pub use notify::*;
pub use on_call::*;
pub use secret::*;
