//! The `<id>.meta.json` sidecar: what makes a data file a complete backup.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::checksum::Checksum;
use crate::contracts::{BackupInfo, BackupState, Verification};
use crate::{Error, ErrorKind, Result};

const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Sidecar {
    pub format_version: u32,
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub size_bytes: u64,
    pub checksum: Checksum,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Added with verification states: sidecars written before read as unverified.
    #[serde(default)]
    pub verification: Verification,
}

impl Sidecar {
    pub fn new(id: &str, created_at: DateTime<Utc>, size_bytes: u64, checksum: Checksum) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            id: id.to_string(),
            created_at,
            size_bytes,
            checksum,
            source: None,
            labels: BTreeMap::new(),
            verification: Verification::Unverified,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a sidecar always serializes");
        v.push(b'\n');
        v
    }

    pub fn decode(op: &'static str, bytes: &[u8]) -> Result<Self> {
        let s: Sidecar = serde_json::from_slice(bytes).map_err(|e| {
            Error::new(
                super::PROVIDER,
                op,
                ErrorKind::Decode {
                    detail: format!("damaged sidecar: {e}"),
                },
            )
        })?;
        if s.format_version != FORMAT_VERSION {
            return Err(Error::new(
                super::PROVIDER,
                op,
                ErrorKind::Decode {
                    detail: format!(
                        "sidecar format {} is not {FORMAT_VERSION}",
                        s.format_version
                    ),
                },
            ));
        }
        Ok(s)
    }

    pub fn into_info(self, root: &Path) -> BackupInfo {
        BackupInfo {
            location: root.join(&self.id).display().to_string(),
            id: self.id,
            created_at: self.created_at,
            state: BackupState::Complete,
            size_bytes: Some(self.size_bytes),
            checksum: Some(self.checksum),
            source: self.source,
            labels: self.labels,
            verification: self.verification,
        }
    }
}
