//! HostResources against the programs people read these figures from: `df` (coreutils) for
//! space and inodes, `free` (procps) for memory, on this machine; then the levels, a container's
//! meminfo, and mounts and files that cannot be read.

use std::process::Command;

use ops_core::adapters::{
    HostResources, HostResourcesConfig, MountRule, UsageLevels, disk_usage, parse_meminfo,
};
use ops_core::contracts::{HealthProbe, HealthReport, HealthStatus};
use ops_core::testkit;

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} is needed to check against ({e}): apt-get install coreutils procps")
        });
    assert!(out.status.success(), "{program} {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// The numeric columns of `df -P`'s second line.
fn df_columns(args: &[&str]) -> Vec<u64> {
    let text = run("df", args);
    let line = text.lines().nth(1).expect("a df line");
    line.split_whitespace()
        .filter_map(|w| w.trim_end_matches('%').parse::<u64>().ok())
        .collect()
}

fn close(a: u64, b: u64, tolerance: u64) -> bool {
    a.abs_diff(b) <= tolerance
}

#[test]
fn space_and_inodes_match_df() {
    // Other tests write meanwhile: figures may move by a little.
    let ours = disk_usage(std::path::Path::new("/")).unwrap();
    let df = df_columns(&["-P", "-B1", "/"]); // total, used, available, capacity %
    let slack = (df[0] / 100).max(1 << 30);
    assert!(
        close(ours.used, df[1], slack),
        "used {} vs df {}",
        ours.used,
        df[1]
    );
    assert!(
        close(ours.available, df[2], slack),
        "available {} vs df {}",
        ours.available,
        df[2]
    );
    // df rounds Use% up.
    let pct = ours.used_share() * 100.0;
    assert!(
        pct <= df[3] as f64 + 1.0 && pct >= df[3] as f64 - 2.0,
        "{pct} vs df {}%",
        df[3]
    );

    let dfi = df_columns(&["-P", "-i", "/"]); // inodes, used, free, use %
    assert_eq!(ours.inodes_total, dfi[0], "inode count");
    assert!(
        close(ours.inodes_used, dfi[1], 100_000),
        "{} vs {}",
        ours.inodes_used,
        dfi[1]
    );
}

#[test]
fn memory_matches_free() {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let ours = parse_meminfo(&text).unwrap();
    let free = run("free", &["-b"]);
    let mem: Vec<u64> = free
        .lines()
        .find(|l| l.starts_with("Mem:"))
        .expect("a Mem: line")
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect(); // total used free shared buff/cache available
    assert_eq!(ours.total, mem[0], "total");
    assert!(
        close(ours.available, mem[5], mem[0] / 20),
        "available {} vs free {}",
        ours.available,
        mem[5]
    );
}

fn status_of(report: &HealthReport, name: &str) -> HealthStatus {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} in {report:?}"))
        .status
}

#[tokio::test]
async fn the_levels_decide_and_every_mount_is_its_own_check() {
    let meminfo = tempfile::NamedTempFile::new().unwrap();
    // A container's view: 96 % of its memory in use.
    std::fs::write(
        meminfo.path(),
        "MemTotal: 1000000 kB\nMemFree: 10000 kB\nMemAvailable: 40000 kB\n",
    )
    .unwrap();
    let root = std::env::temp_dir();
    let config = HostResourcesConfig {
        mounts: vec![
            MountRule {
                space: UsageLevels::new(0.0, 1.0),
                ..MountRule::new(&root)
            },
            MountRule {
                space: UsageLevels::new(0.0, 0.000_001),
                inodes: UsageLevels::new(0.999_998, 0.999_999),
                ..MountRule::new("/")
            },
        ],
        memory: UsageLevels::new(0.80, 0.95),
    };
    let probe = HostResources::new(config)
        .unwrap()
        .meminfo_path(meminfo.path());
    let report = testkit::health_probe(&probe, HealthStatus::Unhealthy).await;
    let shown = root.display();
    assert_eq!(
        status_of(&report, &format!("disk space {shown}")),
        HealthStatus::Degraded
    );
    assert_eq!(status_of(&report, "disk space /"), HealthStatus::Unhealthy);
    assert_eq!(status_of(&report, "inodes /"), HealthStatus::Healthy);
    assert_eq!(status_of(&report, "memory"), HealthStatus::Unhealthy);
    let memory = report.checks.iter().find(|c| c.name == "memory").unwrap();
    assert!(memory.detail.starts_with("96 % used"), "{memory:?}");
}

#[tokio::test]
async fn unreadable_mounts_and_meminfo_are_unhealthy_checks() {
    let meminfo = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(meminfo.path(), "MemTotal: lots\n").unwrap();
    let config = HostResourcesConfig {
        mounts: vec![MountRule::new("/no/such/mount/here")],
        ..Default::default()
    };
    let probe = HostResources::new(config)
        .unwrap()
        .meminfo_path(meminfo.path());
    let report = testkit::health_probe(&probe, HealthStatus::Unhealthy).await;
    let disk = &report.checks[0];
    assert!(
        disk.detail.starts_with("cannot read the file system"),
        "{disk:?}"
    );
    let memory = report.checks.iter().find(|c| c.name == "memory").unwrap();
    assert!(
        memory.detail.contains("MemTotal has no number"),
        "{memory:?}"
    );

    let probe = HostResources::new(HostResourcesConfig::default())
        .unwrap()
        .meminfo_path("/no/such/meminfo");
    let report = probe.check().await.unwrap();
    assert_eq!(status_of(&report, "memory"), HealthStatus::Unhealthy);
}

#[test]
fn bad_levels_are_refused_at_construction() {
    let config = HostResourcesConfig {
        memory: UsageLevels::new(0.95, 0.80),
        ..Default::default()
    };
    let err = HostResources::new(config).unwrap_err();
    assert!(err.to_string().contains("memory"), "{err}");
}

#[test]
fn seed_003s_preset_holds_its_memory_levels() {
    use ops_core::presets::{Preset, PresetSection};
    let godel = Preset::load("godel").unwrap();
    let config = HostResourcesConfig::from_preset(&godel).unwrap();
    assert_eq!(config.memory, UsageLevels::new(0.80, 0.95));
    assert_eq!(config.mounts, vec![MountRule::new("/")]);
    // A seed that runs on managed platforms has no host section: the defaults.
    let other = HostResourcesConfig::from_preset(&Preset::load("code-developer").unwrap()).unwrap();
    assert_eq!(other, HostResourcesConfig::default());
}
