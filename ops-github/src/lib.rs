//! GitHub provider for `ops`: incident issues, Actions secrets, workflow deploys and repository
//! activity.
//!
//! This crate is a placeholder; the services land in later work (see the project's issues).
