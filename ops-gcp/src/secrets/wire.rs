//! Secret Manager's JSON shapes. The payload types hold values only as secrets: `Debug` is
//! redacted and nothing here implements `Display`.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use ops_core::contracts::{SecretInfo, SecretValue, SecretVersion, VersionState};
use ops_core::{Error, ErrorKind, Result};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

use super::crc32c_decimal;

/// `{"payload": {"data": base64, "dataCrc32c": "decimal"}}` for `addVersion`.
pub struct AddVersionBody {
    data: SecretString,
    crc32c: String,
}

impl AddVersionBody {
    pub fn new(value: &SecretValue) -> Self {
        Self {
            data: SecretString::from(STANDARD.encode(value.expose_bytes())),
            crc32c: crc32c_decimal(value.expose_bytes()),
        }
    }
}

impl fmt::Debug for AddVersionBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddVersionBody")
            .field("data", &"[redacted]")
            .field("crc32c", &self.crc32c)
            .finish()
    }
}

impl Serialize for AddVersionBody {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Payload<'a> {
            data: &'a str,
            data_crc32c: &'a str,
        }
        #[derive(Serialize)]
        struct Body<'a> {
            payload: Payload<'a>,
        }
        Body {
            payload: Payload {
                data: self.data.expose_secret(),
                data_crc32c: &self.crc32c,
            },
        }
        .serialize(s)
    }
}

/// `{"etag": …}` for enable / disable / destroy.
#[derive(Debug, Serialize)]
pub struct EtagBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// `versions/…:access`.
#[derive(Deserialize)]
pub struct AccessResponse {
    name: String,
    payload: AccessPayload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccessPayload {
    // proto3 JSON leaves out empty bytes: an empty secret comes back without `data`.
    #[serde(default = "empty_secret")]
    data: SecretString,
    #[serde(default)]
    data_crc32c: Option<String>,
}

fn empty_secret() -> SecretString {
    SecretString::from(String::new())
}

impl AccessResponse {
    /// The version id and the value, its checksum verified when the server sent one.
    pub fn into_value(self, secret: &str) -> Result<(String, SecretValue)> {
        let bytes = STANDARD
            .decode(self.payload.data.expose_secret())
            .map_err(|_| decode_error("payload.data is not base64"))?;
        let value = SecretValue::from_bytes(bytes);
        if let Some(expected) = &self.payload.data_crc32c {
            let actual = crc32c_decimal(value.expose_bytes());
            if *expected != actual {
                return Err(Error::new(
                    "gcp",
                    "access_secret_version",
                    ErrorKind::ChecksumMismatch {
                        expected: format!("crc32c:{expected} of {secret}"),
                        actual: format!("crc32c:{actual}"),
                    },
                ));
            }
        }
        let version = version_id(&self.name).to_string();
        Ok((version, value))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawSecret {
    name: String,
    #[serde(default)]
    create_time: Option<DateTime<Utc>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

impl RawSecret {
    pub fn short_name(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or(&self.name)
    }

    pub fn info(self, updated_at: Option<DateTime<Utc>>) -> SecretInfo {
        SecretInfo {
            name: self.short_name().to_string(),
            created_at: self.create_time,
            updated_at,
            labels: self.labels,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawVersion {
    name: String,
    #[serde(default)]
    pub create_time: Option<DateTime<Utc>>,
    #[serde(default)]
    state: String,
    #[serde(default)]
    pub etag: Option<String>,
}

impl RawVersion {
    pub fn version(self, secret: &str) -> Result<SecretVersion> {
        let state = match self.state.as_str() {
            "ENABLED" => VersionState::Enabled,
            "DISABLED" => VersionState::Disabled,
            "DESTROYED" => VersionState::Destroyed,
            other => return Err(decode_error(&format!("unknown version state {other:?}"))),
        };
        Ok(SecretVersion {
            secret: secret.to_string(),
            id: version_id(&self.name).to_string(),
            state,
            created_at: self.create_time,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretPage {
    #[serde(default)]
    pub secrets: Vec<RawSecret>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionPage {
    #[serde(default)]
    pub versions: Vec<RawVersion>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

fn version_id(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn decode_error(detail: &str) -> Error {
    Error::new(
        "gcp",
        "secret_manager",
        ErrorKind::Decode {
            detail: detail.to_string(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_body_is_the_api_shape_and_its_debug_is_redacted() {
        let body = AddVersionBody::new(&SecretValue::from("hunter2-password"));
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"payload": {"data": "aHVudGVyMi1wYXNzd29yZA==",
                                            "dataCrc32c": crc32c_decimal(b"hunter2-password")}})
        );
        let debug = format!("{body:?}");
        assert!(
            !debug.contains("aHVudGVy") && !debug.contains("hunter2"),
            "{debug}"
        );
    }

    #[test]
    fn a_payload_that_fails_its_checksum_is_an_error_without_the_value() {
        let resp: AccessResponse = serde_json::from_value(serde_json::json!({
            "name": "projects/123/secrets/db/versions/4",
            "payload": {"data": "aHVudGVyMi1wYXNzd29yZA==", "dataCrc32c": "1"}
        }))
        .unwrap();
        let err = resp.into_value("db").unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::ChecksumMismatch { .. }));
        assert!(!format!("{err} {err:?}").contains("hunter2"));
    }
}
