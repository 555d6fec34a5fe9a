//! The simulator kit: what every provider simulator shares.
//!
//! - [`Fault`] and [`FaultPlan`]: the faults a test injects and the queue that hands them out;
//!   each simulator renders a fault in its own API's shape (error body, rate-limit headers).
//! - With the `sim-server` feature: [`SimServer`], the loopback HTTP server a simulator runs on;
//!   [`SimApi`], what a simulator implements (answer a request, render a fault, hold a
//!   [`Ledger`]); [`Simulator`], the face every simulator shows a test (`inject`, `requests`,
//!   `mutations`); and the wiremock types a simulator needs ([`Request`],
//!   [`ResponseTemplate`]), so a provider's `sim` feature needs no wiremock of its own.
//!
//! ```
//! use ops_core::sim::{Fault, FaultPlan};
//! let mut plan = FaultPlan::default();
//! plan.inject(Some("POST"), "/deployments", 2, Fault::Status { status: 503, retry_after: Some(1) });
//! assert!(plan.take("GET", "/v1/deployments").is_none());
//! assert!(plan.take("POST", "/v1/deployments").is_some());
//! assert!(plan.take("POST", "/v1/deployments").is_some());
//! assert!(plan.take("POST", "/v1/deployments").is_none(), "two times only");
//! ```

use std::time::Duration;

#[cfg(feature = "sim-server")]
mod server;

#[cfg(feature = "sim-server")]
pub use server::{Ledger, SimApi, SimServer, Simulator};
#[cfg(feature = "sim-server")]
pub use wiremock::{Request, ResponseTemplate};

/// What an injected fault does to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and the API's error body; `retry_after` is seconds, sent as the
    /// API sends it (`Retry-After`, or a rate-limit reset time).
    Status {
        /// The HTTP status.
        status: u16,
        /// Seconds until a retry may succeed.
        retry_after: Option<u64>,
    },
    /// Answer nothing for this long (a client timeout fires first).
    Delay(Duration),
    /// A 200 whose JSON body is cut short.
    TruncatedJson,
}

#[derive(Debug, Clone)]
struct Injected {
    method: Option<String>,
    path_contains: String,
    remaining: u32,
    fault: Fault,
}

/// Faults waiting for matching requests, first injected first used.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    faults: Vec<Injected>,
}

impl FaultPlan {
    /// The next `times` requests whose path contains `path_contains` (and whose method is
    /// `method`, if given) get `fault`.
    pub fn inject(&mut self, method: Option<&str>, path_contains: &str, times: u32, fault: Fault) {
        self.faults.push(Injected {
            method: method.map(str::to_owned),
            path_contains: path_contains.to_string(),
            remaining: times,
            fault,
        });
    }

    /// The fault for this request, if one is waiting.
    pub fn take(&mut self, method: &str, path: &str) -> Option<Fault> {
        let i = self.faults.iter().position(|f| {
            f.remaining > 0
                && f.method.as_deref().is_none_or(|m| m == method)
                && path.contains(&f.path_contains)
        })?;
        self.faults[i].remaining -= 1;
        let fault = self.faults[i].fault.clone();
        if self.faults[i].remaining == 0 {
            self.faults.remove(i);
        }
        Some(fault)
    }
}
