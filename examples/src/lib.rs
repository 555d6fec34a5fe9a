//! Runnable templates for `ops` runbooks, and the little harness they share.
//!
//! Run one with `cargo run -p ops-examples --example NAME`. With no flags an example rehearses
//! against the providers' simulators (no account, no credentials); `--fault NAME` injects a
//! named failure, `--dry-run` prints the plan, `--live` runs the same code against real
//! providers with credentials from the standard places. `--help` lists an example's options.
//!
//! The harness is deliberately small so a copied example stays readable:
//! - [`Common`]: the shared flags, flattened into each example's own clap `Parser`, and
//!   [`parse`], which adds the rehearsal conventions (see [`args`]);
//! - [`run`]: an example's `main`, which turns a [`Failure`] into a one-line message and its
//!   exit code (0 success, 1 a run failed, 2 bad input, 3 a rehearsal check failed);
//! - [`Session`]: the clock (a [`ops_core::clock::ScaledClock`] in a rehearsal), the journal
//!   and run lock, the progress display, approvals, reports and the exit code;
//! - [`progress`]: draws the engine's progress events;
//! - [`providers`]: each provider's client, from its simulator or from real credentials.

pub mod args;
mod failure;
pub mod progress;
pub mod providers;
mod session;

pub use args::{Common, GcpArgs, Parsed, parse};
pub use failure::{EXIT_CHECK_FAILED, EXIT_RUN_FAILED, EXIT_USAGE, Failure};
pub use session::{ConsoleApprover, Session, env_var, run, run_in_real_time};
