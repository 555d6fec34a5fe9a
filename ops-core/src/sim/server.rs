//! The loopback server a simulator runs on, and the ledger and face every simulator shares.

use std::sync::{Arc, Mutex, MutexGuard};

use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::{Fault, FaultPlan};

/// What every simulator keeps besides the state of its API: the requests it received, the
/// writes that changed its state, and the faults waiting for requests.
#[derive(Debug, Default)]
pub struct Ledger {
    requests: Vec<String>,
    mutations: u64,
    faults: FaultPlan,
}

impl Ledger {
    /// Counts a write that changed the simulated state (validated-only and refused writes do
    /// not count): what "a mutation never runs twice" tests compare.
    pub fn mutated(&mut self) {
        self.mutations = self.mutations.saturating_add(1);
    }

    /// Every request so far, as `METHOD /path` or `METHOD /path?query`.
    pub fn requests(&self) -> &[String] {
        &self.requests
    }

    /// The writes counted by [`Ledger::mutated`].
    pub fn mutations(&self) -> u64 {
        self.mutations
    }

    /// See [`Simulator::inject`].
    pub fn inject(&mut self, method: Option<&str>, path_contains: &str, times: u32, fault: Fault) {
        self.faults.inject(method, path_contains, times, fault);
    }

    fn record(&mut self, req: &Request) -> Option<Fault> {
        let (method, path) = (req.method.as_str(), req.url.path());
        self.requests.push(match req.url.query() {
            Some(q) => format!("{method} {path}?{q}"),
            None => format!("{method} {path}"),
        });
        self.faults.take(method, path)
    }
}

/// A simulated API: the state behind it, how it answers, and how it shows a fault.
///
/// The server locks the state for each request, logs it in the [`Ledger`], and answers with
/// the first waiting fault that matches, or else with [`SimApi::respond`].
pub trait SimApi: Send + 'static {
    /// The ledger kept in the state.
    fn ledger(&mut self) -> &mut Ledger;

    /// The answer to `req`.
    fn respond(&mut self, req: &Request) -> ResponseTemplate;

    /// `fault` as this API shows it: its error body, its rate-limit headers.
    fn fault(&mut self, fault: Fault, req: &Request) -> ResponseTemplate;
}

struct Route<S> {
    state: Arc<Mutex<S>>,
}

impl<S: SimApi> Respond for Route<S> {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let reply = match state.ledger().record(req) {
            Some(fault) => state.fault(fault, req),
            None => state.respond(req),
        };
        // Marks the reply as a simulator's, so that a recording test run can check the
        // simulators' replies against the official descriptions (`ops_core::http::record`).
        reply.insert_header(crate::http::record::SIMULATOR_HEADER, "1")
    }
}

/// A loopback HTTP server whose every request goes to one [`SimApi`]. Wiremock's own request
/// recording is off (uploads can be large); the [`Ledger`] keeps method and path only.
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

impl<S: SimApi> SimServer<S> {
    /// Serves `state`.
    pub async fn start(state: S) -> Self {
        let server = MockServer::builder()
            .disable_request_recording()
            .start()
            .await;
        let state = Arc::new(Mutex::new(state));
        Mock::given(any())
            .respond_with(Route {
                state: state.clone(),
            })
            .mount(&server)
            .await;
        Self { server, state }
    }

    /// The state, locked.
    pub fn state(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `f` over the ledger, with the state locked.
    pub fn with_ledger<R>(&self, f: impl FnOnce(&mut Ledger) -> R) -> R {
        f(self.state().ledger())
    }

    /// The base URL (`http://127.0.0.1:PORT`).
    pub fn uri(&self) -> String {
        self.server.uri()
    }
}

/// The face every simulator shows a test: inject faults, read what it received, count the
/// writes. A simulator implements [`Simulator::with_ledger`]; the rest comes with it.
pub trait Simulator {
    /// `f` over the simulator's ledger.
    fn with_ledger<R>(&self, f: impl FnOnce(&mut Ledger) -> R) -> R;

    /// The next `times` requests whose path contains `path_contains` (and, if given, whose
    /// method is `method`) get `fault` instead of an answer.
    fn inject(&self, method: Option<&str>, path_contains: &str, times: u32, fault: Fault) {
        self.with_ledger(|l| l.inject(method, path_contains, times, fault));
    }

    /// Every request so far, as `METHOD /path` or `METHOD /path?query`.
    fn requests(&self) -> Vec<String> {
        self.with_ledger(|l| l.requests().to_vec())
    }

    /// Writes that changed the simulated state.
    fn mutations(&self) -> u64 {
        self.with_ledger(|l| l.mutations())
    }
}
