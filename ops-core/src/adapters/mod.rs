//! Implementations of the contracts that need no cloud account.

mod backup_freshness;
mod env_secret;
mod file_secret;
mod fs_backup;
mod host_resources;
mod http_probe;
mod local_fs;
mod log_notifier;
mod read_only_secrets;
pub mod redis_probe;
#[cfg(feature = "sqlite")]
mod sqlite_check;
mod tcp_probe;
mod webhook_notifier;

pub use backup_freshness::{
    BACKUP_AGE_HOURS, BackupFreshness, NEVER_BACKED_UP_HOURS, StoreFreshness, store_freshness,
};
pub use env_secret::EnvSecretStore;
pub use file_secret::{FileSecretStore, MAX_SECRET_FILE};
pub use fs_backup::FsBackupStore;
pub use host_resources::{
    DiskUsage, HostResources, HostResourcesConfig, MAX_MOUNTS, MemInfo, MountRule, UsageLevels,
    disk_usage, parse_meminfo,
};
pub use http_probe::HttpProbe;
pub use log_notifier::LogNotifier;
pub use redis_probe::RedisProbe;
#[cfg(feature = "sqlite")]
pub use sqlite_check::SqliteIntegrityCheck;
pub use tcp_probe::TcpProbe;
pub use webhook_notifier::WebhookNotifier;
