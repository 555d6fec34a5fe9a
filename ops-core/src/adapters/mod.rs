//! Implementations of the contracts that need no cloud account.

mod fs_backup;

pub use fs_backup::FsBackupStore;
