//! [`HostResources`]: disk space and inodes per mount (what `df -h` and `df -i` show) and memory
//! (what `free -h` shows as available) of the host a self-hosted service runs on — the daily
//! "check disk space, check memory usage" of seed 003, with its 80 % / 95 % memory levels.

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::clock::{SharedClock, system_clock};
use crate::config::{RunbookConfig, invalid};
use crate::contracts::{CheckResult, HealthProbe, HealthReport, HealthStatus};
use crate::{Error, Result};

const PROVIDER: &str = "host-resources";
/// The most mounts one probe watches.
pub const MAX_MOUNTS: usize = 64;
/// The most bytes read from `/proc/meminfo` (it is about 1.5 KiB).
const MAX_MEMINFO: u64 = 64 * 1024;

/// Warning and critical levels of a used share, from 0 to 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageLevels {
    /// Above this share used: degraded.
    pub warning: f64,
    /// Above this share used: unhealthy.
    pub critical: f64,
}

impl UsageLevels {
    /// Levels `warning < critical`, both in [0, 1].
    pub const fn new(warning: f64, critical: f64) -> Self {
        Self { warning, critical }
    }

    fn validate(&self, field: &str) -> Result<()> {
        for (name, v) in [("warning", self.warning), ("critical", self.critical)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(invalid(
                    &format!("{field}.{name}"),
                    format!("{v} is not a share from 0 to 1"),
                ));
            }
        }
        crate::config::ordered(field, self.warning, self.critical)
    }

    /// The status of `used` (a share from 0 to 1).
    pub fn judge(&self, used: f64) -> HealthStatus {
        if used > self.critical {
            HealthStatus::Unhealthy
        } else if used > self.warning {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        }
    }
}

fn disk_levels() -> UsageLevels {
    UsageLevels::new(0.80, 0.90)
}

fn memory_levels() -> UsageLevels {
    UsageLevels::new(0.80, 0.95)
}

/// One mount to watch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountRule {
    /// Any path on the file system (`/`, `/var/lib/postgresql`).
    pub path: PathBuf,
    /// Space used (default 80 % / 90 %).
    #[serde(default = "disk_levels")]
    pub space: UsageLevels,
    /// Inodes used (default 80 % / 90 %): a disk full of small files is full too.
    #[serde(default = "disk_levels")]
    pub inodes: UsageLevels,
}

impl MountRule {
    /// `path` with the default levels.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            space: disk_levels(),
            inodes: disk_levels(),
        }
    }
}

/// What [`HostResources`] watches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostResourcesConfig {
    /// The mounts (default `/` only), at most [`MAX_MOUNTS`].
    #[serde(default = "root_mount")]
    pub mounts: Vec<MountRule>,
    /// Memory in use, `1 − MemAvailable / MemTotal` (default 80 % / 95 %, seed 003's table).
    #[serde(default = "memory_levels")]
    pub memory: UsageLevels,
}

fn root_mount() -> Vec<MountRule> {
    vec![MountRule::new("/")]
}

impl Default for HostResourcesConfig {
    fn default() -> Self {
        Self {
            mounts: root_mount(),
            memory: memory_levels(),
        }
    }
}

impl RunbookConfig for HostResourcesConfig {
    fn validate(&self) -> Result<()> {
        if self.mounts.len() > MAX_MOUNTS {
            return Err(invalid(
                "mounts",
                format!("{} mounts, at most {MAX_MOUNTS}", self.mounts.len()),
            ));
        }
        for (i, m) in self.mounts.iter().enumerate() {
            if m.path.as_os_str().is_empty() {
                return Err(invalid(&format!("mounts[{i}].path"), "must not be empty"));
            }
            m.space.validate(&format!("mounts[{i}].space"))?;
            m.inodes.validate(&format!("mounts[{i}].inodes"))?;
        }
        self.memory.validate("memory")
    }
}

/// Memory as `/proc/meminfo` reports it, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemInfo {
    /// `MemTotal`.
    pub total: u64,
    /// `MemAvailable`: what can be given to programs without swapping (what `free` shows).
    pub available: u64,
}

impl MemInfo {
    /// The share in use, from 0 to 1.
    pub fn used_share(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let used = self.total.saturating_sub(self.available);
        used as f64 / self.total as f64
    }
}

