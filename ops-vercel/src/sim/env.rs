//! Environment variables in the simulator: listed in pages, read decrypted, created or
//! upserted, deleted.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::render::{error, ms};
use super::{SimEnv, State};

impl State {
    /// `/{version}/projects/{project}/env[/{id}]`, the project already checked.
    pub(super) fn env_route(
        &mut self,
        method: &str,
        version: &str,
        rest: &[&str],
        query: &BTreeMap<String, String>,
        body: &Value,
    ) -> (u16, Value) {
        match (method, version, rest) {
            ("GET", "v10", []) => {
                // Paged newest first by `until` (a creation time in ms), as Vercel pages.
                let until = query.get("until").and_then(|u| u.parse::<i64>().ok());
                let mut envs: Vec<&SimEnv> = self.envs.iter().collect();
                envs.sort_by_key(|e| std::cmp::Reverse((ms(e.created), e.id.clone())));
                let page: Vec<&SimEnv> = envs
                    .into_iter()
                    .filter(|e| until.is_none_or(|u| ms(e.created) < u))
                    .take(ENV_PAGE + 1)
                    .collect();
                let more = page.len() > ENV_PAGE;
                let page = &page[..page.len().min(ENV_PAGE)];
                let next = if more {
                    page.last().map(|e| json!(ms(e.created)))
                } else {
                    None
                };
                (
                    200,
                    json!({"envs": page.iter().map(|e| listed_env_json(e)).collect::<Vec<_>>(),
                           "pagination": {"count": page.len(), "next": next,
                                          "prev": page.first().map(|e| ms(e.created))}}),
                )
            }
            ("GET", "v1", [id]) => match self.envs.iter().find(|e| e.id == *id) {
                Some(e) => (200, env_json(e, true)),
                None => error(404, "not_found", "Environment variable not found"),
            },
            ("POST", "v10", []) => {
                let (Some(key), Some(value)) = (
                    body.get("key").and_then(Value::as_str),
                    body.get("value").and_then(Value::as_str),
                ) else {
                    return error(
                        400,
                        "bad_request",
                        "Invalid request: missing required property `key` or `value`.",
                    );
                };
                let target: Vec<String> = body
                    .get("target")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|t| t.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let kind = body
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("encrypted")
                    .to_string();
                let upsert = query.get("upsert").map(String::as_str) == Some("true");
                let now = self.clock.now();
                let existing = self
                    .envs
                    .iter()
                    .position(|e| e.key == key && e.target.iter().any(|t| target.contains(t)));
                let e = match existing {
                    Some(_) if !upsert => {
                        return error(
                            400,
                            "ENV_ALREADY_EXISTS",
                            &format!(
                                "A variable with the name `{key}` already exists for the target."
                            ),
                        );
                    }
                    Some(i) => {
                        let e = &mut self.envs[i];
                        e.value = value.to_string();
                        // Each write is a distinct moment, even on a paused clock.
                        e.updated = now.max(e.updated + chrono::Duration::milliseconds(1));
                        e.clone()
                    }
                    None => {
                        let created = self.fresh_env_time();
                        let e = SimEnv {
                            id: format!("env_{:016x}", fastrand::u64(..)),
                            key: key.into(),
                            value: value.into(),
                            kind,
                            target,
                            created,
                            updated: created,
                        };
                        self.envs.push(e.clone());
                        e
                    }
                };
                self.ledger.mutated();
                (201, json!({"created": env_json(&e, false), "failed": []}))
            }
            ("DELETE", "v9", [id]) => match self.envs.iter().position(|e| e.id == *id) {
                Some(i) => {
                    let e = self.envs.remove(i);
                    self.ledger.mutated();
                    (200, env_json(&e, false))
                }
                None => error(404, "not_found", "Environment variable not found"),
            },
            _ => error(
                404,
                "not_found",
                &format!("{method} /{version}/projects/…/env is not simulated"),
            ),
        }
    }
}

/// Variables per page of the env listing: small, so that rehearsals page.
pub(super) const ENV_PAGE: usize = 5;

/// A listing's item, which alone carries `securityIssues`.
pub(super) fn listed_env_json(e: &SimEnv) -> Value {
    let mut v = env_json(e, false);
    v["securityIssues"] = json!([]);
    v
}

pub(super) fn env_json(e: &SimEnv, decrypted: bool) -> Value {
    let mut v = json!({
        "id": e.id, "key": e.key, "type": e.kind, "target": e.target,
        "createdAt": ms(e.created), "updatedAt": ms(e.updated), "configurationId": null,
        "createdBy": "usr_sim", "updatedBy": "usr_sim", "decrypted": decrypted,
    });
    // Listing shows an opaque value; reading one variable decrypts it.
    v["value"] = if decrypted {
        json!(e.value)
    } else {
        json!("eyJ2IjoiZW5jcnlwdGVkIn0")
    };
    v
}
