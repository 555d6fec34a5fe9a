//! [`Pm2Probe`]: the health of processes under pm2 — `pm2 status` read as a check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ops_core::Result;
use ops_core::clock::{SharedClock, system_clock};
use ops_core::contracts::{CheckResult, HealthProbe, HealthReport, HealthStatus};

use super::{Pm2, Pm2Process, Pm2Status};

/// How a process's restarts moved.
#[derive(Debug, Clone, Copy)]
enum Restarts {
    /// By this many since the probe's last check.
    Rose(u64),
    /// First looked at, and last started this long ago (within the window).
    RecentlyRestarted(Duration),
    /// Neither.
    Steady,
}

/// What the probe looks at.
#[derive(Debug, Clone)]
pub struct Pm2ProbeConfig {
    /// The processes that must run (by pm2 name); empty: every process pm2 runs.
    pub processes: Vec<String>,
    /// Degraded when memory is above this share of pm2's `max_memory_restart` (default 0.9).
    pub memory_degraded_above: f64,
    /// On the probe's first look at a process, a restart this recent is degraded (default 5
    /// minutes); later looks compare with the restarts seen before.
    pub recent_restart: Duration,
}

impl Default for Pm2ProbeConfig {
    fn default() -> Self {
        Self {
            processes: Vec::new(),
            memory_degraded_above: 0.9,
            recent_restart: Duration::from_secs(300),
        }
    }
}

/// Each process pm2 runs as a check:
/// - `online` is healthy; `launching` and `stopping` are degraded; `stopped`, `errored` and a
///   process pm2 does not know are unhealthy;
/// - restarts that rose since the probe's last check are degraded, and so is, at its first look
///   at a process, a restart within [`Pm2ProbeConfig::recent_restart`] (a crash loop seen once);
/// - memory above [`Pm2ProbeConfig::memory_degraded_above`] of pm2's limit is degraded (pm2
///   restarts the process at the limit).
#[derive(Clone)]
pub struct Pm2Probe {
    pm2: Pm2,
    config: Pm2ProbeConfig,
    name: String,
    clock: SharedClock,
    last_restarts: Arc<Mutex<HashMap<String, u64>>>,
}

impl Pm2Probe {
    /// A probe of `pm2`'s processes.
    pub fn new(pm2: Pm2, config: Pm2ProbeConfig) -> Self {
        Self {
            pm2,
            config,
            name: "pm2".into(),
            clock: system_clock(),
            last_restarts: Arc::default(),
        }
    }

    /// Timestamps from `clock`.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn judge(&self, p: &Pm2Process, rose_by: Restarts) -> (HealthStatus, String) {
        let mut status = match p.status {
            Pm2Status::Online => HealthStatus::Healthy,
            Pm2Status::Launching | Pm2Status::Stopping => HealthStatus::Degraded,
            _ => HealthStatus::Unhealthy,
        };
        let mut detail = p.status.as_str().to_string();
        if let Some(v) = &p.version {
            detail.push_str(&format!(", version {v}"));
        }
        if p.status == Pm2Status::Errored {
            detail.push_str(" (pm2 gave up restarting it)");
        }
        detail.push_str(&format!(", {} restarts", p.restarts));
        match rose_by {
            Restarts::Rose(n) => {
                status = status.max(HealthStatus::Degraded);
                detail.push_str(&format!(" ({n} since the last check)"));
            }
            Restarts::RecentlyRestarted(ago) => {
                status = status.max(HealthStatus::Degraded);
                detail.push_str(&format!(" (the last {}s ago)", ago.as_secs()));
            }
            Restarts::Steady => {}
        }
        detail.push_str(&format!(", {} MiB", p.memory_bytes >> 20));
        if let Some(limit) = p.memory_limit_bytes.filter(|l| *l > 0) {
            let share = p.memory_bytes as f64 / limit as f64;
            detail.push_str(&format!(" of {} MiB", limit >> 20));
            if share > self.config.memory_degraded_above {
                status = status.max(HealthStatus::Degraded);
                detail.push_str(" (near the limit: pm2 restarts it there)");
            }
        }
        (status, detail)
    }
}

#[async_trait]
impl HealthProbe for Pm2Probe {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<HealthReport> {
        let observed_at = self.clock.now();
        let start = self.clock.instant();
        let listed = self.pm2.processes().await;
        let latency = self.clock.instant().saturating_duration_since(start);
        let check = |name: String, status, detail| CheckResult {
            name,
            status,
            detail,
            latency,
            observed_at,
        };
        let processes = match listed {
            Ok(p) => p,
            Err(e) => {
                let c = check(
                    "pm2".into(),
                    HealthStatus::Unhealthy,
                    format!("cannot read pm2's processes: {e}"),
                );
                return Ok(HealthReport::from_checks(
                    self.name.clone(),
                    observed_at,
                    vec![c],
                ));
            }
        };
        let mut last = self.last_restarts.lock().unwrap_or_else(|p| p.into_inner());
        let mut checks = Vec::new();
        let wanted: Vec<String> = if self.config.processes.is_empty() {
            processes.iter().map(|p| p.name.clone()).collect()
        } else {
            self.config.processes.clone()
        };
        for want in wanted {
            let mine: Vec<&Pm2Process> = processes.iter().filter(|p| p.name == want).collect();
            if mine.is_empty() {
                checks.push(check(
                    format!("pm2 {want}"),
                    HealthStatus::Unhealthy,
                    "pm2 runs no process of that name".into(),
                ));
                continue;
            }
            // Cluster mode: one entry per instance.
            for p in mine {
                let key = format!("{}#{}", p.name, p.pm_id);
                let before = last.insert(key, p.restarts);
                let since_start = p
                    .started_at
                    .and_then(|t| (observed_at - t).to_std().ok())
                    .unwrap_or(Duration::MAX);
                let restarts = match before {
                    Some(b) if p.restarts > b => Restarts::Rose(p.restarts - b),
                    // A first look: a restart within the window counts (a crash loop seen once).
                    None if p.restarts > 0 && since_start < self.config.recent_restart => {
                        Restarts::RecentlyRestarted(since_start)
                    }
                    _ => Restarts::Steady,
                };
                let (status, detail) = self.judge(p, restarts);
                checks.push(check(
                    format!("pm2 {} #{}", p.name, p.pm_id),
                    status,
                    detail,
                ));
            }
        }
        Ok(HealthReport::from_checks(
            self.name.clone(),
            observed_at,
            checks,
        ))
    }
}
