//! [`HttpProbe`]: GET a URL, expect a status and JSON fields, report latency.

use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::clock::{SharedClock, system_clock};
use crate::contracts::{CheckResult, HealthProbe, HealthReport, HealthStatus};
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

    /// Sends the GET; `Ok((status, body))` or the reason it got no answer.
    async fn fetch(&self) -> std::result::Result<(u16, Vec<u8>), String> {
        let resp = self
            .client
            .get(self.url.clone())
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
        let observed_at = self.clock.now();
        let start = self.clock.instant();
        let outcome = self.fetch().await;
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
