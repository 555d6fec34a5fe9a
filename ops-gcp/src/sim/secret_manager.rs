//! The simulated Secret Manager v1: secrets with versions, states, etags and payload checksums.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::SimState;
use super::cloud_run::time;
use super::http::{Reply, google_error};
use crate::secrets::crc32c_decimal;

#[derive(Debug, Clone)]
pub(super) struct SimSecret {
    pub created: DateTime<Utc>,
    pub labels: Value,
    pub versions: Vec<SimSecretVersion>,
}

#[derive(Clone)]
pub(super) struct SimSecretVersion {
    pub id: u32,
    pub state: &'static str,
    pub created: DateTime<Utc>,
    pub destroyed: Option<DateTime<Utc>>,
    pub data: Vec<u8>,
    pub etag: u32,
}

impl std::fmt::Debug for SimSecretVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SimSecretVersion({}, {})", self.id, self.state)
    }
}

impl SimState {
    fn secret_path(&self, secret: &str) -> String {
        format!("projects/{}/secrets/{secret}", self.project)
    }

    fn render_version(&self, secret: &str, v: &SimSecretVersion) -> Value {
        let mut out = json!({
            "name": format!("{}/versions/{}", self.secret_path(secret), v.id),
            "createTime": time(v.created),
            "state": v.state,
            "etag": format!("\"{}\"", v.etag),
            "clientSpecifiedPayloadChecksum": true,
            "replicationStatus": {"automatic": {}},
        });
        if let Some(d) = v.destroyed {
            out["destroyTime"] = json!(time(d));
        }
        out
    }

    fn render_secret(&self, name: &str, s: &SimSecret) -> Value {
        json!({
            "name": self.secret_path(name),
            "replication": {"automatic": {}},
            "createTime": time(s.created),
            "labels": s.labels,
            "etag": format!("\"{}\"", s.versions.len()),
        })
    }

    /// Stores a secret version directly (test set-up).
    pub(super) fn put_secret(&mut self, secret: &str, data: &[u8]) -> u32 {
        let now = self.now();
        let s = self
            .secrets
            .entry(secret.to_string())
            .or_insert_with(|| SimSecret {
                created: now,
                labels: json!({}),
                versions: Vec::new(),
            });
        let id = s.versions.len() as u32 + 1;
        s.versions.push(SimSecretVersion {
            id,
            state: "ENABLED",
            created: now,
            destroyed: None,
            data: data.to_vec(),
            etag: 1,
        });
        id
    }

    pub(super) fn secret_route(
        &mut self,
        method: &str,
        rest: &[&str],
        query: &BTreeMap<String, String>,
        body: &Value,
    ) -> Reply {
        match (method, rest) {
            ("GET", []) => self.list_secrets(query),
            ("POST", []) => self.create_secret(query, body),
            ("GET", [s]) => match self.secrets.get(*s) {
                Some(secret) => Reply::json(200, self.render_secret(s, secret)),
                None => not_found(&self.secret_path(s)),
            },
            ("POST", [s]) if s.ends_with(":addVersion") => {
                self.add_version(s.trim_end_matches(":addVersion"), body)
            }
            ("GET", [s, "versions"]) => self.list_versions(s, query),
            ("GET", [s, "versions", v]) => match v.strip_suffix(":access") {
                Some(v) => self.access(s, v),
                None => match self.find_version(s, v) {
                    Ok(version) => Reply::json(200, self.render_version(s, &version)),
                    Err(reply) => reply,
                },
            },
            ("POST", [s, "versions", v]) => match v.split_once(':') {
                Some((v, verb @ ("enable" | "disable" | "destroy"))) => {
                    self.change_state(s, v, verb, body)
                }
                _ => google_error(404, "NOT_FOUND", "not simulated"),
            },
            _ => google_error(404, "NOT_FOUND", "not simulated"),
        }
    }

    fn list_secrets(&self, query: &BTreeMap<String, String>) -> Reply {
        let all: Vec<Value> = self
            .secrets
            .iter()
            .map(|(n, s)| self.render_secret(n, s))
            .collect();
        page(all, query, "secrets")
    }

    fn create_secret(&mut self, query: &BTreeMap<String, String>, body: &Value) -> Reply {
        let Some(id) = query.get("secretId") else {
            return google_error(400, "INVALID_ARGUMENT", "secretId is required");
        };
        if self.secrets.contains_key(id) {
            return google_error(
                409,
                "ALREADY_EXISTS",
                &format!("Secret [{}] already exists.", self.secret_path(id)),
            );
        }
        if body.get("replication").is_none() {
            return google_error(400, "INVALID_ARGUMENT", "Secret.replication is required");
        }
        let secret = SimSecret {
            created: self.now(),
            labels: body.get("labels").cloned().unwrap_or(json!({})),
            versions: Vec::new(),
        };
        let out = self.render_secret(id, &secret);
        self.secrets.insert(id.clone(), secret);
        self.ledger.mutated();
        Reply::json(200, out)
    }

