//! Health check: probe HTTP endpoints and TCP ports concurrently, print one report, and notify
//! when anything is not healthy.
//!
//! ```sh
//! cargo run -p ops-examples --example health_check                 # against a local demo service
//! cargo run -p ops-examples --example health_check -- --url https://api.example.com/health --tcp db.internal:5432
//! ```
//!
//! With no flags it starts a small local service (one healthy endpoint, one whose database is
//! "disconnected") so the report shows both outcomes without any account or network.

use std::sync::Arc;
use std::time::Duration;

use ops_core::adapters::{HttpProbe, LogNotifier, TcpProbe};
use ops_core::contracts::{HealthProbe, HealthStatus, Notification, Notifier, Severity, check_all};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Args {
    urls: Vec<String>,
    tcp: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        urls: Vec::new(),
        tcp: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.urls.push(value()?),
            "--tcp" => args.tcp.push(value()?),
            "-h" | "--help" => {
                return Err("usage: health_check [--url URL]... [--tcp HOST:PORT]...".into());
            }
            other => return Err(format!("unknown flag {other} (try --help)")),
        }
    }
    Ok(args)
}

/// A local demo service: `/health` is healthy, `/degraded` reports a lost database.
async fn start_demo_service() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let body = if head.starts_with("GET /health ") {
                    r#"{"status":"healthy","database":"connected"}"#
                } else {
                    r#"{"status":"degraded","database":"disconnected"}"#
                };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_target(false).init();
    let mut args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("health_check: {msg}");
            std::process::exit(2);
        }
    };
    if args.urls.is_empty() && args.tcp.is_empty() {
        let addr = start_demo_service().await;
        args.urls = vec![
            format!("http://{addr}/health"),
            format!("http://{addr}/degraded"),
        ];
        args.tcp = vec![addr.to_string()];
    }

    let mut probes: Vec<Arc<dyn HealthProbe>> = Vec::new();
    for url in &args.urls {
        match HttpProbe::new(url) {
            Ok(p) => probes.push(Arc::new(
                p.expect_field("status", "healthy")
                    .expect_field("database", "connected")
                    .degraded_above(Duration::from_millis(500)),
            )),
            Err(e) => {
                eprintln!("health_check: {e}");
                std::process::exit(2);
            }
        }
    }
    for addr in &args.tcp {
        match TcpProbe::new(addr) {
            Ok(p) => probes.push(Arc::new(p)),
            Err(e) => {
                eprintln!("health_check: {e}");
                std::process::exit(2);
            }
        }
    }

    let reports = check_all(&probes, 16).await;
    let mut worst = HealthStatus::Healthy;
    println!("\nHealth report");
    for report in &reports {
        match report {
            Ok(r) => {
                worst = worst.max(r.status);
                println!("  {:<10} {}", r.status.to_string(), r.probe);
                for c in &r.checks {
                    println!(
                        "    {:<10} {:<40} {}",
                        c.status.to_string(),
                        c.name,
                        c.detail
                    );
                }
            }
            Err(e) => {
                worst = HealthStatus::Unhealthy;
                println!("  error      {e}");
            }
        }
    }
    println!("Overall: {worst}\n");

    if worst != HealthStatus::Healthy {
        let severity = if worst == HealthStatus::Unhealthy {
            Severity::Error
        } else {
            Severity::Warning
        };
        let failing: Vec<String> = reports
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .filter(|r| r.status != HealthStatus::Healthy)
            .map(|r| format!("- {} is {}", r.probe, r.status))
            .collect();
        let note = Notification::new(severity, format!("Health check: {worst}"))
            .body(failing.join("\n"))
            .dedup_key("health-check");
        if let Err(e) = LogNotifier::default().send(&note).await {
            eprintln!("health_check: could not notify: {e}");
        }
    }
}
