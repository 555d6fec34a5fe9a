//! [`AccessLog`]: nginx's access log as a [`MetricsSource`] — requests, server errors and
//! latencies per release over a window, what the canary judge compares. Stable and canary are
//! upstream servers; the config says which servers serve which release.
//!
//! nginx must write the log in [`LOG_FORMAT`] (`access_log /var/log/nginx/app.log
//! ops_canary;`). Every upstream attempt of a request counts for the release of the server
//! that made it: a canary that refused a connection has failed, even when nginx retried on
//! stable and the client got 200. A query reads the newest file from its end back to the
//! window's start, and older rotations only while they are still inside the window.

mod format;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use async_trait::async_trait;
use ops_core::contracts::{
    Histogram, Metric, MetricQuery, MetricReading, MetricsSource, RequestCounts, TimeWindow,
};
use ops_core::{Error, ErrorKind, Result};

pub use format::{Attempt, LOG_FORMAT, Request, parse};

use crate::lines;

/// Where the access log is, and which servers serve which release.
#[derive(Debug, Clone)]
pub struct AccessLogConfig {
    /// The access log (`/var/log/nginx/app.log`); its rotations sit beside it.
    pub path: PathBuf,
    /// Each release and the upstream servers serving it, as nginx logs them
    /// (`"v2.1.0" => ["127.0.0.1:3002"]`). A server in two releases is refused.
    pub releases: BTreeMap<String, Vec<String>>,
    /// The latency buckets' upper bounds in milliseconds, for [`MetricsSource::counts`]
    /// (default 5 ms to 10 s; at most 64, strictly increasing).
    pub latency_bounds_ms: Vec<f64>,
    /// How many rotations are read at most (0 to 100; default 9).
    pub max_rotated: u32,
    /// How late a line may be written after the one before it (nginx writes a request when it
    /// ends, so a long one comes late): reading stops at a request this much older than the
    /// window (default 5 minutes; at most a day).
    pub disorder: chrono::Duration,
}

impl AccessLogConfig {
    /// The log at `path` with no releases named yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            releases: BTreeMap::new(),
            latency_bounds_ms: vec![
                5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
            ],
            max_rotated: 9,
            disorder: chrono::Duration::minutes(5),
        }
    }

    /// `release` is served by `servers`.
    pub fn release(mut self, release: impl Into<String>, servers: &[&str]) -> Self {
        self.releases.insert(
            release.into(),
            servers.iter().map(|s| (*s).to_string()).collect(),
        );
        self
    }

    /// Refuses what cannot work.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: String| Error::invalid_input("host", "access_log", field, why);
        if self.path.file_name().is_none() {
            return Err(bad("path", "must name a file".into()));
        }
        let mut seen = HashSet::new();
        for (release, servers) in &self.releases {
            for s in servers {
                if s.is_empty() || s.contains([' ', ',', '"']) {
                    return Err(bad(
                        "releases",
                        format!("{s:?} is not a server address nginx logs"),
                    ));
                }
                if !seen.insert(s.as_str()) {
                    return Err(bad(
                        "releases",
                        format!("{s} is named for two releases ({release} and another)"),
                    ));
                }
            }
        }
        let bounds = &self.latency_bounds_ms;
        let histogram = Histogram {
            bounds_ms: bounds.clone(),
            counts: vec![0; bounds.len() + 1],
        };
        if bounds.len() > 64 || histogram.check().is_err() {
            return Err(bad(
                "latency_bounds_ms",
                "at most 64, finite, not negative, strictly increasing".into(),
            ));
        }
        if self.max_rotated > 100 {
            return Err(bad("max_rotated", "must be 0 to 100".into()));
        }
        if self.disorder < chrono::Duration::zero() || self.disorder > chrono::Duration::days(1) {
            return Err(bad("disorder", "must be 0 to one day".into()));
        }
        Ok(())
    }
}

/// nginx's access log as a [`MetricsSource`]; see the module docs.
#[derive(Debug, Clone)]
pub struct AccessLog {
    name: String,
    config: AccessLogConfig,
}

/// Whose requests a scan counts.
#[derive(Debug, Clone)]
enum Whose {
    /// Every request, as the client saw it.
    All,
    /// The attempts made on these servers (a few: a list is faster than hashing).
    Servers(Vec<Vec<u8>>),
}

/// Milliseconds up to this are counted one by one; slower ones are kept in a map.
const EXACT_MS: usize = 10_000;

/// What a scan found.
#[derive(Debug, Clone)]
struct Tally {
    requests: u64,
    errors: u64,
    /// Latencies: `fast[ms]` requests took `ms`; `slow` holds those above [`EXACT_MS`].
    fast: Vec<u64>,
    slow: BTreeMap<u64, u64>,
    timed: u64,
}

impl Tally {
    fn new() -> Self {
        Self {
            requests: 0,
            errors: 0,
            fast: vec![0; EXACT_MS + 1],
            slow: BTreeMap::new(),
            timed: 0,
        }
    }

    fn add(&mut self, failed: bool, millis: Option<u64>) {
        self.requests += 1;
        self.errors += u64::from(failed);
        if let Some(ms) = millis {
            self.timed += 1;
            match usize::try_from(ms).ok().filter(|m| *m <= EXACT_MS) {
                Some(i) => self.fast[i] += 1,
                None => *self.slow.entry(ms).or_default() += 1,
            }
        }
    }

