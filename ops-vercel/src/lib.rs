//! Vercel provider for `ops`: deployments, promote and instant rollback, environment variables.
//!
//! This crate is a placeholder; the services land in later work (see the project's issues).
