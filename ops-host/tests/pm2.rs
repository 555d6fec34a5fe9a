//! `Pm2Probe` on a real pm2 (from the npm registry; `.ci/run` installs it into
//! `target/tools/pm2`), each test with a pm2 daemon of its own (`PM2_HOME` in a temporary
//! directory) managing small Node apps the tests write: a healthy one, one that crash-loops, a
//! restart between two checks, and a daemon killed under its processes.

mod support;

use ops_core::contracts::{HealthProbe, HealthReport, HealthStatus};
use ops_core::testkit;
use ops_host::pm2::{Pm2, Pm2Config, Pm2Probe, Pm2ProbeConfig, Pm2Status};
use support::pm2::Pm2UnderTest;

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
    let report = testkit::health_probe(&probe, HealthStatus::Healthy).await;
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
    let report = testkit::health_probe(&probe, HealthStatus::Unhealthy).await;
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
    let app_pid = t.pm2.processes().await.unwrap()[0].pid;
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
    // The app the dead daemon left behind.
    let _ = std::process::Command::new("kill")
        .args(["-9", &app_pid.to_string()])
        .status();
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

/// pm2's own error log (with `--time`, its timestamps) read by `LogFiles`: the seed's
/// `tail -1000 logs/error.log | grep ERROR`.
#[tokio::test]
async fn pm2s_own_error_log_reads_as_a_log_source() {
    use ops_core::contracts::{LogQuery, LogSeverity, LogSource, TimeWindow};
    use ops_host::logfile::{LogFiles, LogFilesConfig};
    let t = Pm2UnderTest::new();
    t.start("crash.js", "worker", &["--max-restarts", "2", "--time"])
        .await;
    t.until("worker", Pm2Status::Errored).await;
    // Each start wrote one line; pm2 writes its logs on its own time: wait for all of them
    // (grep's count of the file is the reference).
    let restarts = t.pm2.processes().await.unwrap()[0].restarts;
    let path = t.dir.path().join("pm2-home/logs/worker-error.log");
    let lines = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("cannot connect"))
            .count() as u64
    };
    for _ in 0..500 {
        if lines(&path) > restarts {
            break;
        }
        ops_core::clock::Clock::sleep(
            &ops_core::clock::SystemClock,
            std::time::Duration::from_millis(20),
        )
        .await;
    }
    let want = lines(&path);
    assert_eq!(want, restarts + 1, "one line a start");
    let mut config = LogFilesConfig::new(&path);
    config.default_severity = LogSeverity::Error;
    let logs = LogFiles::new("worker", config).unwrap();
    let now = ops_core::clock::Clock::now(&ops_core::clock::SystemClock);
    let window = TimeWindow::new(
        now - chrono::Duration::hours(1),
        now + chrono::Duration::minutes(1),
    )
    .unwrap();
    let q = LogQuery::new(window).min_severity(LogSeverity::Error);
    let page = logs.query_page(&q).await.unwrap();
    assert_eq!(page.entries.len() as u64, want, "{page:?}");
    assert!(
        page.entries
            .iter()
            .all(|e| e.message == "Error: cannot connect to the database"),
        "{page:?}"
    );
    assert_eq!(logs.count(&q, 100).await.unwrap(), want);
}

/// The log source suite on the out log a real pm2 wrote (`--time`) for an app logging at
/// several levels.
#[tokio::test]
async fn pm2s_out_log_passes_the_log_source_suite() {
    use ops_core::contracts::{LogEntry, TimeWindow};
    use ops_core::testkit::LogFixture;
    use ops_host::logfile::{LogFiles, LogFilesConfig, level_word};
    let lines = [
        "INFO started on port 3000",
        "DEBUG cache warmed",
        "WARN slow query: 1200 ms",
        "ERROR payment failed: card declined",
        "INFO ready",
        "CRITICAL disk almost full",
    ];
    let t = Pm2UnderTest::new();
    let script = lines
        .iter()
        .map(|l| format!("console.log({l:?});"))
        .collect::<String>();
    std::fs::write(
        t.dir.path().join("levels.js"),
        format!("{script}\nsetInterval(() => {{}}, 1000);\n"),
    )
    .unwrap();
    t.start("levels.js", "levels", &["--time"]).await;
    let path = t.dir.path().join("pm2-home/logs/levels-out.log");
    for _ in 0..500 {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.lines().count() >= lines.len() {
            break;
        }
        ops_core::clock::Clock::sleep(
            &ops_core::clock::SystemClock,
            std::time::Duration::from_millis(20),
        )
        .await;
    }
    let now = ops_core::clock::Clock::now(&ops_core::clock::SystemClock);
    let window = TimeWindow::new(
        now - chrono::Duration::hours(1),
        now + chrono::Duration::minutes(1),
    )
    .unwrap();
    let expected = lines
        .iter()
        .map(|l| LogEntry {
            timestamp: now,
            severity: level_word(l.split(' ').next().unwrap()).unwrap(),
            message: l.to_string(),
            payload: None,
            release: None,
            labels: Default::default(),
        })
        .collect();
    let logs = LogFiles::new("levels", LogFilesConfig::new(&path)).unwrap();
    testkit::log_source(&logs, &LogFixture { window, expected }).await;
}
