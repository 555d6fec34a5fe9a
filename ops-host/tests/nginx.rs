//! `Nginx` on a real nginx (Debian's package; `.ci/run` installs it), started by the tests as
//! its own process on free ports with its own configuration: splits in force as counted at the
//! backends, `nginx -t` refusing a broken configuration (the previous file stays), nginx not
//! running, and the access log nginx writes read by `AccessLog`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ops_core::ErrorKind;
use ops_core::clock::{Clock, SystemClock};
use ops_core::contracts::{MetricsSource, TimeWindow, TrafficSplit};
use ops_host::access_log::{AccessLog, AccessLogConfig, LOG_FORMAT};
use ops_host::nginx::{Nginx, NginxConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// nginx: on PATH or Debian's `/usr/sbin/nginx`; a failure saying how to get it otherwise.
fn nginx_bin() -> PathBuf {
    for p in ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    panic!("nginx is not installed: `apt-get install nginx` (.ci/run installs it)");
}

/// A backend answering every request with its name.
async fn backend(name: &'static str) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let body = name.as_bytes();
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body).await;
            });
        }
    });
    (addr, task)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running nginx in a directory of its own; stopped when dropped.
struct NginxUnderTest {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl NginxUnderTest {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the configuration (listening on a free port, proxying to the upstream `app` in
    /// `upstream.conf`, the access log in the `ops_canary` format); nginx is not started yet.
    fn prepare() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let p = |n: &str| dir.path().join(n).display().to_string();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        std::fs::write(dir.path().join("extra.conf"), "").unwrap();
        // As root, nginx's workers would run as `nobody`, which cannot use this directory.
        let root = std::fs::metadata(dir.path())
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false);
        let conf = format!(
            "{user}worker_processes 1;\npid {pid};\nerror_log {err} notice;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  {LOG_FORMAT}\n  access_log {log} ops_canary;\n\
               client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n\
               fastcgi_temp_path {tmp}/fastcgi;\n  uwsgi_temp_path {tmp}/uwsgi;\n\
               scgi_temp_path {tmp}/scgi;\n\
               include {upstream};\n  include {extra};\n\
               server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://app; }} }}\n}}\n",
            user = if root { "user root;\n" } else { "" },
            pid = p("nginx.pid"),
            err = p("error.log"),
            log = p("access.log"),
            tmp = p("tmp"),
            upstream = p("upstream.conf"),
            extra = p("extra.conf"),
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        Self {
            dir,
            port,
            child: None,
        }
    }

    fn config(&self, stable: &str, canary: &str) -> NginxConfig {
        let mut c = NginxConfig::new(
            self.path("nginx.conf"),
            self.path("nginx.pid"),
            self.path("upstream.conf"),
            "app",
        )
        .release("v2.0.0", &[stable])
        .release("v2.1.0", &[canary]);
        c.bin = Some(nginx_bin());
        c.prefix = Some(self.dir.path().to_path_buf());
        c
    }

