//! What every provider simulator shares: the faults a test can inject and the queue that hands
//! them out. Each simulator renders a fault in its own API's shape (error body, rate-limit
//! headers).
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
pub use server::SimServer;

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

#[cfg(feature = "sim-server")]
mod server {
    use std::sync::{Arc, Mutex, MutexGuard};

    use wiremock::matchers::any;
    use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

    /// How a simulator answers: with its state locked, one request at a time.
    pub type Handler<S> = fn(&mut S, &Request) -> ResponseTemplate;

    struct Route<S> {
        state: Arc<Mutex<S>>,
        handler: Handler<S>,
    }

    impl<S: Send + 'static> Respond for Route<S> {
        fn respond(&self, req: &Request) -> ResponseTemplate {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            // Marks the reply as a simulator's, so that a recording test run can check the
            // simulators' replies against the official descriptions (`ops_core::http::record`).
            (self.handler)(&mut state, req)
                .insert_header(crate::http::record::SIMULATOR_HEADER, "1")
        }
    }

    /// A loopback HTTP server whose every request goes to one handler over shared state. It
    /// keeps no request log of its own (uploads can be large); simulators keep what they need.
    pub struct SimServer<S> {
        server: MockServer,
        state: Arc<Mutex<S>>,
    }

    impl<S> std::fmt::Debug for SimServer<S> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("SimServer")
                .field("uri", &self.server.uri())
                .finish_non_exhaustive()
        }
    }

    impl<S: Send + 'static> SimServer<S> {
        /// Serves `state` through `handler`.
        pub async fn start(state: S, handler: Handler<S>) -> Self {
            let server = MockServer::builder()
                .disable_request_recording()
                .start()
                .await;
            let state = Arc::new(Mutex::new(state));
            Mock::given(any())
                .respond_with(Route {
                    state: state.clone(),
                    handler,
                })
                .mount(&server)
                .await;
            Self { server, state }
        }

        /// The state, locked.
        pub fn state(&self) -> MutexGuard<'_, S> {
            self.state.lock().unwrap_or_else(|e| e.into_inner())
        }

        /// The base URL (`http://127.0.0.1:PORT`).
        pub fn uri(&self) -> String {
            self.server.uri()
        }
    }
}
