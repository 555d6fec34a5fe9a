//! How the simulator shows a deployment: the shape of `/v13/deployments/{id}`, of a
//! `/v7/deployments` item, and of a deployment inside a project (`/v9/projects/{id}`), each as
//! Vercel's SDK types describe it.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{SIM_PROJECT_ID, SIM_TEAM, SimDeployment, State};

pub(super) fn error(status: u16, code: &str, message: &str) -> (u16, Value) {
    (status, json!({"error": {"code": code, "message": message}}))
}

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl State {
    /// The fields every shape of a deployment shares.
    pub(super) fn common(&self, d: &SimDeployment) -> serde_json::Map<String, Value> {
        let state = self.ready_state(d);
        let v = json!({
            "name": self.name, "url": d.url, "readyState": state, "target": d.target,
            "type": "LAMBDAS", "createdAt": ms(d.created),
            "buildingAt": ms(d.created) + (self.build_time / 10).as_millis() as i64,
            "meta": d.meta,
        });
        match v {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        }
    }

    /// When it became ready, and why it failed, in the top-level deployment shapes.
    pub(super) fn outcome(&self, d: &SimDeployment, v: &mut serde_json::Map<String, Value>) {
        match self.ready_state(d) {
            "READY" => {
                let at = ms(d.created) + self.build_time.as_millis() as i64;
                v.insert("ready".into(), json!(at));
            }
            "ERROR" => {
                v.insert("errorCode".into(), json!("BUILD_FAILED"));
                let message = "Command \"npm run build\" exited with 1";
                v.insert("errorMessage".into(), json!(message));
            }
            _ => {}
        }
    }

    pub(super) fn is_production(&self, d: &SimDeployment) -> bool {
        self.production.as_deref() == Some(d.id.as_str())
    }

    pub(super) fn aliases(&self) -> Value {
        json!([
            format!("{}.acme.dev", self.name),
            format!("www.{}.acme.dev", self.name)
        ])
    }

    /// `GET /v13/deployments/{id}`, in the SDK's `GetDeploymentResponseBody3` shape: `id`,
    /// `readyState`, `createdAt` (no `uid`, `state` or `created`), and the aliases once it
    /// serves production.
    pub(super) fn render(&self, d: &SimDeployment) -> Value {
        let mut v = self.common(d);
        let production = self.is_production(d);
        v.extend([
            ("id".into(), json!(d.id)),
            ("status".into(), json!(self.ready_state(d))),
            (
                "creator".into(),
                json!({"uid": "usr_sim", "username": "ops"}),
            ),
            ("bootedAt".into(), json!(ms(d.created))),
            ("buildSkipped".into(), json!(false)),
            ("public".into(), json!(false)),
            ("regions".into(), json!(["iad1"])),
            ("version".into(), json!(2)),
            ("source".into(), json!("git")),
            ("aliasAssigned".into(), json!(production)),
        ]);
        if production {
            v.insert("alias".into(), self.aliases());
        }
        self.outcome(d, &mut v);
        Value::Object(v)
    }

    /// A `/v7/deployments` item: the list's own shape, with `uid`, `state` and `created` (no
    /// `id`, no `alias`).
    pub(super) fn render_listed(&self, d: &SimDeployment) -> Value {
        let mut v = self.common(d);
        v.extend([
            ("uid".into(), json!(d.id)),
            ("state".into(), json!(self.ready_state(d))),
            ("created".into(), json!(ms(d.created))),
            (
                "creator".into(),
                json!({"uid": "usr_sim", "username": "ops"}),
            ),
            ("projectId".into(), json!(SIM_PROJECT_ID)),
            ("source".into(), json!("git")),
            (
                "inspectorUrl".into(),
                json!(format!("https://vercel.com/acme/{}/{}", self.name, d.id)),
            ),
            ("isRollbackCandidate".into(), json!(d.was_production)),
        ]);
        self.outcome(d, &mut v);
        Value::Object(v)
    }

    /// A deployment inside a project (`targets.production`, `latestDeployments[]`).
    pub(super) fn render_in_project(&self, d: &SimDeployment) -> Value {
        let mut v = self.common(d);
        v.extend([
            ("id".into(), json!(d.id)),
            (
                "creator".into(),
                json!({"uid": "usr_sim", "username": "ops", "email": "ops@acme.dev"}),
            ),
            ("createdIn".into(), json!("iad1")),
            ("deploymentHostname".into(), json!(d.url)),
            ("plan".into(), json!("pro")),
            ("private".into(), json!(true)),
            ("aliasAssigned".into(), json!(self.is_production(d))),
        ]);
        if self.is_production(d) {
            v.insert("alias".into(), self.aliases());
        }
        if self.ready_state(d) == "READY" {
            let at = ms(d.created) + self.build_time.as_millis() as i64;
            v.insert("readyAt".into(), json!(at));
        }
        Value::Object(v)
    }

    pub(super) fn project(&self) -> Value {
        let prod = self
            .production
            .as_ref()
            .and_then(|p| self.deployments.iter().find(|d| &d.id == p));
        json!({
            "id": SIM_PROJECT_ID, "name": self.name, "accountId": SIM_TEAM, "framework": "nextjs",
            "paused": self.paused, "createdAt": 1_700_000_000_000i64, "alias": [],
            "nodeVersion": "22.x", "directoryListing": false,
            "deploymentExpiration": {"expirationDays": 180},
            "resourceConfig": {"functionDefaultRegions": ["iad1"]},
            "defaultResourceConfig": {"functionDefaultRegions": ["iad1"]},
            "targets": {"production": prod.map(|d| self.render_in_project(d))},
            "latestDeployments": self.deployments.iter().rev().take(5).map(|d| self.render_in_project(d)).collect::<Vec<_>>(),
        })
    }
}
