//! Configuration changes on Cloud Run: environment variables set or removed as a new revision,
//! deployed like an image change (so `DeployAndVerify` verifies it and rolls back to the
//! revision with the old settings). A value that is a secret is a Secret Manager reference,
//! never plain text in the service (seeds 000 and 001: a log level, a broken setting).

use std::collections::BTreeMap;

use ops_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Names Cloud Run sets itself; a service may not set them.
pub const RESERVED: [&str; 4] = ["PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"];

/// The most variables one change sets or removes.
pub const MAX_CHANGES: usize = 100;

/// Parts of a name that say its value is a secret: such a variable must be a Secret Manager
/// reference.
const SECRET_WORDS: [&str; 6] = [
    "PASSWORD",
    "SECRET",
    "TOKEN",
    "KEY",
    "CREDENTIAL",
    "PRIVATE",
];

/// What a variable is set to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "from")]
pub enum EnvValue {
    /// Plain text in the service's configuration (log levels, feature flags, URLs).
    Plain {
        /// The value.
        value: String,
    },
    /// A Secret Manager secret's version, read by Cloud Run when an instance starts.
    Secret {
        /// The secret's id (or `projects/…/secrets/…`).
        secret: String,
        /// `latest` or a version number (pinning one makes a rotation an explicit deploy).
        version: String,
    },
}

/// A change of a service's environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvChange {
    /// Variables to set (added, or replaced in place).
    #[serde(default)]
    pub set: BTreeMap<String, EnvValue>,
    /// Variables to remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

impl EnvChange {
    /// Sets `name` to a plain `value`.
    pub fn set(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set.insert(
            name.into(),
            EnvValue::Plain {
                value: value.into(),
            },
        );
        self
    }

    /// Sets `name` to a Secret Manager secret's `version` (`latest` or a number).
    pub fn secret(
        mut self,
        name: impl Into<String>,
        secret: impl Into<String>,
        version: impl Into<String>,
    ) -> Self {
        self.set.insert(
            name.into(),
            EnvValue::Secret {
                secret: secret.into(),
                version: version.into(),
            },
        );
        self
    }

    /// Removes `name`.
    pub fn remove(mut self, name: impl Into<String>) -> Self {
        self.remove.push(name.into());
        self
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    /// Refuses an empty change, bad or reserved names, a name both set and removed, a plain
    /// value under a name that says it is a secret, and malformed secret references.
    pub fn validate(&self) -> Result<()> {
        let invalid =
            |field: &str, reason: String| Error::invalid_input("gcp", "env_change", field, reason);
        if self.is_empty() {
            return Err(invalid("env", "sets and removes nothing".into()));
        }
        if self.set.len() + self.remove.len() > MAX_CHANGES {
            return Err(invalid("env", format!("more than {MAX_CHANGES} changes")));
        }
        for name in self.set.keys().chain(&self.remove) {
            let well_formed = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.len() <= 255
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !well_formed {
                return Err(invalid(
                    "env",
                    format!("{name:?} is not a variable name (letters, digits, _)"),
                ));
            }
            if RESERVED.contains(&name.as_str()) {
                return Err(invalid("env", format!("{name} is set by Cloud Run itself")));
            }
        }
        if let Some(both) = self.remove.iter().find(|r| self.set.contains_key(*r)) {
            return Err(invalid("env", format!("{both} is both set and removed")));
        }
        for (name, value) in &self.set {
            match value {
                EnvValue::Plain { value } => {
                    let upper = name.to_ascii_uppercase();
                    if let Some(word) = SECRET_WORDS.iter().find(|w| upper.contains(*w)) {
                        return Err(invalid(
                            &format!("env.{name}"),
                            format!(
                                "names a secret ({word}): give it as a Secret Manager reference, \
                                 not plain text"
                            ),
                        ));
                    }
                    if value.chars().any(|c| c == '\0') {
                        return Err(invalid(&format!("env.{name}"), "holds a NUL byte".into()));
                    }
                }
                EnvValue::Secret { secret, version } => {
                    let short = secret.rsplit('/').next().unwrap_or(secret);
                    let id_ok = !short.is_empty()
                        && short.len() <= 255
                        && short
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if !id_ok {
                        return Err(invalid(
                            &format!("env.{name}.secret"),
                            format!("{secret:?} is not a secret id"),
                        ));
                    }
                    let version_ok =
                        version == "latest" || version.parse::<u64>().is_ok_and(|v| v > 0);
                    if !version_ok {
                        return Err(invalid(
                            &format!("env.{name}.version"),
                            format!("{version:?}: give `latest` or a version number"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies the change to a container's `env` list: set variables are replaced where they
    /// are (keeping the order) or appended in name order, removed ones dropped.
    pub fn apply(&self, env: &Value) -> Value {
        let mut out: Vec<Value> = env
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| {
                let name = e["name"].as_str().unwrap_or("");
                !self.remove.iter().any(|r| r == name)
            })
            .collect();
        for (name, value) in &self.set {
            let entry = match value {
                EnvValue::Plain { value } => json!({"name": name, "value": value}),
                EnvValue::Secret { secret, version } => json!({"name": name,
                    "valueSource": {"secretKeyRef": {"secret": secret, "version": version}}}),
            };
            match out.iter_mut().find(|e| e["name"] == name.as_str()) {
                Some(slot) => *slot = entry,
                None => out.push(entry),
            }
        }
        Value::Array(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_in_place_and_secrets_are_references() {
        let env = json!([{"name": "LOG_LEVEL", "value": "info"}, {"name": "OLD", "value": "x"},
                         {"name": "REGION", "value": "eu"}]);
        let change = EnvChange::default()
            .set("LOG_LEVEL", "debug")
            .secret("DB_PASSWORD", "db-password", "latest")
            .remove("OLD");
        change.validate().unwrap();
        assert_eq!(
            change.apply(&env),
            json!([{"name": "LOG_LEVEL", "value": "debug"}, {"name": "REGION", "value": "eu"},
                   {"name": "DB_PASSWORD", "valueSource": {"secretKeyRef": {"secret": "db-password", "version": "latest"}}}])
        );
    }

    #[test]
    fn unsafe_or_malformed_changes_are_refused() {
        let bad = [
            EnvChange::default(),
            EnvChange::default().set("DB_PASSWORD", "hunter2"),
            EnvChange::default().set("api_token", "abc"),
            EnvChange::default().set("PORT", "9090"),
            EnvChange::default().set("1BAD", "x"),
            EnvChange::default().set("A-B", "x"),
            EnvChange::default().set("A", "x").remove("A"),
            EnvChange::default().secret("DB_PASSWORD", "", "latest"),
            EnvChange::default().secret("DB_PASSWORD", "db/../x y", "latest"),
            EnvChange::default().secret("DB_PASSWORD", "db", "0"),
            EnvChange::default().secret("DB_PASSWORD", "db", "newest"),
        ];
        for c in bad {
            let err = c.validate().unwrap_err();
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }
}
