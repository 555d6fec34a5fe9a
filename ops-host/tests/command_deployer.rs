//! `CommandDeployer` running real commands: a deploy tool the tests write (Python, keeping its
//! state in a JSON file, as a team's scripts would) passes the testkit's deployer suite; a
//! failing command, a hanging one with a child, a missing program and garbage output are
//! typed errors; a dry run shows the exact command.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ops_core::ErrorKind;
use ops_core::clock::{Clock, SystemClock};
use ops_core::contracts::{DeployAction, DeployRequest, Deployer, TrafficSplit};
use ops_core::testkit::{self, DeployerFixture};
use ops_host::command::{CommandDeployer, CommandDeployerConfig};

const TOOL: &str = r#"
import json, os, sys, subprocess, time
state_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "state.json")
try:
    state = json.load(open(state_path))
except FileNotFoundError:
    state = {"releases": [], "traffic": [], "serving": False, "n": 0}
def save():
    json.dump(state, open(state_path + ".tmp", "w")); os.replace(state_path + ".tmp", state_path)
cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "deploy":
    version, traffic = args
    state["n"] += 1
    rid = f"{version}-{state['n']}"
    state["releases"].insert(0, {"id": rid, "version": version, "state": "ready",
                                  "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    if traffic == "all":
        state["traffic"] = [{"release": rid, "percent": 100}]; state["serving"] = True
    save()
    print("building", version)
    print(json.dumps({"id": rid, "version": version, "state": "ready"}))
elif cmd == "traffic":
    release, percent, stable = args
    p = int(percent)
    state["traffic"] = [{"release": release, "percent": p}] + ([{"release": stable, "percent": 100 - p}] if stable else [])
    state["serving"] = True
    save()
elif cmd == "stop":
    state["serving"] = False; save()
elif cmd == "status":
    ready = [r["id"] for r in state["releases"] if r["state"] == "ready"]
    print(json.dumps({"serving": state["serving"], "traffic": state["traffic"],
                      "latest_ready": ready[0] if ready else None}))
elif cmd == "releases":
    print(json.dumps(state["releases"]))
elif cmd == "fail":
    print("deploying...", flush=True)
    print("Error: registry refused token=ghp_abcdefghijklmnopqrstuvwxyz0123456789", file=sys.stderr)
    sys.exit(3)
elif cmd == "hang":
    child = subprocess.Popen(["sleep", "600"])
    open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "child.pid"), "w").write(str(child.pid))
    time.sleep(600)
elif cmd == "garbage":
    print("not json {")
"#;

fn tool_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let tool = dir.path().join("deploy_tool.py");
    std::fs::write(&tool, TOOL).unwrap();
    (dir, tool)
}

fn argv(tool: &Path, args: &[&str]) -> Vec<String> {
    let mut v = vec!["python3".to_string(), tool.display().to_string()];
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

fn config(tool: &Path) -> CommandDeployerConfig {
    CommandDeployerConfig {
        target: "godel-api".into(),
        working_dir: None,
        deploy: argv(tool, &["deploy", "{version}", "{traffic}"]),
        traffic: argv(tool, &["traffic", "{release}", "{percent}", "{stable}"]),
        splits: true,
        stop: Some(argv(tool, &["stop"])),
        status: argv(tool, &["status"]),
        releases: argv(tool, &["releases"]),
        timeout: Some(Duration::from_secs(60)),
    }
}

/// The Godel seed's stable and canary versions.
fn seed_versions() -> DeployerFixture {
    DeployerFixture {
        version_a: "v2.0.0".into(),
        version_b: "v2.1.0".into(),
    }
}

#[tokio::test]
async fn a_teams_deploy_scripts_pass_the_deployer_suite() {
    let (_dir, tool) = tool_dir();
    let deployer = CommandDeployer::new(config(&tool)).unwrap();
    testkit::deployer(&deployer, &seed_versions()).await;
}

#[tokio::test]
async fn a_switch_only_script_and_no_stop_command_make_those_unsupported() {
    let (_dir, tool) = tool_dir();
    let deployer = CommandDeployer::new(CommandDeployerConfig {
        splits: false,
        stop: None,
        ..config(&tool)
    })
    .unwrap();
    testkit::deployer(&deployer, &seed_versions()).await;
}

#[tokio::test]
async fn a_failing_command_says_why_without_its_secrets() {
    let (_dir, tool) = tool_dir();
    let deployer = CommandDeployer::new(CommandDeployerConfig {
        deploy: argv(&tool, &["fail", "{version}"]),
        ..config(&tool)
    })
    .unwrap();
    let err = deployer
        .deploy(&DeployRequest::new("v2.1.0"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err.kind(), ErrorKind::Provider { code: Some(c), .. } if c == "exit 3"),
        "{text}"
    );
    assert!(text.contains("registry refused"), "{text}");
    assert!(
        !text.contains("ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
        "{text}"
    );
    assert!(!format!("{err:?}").contains("ghp_abcdefghij"), "{err:?}");
}

#[tokio::test]
async fn a_hanging_command_is_killed_with_its_children() {
    let (dir, tool) = tool_dir();
    let deployer = CommandDeployer::new(CommandDeployerConfig {
        deploy: argv(&tool, &["hang", "{version}"]),
        timeout: Some(Duration::from_secs(2)),
        ..config(&tool)
    })
    .unwrap();
    let err = deployer
        .deploy(&DeployRequest::new("v2.1.0"))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Timeout { .. }), "{err}");
    let pid = std::fs::read_to_string(dir.path().join("child.pid")).unwrap();
    // The tool's own child (`sleep 600`) went with it.
    for _ in 0..500 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()));
        // Gone, or a zombie waiting for its (new) parent to reap it.
        if stat.as_ref().map_or(true, |s| s.contains(") Z ")) {
            return;
        }
        SystemClock.sleep(Duration::from_millis(10)).await;
    }
    panic!("the command's child {pid} still runs");
}

