//! A real Prometheus server (the Debian package `prometheus`, or `PROMETHEUS_BIN`), started
//! on a free loopback port for one test, scraping an exporter the test controls once a second,
//! and killed with the test. A missing binary fails the test with how to install it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ops_core::clock::{Clock, SystemClock};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The exporter's latency buckets, in seconds (the `le` labels).
pub const LE_SECONDS: [f64; 5] = [0.05, 0.1, 0.25, 0.5, 1.0];

/// One release's counters, as an instrumented service exports them.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// `http_requests_total{code="200"}`.
    pub ok: u64,
    /// `http_requests_total{code="503"}`.
    pub failed: u64,
    /// Requests per bucket (not cumulative), one more than `LE_SECONDS` for `+Inf`.
    pub buckets: [u64; 6],
}

/// What the exporter serves, by release.
pub type Traffic = Arc<Mutex<BTreeMap<String, Counters>>>;

struct Exposition(Traffic);

impl Respond for Exposition {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let traffic = self.0.lock().unwrap().clone();
        let mut body = String::from(
            "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n",
        );
        for (release, c) in &traffic {
            for (code, n) in [("200", c.ok), ("503", c.failed)] {
                body.push_str(&format!(
                    "http_requests_total{{release=\"{release}\",code=\"{code}\"}} {n}\n"
                ));
            }
        }
        body.push_str("# HELP http_request_duration_seconds Latency.\n# TYPE http_request_duration_seconds histogram\n");
        for (release, c) in &traffic {
            let mut cumulative = 0;
            for (i, n) in c.buckets.iter().enumerate() {
                cumulative += n;
                let le = LE_SECONDS
                    .get(i)
                    .map_or("+Inf".to_string(), |s| s.to_string());
                body.push_str(&format!(
                    "http_request_duration_seconds_bucket{{release=\"{release}\",le=\"{le}\"}} {cumulative}\n"
                ));
            }
            body.push_str(&format!(
                "http_request_duration_seconds_count{{release=\"{release}\"}} {cumulative}\n"
            ));
        }
        ResponseTemplate::new(200)
            .insert_header("content-type", "text/plain; version=0.0.4")
            .set_body_string(body)
    }
}

/// A running Prometheus and the exporter it scrapes; both stop on drop.
pub struct RealPrometheus {
    child: Child,
    _exporter: MockServer,
    _dir: TempDir,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The exporter's counters: change them and the next scrape sees it.
    pub traffic: Traffic,
}

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("PROMETHEUS_BIN") {
        return PathBuf::from(p);
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = PathBuf::from(dir).join("prometheus");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "prometheus is not installed: `apt-get install prometheus` (Debian's package; .ci/run \
         does it) or set PROMETHEUS_BIN to the server binary"
    );
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    l.local_addr().expect("its address").port()
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl RealPrometheus {
    /// Starts the exporter and Prometheus, and waits until Prometheus is ready.
    pub async fn start() -> RealPrometheus {
        let bin = binary();
        let traffic: Traffic = Arc::default();
        let exporter = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/metrics"))
            .respond_with(Exposition(traffic.clone()))
            .mount(&exporter)
            .await;
        let target = exporter.address().to_string();
        let dir = std::env::temp_dir().join(format!(
            "ops-prometheus-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let dir = TempDir(dir);
        let config = dir.0.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("writing prometheus.yml");
        // A port taken between choosing and binding makes the server exit: choose again.
        for _ in 0..5 {
            let port = free_port();
            let url = format!("http://127.0.0.1:{port}");
            // Started by a shell that waits on its stdin: when this process ends however it
            // ends, the kernel closes the pipe and the shell kills the server.
            let script = r#"bin=$1; shift; "$bin" "$@" & pid=$!; cat >/dev/null; kill -9 $pid"#;
            let child = Command::new("sh")
                .args(["-c", script, "prometheus"])
                .arg(&bin)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.0.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=error")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
            let mut child = child;
            if wait_ready(&mut child, &url).await {
                return RealPrometheus {
                    child,
                    _exporter: exporter,
                    _dir: dir,
                    url,
                    traffic,
                };
            }
            drop(child.stdin.take());
            let _ = child.wait();
        }
        panic!("prometheus exited before it was ready on any of 5 ports");
    }

    /// Waits until Prometheus has scraped the exporter `n` more times (counted from the
    /// samples of its `up` series).
    pub async fn wait_scrapes(&self, n: u64) {
        let http = reqwest::Client::new();
        let count = || async {
            let r = http
                .get(format!("{}/api/v1/query", self.url))
                .query(&[("query", "count_over_time(up{job=\"app\"}[10m])")])
                .send()
                .await
                .ok()?;
            let v: serde_json::Value = r.json().await.ok()?;
            v["data"]["result"][0]["value"][1]
                .as_str()?
                .parse::<f64>()
                .ok()
        };
        let start = count().await.unwrap_or(0.0);
        let wait = async {
            loop {
                if count().await.unwrap_or(0.0) >= start + n as f64 {
                    return;
                }
                SystemClock.sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(n * 3 + 30), wait)
            .await
            .unwrap_or_else(|_| panic!("prometheus did not scrape {n} times in time"));
    }
}

impl Drop for RealPrometheus {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

async fn wait_ready(child: &mut Child, url: &str) -> bool {
    let http = reqwest::Client::new();
    let probe = format!("{url}/-/ready");
    let ready = async {
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if let Ok(r) = http.get(&probe).send().await
                && r.status().is_success()
            {
                return true;
            }
            // Readiness is polled: the next look in 50 ms.
            SystemClock.sleep(Duration::from_millis(50)).await;
        }
    };
    match tokio::time::timeout(Duration::from_secs(30), ready).await {
        Ok(ok) => ok,
        Err(_) => panic!("prometheus did not become ready within 30 s"),
    }
}
