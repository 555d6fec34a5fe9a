//! Checksums recorded when an artifact is written and verified when it is read back.
//!
//! CRC32C is the one algorithm: Cloud Storage and Secret Manager both store it, it is
//! hardware-accelerated, and it catches the corruption backups must catch (it is not a MAC).

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, ReadBuf};

/// A recorded checksum. Written as `crc32c:0a1b2c3d` in sidecars, reports and journals.
///
/// ```
/// use ops_core::checksum::Checksum;
/// let c = Checksum::of(b"123456789");
/// assert_eq!(c.to_string(), "crc32c:e3069283");
/// assert_eq!("crc32c:e3069283".parse::<Checksum>().unwrap(), c);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Checksum {
    crc32c: u32,
}

impl Checksum {
    /// A CRC32C value.
    pub const fn crc32c(value: u32) -> Self {
        Self { crc32c: value }
    }

    /// The checksum of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self::crc32c(crc32c::crc32c(bytes))
    }

    /// The raw CRC32C value.
    pub const fn crc32c_value(&self) -> u32 {
        self.crc32c
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "crc32c:{:08x}", self.crc32c)
    }
}

/// The text was not `crc32c:` followed by 8 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a checksum (expected crc32c:XXXXXXXX): {0:?}")]
pub struct ParseChecksumError(String);

impl std::str::FromStr for Checksum {
    type Err = ParseChecksumError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s
            .strip_prefix("crc32c:")
            .filter(|h| h.len() == 8)
            .ok_or_else(|| ParseChecksumError(s.chars().take(40).collect()))?;
        u32::from_str_radix(hex, 16)
            .map(Self::crc32c)
            .map_err(|_| ParseChecksumError(s.chars().take(40).collect()))
    }
}

impl TryFrom<String> for Checksum {
    type Error = ParseChecksumError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Checksum> for String {
    fn from(c: Checksum) -> Self {
        c.to_string()
    }
}

/// A running CRC32C over bytes seen so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hasher {
    state: u32,
    len: u64,
}

impl Hasher {
    /// An empty hasher.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.state = crc32c::crc32c_append(self.state, bytes);
        self.len += bytes.len() as u64;
    }
    /// The checksum of everything added.
    pub fn checksum(&self) -> Checksum {
        Checksum::crc32c(self.state)
    }
    /// How many bytes were added.
    pub fn len(&self) -> u64 {
        self.len
    }
    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// An [`AsyncRead`] adapter that hashes every byte passing through it.
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Hasher::new(),
        }
    }
    /// The hash of the bytes read so far.
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }
    /// The inner reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for HashingReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &poll {
            this.hasher.update(&buf.filled()[before..]);
        }
        poll
    }
}

/// An [`AsyncRead`] adapter that fails the read with [`crate::ErrorKind::ChecksumMismatch`]
/// at end of stream when the bytes do not match `expected` (and never reports a clean EOF for
/// corrupted data).
#[derive(Debug)]
pub struct VerifyingReader<R> {
    inner: HashingReader<R>,
    expected: Checksum,
    expected_len: Option<u64>,
    provider: &'static str,
}

impl<R> VerifyingReader<R> {
    /// Wraps `inner`; `provider` names who is reading, for the error.
    pub fn new(
        inner: R,
        expected: Checksum,
        expected_len: Option<u64>,
        provider: &'static str,
    ) -> Self {
        Self {
            inner: HashingReader::new(inner),
            expected,
            expected_len,
            provider,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for VerifyingReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before && buf.remaining() > 0 => {
                let h = this.inner.hasher();
                let actual = h.checksum();
                let len_ok = this.expected_len.is_none_or(|n| n == h.len());
                if actual != this.expected || !len_ok {
                    let err = crate::Error::new(
                        this.provider,
                        "read_artifact",
                        crate::ErrorKind::ChecksumMismatch {
                            expected: format!(
                                "{} ({} bytes)",
                                this.expected,
                                fmt_len(this.expected_len)
                            ),
                            actual: format!("{actual} ({} bytes)", h.len()),
                        },
                    );
                    return Poll::Ready(Err(err.into()));
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

fn fmt_len(n: Option<u64>) -> String {
    n.map(|n| n.to_string()).unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn hashing_reader_matches_one_shot() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let mut r = HashingReader::new(&data[..]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        assert_eq!(r.hasher().checksum(), Checksum::of(&data));
        assert_eq!(r.hasher().len(), data.len() as u64);
    }

    #[tokio::test]
    async fn verifying_reader_rejects_corruption() {
        let good = b"backup bytes".to_vec();
        let sum = Checksum::of(&good);
        let mut ok = VerifyingReader::new(&good[..], sum, Some(good.len() as u64), "test");
        let mut out = Vec::new();
        ok.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, good);

        let mut bad = good.clone();
        bad[3] ^= 1;
        let mut r = VerifyingReader::new(&bad[..], sum, None, "test");
        let err = r.read_to_end(&mut Vec::new()).await.unwrap_err();
        let err = crate::error::from_io("test", "read", err);
        assert!(matches!(
            err.kind(),
            crate::ErrorKind::ChecksumMismatch { .. }
        ));

        let mut short =
            VerifyingReader::new(&good[..5], Checksum::of(&good[..5]), Some(12), "test");
        assert!(short.read_to_end(&mut Vec::new()).await.is_err());
    }

    #[test]
    fn parse_rejects_garbage() {
        assert!("md5:abc".parse::<Checksum>().is_err());
        assert!("crc32c:xyz".parse::<Checksum>().is_err());
        assert!("crc32c:0000000g".parse::<Checksum>().is_err());
    }
}
