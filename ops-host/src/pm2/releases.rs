//! [`Pm2Releases`]: the common self-hosted layout as a [`Deployer`]. Each version sits in its
//! own directory (`releases/<version>`, put there by the build), `current` is a symlink to the
//! one serving, switched atomically, and pm2 runs the app from `current` (`pm2 reload`: in
//! cluster mode, one instance at a time, without downtime).
//!
//! A deploy with traffic switches `current`, reloads pm2 and waits until the app is online and
//! its health URL answers 200; if it does not within the deadline, `current` goes back to the
//! release before and pm2 is reloaded again (the automatic rollback). A deploy without traffic
//! only records the release. Moving all traffic to an older release is the rollback to a named
//! version; splits need nginx ([`crate::nginx`]) and are `Unsupported` here. Releases are
//! listed newest deployed first (a state file beside `releases/` keeps the deploy times).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ops_core::clock::{SharedClock, system_clock};
use ops_core::contracts::{
    DeployRequest, Deployer, DeployerCapabilities, HealthProbe, HealthStatus, InitialTraffic,
    Release, ReleaseState, ServiceState, TrafficAllocation, TrafficSplit,
};
use ops_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

use super::{Pm2, Pm2Status};

/// Where the releases are and how pm2 runs the app.
#[derive(Debug, Clone)]
pub struct Pm2ReleasesConfig {
    /// The app's root: it holds `releases/` and the `current` symlink.
    pub root: PathBuf,
    /// The pm2 process name.
    pub app: String,
    /// The entry point inside a release (`server.js`, `dist/main.js`).
    pub script: String,
    /// pm2 instances: 0 runs one process in fork mode; N ≥ 1 runs N in cluster mode.
    pub instances: u32,
    /// Environment given to the app when pm2 starts or reloads it (not secrets: pm2 keeps its
    /// environment in its own files).
    pub env: BTreeMap<String, String>,
    /// Answers 200 when the app is healthy (`http://127.0.0.1:3000/health`); without it, online
    /// for [`Pm2ReleasesConfig::stable_for`] is enough.
    pub health_url: Option<String>,
    /// How long the app must stay online after a start to count as started (default 2 s).
    pub stable_for: Duration,
}

impl Pm2ReleasesConfig {
    /// The app `app` under `root`, started from `script`.
    pub fn new(
        root: impl Into<PathBuf>,
        app: impl Into<String>,
        script: impl Into<String>,
    ) -> Self {
        Self {
            root: root.into(),
            app: app.into(),
            script: script.into(),
            instances: 0,
            env: BTreeMap::new(),
            health_url: None,
            stable_for: Duration::from_secs(2),
        }
    }

    fn releases_dir(&self) -> PathBuf {
        self.root.join("releases")
    }

    fn current_link(&self) -> PathBuf {
        self.root.join("current")
    }

    fn state_file(&self) -> PathBuf {
        self.root.join(".ops-releases.json")
    }
}

/// The deploy times, kept beside `releases/`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Deployed {
    #[serde(default)]
    at: BTreeMap<String, DateTime<Utc>>,
}

/// The releases of one pm2 app on this host; see the module docs.
#[derive(Clone)]
pub struct Pm2Releases {
    pm2: Pm2,
    config: Pm2ReleasesConfig,
    clock: SharedClock,
}

fn bad(field: &str, why: impl Into<String>) -> Error {
    Error::invalid_input("host", "pm2_releases", field, why)
}

/// A version names a directory: no separators, no `..`, nothing hidden.
fn check_version(version: &str) -> Result<()> {
    let ok = !version.is_empty()
        && version.len() <= 128
        && !version.starts_with('.')
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c));
    if !ok {
        return Err(bad(
            "version",
            format!("{version:?} cannot name a release directory (letters, digits, . _ - +)"),
        ));
    }
    Ok(())
}

impl Pm2Releases {
    /// The releases under `config.root`, run by `pm2`.
    pub fn new(pm2: Pm2, config: Pm2ReleasesConfig) -> Result<Self> {
        if config.app.trim().is_empty() || config.app.contains(char::is_whitespace) {
            return Err(bad("app", "must be a pm2 name without spaces"));
        }
        if config.script.is_empty()
            || Path::new(&config.script).is_absolute()
            || config.script.contains("..")
        {
            return Err(bad("script", "must be a path inside a release"));
        }
        if config.stable_for.is_zero() {
            return Err(bad("stable_for", "must be above zero"));
        }
        Ok(Self {
            pm2,
            config,
            clock: system_clock(),
        })
    }

