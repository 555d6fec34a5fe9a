//! [`CommandDeployer`]: a [`Deployer`] for teams whose procedures are already scripts
//! (`npm run deploy:canary -- --stage=5 --version=v2.1.0`). Each operation is an argv
//! template with placeholders, run without a shell, in its own process group, within a
//! timeout:
//!
//! | operation | placeholders | standard output |
//! |---|---|---|
//! | `deploy` | `{version}`, `{traffic}` (`all` or `none`) | optionally the release as JSON (`{"id": …}`) on its last line |
//! | `traffic` | `{release}` (the smaller share's, or the only one), `{percent}` (its share), `{stable}` (the other release, or empty) | — |
//! | `stop` | — | — |
//! | `status` | — | the state as JSON: `{"serving": true, "traffic": [{"release": "…", "percent": 95}, …], "latest_ready": "…", "url": "…"}` |
//! | `releases` | — | the releases as JSON, newest first: `[{"id": "…", "version": "…", "state": "ready", "created_at": "…"}]` |
//!
//! A non-zero exit is a `Provider` error carrying the end of standard error (secrets masked);
//! a timeout kills the command's whole process group. A deploy is never retried: it would run
//! twice. Dry runs show the exact commands ([`CommandDeployer::command_for`]).

mod run;
mod template;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use ops_core::contracts::{
    DeployAction, DeployRequest, Deployer, DeployerCapabilities, InitialTraffic, Release,
    ReleaseState, ServiceState, TrafficAllocation, TrafficSplit, Validation, validate_locally,
};
use ops_core::{Error, ErrorKind, Result};
use serde::Deserialize;

pub use run::MAX_STDOUT;

/// The commands of a [`CommandDeployer`] (each an argv template; see the module docs).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandDeployerConfig {
    /// The target's name, for locks, journals and reports.
    pub target: String,
    /// Where the commands run (default: the current directory).
    #[serde(default)]
    pub working_dir: Option<PathBuf>,
    /// Deploys `{version}`.
    pub deploy: Vec<String>,
    /// Sets the traffic: all of it to `{release}` (`{percent}` = 100, `{stable}` empty), or a
    /// split over two releases (a rollback is all of it to an older release).
    pub traffic: Vec<String>,
    /// Whether `traffic` can split (default true); false: only all of it to one release, and
    /// a split is `Unsupported` (a script that can only switch, like `rollback:emergency`).
    #[serde(default = "yes")]
    pub splits: bool,
    /// Stops serving (the emergency stop); without it, `Unsupported`.
    #[serde(default)]
    pub stop: Option<Vec<String>>,
    /// Prints the state.
    pub status: Vec<String>,
    /// Prints the releases.
    pub releases: Vec<String>,
    /// How long one command may run (default 15 minutes; a deploy waits for its release).
    #[serde(default, with = "opt_secs")]
    pub timeout: Option<Duration>,
}

fn yes() -> bool {
    true
}

mod opt_secs {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_secs))
    }
}

impl CommandDeployerConfig {
    fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(Duration::from_secs(15 * 60))
    }

    /// Refuses a template that cannot work before anything runs.
    pub fn validate(&self) -> Result<()> {
        crate_check_name(&self.target)?;
        template::check("deploy", &self.deploy, &["version", "traffic"])?;
        template::check("traffic", &self.traffic, &["release", "percent", "stable"])?;
        if let Some(t) = &self.stop {
            template::check("stop", t, &[])?;
        }
        template::check("status", &self.status, &[])?;
        template::check("releases", &self.releases, &[])?;
        if self.timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::invalid_input(
                "host",
                "command_deployer",
                "timeout",
                "must be above zero",
            ));
        }
        Ok(())
    }
}

fn crate_check_name(target: &str) -> Result<()> {
    if target.trim().is_empty() {
        return Err(Error::invalid_input(
            "host",
            "command_deployer",
            "target",
            "must not be empty",
        ));
    }
    Ok(())
}

/// A [`Deployer`] running the team's own commands; see the module docs.
#[derive(Debug, Clone)]
pub struct CommandDeployer {
    config: CommandDeployerConfig,
}

/// A release as the `releases` and `deploy` commands print it.
#[derive(Deserialize)]
struct PrintedRelease {
    id: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    created_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    url: Option<String>,
}

impl PrintedRelease {
    fn into_release(self, version: Option<&str>) -> Release {
        let state = match self
            .state
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("ready") | Some("online") | Some("active") => ReleaseState::Ready,
            Some("failed") | Some("error") | Some("errored") => ReleaseState::Failed,
            Some(_) => ReleaseState::Pending,
        };
        Release {
            version: self
                .version
                .or(version.map(str::to_string))
                .unwrap_or_else(|| self.id.clone()),
            id: self.id,
            state,
            created_at: self.created_at,
            url: self.url,
            labels: BTreeMap::new(),
        }
    }
}

