//! Issue 28's access-log figure: how fast [`ops_host::access_log::AccessLog`] counts a
//! release's requests in an nginx access log (`ops_canary` format), beside `grep -c` on the same
//! file (`benches/scripts/access_log.sh`). Usage:
//! - `access_log_scan gen FILE MIB`: writes MIB MiB of traffic, 95 % stable and 5 % canary, one
//!   request a millisecond from 2026-11-30T00:00:00Z;
//! - `access_log_scan count FILE`: the canary's requests and errors over the whole file.

use std::io::{BufWriter, Write};
use std::time::Instant;

use ops_core::contracts::{MetricsSource, TimeWindow};
use ops_host::access_log::{AccessLog, AccessLogConfig};

const START_MS: i64 = 1_796_000_400_000; // 2026-11-30T00:00:00Z

#[tokio::main]
#[allow(clippy::disallowed_methods)] // wall time of a whole process run is the figure itself
async fn main() -> ops_core::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2), args.get(3)) {
        (Some("gen"), Some(file), Some(mib)) => {
            let mib: u64 = mib.parse().unwrap_or(1024);
            generate(file, mib.saturating_mul(1 << 20))
                .map_err(|e| ops_core::error::from_io("bench", "generate", e))
        }
        (Some("count"), Some(file), None) => {
            let config = AccessLogConfig::new(file)
                .release("stable", &["127.0.0.1:3001"])
                .release("canary", &["127.0.0.1:3002"]);
            let log = AccessLog::new("nginx", config)?;
            let window = TimeWindow::new(
                chrono::DateTime::from_timestamp_millis(START_MS).unwrap_or_default(),
                chrono::DateTime::from_timestamp_millis(START_MS + 400 * 86_400_000)
                    .unwrap_or_default(),
            )?;
            let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
            let started = Instant::now();
            let counts = log.counts("canary", &window).await?;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{} canary requests, {} errors; {:.0} MB/s",
                counts.requests,
                counts.errors,
                size as f64 / 1e6 / secs
            );
            Ok(())
        }
        _ => {
            eprintln!("usage: access_log_scan gen FILE MIB | access_log_scan count FILE");
            std::process::exit(2);
        }
    }
}

fn generate(file: &str, bytes: u64) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(file)?);
    let mut written = 0u64;
    let mut i = 0i64;
    while written < bytes {
        let at = START_MS + i;
        let canary = i % 20 == 0;
        let server = if canary {
            "127.0.0.1:3002"
        } else {
            "127.0.0.1:3001"
        };
        let status = if i % 97 == 0 { 502 } else { 200 };
        let ms = 3 + (i * 7919 % 250);
        let line = format!(
            "{}.{:03} {status} 0.{:03} \"{server}\" \"{status}\" \"0.{:03}\"\n",
            at / 1000,
            at % 1000,
            ms,
            ms.saturating_sub(1)
        );
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
        i += 1;
    }
    out.flush()
}
