//! [`Nginx`]: canary traffic through nginx. The provider owns one include file holding the
//! upstream block of the service; a split is written there as server weights, checked with
//! `nginx -t`, and applied with a graceful reload (`nginx -s reload`). A failed check puts
//! the previous file back, so nginx never reloads a configuration it refused.
//!
//! nginx is driven through its command line with arguments as argv (no shell). A missing nginx
//! is `NotFound` saying how to install it.

mod weights;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ops_core::clock::{SharedClock, system_clock};
use ops_core::contracts::TrafficSplit;
use ops_core::{Error, ErrorKind, Result};
use serde::Serialize;

pub use weights::{ServerWeight, is_word, parse, render, shares, weights};

/// Where nginx and the provider's include file are.
#[derive(Debug, Clone)]
pub struct NginxConfig {
    /// The nginx program (default: `nginx` on `PATH`, then `/usr/sbin/nginx`).
    pub bin: Option<PathBuf>,
    /// The main configuration (`-c`).
    pub conf: PathBuf,
    /// The prefix (`-p`), when not nginx's built-in one.
    pub prefix: Option<PathBuf>,
    /// The master's pid file, as the configuration's `pid` directive names it.
    pub pid_file: PathBuf,
    /// The include file this provider owns (`include` it inside `http { }`).
    pub upstream_file: PathBuf,
    /// The upstream block's name (`proxy_pass http://NAME;`).
    pub upstream: String,
    /// Each release and the servers serving it.
    pub releases: BTreeMap<String, Vec<String>>,
    /// How long one nginx command may take (default 30 s).
    pub command_timeout: Duration,
    /// How long a reload may take to start new workers (default 30 s).
    pub reload_deadline: Duration,
}

impl NginxConfig {
    /// nginx with configuration `conf`, its pid file, and the include file and upstream name
    /// this provider writes.
    pub fn new(
        conf: impl Into<PathBuf>,
        pid_file: impl Into<PathBuf>,
        upstream_file: impl Into<PathBuf>,
        upstream: impl Into<String>,
    ) -> Self {
        Self {
            bin: None,
            conf: conf.into(),
            prefix: None,
            pid_file: pid_file.into(),
            upstream_file: upstream_file.into(),
            upstream: upstream.into(),
            releases: BTreeMap::new(),
            command_timeout: Duration::from_secs(30),
            reload_deadline: Duration::from_secs(30),
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

    /// Refuses names nginx's configuration cannot hold and a server in two releases.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: String| Error::invalid_input("host", "nginx", field, why);
        if !is_word(&self.upstream) {
            return Err(bad(
                "upstream",
                format!("{:?} is not an nginx name", self.upstream),
            ));
        }
        if self.upstream_file.file_name().is_none() {
            return Err(bad("upstream_file", "must name a file".into()));
        }
        let mut seen = HashSet::new();
        for (release, servers) in &self.releases {
            if !is_word(release) {
                return Err(bad(
                    "releases",
                    format!("release {release:?} cannot be written into nginx's configuration"),
                ));
            }
            for s in servers {
                if !is_word(s) {
                    return Err(bad("releases", format!("{s:?} is not a server address")));
                }
                if !seen.insert(s) {
                    return Err(bad("releases", format!("{s} serves two releases")));
                }
            }
        }
        if self.command_timeout.is_zero() || self.reload_deadline.is_zero() {
            return Err(bad("timeouts", "must be above zero".into()));
        }
        Ok(())
    }
}

/// What a split does, before it is done: the file and the commands (a dry run's plan).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitPlan {
    /// The include file's new text.
    pub file: String,
    /// Each release's share under the weights, in percent.
    pub shares: BTreeMap<String, f64>,
    /// The commands that will run, as argv.
    pub commands: Vec<Vec<String>>,
}

/// nginx with the include file this provider owns; see the module docs.
#[derive(Debug, Clone)]
pub struct Nginx {
    config: NginxConfig,
    bin: PathBuf,
    clock: SharedClock,
}

