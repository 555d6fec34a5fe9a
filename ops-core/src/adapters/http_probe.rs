//! [`HttpProbe`]: GET a URL, expect a status and JSON fields, report latency; request headers
//! (a bearer token) may come from a [`SecretStore`] and are never shown.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;

use crate::clock::{SharedClock, system_clock};
use crate::contracts::{
    CheckResult, HealthProbe, HealthReport, HealthStatus, SecretStore, SecretValue, VersionRef,
};
use crate::{Error, Result};

const PROVIDER: &str = "http-probe";
/// The most body bytes a probe reads.
const MAX_BODY: usize = 1024 * 1024;

/// One probe client for the process: connection pools and TLS set-up are shared.
fn shared_client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .use_rustls_tls()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("ops-probe/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(5))
                .build()
                .expect("a client with only static settings builds")
        })
        .clone()
}

/// Where a request header's value comes from. Values are marked sensitive for the HTTP stack
/// and never appear in `Debug`, reports or errors.
#[derive(Clone)]
enum HeaderSource {
    /// A value given once.
    Fixed(HeaderValue),
    /// Read from a secret store at every check, so a rotated token is picked up; `prefix`
    /// goes before it (`"Bearer "`).
    Secret {
        store: Arc<dyn SecretStore>,
        secret: String,
        prefix: String,
    },
}

/// One request header of a probe.
#[derive(Clone)]
struct ProbeHeader {
    name: HeaderName,
    source: HeaderSource,
}

impl std::fmt::Debug for ProbeHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let from = match &self.source {
            HeaderSource::Fixed(_) => "fixed value".to_string(),
            HeaderSource::Secret { store, secret, .. } => {
                format!("secret {secret:?} of {}", store.name())
            }
        };
        write!(f, "{}: <redacted: {from}>", self.name)
    }
}

/// A header value from bytes, marked sensitive; the error names the header, never the value.
fn sensitive_value(name: &HeaderName, bytes: &[u8]) -> Result<HeaderValue> {
    let mut value = HeaderValue::from_bytes(bytes).map_err(|_| {
        Error::invalid_input(
            PROVIDER,
            "header",
            name.as_str(),
            "the value holds a byte a header cannot carry (a control character or line break)",
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// A JSON field the body must hold, addressed by a dotted path (`status`, `checks.db.state`).
#[derive(Debug, Clone, PartialEq)]
struct FieldExpectation {
    path: String,
    equals: Value,
}

/// Probes an HTTP endpoint: one GET (no retry: a probe reports what it sees), the status must
/// match, each expected JSON field must equal its value, and a response slower than the
/// degraded threshold is `Degraded`. Connection failures and timeouts are `Unhealthy` checks,
/// not errors. The URL's query and credentials never appear in reports.
///
/// ```no_run
/// # async fn f() -> ops_core::Result<()> {
/// use ops_core::adapters::HttpProbe;
/// use ops_core::contracts::HealthProbe;
/// use std::time::Duration;
/// let probe = HttpProbe::new("https://api.example.com/health")?
///     .expect_field("status", "healthy")
///     .expect_field("database", "connected")
///     .degraded_above(Duration::from_millis(500));
/// let report = probe.check().await?;
/// println!("{}: {}", report.probe, report.status);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct HttpProbe {
    name: String,
    url: url::Url,
    shown_url: String,
    expect_status: u16,
    fields: Vec<FieldExpectation>,
    headers: Vec<ProbeHeader>,
    degraded_above: Option<Duration>,
    timeout: Duration,
    client: reqwest::Client,
    clock: SharedClock,
}

impl HttpProbe {
    /// A probe of `url` expecting `200`, with a 10 s timeout.
    pub fn new(url: &str) -> Result<Self> {
        let parsed = url::Url::parse(url).map_err(|e| {
            Error::invalid_input(PROVIDER, "new", "url", format!("not a URL ({e})"))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(Error::invalid_input(
                PROVIDER,
                "new",
                "url",
                "must be an http or https URL with a host",
            ));
        }
        let shown_url = format!(
            "{}://{}{}",
            parsed.scheme(),
            parsed.host_str().unwrap_or(""),
            parsed.port().map(|p| format!(":{p}")).unwrap_or_default()
        ) + parsed.path();
        Ok(Self {
            name: format!("GET {shown_url}"),
            url: parsed,
            shown_url,
            expect_status: 200,
            fields: Vec::new(),
            headers: Vec::new(),
            degraded_above: None,
            timeout: Duration::from_secs(10),
            client: shared_client(),
            clock: system_clock(),
        })
    }

    /// Names the probe (default `GET <url without query>`).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Expects this status instead of 200.
    pub fn expect_status(mut self, status: u16) -> Self {
        self.expect_status = status;
        self
    }

    /// Expects the JSON body's field at `path` (dot-separated) to equal `value`.
    pub fn expect_field(mut self, path: impl Into<String>, value: impl Into<Value>) -> Self {
        self.fields.push(FieldExpectation {
            path: path.into(),
            equals: value.into(),
        });
        self
    }

    /// Sends this request header with a fixed value (shown nowhere). `InvalidInput` for a name
    /// that is not a header name or a value with control characters.
    pub fn header(mut self, name: &str, value: &SecretValue) -> Result<Self> {
        let name = header_name(name)?;
        let value = sensitive_value(&name, value.expose_bytes())?;
        self.headers.push(ProbeHeader {
            name,
            source: HeaderSource::Fixed(value),
        });
        Ok(self)
    }

    /// Sends this request header with the latest value of `secret` in `store`, read at every
    /// check (a rotated value is used from the next check on), after `prefix`. A secret that
    /// cannot be read fails the check with the store's error: the probe could not look.
    pub fn header_from_secret(
        mut self,
        name: &str,
        store: Arc<dyn SecretStore>,
        secret: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Result<Self> {
        let name = header_name(name)?;
        let prefix = prefix.into();
        sensitive_value(&name, prefix.as_bytes())?;
        self.headers.push(ProbeHeader {
            name,
            source: HeaderSource::Secret {
                store,
                secret: secret.into(),
                prefix,
            },
        });
        Ok(self)
    }

    /// `Authorization: Bearer <latest value of secret>`: the status endpoint of seed 000.
    pub fn bearer_from_secret(
        self,
        store: Arc<dyn SecretStore>,
        secret: impl Into<String>,
    ) -> Result<Self> {
        self.header_from_secret("authorization", store, secret, "Bearer ")
    }

    /// Reports `Degraded` when the response takes longer than this.
    pub fn degraded_above(mut self, latency: Duration) -> Self {
        self.degraded_above = Some(latency);
        self
    }

    /// Gives up (unhealthy) after this long.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Uses this client (its pool, proxy and TLS settings).
    pub fn with_client(mut self, client: reqwest::Client) -> Self {
        self.client = client;
        self
    }

    /// Uses this clock for latency and timestamps.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The request headers with their current values; the secret store's error when a value
    /// cannot be read.
    async fn header_values(&self) -> Result<reqwest::header::HeaderMap> {
        let mut map = reqwest::header::HeaderMap::with_capacity(self.headers.len());
        for h in &self.headers {
            let value = match &h.source {
                HeaderSource::Fixed(v) => v.clone(),
                HeaderSource::Secret {
                    store,
                    secret,
                    prefix,
                } => {
                    let read = store.read(secret, &VersionRef::Latest).await?;
                    let mut bytes = Vec::with_capacity(prefix.len() + read.value.len());
                    bytes.extend_from_slice(prefix.as_bytes());
                    bytes.extend_from_slice(read.value.expose_bytes());
                    let value = sensitive_value(&h.name, &bytes);
                    bytes.fill(0);
                    value?
                }
            };
            map.append(h.name.clone(), value);
        }
        Ok(map)
    }

    /// Sends the GET; `Ok((status, body))` or the reason it got no answer.
    async fn fetch(
        &self,
        headers: reqwest::header::HeaderMap,
    ) -> std::result::Result<(u16, Vec<u8>), String> {
        let resp = self
            .client
            .get(self.url.clone())
            .headers(headers)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.describe_failure(&e))?;
        let status = resp.status().as_u16();
        let mut resp = resp;
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.describe_failure(&e))? {
            if body.len() + chunk.len() > MAX_BODY {
                break; // enough to judge; the rest is not needed
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }

    fn describe_failure(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            format!("no answer within {:?}", self.timeout)
        } else if e.is_connect() {
            "connection failed (refused or unreachable)".into()
        } else {
            "connection closed before a complete response".into()
        }
    }
}

fn header_name(name: &str) -> Result<HeaderName> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        Error::invalid_input(
            PROVIDER,
            "header",
            "name",
            format!("{name:?} is not a header name"),
        )
    })
}

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, key| v.get(key))
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