    /// Waits and timestamps on `clock`.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn io(e: std::io::Error) -> Error {
        ops_core::error::from_io("host", "pm2_releases", e)
    }

    async fn deployed(&self) -> Result<Deployed> {
        match tokio::fs::read(self.config.state_file()).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::new(
                    "host",
                    "pm2_releases",
                    ErrorKind::Decode {
                        detail: format!("{}: {e}", self.config.state_file().display()),
                    },
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Deployed::default()),
            Err(e) => Err(Self::io(e)),
        }
    }

    async fn record(&self, version: &str) -> Result<()> {
        let mut d = self.deployed().await?;
        d.at.insert(version.to_string(), self.clock.now());
        self.write_deployed(&d).await
    }

    async fn write_deployed(&self, d: &Deployed) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(d).map_err(|e| bad("state", e.to_string()))?;
        let tmp = self.config.root.join(".ops-releases.json.tmp");
        tokio::fs::write(&tmp, bytes).await.map_err(Self::io)?;
        tokio::fs::rename(&tmp, self.config.state_file())
            .await
            .map_err(Self::io)
    }

    /// The release `current` points at, if any.
    async fn current_version(&self) -> Result<Option<String>> {
        match tokio::fs::read_link(self.config.current_link()).await {
            Ok(target) => Ok(target.file_name().map(|n| n.to_string_lossy().into_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::io(e)),
        }
    }

    /// Points `current` at `version`, atomically (a new link renamed over the old).
    async fn switch_to(&self, version: &str) -> Result<()> {
        let target = PathBuf::from("releases").join(version);
        let tmp = self
            .config
            .root
            .join(format!(".current-{:016x}", fastrand::u64(..)));
        tokio::fs::symlink(&target, &tmp).await.map_err(Self::io)?;
        if let Err(e) = tokio::fs::rename(&tmp, self.config.current_link()).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(Self::io(e));
        }
        Ok(())
    }

    /// Starts the app from `current`, or reloads it when pm2 runs it already.
    async fn start_or_reload(&self) -> Result<()> {
        let processes = self.pm2.processes().await?;
        let mine: Vec<_> = processes
            .iter()
            .filter(|p| p.name == self.config.app)
            .collect();
        let env: Vec<(String, String)> = self.config.env.clone().into_iter().collect();
        if !mine.is_empty() && mine.iter().all(|p| p.status == Pm2Status::Online) {
            self.pm2
                .run_with_env(&["reload", &self.config.app, "--update-env"], &env)
                .await?;
        } else if !mine.is_empty() {
            // Stopped (or errored): a reload would not start it.
            self.pm2
                .run_with_env(&["restart", &self.config.app, "--update-env"], &env)
                .await?;
        } else {
            let current = self.config.current_link();
            let script = current.join(&self.config.script).display().to_string();
            let cwd = current.display().to_string();
            let instances = self.config.instances.to_string();
            let mut args = vec![
                "start",
                script.as_str(),
                "--name",
                &self.config.app,
                "--cwd",
                cwd.as_str(),
            ];
            if self.config.instances > 0 {
                args.extend(["-i", instances.as_str()]);
            }
            self.pm2.run_with_env(&args, &env).await?;
        }
        Ok(())
    }

    /// Waits until the app is online for `stable_for` and its health URL answers, within
    /// `deadline`; why not, otherwise.
    async fn wait_started(&self, deadline: Duration) -> std::result::Result<(), String> {
        let probe = match &self.config.health_url {
            Some(url) => Some(
                ops_core::adapters::HttpProbe::new(url)
                    .map_err(|e| e.to_string())?
                    .timeout(Duration::from_secs(5)),
            ),
            None => None,
        };
        let start = self.clock.instant();
        loop {
            let ps = self.pm2.processes().await.map_err(|e| e.to_string())?;
            let mine: Vec<_> = ps.iter().filter(|p| p.name == self.config.app).collect();
            let now = self.clock.now();
            let stable = !mine.is_empty()
                && mine.iter().all(|p| {
                    p.status == Pm2Status::Online
                        && p.started_at.is_some_and(|t| {
                            (now - t)
                                .to_std()
                                .is_ok_and(|up| up >= self.config.stable_for)
                        })
                });
            if let Some(p) = mine.iter().find(|p| p.status == Pm2Status::Errored) {
                return Err(format!(
                    "pm2 gave up on {} ({} restarts)",
                    p.name, p.restarts
                ));
            }
            let mut last = match mine.first() {
                Some(p) => format!("{} with {} restarts", p.status.as_str(), p.restarts),
                None => "not running".into(),
            };
            if stable {
                match &probe {
                    None => return Ok(()),
                    Some(probe) => match probe.check().await {
                        Ok(r) if r.status == HealthStatus::Healthy => return Ok(()),
                        Ok(r) => {
                            last = r.checks.first().map_or(String::new(), |c| c.detail.clone());
                        }
                        Err(e) => last = e.to_string(),
                    },
                }
            }
            if self.clock.instant().saturating_duration_since(start) >= deadline {
                return Err(format!("not started within {deadline:?}: {last}"));
            }
            self.clock.sleep(Duration::from_millis(200)).await;
        }
    }

    /// Switches to `version` and starts it; back to the release before when it does not start.
    async fn serve(&self, version: &str, deadline: Duration) -> Result<()> {
        let before = self.current_version().await?;
        self.switch_to(version).await?;
        let started = match self.start_or_reload().await {
            Ok(()) => self.wait_started(deadline).await,
            Err(e) => Err(e.to_string()),
        };
        let Err(why) = started else {
            return Ok(());
        };
        // The automatic rollback: the release before, if there was one.
        let rolled_back = match &before {
            Some(prev) if prev != version => {
                self.switch_to(prev).await?;
                self.start_or_reload().await?;
                format!("; back on {prev}")
            }
            _ => String::new(),
        };
        Err(Error::new(
            "host",
            "pm2_releases",
            ErrorKind::VerificationFailed {
                check: format!("{} {version} started", self.config.app),
                detail: format!("{why}{rolled_back}"),
            },
        ))
    }

    async fn release_of(&self, version: &str, deployed: &Deployed) -> Result<Release> {
        let dir = self.config.releases_dir().join(version);
        let meta = tokio::fs::metadata(&dir)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::new(
                    "host",
                    "pm2_releases",
                    ErrorKind::NotFound {
                        resource: format!(
                            "release directory {} (the build puts it there)",
                            dir.display()
                        ),
                    },
                ),
                _ => Self::io(e),
            })?;
        if !meta.is_dir() {
            return Err(bad(
                "version",
                format!("{} is not a directory", dir.display()),
            ));
        }
        Ok(Release {
            id: version.to_string(),
            version: version.to_string(),
            state: ReleaseState::Ready,
            created_at: deployed.at.get(version).copied(),
            url: None,
            labels: BTreeMap::from([("path".to_string(), dir.display().to_string())]),
        })
    }
}

