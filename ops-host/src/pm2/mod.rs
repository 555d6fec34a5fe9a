//! pm2, driven through its command line: the processes it runs (`pm2 jlist`, decoded in
//! [`jlist`]), [`Pm2Probe`], their health, and [`Pm2Releases`], releases on disk served by pm2
//! as a `Deployer`. Arguments go to pm2 as argv, never through a
//! shell; a missing pm2 is `NotFound` saying how to install it.

mod canary;
pub mod jlist;
mod probe;
mod releases;

use std::path::PathBuf;
use std::time::Duration;

use ops_core::{Error, ErrorKind, Result};

pub use canary::{Pm2Canary, Pm2CanaryConfig, SlotMetrics};
pub use jlist::{Pm2Process, Pm2Status};
pub use probe::{Pm2Probe, Pm2ProbeConfig};
pub use releases::{Pm2Releases, Pm2ReleasesConfig};

/// How to run pm2.
#[derive(Debug, Clone)]
pub struct Pm2Config {
    /// The pm2 program (default: `pm2` on `PATH`).
    pub bin: Option<PathBuf>,
    /// pm2's home (`PM2_HOME`: its daemon, sockets and logs), when not `~/.pm2`.
    pub home: Option<PathBuf>,
    /// How long one pm2 command may take (default 60 s: a first command starts the daemon).
    pub timeout: Duration,
}

impl Default for Pm2Config {
    fn default() -> Self {
        Self {
            bin: None,
            home: None,
            timeout: Duration::from_secs(60),
        }
    }
}

/// pm2 on this host.
#[derive(Debug, Clone)]
pub struct Pm2 {
    bin: PathBuf,
    config: Pm2Config,
}

impl Pm2 {
    /// pm2 as `config` says; `NotFound` with how to install it when there is none.
    pub fn new(config: Pm2Config) -> Result<Self> {
        let bin = match &config.bin {
            Some(b) => b.clone(),
            None => {
                let path = std::env::var_os("PATH").unwrap_or_default();
                std::env::split_paths(&path)
                    .map(|d| d.join("pm2"))
                    .find(|p| p.is_file())
                    .ok_or_else(not_installed)?
            }
        };
        if config.timeout.is_zero() {
            return Err(Error::invalid_input(
                "host",
                "pm2",
                "timeout",
                "must be above zero",
            ));
        }
        Ok(Self { bin, config })
    }

    /// Runs `pm2 ARGS…`; its standard output when it exits 0, else a `Provider` error with its
    /// standard error (redacted).
    pub async fn run(&self, args: &[&str]) -> Result<Vec<u8>> {
        self.run_with_env(args, &[]).await
    }

    /// [`Pm2::run`] with `env` added to pm2's environment (which `pm2 start` and
    /// `--update-env` hand to the app).
    pub async fn run_with_env(&self, args: &[&str], env: &[(String, String)]) -> Result<Vec<u8>> {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(home) = &self.config.home {
            cmd.env("PM2_HOME", home);
        }
        let out = ops_core::clock::peer_timeout(self.config.timeout, cmd.output())
            .await
            .ok_or_else(|| {
                Error::new(
                    "host",
                    "pm2",
                    ErrorKind::Timeout {
                        after: self.config.timeout,
                    },
                )
            })?
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => not_installed(),
                _ => ops_core::error::from_io("host", "pm2", e),
            })?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        let what = format!("pm2 {}", args.first().copied().unwrap_or(""));
        Err(crate::exit::failed("pm2", &what, out.status, &out.stderr))
    }

    /// The processes pm2 runs (`pm2 jlist`); starts pm2's daemon when it is not running.
    pub async fn processes(&self) -> Result<Vec<Pm2Process>> {
        jlist::decode(&self.run(&["jlist"]).await?)
    }
}

fn not_installed() -> Error {
    Error::new(
        "host",
        "pm2",
        ErrorKind::NotFound {
            resource: "pm2: install it (`npm install -g pm2`, or into a prefix and set \
                       Pm2Config::bin) — .ci/run installs it into target/tools/pm2"
                .into(),
        },
    )
}
