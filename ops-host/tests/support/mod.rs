//! Shared set-up of the tests on real programs.

pub mod pm2;
