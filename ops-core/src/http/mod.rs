//! The HTTP plumbing every provider uses: one reqwest client set-up (rustls, timeouts, user
//! agent, gzip), one retry policy, one status → [`crate::ErrorKind`] mapping.
//!
//! ```no_run
//! # async fn f() -> ops_core::Result<()> {
//! use ops_core::http::{HttpClient, HttpConfig};
//! let http = HttpClient::new("example", &HttpConfig::default())?;
//! let req = http.get("https://api.example.com/v1/things");
//! let things: serde_json::Value = http.send_json("list_things", req).await?;
//! # Ok(()) }
//! ```

mod call;
mod error_map;
pub mod lenient;
pub mod pages;
pub mod record;
mod retry_after;
mod token;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

pub use crate::redact::redact_excerpt;
pub use call::{Authorizer, JsonRequest, Reply};
pub use error_map::{error_for_status, error_for_transport, provider_code};
pub use retry_after::retry_after;
pub use token::{AccessToken, StaticToken, TokenProvider, TokenSource};

use crate::clock::{SharedClock, system_clock};
use crate::retry::{Idempotency, RetryPolicy};
use crate::{Error, ErrorKind, Result};

/// The most bytes of a response body kept in an error.
pub const BODY_EXCERPT_LIMIT: usize = 512;

/// The largest response body [`HttpClient::send_bytes`] reads into memory.
pub const MAX_BUFFERED_BODY: usize = 32 * 1024 * 1024;

/// How the HTTP client is set up. Loadable from a config file; every field has a default:
///
/// ```
/// let c: ops_core::http::HttpConfig = toml::from_str(r#"
/// read_timeout = "2m"
/// retry = { max_attempts = 3 }
/// "#).unwrap();
/// assert_eq!(c.read_timeout.as_secs(), 120);
/// assert_eq!(c.retry.max_attempts, 3);
/// assert_eq!(c.connect_timeout.as_secs(), 10);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Time allowed to open a connection.
    #[serde(with = "crate::config::duration::human")]
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response, for every request (a stalled stream
    /// fails; a long but moving one does not).
    #[serde(with = "crate::config::duration::human")]
    pub read_timeout: Duration,
    /// Time allowed for one whole attempt of a buffered call ([`HttpClient::send_bytes`],
    /// [`HttpClient::send_json`]), body included. Streamed calls ([`HttpClient::send`]) have
    /// only the read timeout, so large transfers are not cut off.
    #[serde(with = "crate::config::duration::human")]
    pub request_timeout: Duration,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// How failed idempotent requests are retried.
    pub retry: RetryPolicy,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            user_agent: concat!("ops/", env!("CARGO_PKG_VERSION")).to_string(),
            retry: RetryPolicy::default(),
        }
    }
}

/// TLS beyond the web's roots: a private certificate authority and a client certificate.
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// Root certificates trusted besides the built-in ones, DER-encoded.
    pub root_certs_der: Vec<Vec<u8>>,
    /// Root certificates trusted besides the built-in ones, as PEM bundles.
    pub root_certs_pem: Vec<Vec<u8>>,
    /// A client certificate and its private key, PEM, one after the other (kept secret).
    pub identity_pem: Option<secrecy::SecretSlice<u8>>,
    /// Skip checking the server's certificate (a kubeconfig's `insecure-skip-tls-verify`).
    pub accept_invalid_certs: bool,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field(
                "root_certs",
                &(self.root_certs_der.len() + self.root_certs_pem.len()),
            )
            .field(
                "identity",
                &self.identity_pem.as_ref().map(|_| "[redacted]"),
            )
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .finish()
    }
}

/// What a send accepts beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// Overrides the idempotency derived from the method and headers.
    pub idempotency: Option<Idempotency>,
    /// Non-2xx statuses returned as responses instead of errors (e.g. `308` for resumable
    /// uploads).
    pub accept: Vec<u16>,
    /// What was asked for, named in `NotFound` errors (defaults to the URL path).
    pub resource: Option<String>,
}