#[tokio::test]
async fn garbage_a_missing_program_and_a_bad_template_are_typed_errors() {
    let (_dir, tool) = tool_dir();
    let garbage = CommandDeployer::new(CommandDeployerConfig {
        status: argv(&tool, &["garbage"]),
        ..config(&tool)
    })
    .unwrap();
    let err = garbage.current().await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Decode { .. }), "{err}");

    let missing = CommandDeployer::new(CommandDeployerConfig {
        status: vec!["/nonexistent/deploy-tool".into()],
        ..config(&tool)
    })
    .unwrap();
    let err = missing.current().await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotFound { .. }), "{err}");

    for bad in [
        CommandDeployerConfig {
            deploy: vec![],
            ..config(&tool)
        },
        CommandDeployerConfig {
            deploy: argv(&tool, &["deploy", "{percent}"]),
            ..config(&tool)
        },
        CommandDeployerConfig {
            target: " ".into(),
            ..config(&tool)
        },
        CommandDeployerConfig {
            timeout: Some(Duration::ZERO),
            ..config(&tool)
        },
    ] {
        let err = CommandDeployer::new(bad).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidInput { .. }),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_dry_run_shows_the_exact_commands_and_runs_nothing() {
    let (dir, tool) = tool_dir();
    let deployer = CommandDeployer::new(config(&tool)).unwrap();
    let split = TrafficSplit::new([("v2.1.0-2", 5), ("v2.0.0-1", 95)]).unwrap();
    assert_eq!(
        deployer
            .command_for(&DeployAction::SetTraffic(split))
            .unwrap(),
        argv(&tool, &["traffic", "v2.1.0-2", "5", "v2.0.0-1"])
    );
    assert_eq!(
        deployer
            .command_for(&DeployAction::Deploy(DeployRequest::new("v2.1.0")))
            .unwrap(),
        argv(&tool, &["deploy", "v2.1.0", "none"])
    );
    assert!(!dir.path().join("state.json").exists(), "nothing ran");
}

#[test]
fn the_config_reads_from_toml() {
    let config: CommandDeployerConfig = toml::from_str(
        r#"
        target = "godel-api"
        deploy = ["npm", "run", "deploy:canary", "--", "--stage=0", "--version={version}"]
        traffic = ["npm", "run", "deploy:canary", "--", "--stage={percent}", "--version={release}"]
        stop = ["npm", "run", "restart:emergency"]
        status = ["npm", "run", "--silent", "status:json"]
        releases = ["npm", "run", "--silent", "releases:json"]
        timeout = 900
        "#,
    )
    .unwrap();
    let deployer = CommandDeployer::new(config).unwrap();
    assert!(deployer.capabilities().traffic_split);
}
