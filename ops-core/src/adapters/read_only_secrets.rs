//! What the read-only secret stores share: one version per secret, named `current`. Writes
//! are [`ErrorKind::Unsupported`] through the contract's default bodies.

use crate::contracts::{SecretCapabilities, SecretVersion, VersionRef};
use crate::{Error, ErrorKind, Result};

/// The one version a read-only store has.
pub(super) const CURRENT: &str = "current";

pub(super) const CAPABILITIES: SecretCapabilities = SecretCapabilities {
    read: true,
    write: false,
    enable_disable: false,
    destroy: false,
    history: false,
};

/// `Ok` for `Latest` and `current`; `NotFound` for any other version.
pub(super) fn check_version(
    provider: &'static str,
    secret: &str,
    version: &VersionRef,
) -> Result<()> {
    match version {
        VersionRef::Latest => Ok(()),
        VersionRef::Id(id) if id == CURRENT => Ok(()),
        VersionRef::Id(id) => Err(Error::new(
            provider,
            "read",
            ErrorKind::NotFound {
                resource: format!("{secret} version {id}"),
            },
        )),
    }
}

pub(super) fn current_version(
    secret: &str,
    created_at: Option<chrono::DateTime<chrono::Utc>>,
) -> SecretVersion {
    SecretVersion {
        secret: secret.to_string(),
        id: CURRENT.to_string(),
        state: crate::contracts::VersionState::Enabled,
        created_at,
    }
}
