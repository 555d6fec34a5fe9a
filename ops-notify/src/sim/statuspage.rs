//! The fake Statuspage REST API v1: one page with two components; incidents created, updated
//! and listed as unresolved, with their updates and the components' status; scheduled
//! maintenance; `Authorization: OAuth <key>`; errors as Statuspage words them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ops_core::clock::{SharedClock, system_clock};
use ops_core::sim::{Fault, Ledger, Request, ResponseTemplate, SimApi, SimServer, Simulator};
use serde_json::{Map, Value, json};

/// The API key the fake accepts.
pub const API_KEY: &str = "sim-statuspage-key-3a9f0c1d";
/// The fake's page id.
pub const PAGE_ID: &str = "simpage01";
/// The fake page's components: the API and the website.
pub const COMPONENTS: [&str; 2] = ["cmp0api0000", "cmp0web0000"];

const REALTIME: [&str; 4] = ["investigating", "identified", "monitoring", "resolved"];
const SCHEDULED: [&str; 4] = ["scheduled", "in_progress", "verifying", "completed"];
const IMPACTS: [&str; 5] = ["none", "maintenance", "minor", "major", "critical"];
const COMPONENT_STATUS: [&str; 5] = [
    "operational",
    "under_maintenance",
    "degraded_performance",
    "partial_outage",
    "major_outage",
];

/// An incident as the fake holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimIncident {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its status.
    pub status: String,
    /// Its impact.
    pub impact: String,
    /// Its updates, oldest first: (status, body).
    pub updates: Vec<(String, String)>,
    /// What was attached at creation.
    pub metadata: Value,
    /// When a scheduled one starts and ends.
    pub scheduled: Option<(String, String)>,
    /// Whether subscribers were told, per update.
    pub notified: Vec<bool>,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
}

#[derive(Debug)]
struct State {
    clock: SharedClock,
    incidents: Vec<SimIncident>,
    components: BTreeMap<String, String>,
    ledger: Ledger,
    next: u64,
}

/// A running fake Statuspage.
#[derive(Debug)]
pub struct StatuspageSim {
    sim: SimServer<State>,
}

fn error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({ "error": message }))
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
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
            Fault::Status { status, .. } => error(status, "Rate limit exceeded"),
            Fault::Delay(d) => ResponseTemplate::new(504).set_delay(d),
            Fault::TruncatedJson => ResponseTemplate::new(200).set_body_string("{\"id\": \"x"),
        }
    }
}

impl State {
    fn render(&self, i: &SimIncident) -> Value {
        let updates: Vec<Value> = i
            .updates
            .iter()
            .enumerate()
            .rev()
            .map(|(n, (status, body))| {
                json!({"id": format!("{}u{n}", i.id), "incident_id": i.id, "status": status, "body": body,
                    "created_at": iso(i.updated), "updated_at": iso(i.updated), "display_at": iso(i.updated),
                    "affected_components": [], "custom_tweet": null, "deliver_notifications": i.notified.get(n).copied().unwrap_or(true),
                    "tweet_id": null, "twitter_updated_at": null, "wants_twitter_update": false})
            })
            .collect();
        let components: Vec<Value> = self
            .components
            .iter()
            .map(|(id, status)| {
                json!({"id": id, "page_id": PAGE_ID, "group_id": null, "created_at": iso(i.created), "updated_at": iso(i.updated),
                    "group": false, "name": if id == COMPONENTS[0] { "API" } else { "Website" }, "description": null,
                    "position": 1, "status": status, "showcase": true, "only_show_if_degraded": false,
                    "automation_email": format!("component+{id}@notifications.statuspage.io"), "start_date": null})
            })
            .collect();
        let resolved = matches!(i.status.as_str(), "resolved" | "completed");
        json!({
            "id": i.id, "name": i.name, "status": i.status, "impact": i.impact, "impact_override": i.impact,
            "page_id": PAGE_ID, "created_at": iso(i.created), "updated_at": iso(i.updated),
            "monitoring_at": null, "resolved_at": if resolved { json!(iso(i.updated)) } else { Value::Null },
            "shortlink": format!("https://stspg.io/{}", i.id), "metadata": i.metadata,
            "incident_updates": updates, "components": components,
            "postmortem_body": null, "postmortem_body_last_updated_at": null, "postmortem_ignored": false,
            "postmortem_notified_subscribers": false, "postmortem_notified_twitter": false, "postmortem_published_at": null,
            "scheduled_for": i.scheduled.as_ref().map(|s| s.0.clone()), "scheduled_until": i.scheduled.as_ref().map(|s| s.1.clone()),
            "scheduled_remind_prior": i.scheduled.is_some(), "scheduled_reminded_at": null,
            "scheduled_auto_in_progress": i.scheduled.is_some(), "scheduled_auto_completed": i.scheduled.is_some(),
            "auto_transition_deliver_notifications_at_end": false, "auto_transition_deliver_notifications_at_start": false,
            "auto_transition_to_maintenance_state": i.scheduled.is_some(), "auto_transition_to_operational_state": i.scheduled.is_some(),
        })
    }

