//! Actions secrets in the simulator: public keys per scope, sealed values, App tokens.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::{SIM_APP_ID, SIM_INSTALLATION, ScopeKey, SimSecret, State};

use super::replies::*;

impl State {
    pub(super) fn scope_key(&mut self, scope: &str) -> (String, String) {
        if !self.scope_keys.contains_key(scope) {
            let key_id = format!("{}", 568250167242549743u64 + self.scope_keys.len() as u64);
            let secret = crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng);
            self.scope_keys
                .insert(scope.to_string(), ScopeKey { key_id, secret });
        }
        let k = &self.scope_keys[scope];
        (
            k.key_id.clone(),
            STANDARD.encode(k.secret.public_key().as_bytes()),
        )
    }

    pub(super) fn secrets_route(
        &mut self,
        method: &str,
        scope: &str,
        rest: &[&str],
        q: &BTreeMap<String, String>,
        body: &Value,
        url: &url::Url,
    ) -> Out {
        let now = self.clock.now();
        let org = scope.starts_with("orgs/");
        let render = |name: &str, s: &SimSecret| {
            let mut v =
                json!({"name": name, "created_at": iso(s.created), "updated_at": iso(s.updated)});
            if let Some(vis) = &s.visibility {
                v["visibility"] = json!(vis);
                if vis == "selected" {
                    v["selected_repositories_url"] = json!(format!(
                        "https://api.github.com/{scope}/{name}/repositories"
                    ));
                }
            }
            v
        };
        match (method, rest) {
            ("GET", []) => {
                let items: Vec<Value> = self
                    .secrets
                    .iter()
                    .filter(|((s, _), _)| s == scope)
                    .map(|((_, n), v)| render(n, v))
                    .collect();
                wrapped_page("secrets", items, q, url)
            }
            ("GET", ["public-key"]) => {
                let (key_id, key) = self.scope_key(scope);
                ok(200, json!({"key_id": key_id, "key": key}))
            }
            ("GET", [name]) => match self.secrets.get(&(scope.to_string(), name.to_string())) {
                Some(s) => ok(200, render(name, s)),
                None => gh_error(404, "Not Found"),
            },
            ("PUT", [name]) => {
                let (key_id, _) = self.scope_key(scope);
                let Some(sent_key) = body.get("key_id").and_then(Value::as_str) else {
                    return validation("key_id", "missing_field", "key_id is required");
                };
                if sent_key != key_id {
                    return gh_error(
                        422,
                        "Bad request - key_id does not match the current public key",
                    );
                }
                let Some(ciphertext) = body
                    .get("encrypted_value")
                    .and_then(Value::as_str)
                    .and_then(|v| STANDARD.decode(v).ok())
                else {
                    return validation(
                        "encrypted_value",
                        "invalid",
                        "encrypted_value is not base64",
                    );
                };
                if ciphertext.len() < 48 {
                    return gh_error(422, "Bad request - encrypted_value is not a sealed box");
                }
                let visibility = if org {
                    match body.get("visibility").and_then(Value::as_str) {
                        Some(v @ ("all" | "private" | "selected")) => Some(v.to_string()),
                        _ => {
                            return validation(
                                "visibility",
                                "missing_field",
                                "visibility is required for organization secrets",
                            );
                        }
                    }
                } else {
                    None
                };
                self.ledger.mutated();
                let key = (scope.to_string(), name.to_string());
                match self.secrets.get_mut(&key) {
                    Some(s) => {
                        s.ciphertext = ciphertext;
                        s.updated = now;
                        s.visibility = visibility;
                        no_content()
                    }
                    None => {
                        self.secrets.insert(
                            key,
                            SimSecret {
                                ciphertext,
                                created: now,
                                updated: now,
                                visibility,
                            },
                        );
                        ok(201, json!({}))
                    }
                }
            }
            ("DELETE", [name]) => match self.secrets.remove(&(scope.to_string(), name.to_string()))
            {
                Some(_) => {
                    self.ledger.mutated();
                    no_content()
                }
                None => gh_error(404, "Not Found"),
            },
            _ => gh_error(404, "Not Found"),
        }
    }

    /// `POST /app/installations/{id}/access_tokens` with an App JWT whose issuer is the
    /// simulated App and which has not expired. (The signature is checked by the API tests;
    /// the simulator has no App key of its own.)
    pub(super) fn mint_token(&mut self, installation: &str, auth: &str, now: DateTime<Utc>) -> Out {
        if installation != SIM_INSTALLATION.to_string() {
            return gh_error(404, "Not Found");
        }
        let claims = auth
            .strip_prefix("Bearer ")
            .and_then(|jwt| jwt.split('.').nth(1))
            .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
            .and_then(|c| serde_json::from_slice::<Value>(&c).ok());
        let Some(claims) = claims else {
            return gh_error(401, "A JSON web token could not be decoded");
        };
        let exp = claims["exp"].as_i64().unwrap_or(0);
        if claims["iss"].as_str() != Some(SIM_APP_ID)
            || exp <= now.timestamp()
            || exp - claims["iat"].as_i64().unwrap_or(0) > 600
        {
            return gh_error(
                401,
                "'Expiration time' claim ('exp') is too far in the future",
            );
        }
        let token = format!("ghs_sim{:030}", self.next_number());
        let expires = now + Duration::hours(1);
        self.app_tokens.push((token.clone(), expires));
        ok(
            201,
            json!({"token": token, "expires_at": iso(expires), "permissions": {"issues": "write", "actions": "write", "secrets": "write"}, "repository_selection": "all"}),
        )
    }
}
