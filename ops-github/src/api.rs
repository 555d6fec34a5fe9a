//! What every GitHub request carries, shared by the client and App authentication (which mints
//! its tokens before any client call can be made, so it cannot go through the client).

use ops_core::{Error, Result};
use reqwest::header::{ACCEPT, HeaderName, HeaderValue};

/// The REST API version every request asks for (`X-GitHub-Api-Version`).
pub const API_VERSION: &str = "2022-11-28";

/// The media type every request accepts.
pub const MEDIA_TYPE: &str = "application/vnd.github+json";

/// `Accept` and `X-GitHub-Api-Version` for `api_version`.
pub fn headers(api_version: &str) -> Result<[(HeaderName, HeaderValue); 2]> {
    let version = HeaderValue::from_str(api_version).map_err(|_| {
        Error::invalid_input("github", "config", "api_version", "not a header value")
    })?;
    Ok([
        (ACCEPT, HeaderValue::from_static(MEDIA_TYPE)),
        (HeaderName::from_static("x-github-api-version"), version),
    ])
}
