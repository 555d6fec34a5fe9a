//! PostgreSQL provider for `ops`: health, streamed logical backups, maintenance, and a shared
//! journal and run lock.
//!
//! This crate is a placeholder; the services land in later work (see the project's issues).