/// A provider's reading of its own error bodies: the [`ErrorKind`] for a non-success response,
/// or `None` to use the shared status mapping ([`error_for_status`]). One per provider, like
/// OpenDAL's `parse_error`.
pub type ErrorParser =
    Arc<dyn Fn(StatusCode, &HeaderMap, &[u8]) -> Option<ErrorKind> + Send + Sync>;

/// A reqwest client with a provider name, a retry policy and a clock.
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    provider: Cow<'static, str>,
    retry: RetryPolicy,
    read_timeout: Duration,
    request_timeout: Duration,
    clock: SharedClock,
    error_parser: Option<ErrorParser>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("provider", &self.provider)
            .field("retry", &self.retry)
            .field("read_timeout", &self.read_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("error_parser", &self.error_parser.is_some())
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client for `provider` (used in errors), set up from `config`.
    pub fn new(provider: impl Into<Cow<'static, str>>, config: &HttpConfig) -> Result<Self> {
        Self::with_tls(provider, config, &TlsOptions::default())
    }

    /// A client that also trusts `tls`'s roots and presents its client certificate (a
    /// Kubernetes API server, an internal service).
    pub fn with_tls(
        provider: impl Into<Cow<'static, str>>,
        config: &HttpConfig,
        tls: &TlsOptions,
    ) -> Result<Self> {
        let provider = provider.into();
        config.retry.validate()?;
        let invalid = |field: &str, reason: String| {
            Error::invalid_input(provider.clone(), "http_client", field, reason)
        };
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .user_agent(&config.user_agent)
            .gzip(true)
            .redirect(reqwest::redirect::Policy::none());
        for der in &tls.root_certs_der {
            let cert = reqwest::Certificate::from_der(der)
                .map_err(|e| invalid("root_certs_der", e.to_string()))?;
            builder = builder.add_root_certificate(cert);
        }
        for pem in &tls.root_certs_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| invalid("root_certs_pem", e.to_string()))?;
            if certs.is_empty() {
                return Err(invalid("root_certs_pem", "holds no certificate".into()));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(identity) = &tls.identity_pem {
            use secrecy::ExposeSecret;
            // reqwest's error text about a key names no key material.
            let identity = reqwest::Identity::from_pem(identity.expose_secret())
                .map_err(|e| invalid("identity_pem", e.to_string()))?;
            builder = builder.identity(identity);
        }
        if tls.accept_invalid_certs {
            builder = builder.danger_accept_invalid_certs(true);
        }
        // reqwest reads certificates only here: say which setting, with the cause.
        let inner = builder.build().map_err(|e| {
            let cause =
                std::error::Error::source(&e).map_or_else(|| e.to_string(), |c| c.to_string());
            let field = if tls.root_certs_der.is_empty() {
                "config"
            } else {
                "config (root_certs_der?)"
            };
            invalid(field, cause)
        })?;
        Ok(Self {
            inner,
            provider,
            retry: config.retry.clone(),
            read_timeout: config.read_timeout,
            request_timeout: config.request_timeout,
            clock: system_clock(),
            error_parser: None,
        })
    }

    /// The same client reading error bodies with `parser` first (see [`ErrorParser`]).
    pub fn with_error_parser(mut self, parser: ErrorParser) -> Self {
        self.error_parser = Some(parser);
        self
    }

    /// The same client under another provider name (errors, logs and request records name
    /// it): a client made for tests or shared set-up, handed to a provider, speaks as it.
    pub fn with_provider(mut self, provider: impl Into<Cow<'static, str>>) -> Self {
        self.provider = provider.into();
        self
    }

    /// The same client reading time from `clock` (tests use a paused clock).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The same client with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The retry policy (for loops that retry on their own, such as resumable uploads).
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The clock this client uses.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The provider name errors carry.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Starts a request.
    pub fn request(&self, method: Method, url: impl reqwest::IntoUrl) -> RequestBuilder {
        self.inner.request(method, url)
    }

    /// Starts a GET.
    pub fn get(&self, url: impl reqwest::IntoUrl) -> RequestBuilder {
        self.inner.get(url)
    }

    /// Starts a POST.
    pub fn post(&self, url: impl reqwest::IntoUrl) -> RequestBuilder {
        self.inner.post(url)
    }

    /// Sends with default options and returns the response once its status is a success,
    /// leaving the body to stream. Retries happen before the body is read.
    pub async fn send(&self, operation: &'static str, request: RequestBuilder) -> Result<Response> {
        self.send_with(operation, request, &SendOptions::default())
            .await
    }

    /// [`HttpClient::send`] with options.
    ///
    /// Idempotent requests (GET, HEAD, PUT, DELETE, OPTIONS, or any request with an
    /// `Idempotency-Key` or `X-Request-Id` header) are retried on retryable errors. Others are
    /// retried only when throttled or when the connection never opened. A request whose body is
    /// a stream cannot be replayed and is sent once.
    pub async fn send_with(
        &self,
        operation: &'static str,
        request: RequestBuilder,
        options: &SendOptions,
    ) -> Result<Response> {
        self.execute(operation, request, options, false, |resp| async move {
            Ok(resp)
        })
        .await
    }

    /// Sends and reads the whole body (at most [`MAX_BUFFERED_BODY`]), retrying a body cut
    /// short as well as the request.
    pub async fn send_bytes(
        &self,
        operation: &'static str,
        request: RequestBuilder,
        options: &SendOptions,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>)> {
        let provider = self.provider.clone();
        let timeout = self.request_timeout;
        // When recording, the request as recorded, to file a simulator's reply under.
        let recorded = record::recording()
            .then(|| request.try_clone()?.build().ok())
            .flatten()
            .map(|r| record::recorded(&self.provider, operation, &r));
        let reply = self
            .execute(operation, request, options, true, move |resp| {
                let provider = provider.clone();
                async move {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    let body = read_body(resp, &provider, operation, timeout).await?;
                    Ok((status, headers, body))
                }
            })
            .await?;
        if let Some(r) = recorded {
            record::record_reply(r, reply.0.as_u16(), &reply.1, &reply.2);
        }
        Ok(reply)
    }

    /// Sends and decodes a JSON body. Truncated bodies are retried (for idempotent requests);
    /// complete but malformed JSON is a [`ErrorKind::Decode`] error.
    pub async fn send_json<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        request: RequestBuilder,
    ) -> Result<T> {
        let (_, _, body) = self
            .send_bytes(operation, request, &SendOptions::default())
            .await?;
        decode_json(&self.provider, operation, &body)
    }

    async fn execute<T, F, Fut>(
        &self,
        operation: &'static str,
        request: RequestBuilder,
        options: &SendOptions,
        buffered: bool,
        on_success: F,
    ) -> Result<T>
    where
        F: Fn(Response) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut request = request.build().map_err(|e| {
            error_for_transport(self.provider.clone(), operation, &e, self.read_timeout)
        })?;
        record::record(&self.provider, operation, &request);
        // The deadline a timeout error reports: the whole attempt for buffered calls (unless the
        // caller set its own), the idle read time for streamed ones.
        let timeout = if buffered {
            *request.timeout_mut().get_or_insert(self.request_timeout)
        } else {
            request.timeout().copied().unwrap_or(self.read_timeout)
        };
        let idempotency = options
            .idempotency
            .unwrap_or_else(|| idempotency_of(request.method(), request.headers()));
        let resource = options
            .resource
            .clone()
            .unwrap_or_else(|| request.url().path().to_string());
        // A streamed body cannot be replayed: one attempt only.
        let replayable = request.try_clone().is_some();
        let policy = if replayable {
            self.retry.clone()
        } else {
            RetryPolicy {
                max_attempts: 1,
                ..self.retry.clone()
            }
        };
        // Replayable requests are cloned from a template for each attempt; a streamed one is
        // sent once from `single`.
        let (template, mut single) = if replayable {
            (Some(request), None)
        } else {
            (None, Some(request))
        };
        policy
            .run(self.clock.as_ref(), idempotency, |_| {
                let next = match &template {
                    Some(t) => t.try_clone(),
                    None => single.take(),
                };
                let attempt = next.ok_or_else(|| {
                    Error::new(
                        self.provider.clone(),
                        operation,
                        ErrorKind::Unsupported {
                            capability: "replaying a streamed request body".into(),
                        },
                    )
                });
                let resource = resource.clone();
                let on_success = &on_success;
                async move {
                    let req = attempt?;
                    let resp = self.inner.execute(req).await.map_err(|e| {
                        error_for_transport(self.provider.clone(), operation, &e, timeout)
                    })?;
                    let status = resp.status();
                    if status.is_success() || options.accept.contains(&status.as_u16()) {
                        return on_success(resp).await;
                    }
                    Err(self.status_error(operation, &resource, resp).await)
                }
            })
            .await
    }

    async fn status_error(&self, operation: &'static str, resource: &str, resp: Response) -> Error {
        let status = resp.status();
        let headers = resp.headers().clone();
        // Only the start of the body is needed for the excerpt and the provider code.
        let body = read_prefix(resp, 16 * 1024).await;
        let parsed = self
            .error_parser
            .as_ref()
            .and_then(|parse| parse(status, &headers, &body));
        let err = match parsed {
            Some(kind) => Error::new(self.provider.clone(), operation, kind),
            None => error_for_status(
                self.provider.clone(),
                operation,
                resource,
                status,
                &headers,
                &body,
                self.clock.now(),
            ),
        };
        tracing::debug!(provider = %self.provider, operation, status = status.as_u16(), error = %err, "request failed");
        err
    }
}