/// Reads `MemTotal` and `MemAvailable` from `/proc/meminfo` text (`MemTotal:  16318048 kB`).
/// Values without a unit are bytes; `kB` is 1024 bytes, as the kernel means it. `Err` says what
/// is missing or malformed; an overflowing value is an error, not a wrap.
pub fn parse_meminfo(text: &str) -> std::result::Result<MemInfo, String> {
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        if !matches!(key, "MemTotal" | "MemAvailable") {
            continue;
        }
        let mut parts = rest.split_whitespace();
        let number = parts
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| format!("{key} has no number"))?;
        let scale = match parts.next() {
            None => 1,
            Some("kB") => 1024,
            Some(unit) => return Err(format!("{key} is in an unknown unit {unit:?}")),
        };
        let bytes = number
            .checked_mul(scale)
            .ok_or_else(|| format!("{key} overflows"))?;
        fields.insert(key, bytes);
    }
    let total = *fields.get("MemTotal").ok_or("no MemTotal line")?;
    let available = *fields.get("MemAvailable").ok_or("no MemAvailable line")?;
    if available > total {
        return Err(format!(
            "MemAvailable {available} is more than MemTotal {total}"
        ));
    }
    Ok(MemInfo { total, available })
}

/// A file system's space and inodes, as `statvfs` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskUsage {
    /// Bytes in use (`(f_blocks − f_bfree) × f_frsize`).
    pub used: u64,
    /// Bytes an unprivileged writer may still use (`f_bavail × f_frsize`).
    pub available: u64,
    /// Inodes in use.
    pub inodes_used: u64,
    /// Inodes in all (0 on file systems without a fixed count).
    pub inodes_total: u64,
}

impl DiskUsage {
    /// The share of space used, as `df` computes `Use%`: `used / (used + available)`, so the
    /// blocks reserved for root count as neither.
    pub fn used_share(&self) -> f64 {
        let all = self.used.saturating_add(self.available);
        if all == 0 {
            0.0
        } else {
            self.used as f64 / all as f64
        }
    }

    /// The share of inodes used, as `df -i` computes `IUse%`; `None` without a fixed count.
    pub fn inodes_share(&self) -> Option<f64> {
        (self.inodes_total > 0).then(|| self.inodes_used as f64 / self.inodes_total as f64)
    }
}

/// Space and inodes of the file system holding `path`.
pub fn disk_usage(path: &std::path::Path) -> std::io::Result<DiskUsage> {
    let s = rustix::fs::statvfs(path)?;
    let frsize = s.f_frsize;
    let used_blocks = s.f_blocks.saturating_sub(s.f_bfree);
    Ok(DiskUsage {
        used: used_blocks.saturating_mul(frsize),
        available: s.f_bavail.saturating_mul(frsize),
        inodes_used: s.f_files.saturating_sub(s.f_ffree),
        inodes_total: s.f_files,
    })
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1024.0 * 1024.0 * 1024.0))
}

/// Disk space, inodes and memory of this host, one check each, judged against the config's
/// levels. A mount that cannot be read is an unhealthy check naming the error.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use ops_core::adapters::{HostResources, HostResourcesConfig};
/// use ops_core::contracts::HealthProbe;
/// let probe = HostResources::new(HostResourcesConfig::default())?;
/// let report = probe.check().await?;
/// assert!(report.checks.iter().any(|c| c.name == "disk space /"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct HostResources {
    name: String,
    config: HostResourcesConfig,
    meminfo: PathBuf,
    clock: SharedClock,
}

impl HostResources {
    /// A probe of this host; `InvalidInput` for levels out of range or out of order.
    pub fn new(config: HostResourcesConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            name: "host".into(),
            config,
            meminfo: PathBuf::from("/proc/meminfo"),
            clock: system_clock(),
        })
    }

    /// Names the probe (default `host`).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Reads memory from this file instead of `/proc/meminfo` (a container's view, a test).
    pub fn meminfo_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.meminfo = path.into();
        self
    }

    /// Uses this clock for timestamps.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Reads the memory figures.
    pub async fn memory(&self) -> Result<MemInfo> {
        use tokio::io::AsyncReadExt;
        let io = |e: std::io::Error| {
            Error::new(
                PROVIDER,
                "memory",
                crate::ErrorKind::Io {
                    kind: e.kind(),
                    message: format!("{}: {e}", self.meminfo.display()),
                },
            )
        };
        let file = tokio::fs::File::open(&self.meminfo).await.map_err(io)?;
        let mut text = String::new();
        file.take(MAX_MEMINFO)
            .read_to_string(&mut text)
            .await
            .map_err(io)?;
        parse_meminfo(&text).map_err(|reason| {
            Error::new(
                PROVIDER,
                "memory",
                crate::ErrorKind::Decode {
                    detail: format!("{}: {reason}", self.meminfo.display()),
                },
            )
        })
    }
}

