//! In-memory implementations of the contracts a runbook decides with: a deployer, a log source,
//! a metrics source, secrets, a notifier and a cost source. They hold real state and real logic (traffic validation, log filters
//! and paging, error ratios and percentiles), so engine and runbook tests, and rehearsals, run
//! against them with no cloud; the testkit suites hold them to the same contracts as providers.

mod costs;
mod deployer;
mod logs;
mod metrics;
mod notifier;
mod secrets;

pub use costs::MemoryCosts;
pub use deployer::MemoryDeployer;
pub use logs::MemoryLogSource;
pub use metrics::{LATENCY_BOUNDS_MS, MemoryMetricsSource};
pub use notifier::MemoryNotifier;
pub use secrets::MemorySecretStore;

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent data here (every update is one step).
    m.lock().unwrap_or_else(|p| p.into_inner())
}