/// Whether a request may be repeated without repeating its effect.
pub fn idempotency_of(method: &Method, headers: &HeaderMap) -> Idempotency {
    let keyed = headers.contains_key("idempotency-key") || headers.contains_key("x-request-id");
    if keyed
        || matches!(
            *method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        )
    {
        Idempotency::Idempotent
    } else {
        Idempotency::NotIdempotent
    }
}

/// Decodes JSON, turning failure into a [`ErrorKind::Decode`] error that names the position but
/// not the body.
pub fn decode_json<T: DeserializeOwned>(
    provider: &str,
    operation: &'static str,
    body: &[u8],
) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        Error::new(
            provider.to_string(),
            operation,
            ErrorKind::Decode {
                detail: format!("invalid JSON response ({e}; {} bytes)", body.len()),
            },
        )
    })
}

/// A bearer `Authorization` header value marked sensitive (reqwest then hides it from `Debug`).
pub fn bearer(token: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        Error::invalid_input("ops-core", "auth", "token", "not a valid header value")
    })?;
    v.set_sensitive(true);
    Ok(v)
}

async fn read_body(
    mut resp: Response,
    provider: &str,
    operation: &'static str,
    timeout: Duration,
) -> Result<Vec<u8>> {
    let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0).min(1 << 20) as usize);
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BUFFERED_BODY {
                    return Err(Error::new(
                        provider.to_string(),
                        operation,
                        ErrorKind::Decode {
                            detail: format!("response body larger than {MAX_BUFFERED_BODY} bytes"),
                        },
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(error_for_transport(
                    provider.to_string(),
                    operation,
                    &e,
                    timeout,
                ));
            }
        }
    }
}