/// The state as the `status` command prints it.
#[derive(Deserialize)]
struct PrintedState {
    #[serde(default)]
    serving: Option<bool>,
    #[serde(default)]
    traffic: Vec<TrafficAllocation>,
    #[serde(default)]
    latest_ready: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

fn decode<T: serde::de::DeserializeOwned>(op: &str, stdout: &[u8]) -> Result<T> {
    serde_json::from_slice(stdout).map_err(|e| {
        Error::new(
            "host",
            "command_deployer",
            ErrorKind::Decode {
                // Where, not what: the output may hold anything.
                detail: format!(
                    "{op} printed no valid JSON: {:?} error at line {}, column {}",
                    e.classify(),
                    e.line(),
                    e.column()
                ),
            },
        )
    })
}

impl CommandDeployer {
    /// A deployer running `config`'s commands.
    pub fn new(config: CommandDeployerConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The exact command `action` runs (what a dry run shows); `Unsupported` when there is
    /// none for it.
    pub fn command_for(&self, action: &DeployAction) -> Result<Vec<String>> {
        validate_locally(action)?;
        match action {
            DeployAction::Deploy(r) => Ok(template::fill(
                &self.config.deploy,
                &BTreeMap::from([
                    ("version", r.version.clone()),
                    (
                        "traffic",
                        match r.traffic {
                            InitialTraffic::All => "all".to_string(),
                            _ => "none".to_string(),
                        },
                    ),
                ]),
            )),
            DeployAction::SetTraffic(split) => {
                let shares = split.allocations().iter().filter(|a| a.percent > 0).count();
                if !self.config.splits && shares > 1 {
                    return Err(self.unsupported("traffic splits"));
                }
                Ok(template::fill(&self.config.traffic, &split_values(split)?))
            }
            DeployAction::StopServing => self
                .config
                .stop
                .clone()
                .ok_or_else(|| self.unsupported("stopping")),
            DeployAction::Scale(_) => Err(self.unsupported("scaling")),
        }
    }

    fn unsupported(&self, what: &str) -> Error {
        Error::unsupported(
            "host",
            "command_deployer",
            format!("{what} (no command configured)"),
        )
    }

    async fn exec(&self, op: &'static str, argv: &[String]) -> Result<run::Output> {
        tracing::info!(target = %self.config.target, command = %argv.join(" "), "running");
        let out = run::run(
            op,
            argv,
            self.config.working_dir.as_deref(),
            &[],
            self.config.timeout(),
        )
        .await?;
        if !out.stderr.is_empty() {
            tracing::debug!(command = %op, stderr = %out.stderr, "its standard error");
        }
        Ok(out)
    }
}

/// The placeholders of a split: the smaller share's release and percent, and the other.
fn split_values(split: &TrafficSplit) -> Result<BTreeMap<&'static str, String>> {
    let mut a: Vec<&TrafficAllocation> = split.allocations().iter().collect();
    if a.len() > 2 {
        return Err(Error::unsupported(
            "host",
            "command_deployer",
            "a split over more than two releases",
        ));
    }
    a.sort_by_key(|x| x.percent);
    let (release, percent, stable) = match a.as_slice() {
        [only] => (only.release.clone(), only.percent, String::new()),
        [small, large] => (small.release.clone(), small.percent, large.release.clone()),
        _ => {
            return Err(Error::invalid_input(
                "host",
                "command_deployer",
                "split",
                "names no release",
            ));
        }
    };
    Ok(BTreeMap::from([
        ("release", release),
        ("percent", percent.to_string()),
        ("stable", stable),
    ]))
}

#[async_trait]
impl Deployer for CommandDeployer {
    fn target(&self) -> &str {
        &self.config.target
    }

    fn capabilities(&self) -> DeployerCapabilities {
        DeployerCapabilities {
            traffic_split: self.config.splits,
            scale: false,
            stop_serving: self.config.stop.is_some(),
            deploy_without_traffic: true,
        }
    }

    async fn current(&self) -> Result<ServiceState> {
        let out = self.exec("status", &self.config.status).await?;
        let s: PrintedState = decode("status", &out.stdout)?;
        let serving = s.serving.unwrap_or(!s.traffic.is_empty());
        Ok(ServiceState {
            target: self.config.target.clone(),
            serving,
            traffic: if serving { s.traffic } else { Vec::new() },
            latest_ready: s.latest_ready,
            url: s.url,
            scale: None,
            etag: None,
        })
    }

    async fn releases(&self) -> Result<Vec<Release>> {
        let out = self.exec("releases", &self.config.releases).await?;
        let printed: Vec<PrintedRelease> = decode("releases", &out.stdout)?;
        Ok(printed.into_iter().map(|p| p.into_release(None)).collect())
    }

    async fn deploy(&self, request: &DeployRequest) -> Result<Release> {
        let argv = self.command_for(&DeployAction::Deploy(request.clone()))?;
        let out = self.exec("deploy", &argv).await?;
        let text = String::from_utf8_lossy(&out.stdout);
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let release = match serde_json::from_str::<PrintedRelease>(last.trim()) {
            Ok(p) => p.into_release(Some(&request.version)),
            Err(_) => PrintedRelease {
                id: request.version.clone(),
                version: None,
                state: None,
                created_at: None,
                url: None,
            }
            .into_release(Some(&request.version)),
        };
        if request.traffic == InitialTraffic::All && !template::uses(&self.config.deploy, "traffic")
        {
            self.set_traffic(&TrafficSplit::all_to(release.id.as_str())?)
                .await?;
        }
        Ok(release)
    }

    async fn set_traffic(&self, split: &TrafficSplit) -> Result<ServiceState> {
        let argv = self.command_for(&DeployAction::SetTraffic(split.clone()))?;
        // An unknown release is refused before the command runs: it would change nothing good.
        let known = self.releases().await?;
        for a in split.allocations() {
            if !known.iter().any(|r| r.id == a.release) {
                return Err(Error::new(
                    "host",
                    "command_deployer",
                    ErrorKind::NotFound {
                        resource: format!("release {}", a.release),
                    },
                ));
            }
        }
        self.exec("traffic", &argv).await?;
        self.current().await
    }

    async fn stop_serving(&self) -> Result<ServiceState> {
        let argv = self.command_for(&DeployAction::StopServing)?;
        self.exec("stop", &argv).await?;
        self.current().await
    }

    /// The local checks, then whether a command is configured for `action`.
    async fn validate(&self, action: &DeployAction) -> Result<Validation> {
        validate_locally(action)?;
        self.command_for(action)?;
        Ok(Validation::CheckedLocally)
    }
}
