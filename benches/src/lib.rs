//! Criterion benchmarks for `ops`; see `benches/RESULTS.md` for recorded figures.

pub mod canary;
