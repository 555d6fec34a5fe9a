//! A fake Prometheus: instant and range queries answered from configured values (exact query
//! text), an empty vector for anything else, `bad_data` for an empty query, and faults.

use ops_core::sim::{Ledger, Request, ResponseTemplate, SimApi, SimServer};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub use ops_core::sim::{Fault, Simulator};

/// Series answering one query: labels and value.
pub type Series = Vec<(BTreeMap<String, String>, f64)>;

/// Answers a query (its text, and the evaluation time in unix seconds) from live data; `None`
/// leaves it to the configured answers.
pub type Responder = Box<dyn Fn(&str, f64) -> Option<Series> + Send + Sync>;

#[derive(Default)]
struct State {
    answers: BTreeMap<String, Series>,
    responder: Option<Responder>,
    ledger: Ledger,
    queries: Vec<String>,
    /// No data before this unix time (scraping started then).
    data_since: f64,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("answers", &self.answers.len())
            .field("responder", &self.responder.is_some())
            .field("queries", &self.queries.len())
            .finish()
    }
}

/// A running fake Prometheus.
#[derive(Debug)]
pub struct PrometheusSim {
    sim: SimServer<State>,
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

impl SimApi for State {
    fn ledger(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    fn respond(&mut self, req: &Request) -> ResponseTemplate {
        respond(self, req)
    }

    fn fault(&mut self, fault: Fault, _: &Request) -> ResponseTemplate {
        match fault {
            Fault::Status {
                status,
                retry_after,
            } => {
                let kind = if status == 503 {
                    "unavailable"
                } else if status == 422 {
                    "execution"
                } else {
                    "internal"
                };
                let mut t = ResponseTemplate::new(status).set_body_json(
                    json!({"status": "error", "errorType": kind, "error": "injected fault"}),
                );
                if let Some(r) = retry_after {
                    t = t.insert_header("retry-after", r.to_string().as_str());
                }
                t
            }
            Fault::Delay(d) => ResponseTemplate::new(503).set_delay(d),
            Fault::TruncatedJson => ResponseTemplate::new(200)
                .set_body_string("{\"status\":\"success\",\"data\":{\"resultType\":\"vec"),
        }
    }
}

fn respond(s: &mut State, req: &Request) -> ResponseTemplate {
    let path = req.url.path().to_string();
    let q: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
    let query = q.get("query").cloned().unwrap_or_default();
    s.queries.push(query.clone());
    if query.trim().is_empty() {
        return ResponseTemplate::new(400).set_body_json(json!({"status": "error", "errorType": "bad_data", "error": "1:1: parse error: no expression found in input"}));
    }
    let series = s.answers.get(&query).cloned().unwrap_or_default();
    let result: Vec<Value> = match path.as_str() {
        "/api/v1/query" => {
            let t: f64 = q.get("time").and_then(|t| t.parse().ok()).unwrap_or(0.0);
            let live = s.responder.as_ref().and_then(|f| f(&query, t));
            live.unwrap_or(series)
                .iter()
                .map(|(l, v)| json!({"metric": l, "value": [t, fmt(*v)]}))
                .collect()
        }
        "/api/v1/query_range" => {
            let start: f64 = q.get("start").and_then(|t| t.parse().ok()).unwrap_or(0.0);
            let end: f64 = q.get("end").and_then(|t| t.parse().ok()).unwrap_or(start);
            let step: f64 = q
                .get("step")
                .and_then(|t| t.trim_end_matches('s').parse::<f64>().ok())
                .unwrap_or(60.0)
                .max(1.0);
            series
                .iter()
                .map(|(l, v)| {
                    let mut values = Vec::new();
                    let mut t = start;
                    while t <= end {
                        values.push(json!([t, fmt(*v)]));
                        t += step;
                    }
                    json!({"metric": l, "values": values})
                })
                .collect()
        }
        _ => return ResponseTemplate::new(404).set_body_string("404 page not found"),
    };
    let kind = if path.ends_with("query_range") {
        "matrix"
    } else {
        "vector"
    };
    ResponseTemplate::new(200)
        .set_body_json(json!({"status": "success", "data": {"resultType": kind, "result": result}}))
}

impl PrometheusSim {
    /// Starts the server.
    pub async fn start() -> Self {
        Self {
            sim: SimServer::start(State::default()).await,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.sim.state()
    }

    /// The base URL.
    pub fn uri(&self) -> String {
        self.sim.uri()
    }

    /// `query` (exact text) returns one series with `value`.
    pub fn answer(&self, query: &str, value: f64) {
        self.answer_series(query, vec![(BTreeMap::new(), value)]);
    }

    /// `query` returns these series.
    pub fn answer_series(&self, query: &str, series: Series) {
        self.state().answers.insert(query.to_string(), series);
    }

    /// Instant queries are first put to `responder` (live data: a simulator's counters), then
    /// to the configured answers.
    pub fn answer_with(&self, responder: Responder) {
        self.state().responder = Some(responder);
    }

    /// Answers nothing for times before `unix_secs` (when scraping started).
    pub fn data_since(&self, unix_secs: f64) {
        self.state().data_since = unix_secs;
    }

    /// Every query received, in order.
    pub fn queries(&self) -> Vec<String> {
        self.state().queries.clone()
    }
}

impl Simulator for PrometheusSim {
    fn with_ledger<R>(&self, f: impl FnOnce(&mut Ledger) -> R) -> R {
        self.sim.with_ledger(f)
    }
}
