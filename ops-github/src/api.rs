//! What every GitHub request carries, shared by the client and App authentication (which mints
//! its tokens before any client call can be made, so it cannot go through the client).

use ops_core::{Error, Result};
use reqwest::header::{ACCEPT, HeaderMap, HeaderName, HeaderValue};

/// The REST API version every request asks for (`X-GitHub-Api-Version`).
pub const API_VERSION: &str = "2022-11-28";

/// The media type every request accepts.
pub const MEDIA_TYPE: &str = "application/vnd.github+json";

/// `Accept` and `X-GitHub-Api-Version` for `api_version`; `InvalidInput` when the version is
/// not a header value.
pub fn headers(api_version: &str) -> Result<HeaderMap> {
    let version = HeaderValue::from_str(api_version).map_err(|_| {
        Error::invalid_input("github", "config", "api_version", "not a header value")
    })?;
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static(MEDIA_TYPE));
    headers.insert(HeaderName::from_static("x-github-api-version"), version);
    Ok(headers)
}
