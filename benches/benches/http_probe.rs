//! HttpProbe throughput: 10,000 probes against a local keep-alive HTTP server, 32 at a time,
//! beside the reference — the same 10,000 GETs with a bare reqwest client — so the cost of the
//! probe itself (timing, JSON field checks, report building) shows.
//!
//! Run: `cargo bench -p ops-benches --bench http_probe`. Figures go in `benches/RESULTS.md`.
#![allow(missing_docs)] // criterion_group! generates an undocumented `benches` function

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt;
use ops_core::adapters::HttpProbe;
use ops_core::contracts::{HealthProbe, HealthStatus, check_all};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PROBES: usize = 10_000;
const CONCURRENCY: usize = 32;
const BODY: &str = r#"{"status":"healthy","database":"connected","version":"1.4.2"}"#;

/// A minimal HTTP/1.1 keep-alive server on its own thread and runtime, answering every
/// request with the seeds' health payload. Returns its base URL.
fn start_server() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{BODY}",
                BODY.len()
            );
            let response: &'static [u8] = Box::leak(response.into_bytes().into_boxed_slice());
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    let mut pending = Vec::new();
                    loop {
                        let n = match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        pending.extend_from_slice(&buf[..n]);
                        // Answer every complete request head (GETs have no body).
                        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            pending.drain(..end + 4);
                            if sock.write_all(response).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
    });
    format!("http://{}/health", rx.recv().unwrap())
}

fn bench(c: &mut Criterion) {
    let url = start_server();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let probe: Arc<dyn HealthProbe> = Arc::new(
        HttpProbe::new(&url)
            .unwrap()
            .expect_field("status", "healthy")
            .expect_field("database", "connected"),
    );
    let probes: Vec<Arc<dyn HealthProbe>> = vec![probe; PROBES];
    let client = reqwest::Client::new();

    let mut group = c.benchmark_group("http_probe_10k");
    group.throughput(Throughput::Elements(PROBES as u64));
    group.sample_size(10);
    group.bench_function("ops_http_probe_check_all_c32", |b| {
        b.to_async(&rt).iter(|| async {
            let reports = check_all(&probes, CONCURRENCY).await;
            assert!(
                reports
                    .iter()
                    .all(|r| r.as_ref().unwrap().status == HealthStatus::Healthy)
            );
        })
    });
    group.bench_function("reference_bare_reqwest_get_c32", |b| {
        b.to_async(&rt).iter(|| async {
            let ok = futures_util::stream::iter(0..PROBES)
                .map(|_| {
                    let client = client.clone();
                    let url = url.clone();
                    async move {
                        let r = client.get(url).send().await.unwrap();
                        r.status() == 200 && !r.bytes().await.unwrap().is_empty()
                    }
                })
                .buffered(CONCURRENCY)
                .fold(0usize, |n, ok| async move { n + usize::from(ok) })
                .await;
            assert_eq!(ok, PROBES);
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