    /// Every latency with its count, fastest first.
    fn latencies(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.fast
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(ms, n)| (ms as u64, *n))
            .chain(self.slow.iter().map(|(ms, n)| (*ms, *n)))
    }

    /// The latency at `percentile` (nearest rank), in milliseconds.
    fn percentile(&self, percentile: f64) -> Option<u64> {
        if self.timed == 0 {
            return None;
        }
        let rank = ((percentile / 100.0) * self.timed as f64).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        self.latencies().find_map(|(ms, n)| {
            seen += n;
            (seen >= rank).then_some(ms)
        })
    }

    fn histogram(&self, bounds: &[f64]) -> Histogram {
        let mut counts = vec![0u64; bounds.len() + 1];
        for (ms, n) in self.latencies() {
            let bucket = bounds.partition_point(|b| *b < ms as f64);
            counts[bucket] += n;
        }
        Histogram {
            bounds_ms: bounds.to_vec(),
            counts,
        }
    }
}

impl AccessLog {
    /// A source named `name` over the log `config` describes.
    pub fn new(name: impl Into<String>, config: AccessLogConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            name: name.into(),
            config,
        })
    }

    fn whose(&self, release: Option<&str>) -> Whose {
        match release {
            None => Whose::All,
            Some(r) => Whose::Servers(
                self.config
                    .releases
                    .get(r)
                    .map(|servers| servers.iter().map(|s| s.as_bytes().to_vec()).collect())
                    .unwrap_or_default(),
            ),
        }
    }

    async fn tally(&self, whose: Whose, window: TimeWindow) -> Result<Tally> {
        let config = self.config.clone();
        tokio::task::spawn_blocking(move || scan(&config, &whose, &window))
            .await
            .map_err(|e| {
                Error::new(
                    "host",
                    "access_log",
                    ErrorKind::Panicked {
                        message: e.to_string(),
                    },
                )
            })?
    }
}

/// Counts `whose` requests in `window`, newest file first, each from its end.
fn scan(config: &AccessLogConfig, whose: &Whose, window: &TimeWindow) -> Result<Tally> {
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => Error::new(
            "host",
            "access_log",
            ErrorKind::NotFound {
                resource: format!("access log {}", config.path.display()),
            },
        ),
        _ => ops_core::error::from_io("host", "access_log", e),
    };
    let files = lines::open_rotations(&config.path, config.max_rotated).map_err(io)?;
    let (start, end) = (
        window.start.timestamp_millis(),
        window.end.timestamp_millis(),
    );
    let stop_before = (window.start - config.disorder).timestamp_millis();
    let mut tally = Tally::new();
    for log in files {
        let mut newest = i64::MIN;
        let mut each = |line: &[u8], _: u64| -> bool {
            let Some(r) = parse(line) else {
                return true;
            };
            newest = newest.max(r.at_ms);
            if r.at_ms < stop_before {
                return log.gzip; // a gzip file is read whole; a plain one stops here
            }
            if !(start..end).contains(&r.at_ms) {
                return true;
            }
            match whose {
                Whose::All => tally.add(r.status >= 500, r.millis()),
                Whose::Servers(servers) => {
                    for a in r.attempts().filter(|a| servers.iter().any(|s| s == a.addr)) {
                        // No status: nginx got no answer at all.
                        tally.add(a.status().is_none_or(|s| s >= 500), a.millis());
                    }
                }
            }
            true
        };
        let stopped = if log.gzip {
            let decoder = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(log.file));
            if let Err(e) = lines::forwards(decoder, &mut each) {
                tracing::warn!(file = %log.path.display(), error = %e, "a damaged gzip access log: read up to the damage");
            }
            newest != i64::MIN && newest < stop_before
        } else {
            let mut file = log.file;
            lines::backwards(&mut file, log.len, &mut each).map_err(io)?
        };
        if stopped {
            break;
        }
    }
    Ok(tally)
}

#[async_trait]
impl MetricsSource for AccessLog {
    fn name(&self) -> &str {
        &self.name
    }

    /// Error ratio and latency percentiles, of every request or of one release's attempts;
    /// other metrics are `Unsupported`.
    async fn read(&self, query: &MetricQuery) -> Result<MetricReading> {
        query.validate()?;
        let tally = self
            .tally(self.whose(query.release.as_deref()), query.window)
            .await?;
        let (value, samples) = match &query.metric {
            Metric::ErrorRatio => (
                (tally.requests > 0).then(|| tally.errors as f64 / tally.requests as f64),
                tally.requests,
            ),
            Metric::LatencyPercentile { percentile } => (
                tally.percentile(*percentile).map(|ms| ms as f64),
                tally.timed,
            ),
            other => {
                return Err(Error::unsupported(
                    self.name.clone(),
                    "read",
                    format!("{other:?} from an access log"),
                ));
            }
        };
        match value {
            Some(value) if samples >= query.min_samples.max(1) => {
                Ok(MetricReading::Value { value, samples })
            }
            _ => Ok(MetricReading::InsufficientData {
                samples,
                detail: format!(
                    "{samples} requests in the window, fewer than the {} asked for",
                    query.min_samples.max(1)
                ),
            }),
        }
    }

    async fn counts(&self, release: &str, window: &TimeWindow) -> Result<RequestCounts> {
        let tally = self.tally(self.whose(Some(release)), *window).await?;
        Ok(RequestCounts {
            requests: tally.requests,
            errors: tally.errors,
            latency: Some(tally.histogram(&self.config.latency_bounds_ms)),
        })
    }
}