async fn read_prefix(mut resp: Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())])
            }
            _ => break,
        }
    }
    body
}

#[cfg(test)]
mod tls_tests {
    use super::*;

    #[test]
    fn unusable_tls_material_is_invalid_input_and_never_shown() {
        let key = b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n";
        let tls = TlsOptions {
            identity_pem: Some(key.to_vec().into()),
            ..TlsOptions::default()
        };
        assert!(!format!("{tls:?}").contains("c2VjcmV0"));
        let e = HttpClient::with_tls("t", &HttpConfig::default(), &tls).unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::InvalidInput { field, .. } if field == "identity_pem"),
            "{e}"
        );
        assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
        for (tls, field) in [
            (
                TlsOptions {
                    root_certs_pem: vec![b"not a certificate".to_vec()],
                    ..Default::default()
                },
                "root_certs_pem",
            ),
            (
                TlsOptions {
                    root_certs_der: vec![vec![0x30, 0x03, 0x02]],
                    ..Default::default()
                },
                "config (root_certs_der?)",
            ),
        ] {
            let e = HttpClient::with_tls("t", &HttpConfig::default(), &tls).unwrap_err();
            assert!(
                matches!(e.kind(), ErrorKind::InvalidInput { field: f, .. } if f == field),
                "{e}"
            );
        }
    }
}
