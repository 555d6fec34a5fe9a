//! The client core: configuration, the bearer token, the team scope on every call, and the one
//! error mapping for Vercel's `{"error":{"code","message"}}` bodies.

use std::fmt;
use std::sync::Arc;

use ops_core::clock::SharedClock;
use ops_core::http::{Authorizer, HttpClient, HttpConfig, JsonRequest, SendOptions};
use ops_core::redact::redact_text;
use ops_core::{Error, ErrorKind, Result};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

/// How to reach Vercel.
#[derive(Clone)]
pub struct VercelConfig {
    /// An access token (`VERCEL_TOKEN`).
    pub token: SecretString,
    /// The team id (`team_…`) every call is scoped to, if the project belongs to a team.
    pub team_id: Option<String>,
    /// The team slug, as an alternative to the id.
    pub slug: Option<String>,
    /// The API base URL (`https://api.vercel.com/`).
    pub base_url: Url,
    /// Timeouts and retries.
    pub http: HttpConfig,
}

impl fmt::Debug for VercelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VercelConfig")
            .field("token", &"[redacted]")
            .field("team_id", &self.team_id)
            .field("slug", &self.slug)
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

impl VercelConfig {
    /// A config for `token` against `https://api.vercel.com/`.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: SecretString::from(token.into()),
            team_id: None,
            slug: None,
            base_url: Url::parse("https://api.vercel.com/").expect("a valid URL"),
            http: HttpConfig::default(),
        }
    }

    /// `VERCEL_TOKEN` (and `VERCEL_TEAM_ID` if set) from the environment.
    pub fn from_env() -> Result<Self> {
        let token = std::env::var("VERCEL_TOKEN").map_err(|_| {
            Error::invalid_input(
                "vercel",
                "config",
                "VERCEL_TOKEN",
                "is not set: create a token at vercel.com/account/tokens",
            )
        })?;
        let mut c = Self::new(token);
        c.team_id = std::env::var("VERCEL_TEAM_ID")
            .ok()
            .filter(|t| !t.is_empty());
        Ok(c)
    }

    /// The same config scoped to `team_id`.
    pub fn team(mut self, team_id: impl Into<String>) -> Self {
        self.team_id = Some(team_id.into());
        self
    }

    /// The same config against `base` (a simulator or proxy).
    pub fn base_url(mut self, base: &str) -> Result<Self> {
        let mut url = Url::parse(base)
            .map_err(|e| Error::invalid_input("vercel", "config", "base_url", e.to_string()))?;
        if !url.path().ends_with('/') {
            let p = format!("{}/", url.path());
            url.set_path(&p);
        }
        self.base_url = url;
        Ok(self)
    }
}

/// An authenticated, team-scoped client.
#[derive(Debug, Clone)]
pub struct VercelClient {
    http: HttpClient,
    auth: Authorizer,
    config: Arc<VercelConfig>,
}

impl VercelClient {
    /// A client for `config`.
    pub fn new(config: VercelConfig) -> Result<Self> {
        if config.token.expose_secret().trim().is_empty() {
            return Err(Error::invalid_input(
                "vercel", "config", "token", "is empty",
            ));
        }
        let http =
            HttpClient::new("vercel", &config.http)?.with_error_parser(Arc::new(parse_error));
        Ok(Self {
            http,
            auth: Authorizer::bearer(config.token.expose_secret()),
            config: Arc::new(config),
        })
    }

