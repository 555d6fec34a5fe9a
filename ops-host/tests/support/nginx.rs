//! A running nginx of its own for a test (Debian's package; `.ci/run` installs it), and small
//! backends.

#![allow(dead_code)] // each test binary uses its part

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ops_core::clock::{Clock, SystemClock};
use ops_host::access_log::LOG_FORMAT;
use ops_host::nginx::NginxConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// nginx: on PATH or Debian's `/usr/sbin/nginx`; a failure saying how to get it otherwise.
pub fn nginx_bin() -> PathBuf {
    for p in ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    panic!("nginx is not installed: `apt-get install nginx` (.ci/run installs it)");
}

/// A backend answering every request with its name.
pub async fn backend(name: &'static str) -> (String, tokio::task::JoinHandle<()>) {
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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running nginx in a directory of its own; stopped when dropped.
pub struct NginxUnderTest {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl NginxUnderTest {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the configuration (listening on a free port, proxying to the upstream `app` in
    /// `upstream.conf`, the access log in the `ops_canary` format); nginx is not started yet.
    pub fn prepare() -> Self {
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

    pub fn config(&self, stable: &str, canary: &str) -> NginxConfig {
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
    pub async fn start(&mut self) {
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
    pub async fn traffic(&self, n: usize) -> BTreeMap<String, usize> {
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

    pub fn stop(&mut self) {
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
