//! `Pm2Probe` on a real pm2 (from the npm registry; `.ci/run` installs it into
//! `target/tools/pm2`), each test with a pm2 daemon of its own (`PM2_HOME` in a temporary
//! directory) managing small Node apps the tests write: a healthy one, one that crash-loops, a
//! restart between two checks, and a daemon killed under its processes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ops_core::clock::{Clock, SystemClock};
use ops_core::contracts::{HealthProbe, HealthReport, HealthStatus};
use ops_host::pm2::{Pm2, Pm2Config, Pm2Probe, Pm2ProbeConfig, Pm2Status};

/// pm2: `PM2_BIN`, or `target/tools/pm2` as `.ci/run` installs it; a failure saying how to get
/// it otherwise.
fn pm2_bin() -> PathBuf {
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
struct Pm2UnderTest {
    dir: tempfile::TempDir,
    pm2: Pm2,
}

impl Pm2UnderTest {
    fn new() -> Self {
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

    fn app(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    async fn start(&self, script: &str, name: &str, extra: &[&str]) {
        let app = self.app(script);
        let mut args = vec!["start", app.as_str(), "--name", name];
        args.extend_from_slice(extra);
        self.pm2.run(&args).await.unwrap();
    }

    /// A probe of the process `name`.
    fn probe_of(&self, name: &str) -> Pm2Probe {
        Pm2Probe::new(
            self.pm2.clone(),
            Pm2ProbeConfig {
                processes: vec![name.into()],
                ..Pm2ProbeConfig::default()
            },
        )
    }

    /// Waits until `name` has `status` (pm2 changes it on its own time).
    async fn until(&self, name: &str, status: Pm2Status) {
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

fn detail(report: &HealthReport, name: &str) -> String {
    report
        .checks
        .iter()
        .find(|c| c.name.starts_with(&format!("pm2 {name}")))
        .map(|c| format!("{:?}: {}", c.status, c.detail))
        .unwrap_or_else(|| panic!("no check of {name}: {report:?}"))
}

#[tokio::test]
async fn an_online_process_is_healthy_and_a_restart_between_checks_is_seen() {
    let t = Pm2UnderTest::new();
    t.start("healthy.js", "api", &[]).await;
    t.until("api", Pm2Status::Online).await;
    let probe = t.probe_of("api");
    let report = probe.check().await.unwrap();
    assert_eq!(report.status, HealthStatus::Healthy, "{report:?}");
    assert!(
        detail(&report, "api").contains("online, 0 restarts"),
        "{report:?}"
    );

    t.pm2.run(&["restart", "api"]).await.unwrap();
    t.until("api", Pm2Status::Online).await;
    let report = probe.check().await.unwrap();
    assert_eq!(report.status, HealthStatus::Degraded, "{report:?}");
    assert!(
        detail(&report, "api").contains("1 since the last check"),
        "{report:?}"
    );
    // Nothing new since: healthy again.
    let report = probe.check().await.unwrap();
    assert_eq!(report.status, HealthStatus::Healthy, "{report:?}");
}

#[tokio::test]
async fn a_crash_loop_ends_errored_and_unhealthy() {
    let t = Pm2UnderTest::new();
    t.start("crash.js", "worker", &["--max-restarts", "3"])
        .await;
    t.until("worker", Pm2Status::Errored).await;
    let probe = Pm2Probe::new(t.pm2.clone(), Pm2ProbeConfig::default());
    let report = probe.check().await.unwrap();
    assert_eq!(report.status, HealthStatus::Unhealthy, "{report:?}");
    let d = detail(&report, "worker");
    assert!(
        d.starts_with("Unhealthy: errored (pm2 gave up restarting it)"),
        "{d}"
    );
}

#[tokio::test]
async fn a_killed_daemon_and_a_missing_process_are_unhealthy() {
    let t = Pm2UnderTest::new();
    t.start("healthy.js", "api", &[]).await;
    t.until("api", Pm2Status::Online).await;
    // The daemon dies (SIGKILL): a new one knows nothing of the app it ran.
    let pid = std::fs::read_to_string(t.dir.path().join("pm2-home/pm2.pid")).unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());
    let probe = t.probe_of("api");
    let report = probe.check().await.unwrap();
    assert_eq!(report.status, HealthStatus::Unhealthy, "{report:?}");
    assert!(
        detail(&report, "api").contains("pm2 runs no process of that name"),
        "{report:?}"
    );
}

#[tokio::test]
async fn no_pm2_program_is_an_unhealthy_check_saying_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let pm2 = Pm2::new(Pm2Config {
        bin: Some(dir.path().join("no-pm2")),
        ..Pm2Config::default()
    })
    .unwrap();
    let report = Pm2Probe::new(pm2, Pm2ProbeConfig::default())
        .check()
        .await
        .unwrap();
    assert_eq!(report.status, HealthStatus::Unhealthy);
    assert!(
        report.checks[0].detail.contains("npm install"),
        "{report:?}"
    );
}