impl Nginx {
    /// nginx as `config` describes; `Unavailable` when there is no nginx program.
    pub fn new(config: NginxConfig) -> Result<Self> {
        config.validate()?;
        let bin = match &config.bin {
            Some(b) => b.clone(),
            None => find_nginx().ok_or_else(|| {
                Error::new(
                    "host",
                    "nginx",
                    ErrorKind::NotFound {
                        resource: "nginx (none on PATH or at /usr/sbin/nginx): install it \
                                   (Debian: apt-get install nginx) or set NginxConfig::bin"
                            .into(),
                    },
                )
            })?,
        };
        Ok(Self {
            config,
            bin,
            clock: system_clock(),
        })
    }

    /// Polls the reload on `clock` (its deadline stays in real time: nginx is a real process).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The same nginx with `releases` served by their servers (releases that come and go, as a
    /// canary's do).
    pub fn with_releases(&self, releases: BTreeMap<String, Vec<String>>) -> Result<Self> {
        let mut config = self.config.clone();
        config.releases = releases;
        config.validate()?;
        Ok(Self {
            config,
            bin: self.bin.clone(),
            clock: self.clock.clone(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &NginxConfig {
        &self.config
    }

    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut argv = vec![self.bin.display().to_string()];
        if let Some(p) = &self.config.prefix {
            argv.extend(["-p".to_string(), p.display().to_string()]);
        }
        argv.extend(["-c".to_string(), self.config.conf.display().to_string()]);
        argv.extend(extra.iter().map(|s| (*s).to_string()));
        argv
    }

    /// The file, the shares and the commands `split` would take; nothing runs.
    pub fn plan(&self, split: &TrafficSplit) -> Result<SplitPlan> {
        let w = weights(split, &self.config.releases)?;
        Ok(SplitPlan {
            file: render(&self.config.upstream, &w),
            shares: shares(&w),
            commands: vec![self.args(&["-t"]), self.args(&["-s", "reload"])],
        })
    }

    /// The weights in force: the include file as this provider last wrote it.
    pub async fn split_in_force(&self) -> Result<Vec<ServerWeight>> {
        let text = tokio::fs::read_to_string(&self.config.upstream_file)
            .await
            .map_err(|e| file_error(&self.config.upstream_file, e))?;
        parse(&text)
    }

    /// Writes `split`, checks the configuration (`nginx -t`; refused: the previous file is put
    /// back and the error says why) and reloads nginx, waiting until new workers run.
    pub async fn set_split(&self, split: &TrafficSplit) -> Result<SplitPlan> {
        let plan = self.write_split(split).await?;
        self.reload().await?;
        Ok(plan)
    }

    /// Writes `split` and checks the configuration, without a reload (before nginx first
    /// starts, or to apply several changes with one reload). A refused file is put back.
    pub async fn write_split(&self, split: &TrafficSplit) -> Result<SplitPlan> {
        let plan = self.plan(split)?;
        let path = &self.config.upstream_file;
        let previous = match tokio::fs::read(path).await {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(file_error(path, e)),
        };
        write_atomically(path, plan.file.as_bytes()).await?;
        if let Err(refused) = self.check().await {
            let restored = match &previous {
                Some(bytes) => write_atomically(path, bytes).await,
                None => tokio::fs::remove_file(path)
                    .await
                    .map_err(|e| file_error(path, e)),
            };
            if let Err(e) = restored {
                tracing::error!(error = %e, "could not put the previous upstream file back");
            }
            return Err(refused);
        }
        Ok(plan)
    }

    /// `nginx -t`: `VerificationFailed` with nginx's own words when it refuses.
    pub async fn check(&self) -> Result<()> {
        let out = self.run(&["-t"]).await?;
        if out.status.success() {
            return Ok(());
        }
        Err(Error::new(
            "host",
            "nginx",
            ErrorKind::VerificationFailed {
                check: "nginx -t".into(),
                detail: crate::exit::stderr_tail(&out.stderr),
            },
        ))
    }

    /// `nginx -s reload`, then waits until the new configuration takes every new connection:
    /// the master runs a worker it did not run before, and each old worker has exited or is
    /// shutting down (nginx retitles it before it closes its listening sockets; until then it
    /// still accepts connections under the old weights).
    pub async fn reload(&self) -> Result<()> {
        let master = self.master_pid().await?;
        let before = children(master);
        let out = self.run(&["-s", "reload"]).await?;
        if !out.status.success() {
            return Err(crate::exit::failed(
                "nginx",
                "nginx -s reload",
                out.status,
                &out.stderr,
            ));
        }
        let wait = async {
            loop {
                let now = children(master);
                let fresh = now.iter().any(|pid| !before.contains(pid));
                let old_serving = now
                    .iter()
                    .filter(|pid| before.contains(pid))
                    .any(|pid| !is_shutting_down(*pid));
                if fresh && !old_serving {
                    return;
                }
                self.clock.sleep(Duration::from_millis(20)).await;
            }
        };
        ops_core::clock::peer_timeout(self.config.reload_deadline, wait)
            .await
            .ok_or_else(|| {
                Error::new(
                    "host",
                    "nginx",
                    ErrorKind::Timeout {
                        after: self.config.reload_deadline,
                    },
                )
            })
    }

    async fn master_pid(&self) -> Result<u32> {
        let path = &self.config.pid_file;
        let text = tokio::fs::read_to_string(path).await.map_err(|e| {
            Error::new(
                "host",
                "nginx",
                ErrorKind::NotFound {
                    resource: format!("a running nginx (pid file {}: {e})", path.display()),
                },
            )
        })?;
        if text.trim().is_empty() {
            // nginx empties it as it exits.
            return Err(Error::new(
                "host",
                "nginx",
                ErrorKind::NotFound {
                    resource: format!("a running nginx (pid file {} is empty)", path.display()),
                },
            ));
        }
        let pid: u32 = text.trim().parse().map_err(|_| {
            Error::new(
                "host",
                "nginx",
                ErrorKind::Decode {
                    detail: format!("pid file {} holds {:?}", path.display(), text.trim()),
                },
            )
        })?;
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return Err(Error::new(
                "host",
                "nginx",
                ErrorKind::NotFound {
                    resource: format!(
                        "a running nginx (its pid file names {pid}, which has exited)"
                    ),
                },
            ));
        }
        Ok(pid)
    }

    async fn run(&self, extra: &[&str]) -> Result<std::process::Output> {
        let argv = self.args(extra);
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..]).kill_on_drop(true);
        let output = ops_core::clock::peer_timeout(self.config.command_timeout, cmd.output())
            .await
            .ok_or_else(|| {
                Error::new(
                    "host",
                    "nginx",
                    ErrorKind::Timeout {
                        after: self.config.command_timeout,
                    },
                )
            })?;
        output.map_err(|e| ops_core::error::from_io("host", "nginx", e))
    }
}

/// `nginx` on PATH, else Debian's `/usr/sbin/nginx`.
fn find_nginx() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}

/// The processes whose parent is `pid` (nginx's workers and cache processes).
fn children(pid: u32) -> HashSet<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashSet::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| parent_of(*child) == Some(pid))
        .collect()
}

/// Whether nginx process `pid` has retitled itself `worker process is shutting down` (or is
/// gone).
fn is_shutting_down(pid: u32) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(title) => String::from_utf8_lossy(&title).contains("shutting down"),
        Err(_) => true,
    }
}

/// The parent of `pid`, from `/proc/PID/stat` (after the `)` that ends the command name).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

async fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.ops-{:016x}", fastrand::u64(..)));
    let write = async {
        tokio::fs::write(&tmp, bytes).await?;
        tokio::fs::File::open(&tmp).await?.sync_all().await?;
        tokio::fs::rename(&tmp, path).await
    };
    if let Err(e) = write.await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(file_error(path, e));
    }
    Ok(())
}

fn file_error(path: &Path, e: std::io::Error) -> Error {
    tracing::debug!(file = %path.display(), "nginx include file");
    ops_core::error::from_io("host", "nginx", e)
}
