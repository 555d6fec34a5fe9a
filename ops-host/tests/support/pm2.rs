//! A pm2 daemon of its own for a test, and where pm2 is.

#![allow(dead_code)] // each test binary uses its part

use std::path::{Path, PathBuf};
use std::time::Duration;

use ops_core::clock::{Clock, SystemClock};
use ops_host::pm2::{Pm2, Pm2Config, Pm2Probe, Pm2ProbeConfig, Pm2Status};

/// pm2: `PM2_BIN`, or `target/tools/pm2` as `.ci/run` installs it; a failure saying how to get
/// it otherwise.
pub fn pm2_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PM2_BIN") {
        return PathBuf::from(p);
    }
    let installed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/pm2/node_modules/.bin/pm2");
    assert!(
        installed.is_file(),
        "pm2 is not installed: `npm install --prefix target/tools/pm2 pm2@5` (.ci/run does), \
         or set PM2_BIN"
    );
    installed
}

/// A pm2 daemon of its own and a directory of apps; the daemon is killed when dropped.
pub struct Pm2UnderTest {
    pub dir: tempfile::TempDir,
    pub pm2: Pm2,
}

impl Pm2UnderTest {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("healthy.js"),
            "require('http').createServer((q, s) => s.end('{\"status\":\"healthy\"}'))\
             .listen(0, '127.0.0.1');\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("crash.js"),
            "console.error('Error: cannot connect to the database'); process.exit(1);\n",
        )
        .unwrap();
        let pm2 = Pm2::new(Pm2Config {
            bin: Some(pm2_bin()),
            home: Some(dir.path().join("pm2-home")),
            ..Pm2Config::default()
        })
        .unwrap();
        Self { dir, pm2 }
    }

    pub fn app(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    pub async fn start(&self, script: &str, name: &str, extra: &[&str]) {
        let app = self.app(script);
        let mut args = vec!["start", app.as_str(), "--name", name];
        args.extend_from_slice(extra);
        self.pm2.run(&args).await.unwrap();
    }

    /// A probe of the process `name`.
    pub fn probe_of(&self, name: &str) -> Pm2Probe {
        Pm2Probe::new(
            self.pm2.clone(),
            Pm2ProbeConfig {
                processes: vec![name.into()],
                ..Pm2ProbeConfig::default()
            },
        )
    }

    /// Waits until `name` has `status` (pm2 changes it on its own time).
    pub async fn until(&self, name: &str, status: Pm2Status) {
        for _ in 0..1500 {
            let ps = self.pm2.processes().await.unwrap();
            if ps.iter().any(|p| p.name == name && p.status == status) {
                return;
            }
            SystemClock.sleep(Duration::from_millis(20)).await;
        }
        panic!("{name} never became {status:?}");
    }
}

impl Drop for Pm2UnderTest {
    fn drop(&mut self) {
        let _ = std::process::Command::new(pm2_bin())
            .arg("kill")
            .env("PM2_HOME", self.dir.path().join("pm2-home"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
