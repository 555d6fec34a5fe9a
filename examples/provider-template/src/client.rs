//! How to reach Pager: its settings, the authenticated client, and the one reading of its
//! error bodies.

use std::fmt;
use std::sync::Arc;

use ops_core::clock::SharedClock;
use ops_core::config::Env;
use ops_core::http::{Authorizer, HttpClient, HttpConfig, JsonRequest};
use ops_core::redact::redact_text;
use ops_core::{Error, ErrorKind, Result};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

fn default_base_url() -> Url {
    Url::parse("https://api.pager.example/").expect("a valid URL")
}

/// Pager's settings, from a config file or the environment.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerConfig {
    /// The API token (a secret).
    pub token: SecretString,
    /// The API base URL (`https://api.pager.example/`).
    #[serde(default = "default_base_url")]
    pub base_url: Url,
    /// Timeouts and retries.
    #[serde(default)]
    pub http: HttpConfig,
}

// Written by hand so that the token prints as `[redacted]`.
impl fmt::Debug for PagerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerConfig")
            .field("token", &"[redacted]")
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

impl PagerConfig {
    /// `token` against Pager's public API.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: SecretString::from(token.into()),
            base_url: default_base_url(),
            http: HttpConfig::default(),
        }
    }

    /// The same settings against `base` (a simulator, a proxy).
    pub fn base_url(mut self, base: &str) -> Result<Self> {
        self.base_url = Url::parse(base)
            .map_err(|e| Error::invalid_input("pager", "config", "base_url", e.to_string()))?;
        Ok(self)
    }

    /// `PAGER_TOKEN` from the environment.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(Env::from_env("pager"))
    }

    /// [`Self::from_env`] over any variable lookup (tests).
    pub fn from_vars(env: Env<'_>) -> Result<Self> {
        Ok(Self::new(env.required("PAGER_TOKEN", "a Pager API token")?))
    }
}

/// Pager's error body: `{"error": {"code": "invalid_request", "message": "…"}}`. Only what the
/// body adds to the status is decided here; `None` leaves the rest (401, 403, 404, 429, 5xx)
/// to the shared mapping.
pub fn parse_error(status: StatusCode, _: &HeaderMap, body: &[u8]) -> Option<ErrorKind> {
    #[derive(Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        code: String,
        message: String,
    }
    let e = serde_json::from_slice::<Body>(body).ok()?.error;
    match (status.as_u16(), e.code.as_str()) {
        (400, _) => Some(ErrorKind::InvalidInput {
            field: e.code,
            reason: redact_text(&e.message),
        }),
        (409, "already_resolved") => Some(ErrorKind::Conflict {
            detail: redact_text(&e.message),
        }),
        _ => None,
    }
}

/// The authenticated client every Pager call goes through.
#[derive(Clone)]
pub struct PagerClient {
    http: HttpClient,
    auth: Authorizer,
    base: Url,
}

impl fmt::Debug for PagerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl PagerClient {
    /// The client `config` describes.
    pub fn new(config: PagerConfig) -> Result<Self> {
        let http = HttpClient::new("pager", &config.http)?.with_error_parser(Arc::new(parse_error));
        Ok(Self {
            http,
            auth: Authorizer::bearer(config.token.expose_secret()),
            base: config.base_url,
        })
    }

    /// The same client on `clock` (retry waits): a paused clock in tests.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.http = self.http.with_clock(clock);
        self
    }

    /// `path` under the base URL.
    pub(crate) fn url(&self, path: &str) -> Result<Url> {
        self.base
            .join(path)
            .map_err(|e| Error::invalid_input("pager", "url", "path", e.to_string()))
    }

    /// One JSON call: authorization, retries, the error mapping and decoding are the shared
    /// client's.
    pub(crate) async fn call<T: DeserializeOwned>(&self, request: JsonRequest) -> Result<T> {
        self.http.call_json(&self.auth, request).await
    }
}