impl Pm2Releases {
    /// Back to the release deployed before the one serving (the seed's `rollback:emergency`
    /// without naming a version); `NotFound` when there is none.
    pub async fn rollback(&self, deadline: Duration) -> Result<ServiceState> {
        let current = self.current_version().await?;
        let previous = self
            .releases()
            .await?
            .into_iter()
            .filter(|r| Some(&r.id) != current.as_ref())
            .find(|r| r.labels.contains_key("deployed"));
        let previous = match previous {
            Some(r) => r,
            None => previous_missing()?,
        };
        self.serve(&previous.id, deadline).await?;
        self.record(&previous.id).await?;
        self.current().await
    }

    /// The emergency restart (`pm2 restart`), waiting until the app is started again.
    pub async fn restart(&self, deadline: Duration) -> Result<ServiceState> {
        let env: Vec<(String, String)> = self.config.env.clone().into_iter().collect();
        self.pm2
            .run_with_env(&["restart", &self.config.app, "--update-env"], &env)
            .await?;
        self.wait_started(deadline).await.map_err(|why| {
            Error::new(
                "host",
                "pm2_releases",
                ErrorKind::VerificationFailed {
                    check: format!("{} restarted", self.config.app),
                    detail: why,
                },
            )
        })?;
        self.current().await
    }

    /// The release directories pruning would delete: all but the newest `keep` (at least 2),
    /// never the one serving nor the one deployed before it (the rollback's target). What a
    /// dry run shows.
    pub async fn prune_plan(&self, keep: usize) -> Result<Vec<String>> {
        let current = self.current_version().await?;
        let releases = self.releases().await?;
        let previous = releases
            .iter()
            .find(|r| Some(&r.id) != current.as_ref())
            .map(|r| r.id.clone());
        Ok(releases
            .into_iter()
            .skip(keep.max(2))
            .map(|r| r.id)
            .filter(|id| Some(id) != current.as_ref() && Some(id) != previous.as_ref())
            .collect())
    }

