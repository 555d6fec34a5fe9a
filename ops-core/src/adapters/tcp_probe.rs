//! [`TcpProbe`]: can a TCP connection be opened within a deadline (like `pg_isready`)?

use std::time::Duration;

use async_trait::async_trait;

use crate::clock::{SharedClock, system_clock};
use crate::contracts::{CheckResult, HealthProbe, HealthReport, HealthStatus};
use crate::{Error, Result};

const PROVIDER: &str = "tcp-probe";

/// Opens (and closes) a TCP connection to `host:port`; healthy when it opens within the
/// deadline (default 5 s).
///
/// ```
/// use ops_core::adapters::TcpProbe;
/// assert!(TcpProbe::new("db.internal:5432").is_ok());
/// assert!(TcpProbe::new("no-port").is_err());
/// ```
#[derive(Debug, Clone)]
pub struct TcpProbe {
    name: String,
    address: String,
    timeout: Duration,
    clock: SharedClock,
}

impl TcpProbe {
    /// A probe of `host:port`.
    pub fn new(address: &str) -> Result<Self> {
        let valid = address.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
        });
        if !valid {
            return Err(Error::invalid_input(
                PROVIDER,
                "new",
                "address",
                "must be host:port with a port from 1 to 65535",
            ));
        }
        Ok(Self {
            name: format!("tcp {address}"),
            address: address.to_string(),
            timeout: Duration::from_secs(5),
            clock: system_clock(),
        })
    }

    /// Names the probe (default `tcp host:port`).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The connect deadline, in real time (the peer does not run on the injected clock).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Uses this clock for latency and timestamps.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }
}

#[async_trait]
impl HealthProbe for TcpProbe {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<HealthReport> {
        let observed_at = self.clock.now();
        let start = self.clock.instant();
        let connect = tokio::net::TcpStream::connect(self.address.as_str());
        let outcome = crate::clock::peer_timeout(self.timeout, connect).await;
        let latency = self.clock.instant().saturating_duration_since(start);
        let (status, detail) = match outcome {
            Some(Ok(_)) => (
                HealthStatus::Healthy,
                format!("connected in {} ms", latency.as_millis()),
            ),
            Some(Err(e)) => (HealthStatus::Unhealthy, format!("cannot connect: {e}")),
            None => (
                HealthStatus::Unhealthy,
                format!("no connection within {:?}", self.timeout),
            ),
        };
        let check = CheckResult {
            name: format!("connect {}", self.address),
            status,
            detail,
            latency,
            observed_at,
        };
        Ok(HealthReport::from_checks(
            self.name.clone(),
            observed_at,
            vec![check],
        ))
    }
}
