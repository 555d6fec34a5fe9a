//! Error grouping over 1,000,000 log lines: `group_lines` (read the file, fingerprint every
//! message, count, top 10; on 1 thread and on the machine's 2 cores) beside the reference, the shell pipeline
//! `grep ERROR FILE | sort | uniq -c | sort -rn` (with `LC_ALL=C`, its fastest setting) on the
//! same generated file. The pipeline only counts identical lines; the grouper also normalises
//! them, so it does more work.
//!
//! Run: `cargo bench -p ops-benches --bench weekly_review`. Figures go in `benches/RESULTS.md`.
#![allow(missing_docs)] // criterion_group! generates an undocumented `benches` function

use std::io::Write;
use std::path::Path;
use std::process::Command;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ops_core::runbooks::group_lines;

const LINES: usize = 1_000_000;

const TEMPLATES: &[&str] = &[
    "payment {n} declined by gateway (req {uuid})",
    "db timeout after {n}ms on shard {n}",
    "cache miss storm at {ts}",
    "user {n} not found",
    "webhook {hex} retry {n} of 5",
    "order {n} stuck in state PENDING since {ts}",
    "upstream 10.0.{n}.{n} refused connection",
    "worker {n} panicked: index {n} out of bounds",
];

fn generate(path: &Path) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..LINES {
        let mut msg = TEMPLATES[i % TEMPLATES.len()].to_string();
        while let Some(p) = msg.find('{') {
            let end = msg[p..].find('}').unwrap() + p + 1;
            let r = next();
            let v = match &msg[p..end] {
                "{n}" => (r % 100_000).to_string(),
                "{hex}" => format!("{:012x}", r & 0xffff_ffff_ffff),
                "{ts}" => format!(
                    "2026-06-{:02}T{:02}:{:02}:{:02}Z",
                    1 + r % 28,
                    r % 24,
                    r % 60,
                    (r >> 8) % 60
                ),
                _ => format!(
                    "{:08x}-{:04x}-4{:03x}-9{:03x}-{:012x}",
                    r as u32,
                    (r >> 32) as u16,
                    r % 4096,
                    (r >> 12) % 4096,
                    r & 0xffff_ffff_ffff
                ),
            };
            msg.replace_range(p..end, &v);
        }
        writeln!(
            f,
            "2026-06-08T09:{:02}:{:02}Z ERROR {msg}",
            i % 60,
            (i / 60) % 60
        )
        .unwrap();
    }
    f.flush().unwrap();
}

/// A line is `TIMESTAMP LEVEL MESSAGE`: one byte search (memchr) finds the level.
fn message_of(line: &str) -> Option<&str> {
    line.split_once(' ')
        .and_then(|(_, rest)| rest.strip_prefix("ERROR "))
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("errors.log");
    generate(&path);
    let mut group = c.benchmark_group("weekly_review_group_1m_lines");
    group.throughput(Throughput::Elements(LINES as u64));
    group.sample_size(10);
    for (name, threads) in [
        ("ops_error_grouper_1_thread", 1),
        ("ops_error_grouper_2_threads", 2),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let text = std::fs::read_to_string(&path).unwrap();
                let g = group_lines(&text, threads, message_of);
                assert_eq!((g.total(), g.distinct()), (LINES as u64, TEMPLATES.len()));
                g.top(10)
            })
        });
    }
    let script = format!(
        "grep ERROR '{}' | sort | uniq -c | sort -rn > /dev/null",
        path.display()
    );
    group.bench_function("reference_grep_sort_uniq_sort", |b| {
        b.iter(|| {
            let status = Command::new("sh")
                .arg("-c")
                .arg(&script)
                .env("LC_ALL", "C")
                .status()
                .unwrap();
            assert!(status.success());
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