    /// Deletes the directories [`Pm2Releases::prune_plan`] names; the ones deleted.
    pub async fn prune(&self, keep: usize) -> Result<Vec<String>> {
        let doomed = self.prune_plan(keep).await?;
        for version in &doomed {
            check_version(version)?;
            tokio::fs::remove_dir_all(self.config.releases_dir().join(version))
                .await
                .map_err(Self::io)?;
        }
        let mut d = self.deployed().await?;
        for version in &doomed {
            d.at.remove(version);
        }
        self.write_deployed(&d).await?;
        Ok(doomed)
    }
}

fn previous_missing<T>() -> Result<T> {
    Err(Error::new(
        "host",
        "pm2_releases",
        ErrorKind::NotFound {
            resource: "a release deployed before the one serving".into(),
        },
    ))
}

#[async_trait]
impl Deployer for Pm2Releases {
    fn target(&self) -> &str {
        &self.config.app
    }

    fn capabilities(&self) -> DeployerCapabilities {
        DeployerCapabilities {
            traffic_split: false,
            scale: false,
            stop_serving: true,
            deploy_without_traffic: true,
        }
    }

    async fn current(&self) -> Result<ServiceState> {
        let current = self.current_version().await?;
        let online = self
            .pm2
            .processes()
            .await?
            .iter()
            .any(|p| p.name == self.config.app && p.status == Pm2Status::Online);
        let latest = self.releases().await?.into_iter().next().map(|r| r.id);
        let traffic = match (&current, online) {
            (Some(v), true) => vec![TrafficAllocation {
                release: v.clone(),
                percent: 100,
            }],
            _ => Vec::new(),
        };
        Ok(ServiceState {
            target: self.config.app.clone(),
            serving: online && current.is_some(),
            traffic,
            latest_ready: latest,
            url: self.config.health_url.clone(),
            scale: None,
            etag: None,
        })
    }

    /// Every directory under `releases/`, the most recently deployed first (then the newest
    /// directory).
    async fn releases(&self) -> Result<Vec<Release>> {
        let deployed = self.deployed().await?;
        let mut out = Vec::new();
        let mut dir = match tokio::fs::read_dir(self.config.releases_dir()).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Self::io(e)),
        };
        while let Some(entry) = dir.next_entry().await.map_err(Self::io)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if check_version(&name).is_err() || !entry.file_type().await.map_err(Self::io)?.is_dir()
            {
                continue;
            }
            let modified = entry.metadata().await.map_err(Self::io)?.modified().ok();
            let mut r = self.release_of(&name, &deployed).await?;
            match r.created_at {
                Some(_) => {
                    r.labels.insert("deployed".into(), "true".into());
                }
                None => r.created_at = modified.map(DateTime::<Utc>::from),
            }
            out.push(r);
        }
        out.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        Ok(out)
    }

    async fn deploy(&self, request: &DeployRequest) -> Result<Release> {
        request.validate()?;
        check_version(&request.version)?;
        let release = self
            .release_of(&request.version, &Deployed::default())
            .await?;
        if request.traffic == InitialTraffic::All {
            self.serve(&request.version, request.deadline).await?;
        }
        self.record(&request.version).await?;
        let deployed = self.deployed().await?;
        Ok(Release {
            created_at: deployed.at.get(&request.version).copied(),
            ..release
        })
    }

    async fn set_traffic(&self, split: &TrafficSplit) -> Result<ServiceState> {
        let [only] = split.allocations() else {
            return Err(Error::unsupported(
                "host",
                "pm2_releases",
                "traffic splits (one pm2 app serves one release; split with nginx)",
            ));
        };
        check_version(&only.release)?;
        self.release_of(&only.release, &Deployed::default()).await?;
        self.serve(&only.release, Duration::from_secs(120)).await?;
        self.current().await
    }

    /// `pm2 stop`: the app stops; `current` stays, so [`Deployer::set_traffic`] resumes it.
    async fn stop_serving(&self) -> Result<ServiceState> {
        self.pm2.run(&["stop", &self.config.app]).await?;
        self.current().await
    }
}
