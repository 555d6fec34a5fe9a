//! Runnable templates for `ops` runbooks, and the little harness they share.
//!
//! Run one with `cargo run -p ops-examples --example NAME`. With no flags an example rehearses
//! against the providers' simulators (no account, no credentials); `--fault NAME` injects a
//! named failure, `--dry-run` prints the plan, `--live` runs the same code against real
//! providers with credentials from the standard places. `--help` lists an example's options.
//!
//! The harness is deliberately small so a copied example stays readable:
//! - [`Cli`]: the shared flags plus the options an example declares in its [`Spec`];
//! - [`Session`]: the clock (a [`ops_core::clock::ScaledClock`] in a rehearsal), the journal
//!   and run lock, the progress display, approvals, reports and the exit code;
//! - [`progress`]: draws the engine's progress events;
//! - [`providers`]: each provider's client, from its simulator or from real credentials.

mod cli;
pub mod progress;
pub mod providers;
mod session;

pub use cli::{Cli, Opt, Spec, UsageError};
pub use session::{ConsoleApprover, Session};
