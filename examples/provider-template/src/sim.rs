//! Pager on loopback: alerts kept by dedup key, validated like the real API, with faults a test
//! injects. Built on the simulator kit of `ops_core::sim`.

use std::collections::BTreeMap;

use ops_core::sim::{Ledger, Request, ResponseTemplate, SimApi, SimServer};
use serde_json::{Value, json};

pub use ops_core::sim::{Fault, Simulator};

/// The token the simulator accepts.
pub const TOKEN: &str = "pager-sim-token";

/// An alert as on-call would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimAlert {
    /// Its id (`al_N`).
    pub id: String,
    /// Its dedup key.
    pub dedup_key: String,
    /// `triggered` or `resolved`.
    pub status: String,
    /// The last summary.
    pub summary: String,
    /// Triggers and resolves received for it.
    pub events: u32,
}

#[derive(Debug, Default)]
struct State {
    ledger: Ledger,
    alerts: BTreeMap<String, SimAlert>,
    next: u64,
}

fn error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"error": {"code": code, "message": message}}))
}

impl SimApi for State {
    fn ledger(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    fn respond(&mut self, req: &Request) -> ResponseTemplate {
        if (req.method.as_str(), req.url.path()) != ("POST", "/v1/alerts") {
            return error(404, "not_found", "No such route");
        }
        let token = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if token != Some(&format!("Bearer {TOKEN}")) {
            return error(401, "unauthorized", "Invalid token");
        }
        let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
            return error(400, "invalid_json", "The body is not JSON");
        };
        let summary = body["summary"].as_str().unwrap_or("").trim();
        if summary.is_empty() {
            return error(400, "summary", "summary must not be blank");
        }
        if !["critical", "error", "warning", "info"]
            .contains(&body["severity"].as_str().unwrap_or(""))
        {
            return error(
                400,
                "severity",
                "severity must be critical, error, warning or info",
            );
        }
        let key = match body["dedup_key"].as_str() {
            Some(k) => k.to_string(),
            None => {
                self.next += 1;
                format!("auto-{}", self.next)
            }
        };
        let resolve = match body["action"].as_str() {
            Some("trigger") => false,
            Some("resolve") => true,
            _ => return error(400, "action", "action must be trigger or resolve"),
        };
        let alert = match self.alerts.get_mut(&key) {
            Some(a) if resolve && a.status == "resolved" => {
                return error(409, "already_resolved", "The alert is already resolved");
            }
            Some(a) => a,
            None if resolve => return error(404, "not_found", "No open alert with this dedup key"),
            None => {
                self.next += 1;
                self.alerts.entry(key.clone()).or_insert(SimAlert {
                    id: format!("al_{}", self.next),
                    dedup_key: key.clone(),
                    status: String::new(),
                    summary: String::new(),
                    events: 0,
                })
            }
        };
        alert.status = if resolve { "resolved" } else { "triggered" }.into();
        alert.summary = summary.to_string();
        alert.events += 1;
        let id = alert.id.clone();
        self.ledger.mutated();
        ResponseTemplate::new(202).set_body_json(json!({"id": id, "dedup_key": key}))
    }

    fn fault(&mut self, fault: Fault, _: &Request) -> ResponseTemplate {
        match fault {
            Fault::Status {
                status,
                retry_after,
            } => {
                let mut reply = error(status, "injected", "Injected fault");
                if let Some(secs) = retry_after {
                    reply = reply.insert_header("retry-after", secs.to_string().as_str());
                }
                reply
            }
            Fault::Delay(d) => ResponseTemplate::new(202).set_delay(d),
            Fault::TruncatedJson => ResponseTemplate::new(202)
                .insert_header("content-type", "application/json")
                .set_body_string("{\"id\": \"al_"),
        }
    }
}

/// A running Pager simulator.
#[derive(Debug)]
pub struct PagerSim {
    sim: SimServer<State>,
}

impl PagerSim {
    /// Starts one on a free loopback port.
    pub async fn start() -> Self {
        Self {
            sim: SimServer::start(State::default()).await,
        }
    }

    /// Its base URL.
    pub fn uri(&self) -> String {
        self.sim.uri()
    }

    /// The alerts, by dedup key.
    pub fn alerts(&self) -> Vec<SimAlert> {
        self.sim.state().alerts.values().cloned().collect()
    }
}

impl Simulator for PagerSim {
    fn with_ledger<R>(&self, f: impl FnOnce(&mut Ledger) -> R) -> R {
        self.sim.with_ledger(f)
    }
}