    fn add_version(&mut self, secret: &str, body: &Value) -> Reply {
        let path = self.secret_path(secret);
        let Some(data) = body.pointer("/payload/data").and_then(Value::as_str) else {
            return google_error(400, "INVALID_ARGUMENT", "payload.data is required");
        };
        let Ok(bytes) = STANDARD.decode(data) else {
            return google_error(
                400,
                "INVALID_ARGUMENT",
                "Invalid value at 'payload.data' (TYPE_BYTES)",
            );
        };
        if let Some(crc) = body.pointer("/payload/dataCrc32c").and_then(Value::as_str)
            && crc != crc32c_decimal(&bytes)
        {
            return google_error(
                400,
                "INVALID_ARGUMENT",
                "Checksum mismatch: the payload's data_crc32c does not match its data.",
            );
        }
        let now = self.now();
        let Some(s) = self.secrets.get_mut(secret) else {
            return not_found(&path);
        };
        let id = s.versions.len() as u32 + 1;
        let v = SimSecretVersion {
            id,
            state: "ENABLED",
            created: now,
            destroyed: None,
            data: bytes,
            etag: 1,
        };
        s.versions.push(v.clone());
        self.ledger.mutated();
        Reply::json(200, self.render_version(secret, &v))
    }

    fn list_versions(&self, secret: &str, query: &BTreeMap<String, String>) -> Reply {
        let Some(s) = self.secrets.get(secret) else {
            return not_found(&self.secret_path(secret));
        };
        let state = query
            .get("filter")
            .and_then(|f| f.strip_prefix("state:"))
            .map(str::to_owned);
        let all: Vec<Value> = s
            .versions
            .iter()
            .rev()
            .filter(|v| state.as_deref().is_none_or(|st| v.state == st))
            .map(|v| self.render_version(secret, v))
            .collect();
        page(all, query, "versions")
    }

    fn find_version(&self, secret: &str, v: &str) -> Result<SimSecretVersion, Reply> {
        let path = self.secret_path(secret);
        let s = self.secrets.get(secret).ok_or_else(|| not_found(&path))?;
        let found = if v == "latest" {
            s.versions.last()
        } else {
            v.parse::<u32>()
                .ok()
                .and_then(|id| s.versions.iter().find(|x| x.id == id))
        };
        found
            .cloned()
            .ok_or_else(|| not_found(&format!("{path}/versions/{v}")))
    }

    fn access(&self, secret: &str, v: &str) -> Reply {
        let version = match self.find_version(secret, v) {
            Ok(version) => version,
            Err(reply) => return reply,
        };
        let name = format!("{}/versions/{}", self.secret_path(secret), version.id);
        if version.state != "ENABLED" {
            return google_error(
                400,
                "FAILED_PRECONDITION",
                &format!("Secret Version [{name}] is in {} state.", version.state),
            );
        }
        Reply::json(
            200,
            json!({
                "name": name,
                "payload": {"data": STANDARD.encode(&version.data), "dataCrc32c": crc32c_decimal(&version.data)},
            }),
        )
    }

    fn change_state(&mut self, secret: &str, v: &str, verb: &str, body: &Value) -> Reply {
        let version = match self.find_version(secret, v) {
            Ok(version) => version,
            Err(reply) => return reply,
        };
        if let Some(etag) = body.get("etag").and_then(Value::as_str)
            && etag != format!("\"{}\"", version.etag)
        {
            return google_error(
                409,
                "ABORTED",
                "The etag provided does not match the current etag of the secret version.",
            );
        }
        if version.state == "DESTROYED" && verb != "destroy" {
            return google_error(
                400,
                "FAILED_PRECONDITION",
                "The secret version is destroyed.",
            );
        }
        let now = self.now();
        let s = self.secrets.get_mut(secret).expect("found above");
        let stored = s
            .versions
            .iter_mut()
            .find(|x| x.id == version.id)
            .expect("found above");
        stored.state = match verb {
            "enable" => "ENABLED",
            "disable" => "DISABLED",
            _ => "DESTROYED",
        };
        if verb == "destroy" {
            stored.data.clear();
            stored.destroyed = Some(now);
        }
        stored.etag += 1;
        let out = stored.clone();
        self.ledger.mutated();
        Reply::json(200, self.render_version(secret, &out))
    }
}

fn not_found(name: &str) -> Reply {
    google_error(
        404,
        "NOT_FOUND",
        &format!("{name} not found or has no versions."),
    )
}

/// Page `items` by `pageSize` / `pageToken` into `{field: [...], nextPageToken}`.
pub(super) fn page(items: Vec<Value>, query: &BTreeMap<String, String>, field: &str) -> Reply {
    let size = query
        .get("pageSize")
        .and_then(|s| s.parse().ok())
        .unwrap_or(25usize)
        .clamp(1, 1000);
    let offset: usize = match query.get("pageToken") {
        Some(t) => match t.strip_prefix("page-").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return google_error(400, "INVALID_ARGUMENT", "Invalid page token."),
        },
        None => 0,
    };
    let total = items.len();
    let chunk: Vec<Value> = items.into_iter().skip(offset).take(size).collect();
    let mut out = json!({});
    if !chunk.is_empty() {
        out[field] = json!(chunk);
    }
    out["totalSize"] = json!(total);
    if offset + size < total {
        out["nextPageToken"] = json!(format!("page-{}", offset + size));
    }
    Reply::json(200, out)
}
