//! [`RedisProbe`]: connect, authenticate with credentials from a [`SecretStore`], round-trip a
//! `PING`, and read memory use and the keyspace hit rate from `INFO` — "verify Redis
//! credentials in secrets" and the cache checks of seeds 001, 003 and 004.

pub mod resp;
#[cfg(feature = "redis-test-server")]
mod test_server;
#[cfg(feature = "redis-test-server")]
pub use test_server::{RedisTestServer, binary as redis_server_binary};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::clock::{SharedClock, system_clock};
use crate::contracts::{
    CheckResult, HealthProbe, HealthReport, HealthStatus, SecretStore, SecretValue, VersionRef,
};
use crate::{Error, Result};
use resp::{Limits, Parsed, Reply};

const PROVIDER: &str = "redis-probe";
/// The most `INFO` fields kept (a Redis 7 `INFO memory` has about 60).
const MAX_INFO_FIELDS: usize = 512;

/// Where the password comes from.
#[derive(Clone)]
struct Credentials {
    store: Arc<dyn SecretStore>,
    secret: String,
}

/// Probes a Redis server: one connection per check, no retry (a probe reports what it sees).
///
/// Checks, in order, each stopping the rest when it fails:
/// - **connect** within the timeout;
/// - **auth** (when credentials are set): `AUTH [username] password`, the password read from
///   the secret store at every check, so a rotated one is what is verified; a refusal is an
///   unhealthy check naming the server's reason (`WRONGPASS`), never the password;
/// - **ping**: `+PONG`; `NOAUTH` says the server wants credentials the probe was not given;
/// - **memory**: `used_memory` against `maxmemory` from `INFO memory`, degraded above
///   [`RedisProbe::memory_degraded_above`] (90 % by default); without a limit it only reports;
/// - **hit rate**: `keyspace_hits / (hits + misses)` from `INFO stats`, degraded below
///   [`RedisProbe::min_hit_rate`] once at least [`RedisProbe::min_lookups`] lookups were made.
///
/// A secret that cannot be read is an `Err`: the probe could not look.
///
/// ```no_run
/// # async fn f(secrets: std::sync::Arc<dyn ops_core::contracts::SecretStore>) -> ops_core::Result<()> {
/// use ops_core::adapters::RedisProbe;
/// use ops_core::contracts::HealthProbe;
/// let probe = RedisProbe::new("10.0.0.5:6379")?
///     .password_from_secret(secrets, "redis-password")
///     .min_hit_rate(0.8);
/// println!("{}", probe.check().await?.status);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisProbe {
    name: String,
    address: String,
    credentials: Option<Credentials>,
    username: Option<String>,
    timeout: Duration,
    memory_degraded_above: f64,
    min_hit_rate: Option<f64>,
    min_lookups: u64,
    limits: Limits,
    clock: SharedClock,
}

impl std::fmt::Debug for RedisProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisProbe")
            .field("name", &self.name)
            .field("address", &self.address)
            .field(
                "password",
                &self
                    .credentials
                    .as_ref()
                    .map(|c| format!("<secret {:?} of {}>", c.secret, c.store.name())),
            )
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisProbe {
    /// A probe of `host:port`, with a 5 s timeout for the whole exchange.
    pub fn new(address: &str) -> Result<Self> {
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| Error::invalid_input(PROVIDER, "new", "address", "must be host:port"))?;
        let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
        if host.is_empty() || !port_ok {
            return Err(Error::invalid_input(
                PROVIDER,
                "new",
                "address",
                "must be host:port with a port from 1 to 65535",
            ));
        }
        Ok(Self {
            name: format!("redis {address}"),
            address: address.to_string(),
            credentials: None,
            username: None,
            timeout: Duration::from_secs(5),
            memory_degraded_above: 0.9,
            min_hit_rate: None,
            min_lookups: 100,
            limits: Limits::default(),
            clock: system_clock(),
        })
    }

    /// Names the probe (default `redis <address>`).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Authenticates with the latest value of `secret` in `store` (`AUTH password`).
    pub fn password_from_secret(
        mut self,
        store: Arc<dyn SecretStore>,
        secret: impl Into<String>,
    ) -> Self {
        self.credentials = Some(Credentials {
            store,
            secret: secret.into(),
        });
        self
    }

    /// Authenticates as this ACL user (`AUTH username password`, Redis 6 and later), with the
    /// password of [`RedisProbe::password_from_secret`] (in either order; alone it sends nothing).
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Gives up (unhealthy) when the exchange takes longer than this, in real time (the server
    /// does not run on the injected clock).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Degraded when `used_memory / maxmemory` is above this (default 0.9).
    pub fn memory_degraded_above(mut self, ratio: f64) -> Self {
        self.memory_degraded_above = ratio;
        self
    }

    /// Degraded when the keyspace hit rate is below this (not judged by default).
    pub fn min_hit_rate(mut self, rate: f64) -> Self {
        self.min_hit_rate = Some(rate);
        self
    }

    /// Judges the hit rate only after this many lookups (default 100).
    pub fn min_lookups(mut self, lookups: u64) -> Self {
        self.min_lookups = lookups;
        self
    }

    /// Uses this clock for latency and timestamps.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    async fn password(&self) -> Result<Option<(Option<String>, SecretValue)>> {
        let Some(c) = &self.credentials else {
            return Ok(None);
        };
        let read = c.store.read(&c.secret, &VersionRef::Latest).await?;
        Ok(Some((self.username.clone(), read.value)))
    }
}

