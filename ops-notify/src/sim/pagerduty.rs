//! The fake PagerDuty Events API v2.

use ops_core::sim::{Fault, Ledger, Request, ResponseTemplate, SimApi, SimServer, Simulator};
use serde_json::{Value, json};

/// The routing key the fake accepts (32 characters).
pub const ROUTING_KEY: &str = "R0SIMSIMSIMSIMSIMSIMSIMSIMSIM012";

/// An alert as the fake holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimAlert {
    /// Its dedup key.
    pub dedup_key: String,
    /// `triggered`, `acknowledged` or `resolved`.
    pub status: String,
    /// The last trigger's payload.
    pub payload: Value,
    /// Events received for it.
    pub events: u32,
}

#[derive(Debug, Default)]
struct State {
    alerts: Vec<SimAlert>,
    ledger: Ledger,
    next: u64,
}

/// A running fake PagerDuty.
#[derive(Debug)]
pub struct PagerDutySim {
    sim: SimServer<State>,
}

fn invalid(errors: &[&str]) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(
        json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors}),
    )
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
            Fault::Status { status, .. } => ResponseTemplate::new(status).set_body_json(json!({"status": "throttle event", "message": "Requests for this service are arriving too quickly. Please retry later."})),
            Fault::Delay(d) => ResponseTemplate::new(202).set_delay(d),
            Fault::TruncatedJson => ResponseTemplate::new(202).set_body_string("{\"status\": \"succ"),
        }
    }
}

fn respond(s: &mut State, req: &Request) -> ResponseTemplate {
    if req.method.as_str() != "POST" || req.url.path() != "/v2/enqueue" {
        return ResponseTemplate::new(404).set_body_string("Not Found");
    }
    let Ok(e) = serde_json::from_slice::<Value>(&req.body) else {
        return invalid(&["Event object is not valid JSON"]);
    };
    if e["routing_key"] != ROUTING_KEY {
        return invalid(&["'routing_key' is invalid"]);
    }
    let action = e["event_action"].as_str().unwrap_or("");
    let key = e
        .get("dedup_key")
        .and_then(Value::as_str)
        .map(str::to_owned);
    match action {
        "trigger" => {
            let p = &e["payload"];
            let mut errors = Vec::new();
            if p["summary"].as_str().is_none_or(str::is_empty) {
                errors.push("'payload.summary' is missing or blank");
            }
            if p["source"].as_str().is_none_or(str::is_empty) {
                errors.push("'payload.source' is missing or blank");
            }
            if !["critical", "error", "warning", "info"]
                .contains(&p["severity"].as_str().unwrap_or(""))
            {
                errors.push("'payload.severity' must be one of critical, error, warning, info");
            }
            if !errors.is_empty() {
                return invalid(&errors);
            }
            let key = key.unwrap_or_else(|| {
                s.next += 1;
                format!("srv01pd{:08}", s.next)
            });
            match s
                .alerts
                .iter_mut()
                .find(|a| a.dedup_key == key && a.status != "resolved")
            {
                Some(a) => {
                    a.payload = p.clone();
                    a.events += 1;
                }
                None => s.alerts.push(SimAlert {
                    dedup_key: key.clone(),
                    status: "triggered".into(),
                    payload: p.clone(),
                    events: 1,
                }),
            }
            ResponseTemplate::new(202).set_body_json(
                json!({"status": "success", "message": "Event processed", "dedup_key": key}),
            )
        }
        "acknowledge" | "resolve" => {
            let Some(key) = key else {
                return invalid(&["'dedup_key' is required for acknowledge and resolve"]);
            };
            if let Some(a) = s
                .alerts
                .iter_mut()
                .find(|a| a.dedup_key == key && a.status != "resolved")
            {
                a.status = if action == "resolve" {
                    "resolved".into()
                } else {
                    "acknowledged".into()
                };
                a.events += 1;
            }
            ResponseTemplate::new(202).set_body_json(
                json!({"status": "success", "message": "Event processed", "dedup_key": key}),
            )
        }
        _ => invalid(&["'event_action' must be one of trigger, acknowledge, resolve"]),
    }
}

impl PagerDutySim {
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

    /// The alerts, in the order they opened.
    pub fn alerts(&self) -> Vec<SimAlert> {
        self.state().alerts.clone()
    }
}

impl Simulator for PagerDutySim {
    fn with_ledger<R>(&self, f: impl FnOnce(&mut Ledger) -> R) -> R {
        self.sim.with_ledger(f)
    }
}
