//! Engine overhead per no-op step, and journal append throughput.
//!
//! - `engine_step_overhead`: a runbook of 1,000 no-op read steps run by the `Runner` with no
//!   journal, an in-memory journal and a file journal without fsync, beside the reference: the
//!   same 1,000 no-op futures awaited in a plain loop. Overhead per step = (runner − reference)
//!   / 1,000. Target: ≤ 5 µs without journal.
//! - `journal_append`: events appended to a `FileJournal` with and without fsync, and to a
//!   `MemoryJournal`.
//!
//! Run: `cargo bench -p ops-benches --bench engine`. Figures go in `benches/RESULTS.md`.
#![allow(missing_docs)] // criterion_group! generates an undocumented `benches` function

use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ops_core::engine::{
    Action, EventKind, FileJournal, FsyncPolicy, Journal, JournalEvent, MemoryJournal, Mode,
    NullJournal, Runbook, Runner, Step,
};

const STEPS: usize = 1_000;

fn noop_runbook() -> Runbook {
    (0..STEPS).fold(Runbook::new("bench", "target"), |rb, i| {
        rb.step(Step::read(format!("step-{i}"), |_| {
            Ok(Action::new("noop", serde_json::Value::Null, async {
                Ok(())
            }))
        }))
    })
}

fn event(seq: u64) -> JournalEvent {
    JournalEvent {
        seq,
        run_id: "bench-run".into(),
        runbook: "bench".into(),
        target: "target".into(),
        at: chrono::DateTime::UNIX_EPOCH,
        kind: EventKind::StepSucceeded {
            step: format!("step-{seq}"),
            attempts: 1,
            duration: std::time::Duration::from_millis(12),
            output: serde_json::json!({"release": "api-00042", "traffic": 5}),
        },
    }
}

fn step_overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let rb = noop_runbook();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("engine_step_overhead");
    group.throughput(Throughput::Elements(STEPS as u64));
    group.sample_size(20);
    group.bench_function("reference_plain_loop_of_noop_futures", |b| {
        b.to_async(&rt).iter(|| async {
            for _ in 0..STEPS {
                let fut = std::hint::black_box(async { Ok::<(), ops_core::Error>(()) });
                fut.await.unwrap();
            }
        })
    });
    let runners = [
        (
            "runner_no_journal",
            Runner::new().with_journal(Arc::new(NullJournal)),
        ),
        (
            "runner_memory_journal",
            Runner::new().with_journal(Arc::new(MemoryJournal::new())),
        ),
        (
            "runner_file_journal_no_fsync",
            Runner::new().with_journal(Arc::new(
                rt.block_on(FileJournal::open(
                    dir.path().join("engine.jsonl"),
                    FsyncPolicy::Never,
                ))
                .unwrap(),
            )),
        ),
    ];
    for (name, runner) in runners {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let report = runner.run(&rb, Mode::Execute).await.unwrap();
                assert!(report.is_success());
            })
        });
    }
    group.finish();
}

fn journal_append(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("journal_append");
    group.sample_size(10);
    // Each iteration appends to a fresh journal, so one that grows across iterations does not
    // skew the figure (files are appended to: that is their normal life).
    type Fresh = Box<dyn Fn() -> Arc<dyn Journal>>;
    let file = |name: &str, policy| -> Fresh {
        let journal: Arc<dyn Journal> = Arc::new(
            rt.block_on(FileJournal::open(dir.path().join(name), policy))
                .unwrap(),
        );
        Box::new(move || journal.clone())
    };
    let cases: [(&str, u64, Fresh); 3] = [
        (
            "memory",
            10_000,
            Box::new(|| Arc::new(MemoryJournal::new())),
        ),
        (
            "file_no_fsync",
            10_000,
            file("never.jsonl", FsyncPolicy::Never),
        ),
        (
            "file_fsync_every_event",
            200,
            file("every.jsonl", FsyncPolicy::EveryEvent),
        ),
    ];
    for (name, n, fresh) in cases {
        group.throughput(Throughput::Elements(n));
        group.bench_function(name, |b| {
            b.to_async(&rt).iter_batched(
                || ((0..n).map(event).collect::<Vec<_>>(), fresh()),
                |(events, journal)| async move {
                    for e in &events {
                        journal.append(e).await.unwrap();
                    }
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, step_overhead, journal_append);
criterion_main!(benches);
