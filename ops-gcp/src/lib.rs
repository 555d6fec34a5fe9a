//! Google Cloud provider for `ops`: Cloud Run, Cloud SQL, Cloud Storage, Secret Manager,
//! Cloud Logging and Cloud Monitoring behind the `ops-core` contracts.
//!
//! This crate is a placeholder; the services land in later work (see the project's issues).