#[async_trait]
impl HealthProbe for HttpProbe {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<HealthReport> {
        let headers = self.header_values().await?;
        let observed_at = self.clock.now();
        let start = self.clock.instant();
        let outcome = self.fetch(headers).await;
        let latency = self.clock.instant().saturating_duration_since(start);
        let check = |name: String, status, detail: String| CheckResult {
            name,
            status,
            detail,
            latency,
            observed_at,
        };
        let mut checks = Vec::with_capacity(1 + self.fields.len());
        let body = match outcome {
            Err(reason) => {
                checks.push(check(
                    format!("GET {}", self.shown_url),
                    HealthStatus::Unhealthy,
                    reason,
                ));
                None
            }
            Ok((status, body)) => {
                let ms = latency.as_millis();
                let (s, detail) = if status != self.expect_status {
                    (
                        HealthStatus::Unhealthy,
                        format!("status {status}, expected {}", self.expect_status),
                    )
                } else if self.degraded_above.is_some_and(|d| latency > d) {
                    (
                        HealthStatus::Degraded,
                        format!(
                            "status {status} in {ms} ms, slower than {:?}",
                            self.degraded_above.unwrap_or_default()
                        ),
                    )
                } else {
                    (HealthStatus::Healthy, format!("status {status} in {ms} ms"))
                };
                checks.push(check(format!("GET {}", self.shown_url), s, detail));
                Some(body)
            }
        };
        if !self.fields.is_empty() {
            let json = body.as_deref().map(serde_json::from_slice::<Value>);
            for f in &self.fields {
                let (status, detail) = match &json {
                    None => (HealthStatus::Unhealthy, "no response".to_string()),
                    Some(Err(_)) => (HealthStatus::Unhealthy, "the body is not JSON".to_string()),
                    Some(Ok(v)) => match lookup(v, &f.path) {
                        Some(actual) if *actual == f.equals => {
                            (HealthStatus::Healthy, format!("is {}", short(actual)))
                        }
                        Some(actual) => (
                            HealthStatus::Unhealthy,
                            format!("is {}, expected {}", short(actual), short(&f.equals)),
                        ),
                        None => (
                            HealthStatus::Unhealthy,
                            format!("missing, expected {}", short(&f.equals)),
                        ),
                    },
                };
                checks.push(check(format!("field {}", f.path), status, detail));
            }
        }
        Ok(HealthReport::from_checks(
            self.name.clone(),
            observed_at,
            checks,
        ))
    }
}