/// One connection speaking RESP.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    limits: Limits,
}

impl Conn {
    /// Sends a command and reads one reply; `Err` says what went wrong on the wire.
    async fn call(&mut self, args: &[&[u8]]) -> std::result::Result<Reply, String> {
        let mut command = resp::encode_command(args);
        let written = self.stream.write_all(&command).await;
        command.fill(0); // it may hold a password
        written.map_err(|e| format!("the connection failed while sending: {e}"))?;
        let most = self.limits.max_bulk.saturating_add(self.limits.max_line);
        loop {
            if let Parsed::Complete(reply, used) = resp::parse(&self.buf, &self.limits)
                .map_err(|e| format!("a malformed reply: {e}"))?
            {
                self.buf.drain(..used);
                return Ok(reply);
            }
            if self.buf.len() > most {
                return Err(format!("a reply larger than {most} bytes"));
            }
            let mut chunk = [0u8; 8192];
            let n = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("the connection failed while reading: {e}"))?;
            if n == 0 {
                return Err("the server closed the connection".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// What one check found.
struct Finding {
    name: &'static str,
    status: HealthStatus,
    detail: String,
}

fn finding(name: &'static str, status: HealthStatus, detail: impl Into<String>) -> Finding {
    Finding {
        name,
        status,
        detail: detail.into(),
    }
}

/// A server's error text, with the password cut out should a server ever echo it.
fn server_says(text: &str, password: Option<&SecretValue>) -> String {
    let mut text: String = text.chars().take(200).collect();
    if let Some(p) = password
        .and_then(|p| p.expose_str().ok())
        .filter(|p| !p.is_empty())
    {
        text = text.replace(p, "<redacted>");
    }
    text
}

fn info_text(reply: Reply) -> std::result::Result<String, String> {
    match reply {
        Reply::Bulk(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Reply::Error(e) => Err(format!("INFO refused: {}", server_says(&e, None))),
        other => Err(format!("INFO answered {other:?}, not text")),
    }
}

fn number(info: &std::collections::BTreeMap<String, String>, key: &str) -> Option<u64> {
    info.get(key).and_then(|v| v.trim().parse::<u64>().ok())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

impl RedisProbe {
    /// Runs the checks in order until one fails.
    async fn exchange(&self, credentials: Option<&(Option<String>, SecretValue)>) -> Vec<Finding> {
        let mut out = Vec::new();
        let stream = match TcpStream::connect(self.address.as_str()).await {
            Ok(s) => s,
            Err(e) => {
                out.push(finding(
                    "connect",
                    HealthStatus::Unhealthy,
                    format!("cannot connect: {e}"),
                ));
                return out;
            }
        };
        let mut conn = Conn {
            stream,
            buf: Vec::new(),
            limits: self.limits,
        };
        let password = credentials.map(|(_, p)| p);
        if let Some((user, pass)) = credentials {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(u) = user {
                args.push(u.as_bytes());
            }
            args.push(pass.expose_bytes());
            let (status, detail) = match conn.call(&args).await {
                Ok(Reply::Simple(ok)) if ok == "OK" => {
                    (HealthStatus::Healthy, "credentials accepted".to_string())
                }
                Ok(Reply::Error(e)) => (
                    HealthStatus::Unhealthy,
                    format!("credentials refused: {}", server_says(&e, password)),
                ),
                Ok(other) => (HealthStatus::Unhealthy, format!("AUTH answered {other:?}")),
                Err(e) => (HealthStatus::Unhealthy, e),
            };
            out.push(finding("auth", status, detail));
            if status != HealthStatus::Healthy {
                return out;
            }
        }
        let ping = match conn.call(&[b"PING"]).await {
            Ok(Reply::Simple(p)) if p == "PONG" => finding("ping", HealthStatus::Healthy, "PONG"),
            Ok(Reply::Error(e)) if e.starts_with("NOAUTH") => finding(
                "ping",
                HealthStatus::Unhealthy,
                "the server requires a password and none was given (NOAUTH)",
            ),
            Ok(Reply::Error(e)) => finding(
                "ping",
                HealthStatus::Unhealthy,
                format!("PING refused: {}", server_says(&e, password)),
            ),
            Ok(other) => finding(
                "ping",
                HealthStatus::Unhealthy,
                format!("PING answered {other:?}"),
            ),
            Err(e) => finding("ping", HealthStatus::Unhealthy, e),
        };
        let pinged = ping.status == HealthStatus::Healthy;
        out.push(ping);
        if !pinged {
            return out;
        }
        out.push(
            match conn.call(&[b"INFO", b"memory"]).await.and_then(info_text) {
                Ok(text) => self.judge_memory(&resp::parse_info(&text, MAX_INFO_FIELDS)),
                Err(e) => finding("memory", HealthStatus::Unhealthy, e),
            },
        );
        out.push(
            match conn.call(&[b"INFO", b"stats"]).await.and_then(info_text) {
                Ok(text) => self.judge_hits(&resp::parse_info(&text, MAX_INFO_FIELDS)),
                Err(e) => finding("hit rate", HealthStatus::Unhealthy, e),
            },
        );
        out
    }

    fn judge_memory(&self, info: &std::collections::BTreeMap<String, String>) -> Finding {
        let Some(used) = number(info, "used_memory") else {
            return finding(
                "memory",
                HealthStatus::Unhealthy,
                "INFO memory has no used_memory",
            );
        };
        match number(info, "maxmemory").filter(|&m| m > 0) {
            None => finding(
                "memory",
                HealthStatus::Healthy,
                format!("{} used, no maxmemory limit", mib(used)),
            ),
            Some(max) => {
                let ratio = used as f64 / max as f64;
                let status = if ratio > self.memory_degraded_above {
                    HealthStatus::Degraded
                } else {
                    HealthStatus::Healthy
                };
                let policy = info
                    .get("maxmemory_policy")
                    .map(|p| format!(", policy {p}"))
                    .unwrap_or_default();
                finding(
                    "memory",
                    status,
                    format!(
                        "{} of {} used ({:.0} %{policy})",
                        mib(used),
                        mib(max),
                        ratio * 100.0
                    ),
                )
            }
        }
    }

    fn judge_hits(&self, info: &std::collections::BTreeMap<String, String>) -> Finding {
        let (Some(hits), Some(misses)) = (
            number(info, "keyspace_hits"),
            number(info, "keyspace_misses"),
        ) else {
            return finding(
                "hit rate",
                HealthStatus::Unhealthy,
                "INFO stats has no keyspace counts",
            );
        };
        let evicted = number(info, "evicted_keys").unwrap_or(0);
        let lookups = hits.saturating_add(misses);
        if lookups < self.min_lookups.max(1) {
            return finding(
                "hit rate",
                HealthStatus::Healthy,
                format!(
                    "{lookups} lookups, too few to judge (at least {})",
                    self.min_lookups
                ),
            );
        }
        let rate = hits as f64 / lookups as f64;
        let status = match self.min_hit_rate {
            Some(min) if rate < min => HealthStatus::Degraded,
            _ => HealthStatus::Healthy,
        };
        let bound = self
            .min_hit_rate
            .map(|m| format!(", expected at least {:.0} %", m * 100.0))
            .unwrap_or_default();
        finding(
            "hit rate",
            status,
            format!(
                "{:.1} % of {lookups} lookups hit{bound}; {evicted} keys evicted",
                rate * 100.0
            ),
        )
    }
}

#[async_trait]
impl HealthProbe for RedisProbe {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<HealthReport> {
        let credentials = self.password().await?;
        let observed_at = self.clock.now();
        let start = self.clock.instant();
        let exchange = self.exchange(credentials.as_ref());
        let findings = crate::clock::peer_timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|| {
                vec![finding(
                    "connect",
                    HealthStatus::Unhealthy,
                    format!("no complete answer within {:?}", self.timeout),
                )]
            });
        let latency = self.clock.instant().saturating_duration_since(start);
        let checks = findings
            .into_iter()
            .map(|f| CheckResult {
                name: format!("redis {}", f.name),
                status: f.status,
                detail: f.detail,
                latency,
                observed_at,
            })
            .collect();
        Ok(HealthReport::from_checks(
            self.name.clone(),
            observed_at,
            checks,
        ))
    }
}