    /// The same client on `clock`.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.http = self.http.with_clock(clock);
        self
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        self.http.clock()
    }

    /// The underlying HTTP client.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// `path` (no leading `/`) on the API, with the team scope.
    pub fn url(&self, path: &str) -> Result<Url> {
        let mut url = self
            .config
            .base_url
            .join(path)
            .map_err(|e| Error::invalid_input("vercel", "url", "path", e.to_string()))?;
        if let Some(t) = &self.config.team_id {
            url.query_pairs_mut().append_pair("teamId", t);
        }
        if let Some(s) = &self.config.slug {
            url.query_pairs_mut().append_pair("slug", s);
        }
        Ok(url)
    }

    /// Sends a JSON request and decodes the JSON answer (the provider kit's one call).
    pub async fn call<B, T>(
        &self,
        operation: &'static str,
        method: Method,
        url: Url,
        body: Option<&B>,
        options: &SendOptions,
    ) -> Result<T>
    where
        B: Serialize + ?Sized + Sync,
        T: DeserializeOwned,
    {
        let request = JsonRequest::new(operation, method, url)
            .json_opt(body)?
            .options(options.clone());
        self.http.call_json(&self.auth, request).await
    }

    /// GET a streamed body (`accept` names its media type): the response once its status is a
    /// success, its body left to read as it arrives. Retried like any GET before the body.
    pub async fn stream(
        &self,
        operation: &'static str,
        url: Url,
        resource: &str,
        accept: &'static str,
    ) -> Result<reqwest::Response> {
        let request = self
            .auth
            .authorize(self.http.get(url).header(reqwest::header::ACCEPT, accept))
            .await?;
        let options = SendOptions {
            resource: Some(resource.to_string()),
            ..SendOptions::default()
        };
        self.http.send_with(operation, request, &options).await
    }

    /// GET and decode.
    pub async fn get<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        url: Url,
        resource: &str,
    ) -> Result<T> {
        let request = JsonRequest::get(operation, url).resource(resource);
        self.http.call_json(&self.auth, request).await
    }
}

/// Vercel's error bodies: the `code` is kept; a few codes mean more than their status.
pub fn parse_error(status: StatusCode, _headers: &HeaderMap, body: &[u8]) -> Option<ErrorKind> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let e: Envelope = serde_json::from_slice(body).ok()?;
    let message = redact_text(&e.error.message);
    match (status.as_u16(), e.error.code.as_str()) {
        // Throttling and outages: the shared mapping reads the rate-limit headers.
        (429 | 503, _) | (403, "rate_limited") => None,
        (400, code) => Some(ErrorKind::InvalidInput {
            field: if code.is_empty() {
                "request".into()
            } else {
                code.to_string()
            },
            reason: message,
        }),
        (409, _) => Some(ErrorKind::Conflict {
            detail: format!("{}: {message}", e.error.code),
        }),
        (404, _) => Some(ErrorKind::NotFound { resource: message }),
        (401, _) => Some(ErrorKind::Unauthorized),
        (403, _) => Some(ErrorKind::Forbidden { detail: message }),
        (s, code) if s >= 500 => Some(ErrorKind::Provider {
            status: s,
            code: (!code.is_empty()).then(|| code.to_string()),
            body_excerpt: message,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_kept_and_tokens_never_shown() {
        let parse = |s: u16, b: &str| {
            parse_error(
                StatusCode::from_u16(s).unwrap(),
                &HeaderMap::new(),
                b.as_bytes(),
            )
        };
        assert_eq!(
            parse(
                400,
                r#"{"error":{"code":"bad_request","message":"Invalid request: `target` should be one of production, preview"}}"#
            ),
            Some(ErrorKind::InvalidInput {
                field: "bad_request".into(),
                reason: "Invalid request: `target` should be one of production, preview".into()
            })
        );
        assert!(
            matches!(parse(500, r#"{"error":{"code":"internal_server_error","message":"An unexpected error occurred."}}"#),
            Some(ErrorKind::Provider { code: Some(c), .. }) if c == "internal_server_error")
        );
        assert_eq!(
            parse(
                429,
                r#"{"error":{"code":"rate_limited","message":"Rate limit exceeded"}}"#
            ),
            None
        );
        assert!(matches!(
            parse(
                403,
                r#"{"error":{"code":"forbidden","message":"Not authorized"}}"#
            ),
            Some(ErrorKind::Forbidden { .. })
        ));
        let c = VercelConfig::new("vc_secret_token_value");
        assert!(!format!("{c:?}").contains("vc_secret"));
    }
}
