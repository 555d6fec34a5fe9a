//! The Godel seed's canary on its own platform: a Node service under pm2 behind nginx, rolled
//! out 1 → 5 → 25 → 100 % on a real local stack. Two releases run as pm2 processes in slots of
//! their own, nginx splits the traffic between them (upstream weights, `nginx -t`, a graceful
//! reload), the example sends traffic through nginx the whole time, and at every look the
//! canary judge compares the new release's requests and errors in nginx's access log with the
//! stable release's. `--fault errors-at-5` makes the new release fail every tenth request once
//! it has served 150 (about when it takes 5 %): the rollout goes back to the stable release by itself.
//!
//! ```sh
//! cargo run -p ops-examples --example selfhosted_canary
//! cargo run -p ops-examples --example selfhosted_canary -- --fault errors-at-5
//! ```
//!
//! It needs nginx (`apt-get install nginx`) and pm2 (`npm install --prefix target/tools/pm2
//! pm2@5`, or `PM2_BIN`), and runs in real time (a few seconds a stage): nginx's timestamps
//! cannot be sped up. Everything it starts, in a temporary directory, is stopped at the end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use ops_core::contracts::{DeployRequest, Deployer, InitialTraffic, TrafficSplit};
use ops_core::runbooks::{Procedure, Rollout, RolloutConfig, RolloutSummary, Stage};
use ops_examples::{Common, Failure, Session};
use ops_host::access_log::LOG_FORMAT;
use ops_host::nginx::{Nginx, NginxConfig};
use ops_host::pm2::{Pm2, Pm2Canary, Pm2CanaryConfig, Pm2Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// roll a new release of a pm2 service out behind nginx, judged from nginx's access log
#[derive(Parser)]
#[command(name = "selfhosted_canary")]
struct Flags {
    #[command(flatten)]
    common: Common,
    /// inject a named failure into the rehearsal
    #[arg(long, value_enum, value_name = "NAME")]
    fault: Option<Fault>,
}

/// The failures a rehearsal can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Fault {
    /// the new release fails every tenth request once it has served 150 (about when it takes 5 %)
    #[value(name = "errors-at-5")]
    ErrorsAt5,
}

#[tokio::main]
async fn main() -> ExitCode {
    ops_examples::run_in_real_time(example).await
}

/// A Node app answering its version; `fail_after`: every tenth request fails from then on.
fn write_release(root: &Path, version: &str, fail_after: Option<u64>) -> std::io::Result<()> {
    let dir = root.join("releases").join(version);
    std::fs::create_dir_all(&dir)?;
    let fail = fail_after.map_or("false".to_string(), |n| format!("n > {n} && n % 10 === 0"));
    std::fs::write(
        dir.join("server.js"),
        format!(
            "let n = 0;\nrequire('http').createServer((q, s) => {{ n++;\n\
             if (q.url === '/health') return s.end('ok');\n\
             if ({fail}) {{ s.statusCode = 500; return s.end('error'); }}\n\
             s.end('{version}'); }}).listen(Number(process.env.PORT), '127.0.0.1');\n"
        ),
    )
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn find(what: &str, candidates: &[PathBuf], install: &str) -> Result<PathBuf, Failure> {
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| Failure::usage(format!("{what} is not installed: {install}")))
}

/// What the example started, stopped when dropped (even on an early return).
struct Stack {
    dir: tempfile::TempDir,
    nginx_bin: PathBuf,
    pm2_bin: PathBuf,
    nginx: Option<std::process::Child>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let home = self.dir.path().join("pm2-home");
        let _ = std::process::Command::new(&self.pm2_bin)
            .arg("kill")
            .env("PM2_HOME", home)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        if let Some(mut child) = self.nginx.take() {
            let _ = std::process::Command::new(&self.nginx_bin)
                .arg("-p")
                .arg(self.dir.path())
                .arg("-c")
                .arg(self.dir.path().join("nginx.conf"))
                .args(["-s", "stop"])
                .status();
            let _ = child.wait();
        }
    }
}