    /// Checks the `incident` object of a create or update; `Err` is the 422 to answer.
    fn check(&self, incident: &Map<String, Value>, creating: bool) -> Result<(), String> {
        let text = |k: &str| incident.get(k).and_then(Value::as_str);
        if creating && text("name").is_none_or(|n| n.trim().is_empty()) {
            return Err("Name can't be blank".into());
        }
        if let Some(s) = incident.get("status") {
            let s = s.as_str().unwrap_or("");
            if !REALTIME.contains(&s) && !SCHEDULED.contains(&s) {
                return Err(format!("Status {s} is not a valid status"));
            }
            if creating
                && s == "scheduled"
                && (text("scheduled_for").is_none() || text("scheduled_until").is_none())
            {
                return Err("Scheduled for and scheduled until are required".into());
            }
        }
        if let Some(i) = incident.get("impact_override")
            && !IMPACTS.contains(&i.as_str().unwrap_or(""))
        {
            return Err("Impact override is not included in the list".into());
        }
        for id in incident
            .get("component_ids")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !self.components.contains_key(id.as_str().unwrap_or("")) {
                return Err(format!("Component {id} does not exist"));
            }
        }
        if let Some(c) = incident.get("components") {
            let Some(map) = c.as_object() else {
                return Err("components must be an object".into());
            };
            for (id, status) in map {
                if !self.components.contains_key(id) {
                    return Err(format!("Component {id} does not exist"));
                }
                if !COMPONENT_STATUS.contains(&status.as_str().unwrap_or("")) {
                    return Err(format!("Component status {status} is not valid"));
                }
            }
        }
        if let Some(m) = incident.get("metadata") {
            // "All top-level values in the object must also be objects."
            if !m
                .as_object()
                .is_some_and(|o| o.values().all(Value::is_object))
            {
                return Err("Metadata values must be objects".into());
            }
        }
        Ok(())
    }

    fn apply_components(&mut self, incident: &Map<String, Value>) {
        if let Some(map) = incident.get("components").and_then(Value::as_object) {
            for (id, status) in map {
                if let (Some(c), Some(s)) = (self.components.get_mut(id), status.as_str()) {
                    *c = s.to_string();
                }
            }
        }
    }
}

