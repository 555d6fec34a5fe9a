//! [`CloudStorageConfig`]: a backup store's bucket, prefix and upload chunk size, loadable
//! from TOML or JSON.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use ops_core::{Error, Result};

/// Resumable chunks must be multiples of this (256 KiB).
pub const CHUNK_GRANULE: usize = 256 * 1024;
/// The default chunk: 8 MiB, which keeps about 16 MiB of the stream in memory.
pub const DEFAULT_CHUNK_SIZE: usize = 8 * 1024 * 1024;
/// The largest chunk accepted: 1 GiB (about 2 GiB of memory while uploading).
pub const MAX_CHUNK_SIZE: usize = 1024 * 1024 * 1024;

/// Where a [`CloudStorage`](super::CloudStorage) keeps its backups and how it uploads them.
///
/// ```toml
/// bucket = "acme-backups"
/// prefix = "backup/"
/// chunk_size = "64MiB"   # or a number of bytes
/// ```
///
/// The upload holds about **twice the chunk size** in memory (the chunk being sent and the
/// next one being read). Below one chunk an artifact goes in a single request; above it, each
/// chunk is one request of the resumable protocol, and a cut connection costs at most one
/// chunk's re-send. Raise it (64–256 MiB) for multi-GiB dumps on a fast link, where per-request
/// latency dominates; keep the default where memory is tight or the link is flaky.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudStorageConfig {
    /// The bucket.
    pub bucket: String,
    /// The object-name prefix of the backups (such as `backup/`; may be empty).
    #[serde(default)]
    pub prefix: String,
    /// Bytes per resumable chunk: a positive multiple of 256 KiB up to 1 GiB, written as a
    /// number of bytes or with a unit (`256KiB`, `8MiB`, `1GiB`).
    #[serde(
        default = "default_chunk_size",
        serialize_with = "write_size",
        deserialize_with = "read_size"
    )]
    pub chunk_size: usize,
}

fn default_chunk_size() -> usize {
    DEFAULT_CHUNK_SIZE
}

impl CloudStorageConfig {
    /// `bucket` under `prefix`, with the default chunk size.
    pub fn new(bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            prefix: prefix.into(),
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

/// Checks a chunk size: a positive multiple of 256 KiB, at most 1 GiB.
pub fn check_chunk_size(size: usize) -> Result<usize> {
    if size == 0 || !size.is_multiple_of(CHUNK_GRANULE) || size > MAX_CHUNK_SIZE {
        return Err(Error::invalid_input(
            "gcp",
            "cloud_storage",
            "chunk_size",
            format!("{size} bytes: must be a positive multiple of 256 KiB, at most 1 GiB"),
        ));
    }
    Ok(size)
}

/// Reads `8MiB`, `256KiB`, `1GiB`, `8388608` (bytes). Binary units only, so that every
/// accepted size is exact; the result is checked with [`check_chunk_size`].
pub fn parse_chunk_size(text: &str) -> Result<usize> {
    let bad = || {
        Error::invalid_input(
            "gcp",
            "cloud_storage",
            "chunk_size",
            format!("{text:?}: write a number of bytes or one with KiB, MiB or GiB"),
        )
    };
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    if number.is_empty() || number.len() > 12 {
        return Err(bad());
    }
    let n: usize = number.parse().map_err(|_| bad())?;
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(bad()),
    };
    check_chunk_size(n.checked_mul(scale).ok_or_else(bad)?)
}

/// The shortest exact form: `8MiB`, `768KiB`.
pub fn format_chunk_size(size: usize) -> String {
    match size {
        s if s > 0 && s.is_multiple_of(1 << 30) => format!("{}GiB", s >> 30),
        s if s > 0 && s.is_multiple_of(1 << 20) => format!("{}MiB", s >> 20),
        s if s > 0 && s.is_multiple_of(1 << 10) => format!("{}KiB", s >> 10),
        s => s.to_string(),
    }
}

fn write_size<S: Serializer>(size: &usize, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format_chunk_size(*size))
}

fn read_size<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<usize, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    let checked = match Size::deserialize(d)? {
        Size::Bytes(n) => usize::try_from(n)
            .map_err(|_| Error::invalid_input("gcp", "cloud_storage", "chunk_size", "too large"))
            .and_then(check_chunk_size),
        Size::Text(t) => parse_chunk_size(&t),
    };
    checked.map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes_read_with_binary_units_and_are_checked() {
        assert_eq!(parse_chunk_size("8MiB").unwrap(), 8 << 20);
        assert_eq!(parse_chunk_size("256KiB").unwrap(), 256 << 10);
        assert_eq!(parse_chunk_size(" 1GiB ").unwrap(), 1 << 30);
        assert_eq!(parse_chunk_size("524288").unwrap(), 512 << 10);
        for bad in [
            "",
            "0",
            "8MB",
            "8 mib",
            "100KiB",
            "2GiB",
            "-1MiB",
            "99999999999999GiB",
        ] {
            assert!(parse_chunk_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_config_loads_from_toml_with_either_form() {
        let c: CloudStorageConfig =
            toml::from_str("bucket = \"b\"\nprefix = \"backup/\"\nchunk_size = \"64MiB\"").unwrap();
        assert_eq!(c.chunk_size, 64 << 20);
        let c: CloudStorageConfig = toml::from_str("bucket = \"b\"\nchunk_size = 262144").unwrap();
        assert_eq!(c.chunk_size, 256 << 10);
        let c: CloudStorageConfig = toml::from_str("bucket = \"b\"").unwrap();
        assert_eq!(c, CloudStorageConfig::new("b", ""));
        let err = toml::from_str::<CloudStorageConfig>("bucket = \"b\"\nchunk_size = 1000")
            .unwrap_err()
            .to_string();
        assert!(err.contains("multiple of 256 KiB"), "{err}");
        assert!(toml::from_str::<CloudStorageConfig>("bucket = \"b\"\nchunk = 1").is_err());
        let written = serde_json::to_string(&CloudStorageConfig::new("b", "p/")).unwrap();
        assert!(written.contains("\"8MiB\""), "{written}");
        let back: CloudStorageConfig = serde_json::from_str(&written).unwrap();
        assert_eq!(back, CloudStorageConfig::new("b", "p/"));
    }

    proptest! {
        #[test]
        fn any_text_is_a_checked_size_or_an_error(text in ".{0,24}") {
            if let Ok(n) = parse_chunk_size(&text) {
                prop_assert!(check_chunk_size(n).is_ok());
            }
        }

        #[test]
        fn every_valid_size_round_trips(granules in 1usize..=4096) {
            let size = granules * CHUNK_GRANULE;
            prop_assert_eq!(parse_chunk_size(&format_chunk_size(size)).unwrap(), size);
        }
    }
}
