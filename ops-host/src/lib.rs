//! `ops-host`: services on hosts you own, the platform of the Godel seed (a Node service under
//! pm2 with its logs in `logs/`).
//!
//! Today it holds [`logfile::LogFiles`]: a log file and its rotations as a
//! [`ops_core::contracts::LogSource`], so the weekly review and deploy verification read a
//! self-hosted service's `error.log` the way they read Cloud Logging. The pm2 deployer, the
//! command deployer, nginx-weighted canaries and the access-log metrics of issue 28 are to
//! come.

pub mod access_log;
pub mod command;
mod exit;
pub mod lines;
pub mod logfile;
pub mod nginx;
pub mod pm2;
