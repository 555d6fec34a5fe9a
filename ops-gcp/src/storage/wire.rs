//! Cloud Storage JSON shapes and the CRC32C encoding it uses (base64 of the big-endian value).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use ops_core::checksum::Checksum;
use ops_core::contracts::{BackupInfo, BackupState, Verification};
use serde::Deserialize;

/// The metadata key holding a backup's source.
pub const SOURCE_KEY: &str = "ops-source";
/// The metadata key holding a backup's verification state (`verified` or `failed`).
pub const VERIFICATION_KEY: &str = "ops-verification";
/// The metadata key holding when it was verified (RFC 3339).
pub const VERIFIED_AT_KEY: &str = "ops-verified-at";
/// The metadata key holding why its check failed.
pub const VERIFICATION_REASON_KEY: &str = "ops-verification-reason";

/// The metadata key holding the CRC32C the writer computed over the bytes it sent (Cloud
/// Storage's base64 form). Reads are checked against it as well as against the server's value,
/// so an object replaced after the backup was taken does not read back as the backup.
pub const RECORDED_CRC32C_KEY: &str = "ops-crc32c";
/// The metadata key holding the size in bytes the writer sent.
pub const RECORDED_SIZE_KEY: &str = "ops-size";
/// The metadata key holding a random id of the upload that wrote the object: a retried request
/// that finds the name taken recognises its own object by it.
pub const UPLOAD_ID_KEY: &str = "ops-upload-id";

/// `metadata` with the writer's checksum and size recorded.
pub fn record(
    metadata: &BTreeMap<String, String>,
    checksum: Checksum,
    size: u64,
) -> BTreeMap<String, String> {
    let mut m = metadata.clone();
    m.insert(RECORDED_CRC32C_KEY.into(), encode_crc32c(checksum));
    m.insert(RECORDED_SIZE_KEY.into(), size.to_string());
    m
}

/// The custom-metadata entries that record `v` (a `null` removes an entry in a patch).
pub fn verification_metadata(v: &Verification) -> serde_json::Value {
    let at = |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    match v {
        Verification::Unverified => serde_json::json!({
            VERIFICATION_KEY: null, VERIFIED_AT_KEY: null, VERIFICATION_REASON_KEY: null,
        }),
        Verification::Verified { at: t } => serde_json::json!({
            VERIFICATION_KEY: "verified", VERIFIED_AT_KEY: at(t), VERIFICATION_REASON_KEY: null,
        }),
        Verification::Failed { at: t, reason } => serde_json::json!({
            VERIFICATION_KEY: "failed", VERIFIED_AT_KEY: at(t), VERIFICATION_REASON_KEY: reason,
        }),
    }
}

/// Reads the state back out of (and removes its entries from) custom metadata. A mark that is
/// not understood never reads as verified; one that says failed always reads as failed.
fn take_verification(metadata: &mut BTreeMap<String, String>) -> Verification {
    let state = metadata.remove(VERIFICATION_KEY);
    let at = metadata
        .remove(VERIFIED_AT_KEY)
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc));
    let reason = metadata.remove(VERIFICATION_REASON_KEY);
    match (state.as_deref(), at) {
        (Some("verified"), Some(at)) => Verification::Verified { at },
        (Some("failed"), at) => Verification::failed(
            at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
            reason.unwrap_or_default(),
        ),
        _ => Verification::Unverified,
    }
}