#[async_trait]
impl HealthProbe for HostResources {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<HealthReport> {
        let observed_at = self.clock.now();
        let start = self.clock.instant();
        let mut found: Vec<(String, HealthStatus, String)> = Vec::new();
        let mounts = self.config.mounts.clone();
        let usages = tokio::task::spawn_blocking(move || {
            mounts
                .iter()
                .map(|m| disk_usage(&m.path))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| {
            Error::new(
                PROVIDER,
                "check",
                crate::ErrorKind::Io {
                    kind: std::io::ErrorKind::Other,
                    message: e.to_string(),
                },
            )
        })?;
        for (m, usage) in self.config.mounts.iter().zip(usages) {
            let path = m.path.display();
            match usage {
                Err(e) => found.push((
                    format!("disk space {path}"),
                    HealthStatus::Unhealthy,
                    format!("cannot read the file system: {e}"),
                )),
                Ok(u) => {
                    let share = u.used_share();
                    found.push((
                        format!("disk space {path}"),
                        m.space.judge(share),
                        format!(
                            "{:.0} % used ({} used, {} available; warning above {:.0} %, critical above {:.0} %)",
                            share * 100.0,
                            gib(u.used),
                            gib(u.available),
                            m.space.warning * 100.0,
                            m.space.critical * 100.0
                        ),
                    ));
                    if let Some(share) = u.inodes_share() {
                        found.push((
                            format!("inodes {path}"),
                            m.inodes.judge(share),
                            format!("{:.0} % of {} inodes used", share * 100.0, u.inodes_total),
                        ));
                    }
                }
            }
        }
        match self.memory().await {
            Err(e) => found.push(("memory".into(), HealthStatus::Unhealthy, e.to_string())),
            Ok(mem) => {
                let share = mem.used_share();
                found.push((
                    "memory".into(),
                    self.config.memory.judge(share),
                    format!(
                        "{:.0} % used ({} available of {}; warning above {:.0} %, critical above {:.0} %)",
                        share * 100.0,
                        gib(mem.available),
                        gib(mem.total),
                        self.config.memory.warning * 100.0,
                        self.config.memory.critical * 100.0
                    ),
                ));
            }
        }
        let latency = self.clock.instant().saturating_duration_since(start);
        let checks = found
            .into_iter()
            .map(|(name, status, detail)| CheckResult {
                name,
                status,
                detail,
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn meminfo_as_the_kernel_writes_it() {
        let text = "MemTotal:       16318048 kB\nMemFree:         1203456 kB\nMemAvailable:    8159024 kB\nBuffers:          123 kB\n";
        let m = parse_meminfo(text).unwrap();
        assert_eq!(m.total, 16318048 * 1024);
        assert_eq!(m.available, 8159024 * 1024);
        assert!((m.used_share() - 0.5).abs() < 1e-9);
        for bad in [
            "MemTotal: 10 kB\n",
            "MemAvailable: 10 kB\n",
            "MemTotal: x kB\nMemAvailable: 1 kB\n",
            "MemTotal: 10 MB\nMemAvailable: 1 kB\n",
            "MemTotal: 18446744073709551615 kB\nMemAvailable: 1 kB\n",
            "MemTotal: 1 kB\nMemAvailable: 2 kB\n",
        ] {
            assert!(parse_meminfo(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn levels_out_of_range_or_order_are_invalid() {
        let mut c = HostResourcesConfig {
            memory: UsageLevels::new(0.95, 0.80),
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("memory"));
        c.memory = UsageLevels::new(0.5, 1.5);
        assert!(c.validate().is_err());
        c.memory = UsageLevels::new(f64::NAN, 0.9);
        assert!(c.validate().is_err());
        let c = HostResourcesConfig::from_toml(
            "memory = { warning = 0.8, critical = 0.95 }\n[[mounts]]\npath = \"/var\"\nspace = { warning = 0.7, critical = 0.85 }\n",
        )
        .unwrap();
        assert_eq!(c.mounts[0].space.critical, 0.85);
        assert_eq!(c.mounts[0].inodes, disk_levels());
        assert!(HostResourcesConfig::from_toml("[[mounts]]\npath = \"/\"\nfree = 1\n").is_err());
    }

    proptest! {
        /// Any text: an answer, never a panic; a well-formed pair reads back exactly.
        #[test]
        fn meminfo_never_panics(text in ".{0,400}", total in 0u64..(u64::MAX / 1024), avail in any::<u64>()) {
            let _ = parse_meminfo(&text);
            let avail = if total == 0 { 0 } else { avail % (total + 1) };
            let m = parse_meminfo(&format!("MemTotal: {total} kB\nMemAvailable: {avail} kB\n")).unwrap();
            prop_assert_eq!(m, MemInfo { total: total * 1024, available: avail * 1024 });
            prop_assert!((0.0..=1.0).contains(&m.used_share()));
        }
    }
}
