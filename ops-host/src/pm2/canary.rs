//! [`Pm2Canary`]: canary and blue-green releases of one app on a host, as a [`Deployer`] with
//! traffic splits. Each release runs as its own pm2 process in a slot (a port of its own), from
//! its directory `releases/<version>`; nginx splits the traffic between the slots' servers
//! ([`crate::nginx`]). The seed's canary 1 → 5 → 25 → 100 % is [`Deployer::set_traffic`] on
//! this deployer, and the canary judge reads the counts from nginx's access log
//! ([`crate::access_log`]).
//!
//! A deploy starts the release in a slot that takes no traffic (replacing what ran there),
//! waits until it is online and answers its health path on its own port, then, with all
//! traffic, points nginx at it. Release ids are `<version>@<n>`: the same version deployed
//! again is a new release. Only releases running in a slot can take traffic, and a deploy while
//! every slot takes traffic (two slots during a canary) is a `Conflict` that changes nothing:
//! give a slot more than the releases that serve at once.
//!
//! nginx needs an upstream file to start: write one before its first start (a placeholder
//! release with [`Nginx::with_releases`] and [`Nginx::write_split`]); the first deploy with
//! traffic replaces it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ops_core::clock::{SharedClock, system_clock};
use ops_core::contracts::{
    DeployRequest, Deployer, DeployerCapabilities, HealthProbe, HealthStatus, InitialTraffic,
    MetricQuery, MetricReading, MetricsSource, Release, ReleaseState, RequestCounts, ServiceState,
    TimeWindow, TrafficAllocation, TrafficSplit,
};
use ops_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

use super::{Pm2, Pm2Status};
use crate::access_log::{AccessLog, AccessLogConfig};
use crate::nginx::Nginx;

/// The app, its slots and its releases.
#[derive(Debug, Clone)]
pub struct Pm2CanaryConfig {
    /// Holds `releases/<version>` and the deployer's state file.
    pub root: PathBuf,
    /// The app's name; slot `i` runs as pm2 process `<app>-<i>`.
    pub app: String,
    /// The entry point inside a release.
    pub script: String,
    /// One port per slot (at least two: stable and canary), given to the app as `PORT`.
    pub ports: Vec<u16>,
    /// The health path each slot answers 200 on (`/health`).
    pub health_path: String,
    /// Environment for the app besides `PORT` (no secrets: pm2 keeps it in its files).
    pub env: BTreeMap<String, String>,
    /// How long a started release must stay online to count as started (default 2 s).
    pub stable_for: Duration,
}

impl Pm2CanaryConfig {
    /// `app` from `root`, started from `script`, in slots on `ports`.
    pub fn new(
        root: impl Into<PathBuf>,
        app: impl Into<String>,
        script: impl Into<String>,
        ports: &[u16],
    ) -> Self {
        Self {
            root: root.into(),
            app: app.into(),
            script: script.into(),
            ports: ports.to_vec(),
            health_path: "/health".into(),
            env: BTreeMap::new(),
            stable_for: Duration::from_secs(2),
        }
    }
}

/// What runs in each slot, kept beside `releases/`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Slots {
    /// The last release number given.
    #[serde(default)]
    n: u64,
    /// Slot index → the release in it.
    #[serde(default)]
    slots: BTreeMap<usize, InSlot>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct InSlot {
    id: String,
    version: String,
    deployed_at: DateTime<Utc>,
}

/// Releases of one app in pm2 slots behind nginx; see the module docs.
#[derive(Clone)]
pub struct Pm2Canary {
    pm2: Pm2,
    nginx: Nginx,
    config: Pm2CanaryConfig,
    clock: SharedClock,
    /// One change at a time (the state file and nginx's file).
    lock: std::sync::Arc<tokio::sync::Mutex<()>>,
}

fn bad(field: &str, why: impl Into<String>) -> Error {
    Error::invalid_input("host", "pm2_canary", field, why)
}

fn io(e: std::io::Error) -> Error {
    ops_core::error::from_io("host", "pm2_canary", e)
}

impl Pm2Canary {
    /// The app of `config`, run by `pm2`, its traffic split by `nginx`.
    pub fn new(pm2: Pm2, nginx: Nginx, config: Pm2CanaryConfig) -> Result<Self> {
        if config.ports.len() < 2 {
            return Err(bad("ports", "at least two slots: stable and canary"));
        }
        let mut seen = std::collections::HashSet::new();
        if config.ports.iter().any(|p| *p == 0 || !seen.insert(*p)) {
            return Err(bad("ports", "distinct and not 0"));
        }
        if !crate::nginx::is_word(&config.app) || config.app.contains('@') {
            return Err(bad("app", "a plain name"));
        }
        if !config.health_path.starts_with('/') {
            return Err(bad("health_path", "must start with /"));
        }
        if config.stable_for.is_zero() {
            return Err(bad("stable_for", "must be above zero"));
        }
        Ok(Self {
            pm2,
            nginx,
            config,
            clock: system_clock(),
            lock: Default::default(),
        })
    }

