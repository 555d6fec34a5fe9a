//! Shared set-up of the tests on real programs.

pub mod nginx;
pub mod pm2;