/// An `Object` resource (the fields read here).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Object {
    /// The object name.
    pub name: String,
    /// Its generation (int64 as a string).
    #[serde(default)]
    pub generation: String,
    /// Its metageneration (int64 as a string): bumped by every metadata change.
    #[serde(default)]
    pub metageneration: Option<String>,
    /// Size in bytes (uint64 as a string).
    #[serde(default)]
    pub size: Option<String>,
    /// base64 of the big-endian CRC32C.
    #[serde(default)]
    pub crc32c: Option<String>,
    /// When it was created.
    #[serde(default)]
    pub time_created: Option<DateTime<Utc>>,
    /// Custom metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl Object {
    /// Its checksum, if the server gave a valid one.
    pub fn checksum(&self) -> Option<Checksum> {
        self.crc32c.as_deref().and_then(decode_crc32c)
    }

    /// Its size.
    pub fn size(&self) -> Option<u64> {
        self.size.as_deref().and_then(|s| s.parse().ok())
    }

    /// The checksum and size its writer recorded, if it recorded valid ones.
    pub fn recorded(&self) -> Option<(Checksum, u64)> {
        let crc = decode_crc32c(self.metadata.get(RECORDED_CRC32C_KEY)?)?;
        let size = self.metadata.get(RECORDED_SIZE_KEY)?.parse().ok()?;
        Some((crc, size))
    }

    /// Whether the bytes are not the ones written: a record that is unreadable or disagrees
    /// with the server's checksum or size. An object with no record (written by something else,
    /// or before records existed) is judged by the server's values alone.
    pub fn integrity_problem(&self) -> Option<String> {
        let has_record = self.metadata.contains_key(RECORDED_CRC32C_KEY)
            || self.metadata.contains_key(RECORDED_SIZE_KEY);
        if !has_record {
            return None;
        }
        let Some((crc, size)) = self.recorded() else {
            return Some(format!(
                "{}: its recorded checksum or size is unreadable",
                self.name
            ));
        };
        if self.checksum() != Some(crc) || self.size() != Some(size) {
            return Some(format!(
                "{}: written as {crc} ({size} bytes), holds {} ({} bytes): replaced or damaged \
                 after the backup",
                self.name,
                self.checksum()
                    .map_or("no checksum".into(), |c| c.to_string()),
                self.size().map_or("?".into(), |n| n.to_string()),
            ));
        }
        None
    }

    /// As a backup whose id is the name without `prefix`.
    pub fn info(&self, prefix: &str, location: &str) -> BackupInfo {
        let mut labels = self.metadata.clone();
        let source = labels.remove(SOURCE_KEY);
        let verification = take_verification(&mut labels);
        for key in [RECORDED_CRC32C_KEY, RECORDED_SIZE_KEY, UPLOAD_ID_KEY] {
            labels.remove(key);
        }
        // Bytes that are not the ones written never list as a good backup.
        let state = match self.integrity_problem() {
            Some(_) => BackupState::Failed,
            None => BackupState::Complete,
        };
        BackupInfo {
            id: self
                .name
                .strip_prefix(prefix)
                .unwrap_or(&self.name)
                .to_string(),
            created_at: self.time_created.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
            state,
            size_bytes: self.recorded().map(|(_, n)| n).or_else(|| self.size()),
            checksum: self.recorded().map(|(c, _)| c).or_else(|| self.checksum()),
            source,
            location: format!("{location}{}", self.name),
            labels,
            verification,
        }
    }
}

/// `Objects` (a page of `objects.list`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectPage {
    /// The objects.
    #[serde(default)]
    pub items: Vec<Object>,
    /// The next page.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// A `RewriteResponse`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RewriteResponse {
    /// Whether the copy finished.
    #[serde(default)]
    pub done: bool,
    /// Pass back to continue.
    #[serde(default)]
    pub rewrite_token: Option<String>,
    /// The new object, once done.
    #[serde(default)]
    pub resource: Option<Object>,
}

/// Cloud Storage's encoding of a CRC32C.
pub fn encode_crc32c(c: Checksum) -> String {
    STANDARD.encode(c.crc32c_value().to_be_bytes())
}

/// The inverse of [`encode_crc32c`].
pub fn decode_crc32c(s: &str) -> Option<Checksum> {
    let bytes: [u8; 4] = STANDARD.decode(s).ok()?.try_into().ok()?;
    Some(Checksum::crc32c(u32::from_be_bytes(bytes)))
}

/// The `crc32c=` part of an `X-Goog-Hash` header (`crc32c=n03x6A==,md5=…`).
pub fn crc32c_from_goog_hash(header: &str) -> Option<Checksum> {
    header
        .split(',')
        .find_map(|part| part.trim().strip_prefix("crc32c="))
        .and_then(decode_crc32c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_encodings_match_the_reference() {
        // The CRC32C of "123456789" is 0xe3069283, which Cloud Storage writes as "4waSgw==".
        let c = Checksum::of(b"123456789");
        assert_eq!(encode_crc32c(c), "4waSgw==");
        assert_eq!(decode_crc32c("4waSgw=="), Some(c));
        assert_eq!(
            crc32c_from_goog_hash("crc32c=4waSgw==,md5=JfnnlDI7RTiF9RgfG2JNCw=="),
            Some(c)
        );
        assert_eq!(decode_crc32c("not base64!"), None);
    }
}