fn respond(s: &mut State, req: &Request) -> ResponseTemplate {
    let auth = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("OAuth {API_KEY}") {
        return error(401, "Could not authenticate");
    }
    let path = req.url.path().to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let now = s.clock.now();
    let body: Value = if req.body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(_) => return error(400, "The request body is not valid JSON"),
        }
    };
    let method = req.method.as_str();
    match (method, segments.as_slice()) {
        (_, ["v1", "pages", page, ..]) if *page != PAGE_ID => {
            error(404, "The requested resource could not be found.")
        }
        (
            "GET",
            [
                "v1",
                "pages",
                _,
                "incidents",
                which @ ("unresolved" | "scheduled"),
            ],
        ) => {
            let want: &[&str] = if *which == "unresolved" {
                &REALTIME[..3]
            } else {
                &SCHEDULED[..1]
            };
            let items: Vec<Value> = s
                .incidents
                .iter()
                .rev()
                .filter(|i| want.contains(&i.status.as_str()))
                .map(|i| s.render(i))
                .collect();
            ResponseTemplate::new(200).set_body_json(Value::Array(items))
        }
        ("POST", ["v1", "pages", _, "incidents"]) => {
            let Some(incident) = body.get("incident").and_then(Value::as_object).cloned() else {
                return error(400, "incident is missing");
            };
            if let Err(e) = s.check(&incident, true) {
                return error(422, &e);
            }
            s.next += 1;
            let text = |k: &str| incident.get(k).and_then(Value::as_str).map(str::to_string);
            let scheduled = text("scheduled_for").zip(text("scheduled_until"));
            let status = text("status").unwrap_or_else(|| {
                if scheduled.is_some() {
                    "scheduled"
                } else {
                    "investigating"
                }
                .into()
            });
            let i = SimIncident {
                id: format!("sim{:09}", s.next),
                name: text("name").unwrap_or_default(),
                status: status.clone(),
                impact: text("impact_override").unwrap_or_else(|| "none".into()),
                updates: vec![(status, text("body").unwrap_or_default())],
                metadata: incident.get("metadata").cloned().unwrap_or(json!({})),
                scheduled,
                notified: vec![
                    incident
                        .get("deliver_notifications")
                        .and_then(Value::as_bool)
                        .unwrap_or(true),
                ],
                created: now,
                updated: now,
            };
            s.apply_components(&incident);
            let out = s.render(&i);
            s.incidents.push(i);
            s.ledger.mutated();
            ResponseTemplate::new(201).set_body_json(out)
        }
        ("PATCH" | "PUT", ["v1", "pages", _, "incidents", id]) => {
            let Some(incident) = body.get("incident").and_then(Value::as_object).cloned() else {
                return error(400, "incident is missing");
            };
            if let Err(e) = s.check(&incident, false) {
                return error(422, &e);
            }
            let Some(idx) = s.incidents.iter().position(|i| i.id == *id) else {
                return error(404, "The requested resource could not be found.");
            };
            let text = |k: &str| incident.get(k).and_then(Value::as_str).map(str::to_string);
            let status = text("status").unwrap_or_else(|| s.incidents[idx].status.clone());
            let notify = incident
                .get("deliver_notifications")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            {
                let i = &mut s.incidents[idx];
                if let Some(n) = text("name") {
                    i.name = n;
                }
                if let Some(b) = text("body") {
                    i.updates.push((status.clone(), b));
                    i.notified.push(notify);
                }
                i.status = status;
                i.updated = now;
            }
            s.apply_components(&incident);
            s.ledger.mutated();
            ResponseTemplate::new(200).set_body_json(s.render(&s.incidents[idx]))
        }
        _ => error(404, "The requested resource could not be found."),
    }
}

impl StatuspageSim {
    /// Starts the server on the system clock.
    pub async fn start() -> Self {
        Self::start_on(system_clock()).await
    }

    /// Starts the server on `clock` (the incidents' timestamps).
    pub async fn start_on(clock: SharedClock) -> Self {
        let state = State {
            clock,
            incidents: Vec::new(),
            components: COMPONENTS
                .iter()
                .map(|c| (c.to_string(), "operational".to_string()))
                .collect(),
            ledger: Ledger::default(),
            next: 0,
        };
        Self {
            sim: SimServer::start(state).await,
        }
    }

    /// The base URL (the API is under `/v1/`).
    pub fn uri(&self) -> String {
        self.sim.uri()
    }

    /// The incidents, in the order they were created.
    pub fn incidents(&self) -> Vec<SimIncident> {
        self.sim.state().incidents.clone()
    }

    /// A component's status (`operational`, `major_outage`, …).
    pub fn component_status(&self, id: &str) -> Option<String> {
        self.sim.state().components.get(id).cloned()
    }
}

impl Simulator for StatuspageSim {
    fn with_ledger<R>(&self, f: impl FnOnce(&mut Ledger) -> R) -> R {
        self.sim.with_ledger(f)
    }
}