    /// Starts nginx in the foreground and waits until it accepts connections.
    async fn start(&mut self) {
        let child = Command::new(nginx_bin())
            .arg("-p")
            .arg(self.dir.path())
            .arg("-c")
            .arg(self.path("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        for _ in 0..500 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
                && self.path("nginx.pid").exists()
            {
                return;
            }
            SystemClock.sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "nginx did not start: {}",
            std::fs::read_to_string(self.path("error.log")).unwrap_or_default()
        );
    }

    /// `n` requests, one connection each: how many each backend answered.
    async fn traffic(&self, n: usize) -> BTreeMap<String, usize> {
        let mut seen = BTreeMap::new();
        for _ in 0..n {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .unwrap();
            s.write_all(b"GET / HTTP/1.0\r\nhost: app\r\n\r\n")
                .await
                .unwrap();
            let mut reply = Vec::new();
            s.read_to_end(&mut reply).await.unwrap();
            let text = String::from_utf8_lossy(&reply);
            let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
            *seen.entry(body).or_default() += 1;
        }
        seen
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new(nginx_bin())
                .arg("-p")
                .arg(self.dir.path())
                .arg("-c")
                .arg(self.path("nginx.conf"))
                .args(["-s", "stop"])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for NginxUnderTest {
    fn drop(&mut self) {
        self.stop();
    }
}

fn split(canary: u8) -> TrafficSplit {
    match canary {
        0 => TrafficSplit::new([("v2.0.0", 100)]),
        100 => TrafficSplit::new([("v2.1.0", 100)]),
        c => TrafficSplit::new([("v2.1.0", c), ("v2.0.0", 100 - c)]),
    }
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splits_are_in_force_at_the_backends_and_in_nginxs_access_log() {
    let (stable, _s) = backend("stable").await;
    let (canary, _c) = backend("canary").await;
    let mut n = NginxUnderTest::prepare();
    let nginx = Nginx::new(n.config(&stable, &canary)).unwrap();
    nginx.write_split(&split(0)).await.unwrap();
    n.start().await;
    let started = SystemClock.now();

    // The seed's first stages; one worker's weighted round robin is exact over a cycle.
    for (pct, want) in [(5u8, 5usize), (25, 25), (100, 100), (0, 0)] {
        let plan = nginx.set_split(&split(pct)).await.unwrap();
        assert!((plan.shares["v2.1.0"] - f64::from(pct)).abs() < 1e-9);
        let seen = n.traffic(100).await;
        assert_eq!(
            seen.get("canary").copied().unwrap_or(0),
            want,
            "{pct} %: {seen:?}"
        );
        assert_eq!(seen.values().sum::<usize>(), 100, "{seen:?}");
    }
    let in_force = nginx.split_in_force().await.unwrap();
    assert_eq!(
        in_force
            .iter()
            .map(|w| (w.release.as_str(), w.weight))
            .collect::<Vec<_>>(),
        vec![("v2.0.0", 1), ("v2.1.0", 0)]
    );

    // nginx's own access log, in the format AccessLog reads: 5 + 25 + 100 canary requests.
    let log = AccessLog::new(
        "nginx",
        AccessLogConfig::new(n.path("access.log"))
            .release("v2.0.0", &[stable.as_str()])
            .release("v2.1.0", &[canary.as_str()]),
    )
    .unwrap();
    let window = TimeWindow::new(
        started - chrono::Duration::minutes(1),
        SystemClock.now() + chrono::Duration::minutes(1),
    )
    .unwrap();
    let counts = log.counts("v2.1.0", &window).await.unwrap();
    assert_eq!((counts.requests, counts.errors), (130, 0));
    let counts = log.counts("v2.0.0", &window).await.unwrap();
    assert_eq!((counts.requests, counts.errors), (270, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_nginx_refuses_leaves_the_previous_file_and_traffic() {
    let (stable, _s) = backend("stable").await;
    let (canary, _c) = backend("canary").await;
    let mut n = NginxUnderTest::prepare();
    let nginx = Nginx::new(n.config(&stable, &canary)).unwrap();
    nginx.write_split(&split(5)).await.unwrap();
    n.start().await;
    let before = std::fs::read_to_string(n.path("upstream.conf")).unwrap();

    // Someone broke another part of the configuration.
    std::fs::write(n.path("extra.conf"), "this is not a directive;\n").unwrap();
    let err = nginx.set_split(&split(50)).await.unwrap_err();
    assert!(
        matches!(&err.kind(), ErrorKind::VerificationFailed { check, .. } if check == "nginx -t"),
        "{err}"
    );
    assert!(err.to_string().contains("unknown directive"), "{err}");
    assert_eq!(
        std::fs::read_to_string(n.path("upstream.conf")).unwrap(),
        before
    );
    let seen = n.traffic(20).await;
    assert_eq!(seen.get("canary").copied(), Some(1), "{seen:?}");

    // Mended, the split goes through.
    std::fs::write(n.path("extra.conf"), "").unwrap();
    nginx.set_split(&split(50)).await.unwrap();
    let seen = n.traffic(20).await;
    assert_eq!(seen.get("canary").copied(), Some(10), "{seen:?}");

    // nginx stopped: a reload has nobody to reload, and says so.
    n.stop();
    let err = nginx.set_split(&split(5)).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("a running nginx"), "{err}");
}

#[tokio::test]
async fn a_missing_nginx_program_is_a_typed_error() {
    let n = NginxUnderTest::prepare();
    let mut config = n.config("127.0.0.1:1", "127.0.0.1:2");
    config.bin = Some(PathBuf::from("/nonexistent/nginx"));
    let nginx = Nginx::new(config).unwrap();
    let err = nginx.write_split(&split(5)).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Io { .. }), "{err}");
    // And the file it wrote was taken back.
    assert!(!n.path("upstream.conf").exists());
    // A dry run runs nothing and names the commands.
    let plan = nginx.plan(&split(5)).unwrap();
    assert_eq!(plan.commands[0].last().map(String::as_str), Some("-t"));
    assert!(plan.file.contains("weight=19"), "{}", plan.file);
}