async fn example(mut session: Session, flags: Flags) -> Result<ExitCode, Failure> {
    if flags.common.live {
        return Err(Failure::usage(
            "--live: point ops_host::pm2::Pm2Canary and ops_host::nginx::Nginx at your own \
             pm2 and nginx; this example rehearses on a local stack it starts itself",
        ));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let nginx_bin = find(
        "nginx",
        &[
            PathBuf::from("/usr/sbin/nginx"),
            PathBuf::from("/usr/bin/nginx"),
        ],
        "apt-get install nginx",
    )?;
    let mut pm2_candidates = vec![workspace.join("target/tools/pm2/node_modules/.bin/pm2")];
    if let Some(p) = std::env::var_os("PM2_BIN") {
        pm2_candidates.insert(0, PathBuf::from(p));
    }
    let pm2_bin = find(
        "pm2",
        &pm2_candidates,
        "npm install --prefix target/tools/pm2 pm2@5, or set PM2_BIN",
    )?;
    let io = |e: std::io::Error| Failure::failed(format!("setting up the local stack: {e}"));
    let mut stack = Stack {
        dir: tempfile::tempdir().map_err(io)?,
        nginx_bin,
        pm2_bin,
        nginx: None,
    };
    let dir = stack.dir.path().to_path_buf();
    let root = dir.join("app");
    write_release(&root, "v2.0.0", None).map_err(io)?;
    let fail_after = (flags.fault == Some(Fault::ErrorsAt5)).then_some(150);
    write_release(&root, "v2.1.0", fail_after).map_err(io)?;

    // nginx on a free port, its access log in the format the judge reads.
    let port = free_port().map_err(io)?;
    std::fs::create_dir_all(dir.join("tmp")).map_err(io)?;
    let p = |n: &str| dir.join(n).display().to_string();
    let root_user = std::fs::metadata(&dir)
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    let conf = format!(
        "{user}worker_processes 1;\npid {pid};\nerror_log {err} notice;\n\
         events {{ worker_connections 256; }}\nhttp {{\n  {LOG_FORMAT}\n  access_log {log} ops_canary;\n\
         client_body_temp_path {tmp}/b;\n  proxy_temp_path {tmp}/p;\n  fastcgi_temp_path {tmp}/f;\n\
         uwsgi_temp_path {tmp}/u;\n  scgi_temp_path {tmp}/s;\n  include {up};\n\
         server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://app; }} }}\n}}\n",
        user = if root_user { "user root;\n" } else { "" },
        pid = p("nginx.pid"),
        err = p("error.log"),
        log = p("access.log"),
        tmp = p("tmp"),
        up = p("upstream.conf"),
    );
    std::fs::write(dir.join("nginx.conf"), conf).map_err(io)?;
    let mut nconf = NginxConfig::new(
        dir.join("nginx.conf"),
        dir.join("nginx.pid"),
        dir.join("upstream.conf"),
        "app",
    );
    nconf.bin = Some(stack.nginx_bin.clone());
    nconf.prefix = Some(dir.clone());
    let nginx = Nginx::new(nconf)?;
    nginx
        .with_releases(BTreeMap::from([(
            "none".into(),
            vec!["127.0.0.1:9".into()],
        )]))?
        .write_split(&TrafficSplit::all_to("none")?)
        .await?;
    stack.nginx = Some(
        std::process::Command::new(&stack.nginx_bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .spawn()
            .map_err(io)?,
    );

    let pm2 = Pm2::new(Pm2Config {
        bin: Some(stack.pm2_bin.clone()),
        home: Some(dir.join("pm2-home")),
        ..Pm2Config::default()
    })?;
    let mut config = Pm2CanaryConfig::new(
        &root,
        "godel-api",
        "server.js",
        &[free_port().map_err(io)?, free_port().map_err(io)?],
    );
    config.stable_for = Duration::from_millis(500);
    let deployer = Arc::new(Pm2Canary::new(pm2.clone(), nginx.clone(), config)?);
    let metrics = Arc::new(deployer.metrics(dir.join("access.log")));

    // The stable release serves everything before the rollout.
    eprintln!("starting v2.0.0 under pm2 behind nginx on 127.0.0.1:{port}");
    let stable = deployer
        .deploy(&DeployRequest {
            traffic: InitialTraffic::All,
            ..DeployRequest::new("v2.0.0")
        })
        .await?;

    // Users: requests through nginx the whole time.
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let (s, f) = (sent.clone(), failed.clone());
    let users = tokio::spawn(async move {
        loop {
            let Ok(mut c) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                continue;
            };
            let _ = c.write_all(b"GET / HTTP/1.0\r\n\r\n").await;
            let mut reply = Vec::new();
            let _ = c.read_to_end(&mut reply).await;
            s.fetch_add(1, Ordering::Relaxed);
            if !reply.starts_with(b"HTTP/1.1 200") {
                f.fetch_add(1, Ordering::Relaxed);
            }
        }
    });

    let mut rollout: RolloutConfig = session.config(None)?;
    let stage = |percent, secs| Stage {
        percent,
        bake: Duration::from_secs(secs),
        approve: false,
    };
    rollout.stages = Some(vec![stage(1, 4), stage(5, 6), stage(25, 4), stage(100, 0)]);
    rollout.look_interval = Duration::from_secs(1);
    rollout.min_requests = 10;
    rollout.inconclusive_wait = Duration::from_secs(2);
    let runbook = Rollout::new("v2.1.0", deployer.clone(), metrics, rollout).runbook()?;
    let report = session.run(&runbook).await;
    users.abort();
    let Some(report) = report else {
        return Ok(session.finish().await);
    };
    for line in RolloutSummary::from_report(&report).lines() {
        eprintln!("  {line}");
    }
    eprintln!(
        "  users sent {} requests through nginx; {} failed",
        sent.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );

    if !flags.common.dry_run {
        // nginx's weights in force, read back from its file, and pm2's state.
        let in_force = nginx.split_in_force().await?;
        let serving: Vec<&str> = in_force
            .iter()
            .filter(|w| w.weight > 0)
            .map(|w| w.release.as_str())
            .collect();
        let online = pm2
            .processes()
            .await?
            .iter()
            .filter(|p| p.status == ops_host::pm2::Pm2Status::Online)
            .count();
        session.check("both releases are online under pm2", online == 2);
        if flags.fault.is_some() {
            session.check(
                "nginx sends everything to the stable release again",
                serving == [stable.id.as_str()],
            );
        } else {
            session.check(
                "nginx sends everything to the new release",
                serving.len() == 1 && serving[0].starts_with("v2.1.0@"),
            );
        }
    }
    Ok(session.finish().await)
}
