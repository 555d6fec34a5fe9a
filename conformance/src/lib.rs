//! Conformance of the requests the ops clients send to the official API descriptions.
//!
//! A test run with `OPS_HTTP_RECORD=DIR` leaves every request the clients sent (to simulators,
//! wiremock fakes and emulators alike) in `DIR` (see `ops_core::http::record`). This crate
//! checks each one against the descriptions vendored under `conformance/descriptions/`
//! (extracted by `conformance/extract.py` from Google's discovery documents, GitHub's OpenAPI
//! description and Vercel's SDK schemas): the operation must exist, its query parameters must
//! be known, typed as described and complete, and its JSON body must have only described
//! fields of the described types and values. `.ci/run` runs it after the tests.

pub mod check;
pub mod description;
pub mod report;

pub use check::{Violation, check, path_matches};
pub use description::Description;
