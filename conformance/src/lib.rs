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
pub mod replay;
pub mod replies;
pub mod report;

pub use check::{Violation, check, path_matches};
pub use description::Description;

/// A description vendored with this crate, by file name (`google-storage.v1.json`).
///
/// # Panics
/// When the file is missing or unreadable: a test helper, for tests.
pub fn vendored(file: &str) -> Description {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("descriptions")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Description::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