    /// Waits and timestamps on `clock`.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn state_path(&self) -> PathBuf {
        self.config.root.join(".ops-canary.json")
    }

    async fn slots(&self) -> Result<Slots> {
        match tokio::fs::read(self.state_path()).await {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                Error::new(
                    "host",
                    "pm2_canary",
                    ErrorKind::Decode {
                        detail: format!("{}: {e}", self.state_path().display()),
                    },
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Slots::default()),
            Err(e) => Err(io(e)),
        }
    }

    async fn save(&self, slots: &Slots) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(slots).map_err(|e| bad("state", e.to_string()))?;
        let tmp = self.config.root.join(".ops-canary.json.tmp");
        tokio::fs::write(&tmp, bytes).await.map_err(io)?;
        tokio::fs::rename(&tmp, self.state_path()).await.map_err(io)
    }

    fn server(&self, slot: usize) -> String {
        format!("127.0.0.1:{}", self.config.ports[slot])
    }

    fn process(&self, slot: usize) -> String {
        format!("{}-{slot}", self.config.app)
    }

    /// The nginx of the releases now in slots.
    fn routed(&self, slots: &Slots) -> Result<Nginx> {
        let releases = slots
            .slots
            .iter()
            .filter(|(i, _)| **i < self.config.ports.len())
            .map(|(i, s)| (s.id.clone(), vec![self.server(*i)]))
            .collect();
        self.nginx.with_releases(releases)
    }

    /// The traffic in force, by release id, from nginx's file.
    async fn traffic(&self) -> Result<Vec<TrafficAllocation>> {
        let weights = match self.nginx.split_in_force().await {
            Ok(w) => w,
            Err(e) if matches!(e.kind(), ErrorKind::Io { kind, .. } if *kind == std::io::ErrorKind::NotFound) =>
            {
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let shares = crate::nginx::shares(&weights);
        Ok(shares
            .into_iter()
            .filter(|(_, pct)| *pct > 0.0)
            .map(|(release, pct)| TrafficAllocation {
                release,
                percent: pct.round().clamp(0.0, 100.0) as u8,
            })
            .collect())
    }

    /// Starts `version` in `slot` (replacing what ran there) and waits until it is started.
    async fn start_in(&self, slot: usize, version: &str, deadline: Duration) -> Result<()> {
        let dir = self.config.root.join("releases").join(version);
        let script = dir.join(&self.config.script);
        if !script.is_file() {
            return Err(Error::new(
                "host",
                "pm2_canary",
                ErrorKind::NotFound {
                    resource: format!("{} (the build puts the release there)", script.display()),
                },
            ));
        }
        let name = self.process(slot);
        // A slot's process is replaced whole: its script and directory change with the release.
        if self.pm2.processes().await?.iter().any(|p| p.name == name) {
            self.pm2.run(&["delete", &name]).await?;
        }
        let mut env: Vec<(String, String)> = self.config.env.clone().into_iter().collect();
        env.push(("PORT".into(), self.config.ports[slot].to_string()));
        let (script, cwd) = (script.display().to_string(), dir.display().to_string());
        self.pm2
            .run_with_env(&["start", &script, "--name", &name, "--cwd", &cwd], &env)
            .await?;
        let url = format!("http://{}{}", self.server(slot), self.config.health_path);
        let probe = ops_core::adapters::HttpProbe::new(&url)?.timeout(Duration::from_secs(5));
        let start = self.clock.instant();
        loop {
            let now = self.clock.now();
            let ps = self.pm2.processes().await?;
            let p = ps.iter().find(|p| p.name == name);
            let why = match p {
                Some(p) if p.status == Pm2Status::Errored => {
                    Some(format!("pm2 gave up on it after {} restarts", p.restarts))
                }
                _ => None,
            };
            let online_long = p.is_some_and(|p| {
                p.status == Pm2Status::Online
                    && p.started_at.is_some_and(|t| {
                        (now - t)
                            .to_std()
                            .is_ok_and(|up| up >= self.config.stable_for)
                    })
            });
            if why.is_none()
                && online_long
                && probe
                    .check()
                    .await
                    .is_ok_and(|r| r.status == HealthStatus::Healthy)
            {
                return Ok(());
            }
            let late = self.clock.instant().saturating_duration_since(start) >= deadline;
            if why.is_some() || late {
                let _ = self.pm2.run(&["stop", &name]).await;
                return Err(Error::new(
                    "host",
                    "pm2_canary",
                    ErrorKind::VerificationFailed {
                        check: format!("{version} started in slot {slot}"),
                        detail: why.unwrap_or_else(|| format!("not healthy within {deadline:?}")),
                    },
                ));
            }
            self.clock.sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Pm2Canary {
    /// The requests each release served, from nginx's access log at `access_log` (written in
    /// [`crate::access_log::LOG_FORMAT`]): what the canary judge compares. A release is found
    /// by the slot it runs in.
    pub fn metrics(&self, access_log: impl Into<PathBuf>) -> SlotMetrics {
        SlotMetrics {
            deployer: self.clone(),
            base: AccessLogConfig::new(access_log),
        }
    }
}

/// [`AccessLog`] for the releases of a [`Pm2Canary`]: see [`Pm2Canary::metrics`].
#[derive(Clone)]
pub struct SlotMetrics {
    deployer: Pm2Canary,
    base: AccessLogConfig,
}

impl SlotMetrics {
    /// The access log with each release in a slot mapped to its server.
    async fn log(&self) -> Result<AccessLog> {
        let slots = self.deployer.slots().await?;
        let mut config = self.base.clone();
        for (i, s) in &slots.slots {
            if *i < self.deployer.config.ports.len() {
                config
                    .releases
                    .insert(s.id.clone(), vec![self.deployer.server(*i)]);
            }
        }
        AccessLog::new("nginx", config)
    }
}

#[async_trait]
impl MetricsSource for SlotMetrics {
    fn name(&self) -> &str {
        "nginx"
    }

    async fn read(&self, query: &MetricQuery) -> Result<MetricReading> {
        self.log().await?.read(query).await
    }

    async fn counts(&self, release: &str, window: &TimeWindow) -> Result<RequestCounts> {
        self.log().await?.counts(release, window).await
    }
}

#[async_trait]
impl Deployer for Pm2Canary {
    fn target(&self) -> &str {
        &self.config.app
    }

    fn capabilities(&self) -> DeployerCapabilities {
        DeployerCapabilities {
            traffic_split: true,
            scale: false,
            stop_serving: false,
            deploy_without_traffic: true,
        }
    }

    async fn current(&self) -> Result<ServiceState> {
        let slots = self.slots().await?;
        let traffic = self.traffic().await?;
        let latest = slots
            .slots
            .values()
            .max_by_key(|s| s.deployed_at)
            .map(|s| s.id.clone());
        Ok(ServiceState {
            target: self.config.app.clone(),
            serving: !traffic.is_empty(),
            traffic,
            latest_ready: latest,
            url: None,
            scale: None,
            etag: None,
        })
    }

    /// The releases in slots, newest deployed first.
    async fn releases(&self) -> Result<Vec<Release>> {
        let slots = self.slots().await?;
        let mut out: Vec<Release> = slots
            .slots
            .iter()
            .map(|(i, s)| Release {
                id: s.id.clone(),
                version: s.version.clone(),
                state: ReleaseState::Ready,
                created_at: Some(s.deployed_at),
                url: Some(format!("http://{}", self.server(*i))),
                labels: BTreeMap::from([("slot".to_string(), i.to_string())]),
            })
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        Ok(out)
    }

    async fn deploy(&self, request: &DeployRequest) -> Result<Release> {
        request.validate()?;
        let v = &request.version;
        if v.starts_with('.')
            || !v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
        {
            return Err(bad(
                "version",
                format!("{v:?} cannot name a release directory"),
            ));
        }
        let _one = self.lock.lock().await;
        let mut slots = self.slots().await?;
        let serving: Vec<String> = self
            .traffic()
            .await?
            .into_iter()
            .map(|t| t.release)
            .collect();
        // A slot taking no traffic: an empty one first, else the oldest idle one.
        let slot = (0..self.config.ports.len())
            .filter(|i| slots.slots.get(i).is_none_or(|s| !serving.contains(&s.id)))
            .min_by_key(|i| slots.slots.get(i).map(|s| s.deployed_at))
            .ok_or_else(|| {
                Error::new(
                    "host",
                    "pm2_canary",
                    ErrorKind::Conflict {
                        detail: "every slot takes traffic: move it off one release first".into(),
                    },
                )
            })?;
        self.start_in(slot, v, request.deadline).await?;
        slots.n += 1;
        let entry = InSlot {
            id: format!("{v}@{}", slots.n),
            version: v.clone(),
            deployed_at: self.clock.now(),
        };
        slots.slots.insert(slot, entry.clone());
        self.save(&slots).await?;
        if request.traffic == InitialTraffic::All {
            self.routed(&slots)?
                .set_split(&TrafficSplit::all_to(entry.id.as_str())?)
                .await?;
        }
        Ok(Release {
            id: entry.id,
            version: entry.version,
            state: ReleaseState::Ready,
            created_at: Some(entry.deployed_at),
            url: Some(format!("http://{}", self.server(slot))),
            labels: BTreeMap::from([("slot".to_string(), slot.to_string())]),
        })
    }

    async fn set_traffic(&self, split: &TrafficSplit) -> Result<ServiceState> {
        let _one = self.lock.lock().await;
        let slots = self.slots().await?;
        for a in split.allocations() {
            if !slots.slots.values().any(|s| s.id == a.release) {
                return Err(Error::new(
                    "host",
                    "pm2_canary",
                    ErrorKind::NotFound {
                        resource: format!("release {} (not running in a slot)", a.release),
                    },
                ));
            }
        }
        self.routed(&slots)?.set_split(split).await?;
        drop(_one);
        self.current().await
    }

    async fn stop_serving(&self) -> Result<ServiceState> {
        Err(Error::unsupported(
            "host",
            "pm2_canary",
            "stopping (stop the pm2 processes, or point nginx at a maintenance page)",
        ))
    }
}
