//! Service-account keys in the simulated IAM v1: created (with a key file), listed, disabled,
//! enabled and deleted; at most 10 user-managed keys per account, as IAM allows.

use std::collections::BTreeMap;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::SimState;
use super::cloud_run::time;
use super::http::{Reply, google_error};

/// The most user-managed keys one account may have.
const MAX_KEYS: usize = 10;

/// A key as the simulator holds it.
#[derive(Debug, Clone)]
pub(super) struct SimKey {
    pub id: String,
    pub created: DateTime<Utc>,
    pub disabled: bool,
}

impl SimState {
    fn render_key(&self, email: &str, k: &SimKey) -> Value {
        json!({
            "name": format!("projects/{}/serviceAccounts/{email}/keys/{}", self.project, k.id),
            "validAfterTime": time(k.created),
            "validBeforeTime": "9999-12-31T23:59:59Z",
            "keyAlgorithm": "KEY_ALG_RSA_2048",
            "keyOrigin": "GOOGLE_PROVIDED",
            "keyType": "USER_MANAGED",
            "disabled": k.disabled,
        })
    }

    pub(super) fn keys_route(
        &mut self,
        method: &str,
        email: &str,
        rest: &[&str],
        query: &BTreeMap<String, String>,
    ) -> Reply {
        let _ = query;
        if !self.service_accounts.contains_key(email) {
            return google_error(
                404,
                "NOT_FOUND",
                &format!(
                    "Service account projects/{}/serviceAccounts/{email} does not exist.",
                    self.project
                ),
            );
        }
        let now = self.now();
        match (method, rest) {
            ("GET", []) => {
                let keys: Vec<Value> = self.service_accounts[email]
                    .iter()
                    .map(|k| self.render_key(email, k))
                    .collect();
                Reply::json(200, json!({ "keys": keys }))
            }
            ("POST", []) => {
                if self.key_quota_exhausted {
                    return google_error(
                        429,
                        "RESOURCE_EXHAUSTED",
                        "Quota exceeded for quota metric 'Service Account Key creation requests' and limit 'per minute'.",
                    );
                }
                if self.service_accounts[email].len() >= MAX_KEYS {
                    return google_error(400, "FAILED_PRECONDITION", "Precondition check failed.");
                }
                let id = format!("{:040x}", fastrand::u128(..));
                let file = json!({
                    "type": "service_account", "project_id": self.project,
                    "private_key_id": id, "client_email": email,
                    "private_key": format!("-----BEGIN PRIVATE KEY-----\nSIMULATED{id}\n-----END PRIVATE KEY-----\n"),
                });
                let key = SimKey {
                    id: id.clone(),
                    created: now,
                    disabled: false,
                };
                let mut v = self.render_key(email, &key);
                v["privateKeyType"] = json!("TYPE_GOOGLE_CREDENTIALS_FILE");
                v["privateKeyData"] =
                    json!(base64::engine::general_purpose::STANDARD.encode(file.to_string()));
                if let Some(keys) = self.service_accounts.get_mut(email) {
                    keys.push(key);
                }
                self.ledger.mutated();
                Reply::json(200, v)
            }
            (_, [last]) => {
                let (id, verb) = last.split_once(':').unwrap_or((last, ""));
                let Some(keys) = self.service_accounts.get_mut(email) else {
                    return google_error(404, "NOT_FOUND", "Service account does not exist.");
                };
                let Some(i) = keys.iter().position(|k| k.id == id) else {
                    return google_error(
                        404,
                        "NOT_FOUND",
                        &format!("Service account key {id} does not exist."),
                    );
                };
                match (method, verb) {
                    ("GET", "") => {
                        let k = keys[i].clone();
                        Reply::json(200, self.render_key(email, &k))
                    }
                    ("DELETE", "") => {
                        keys.remove(i);
                        self.ledger.mutated();
                        Reply::json(200, json!({}))
                    }
                    ("POST", "disable" | "enable") => {
                        keys[i].disabled = verb == "disable";
                        self.ledger.mutated();
                        Reply::json(200, json!({}))
                    }
                    _ => google_error(404, "NOT_FOUND", "not simulated"),
                }
            }
            _ => google_error(404, "NOT_FOUND", "not simulated"),
        }
    }
}
