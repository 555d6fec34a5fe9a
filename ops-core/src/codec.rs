//! Backup artifacts compressed in the stream: zstd on the way into a store, chosen per
//! artifact, and decompressed on the way out.
//!
//! - [`encode`] reads the first MiB, and stores the artifact raw when zstd at level 1 saves
//!   less than 5 % of it (random bytes, a file already compressed): compressing those costs
//!   time and gains nothing. Otherwise it compresses at the configured level, multi-threaded
//!   when there are cores to spare, with zstd's content checksum on, and ends the artifact with
//!   a small skippable frame holding the uncompressed length.
//! - The store's labels say what was done: [`CODEC_LABEL`] (`zstd` or `raw`) and
//!   [`LEVEL_LABEL`]. An artifact without them was written before compression existed (a
//!   `pg_dump -Fc` file with its own zlib, a raw SQLite file) and reads back as it is.
//! - [`decode`] undoes it: the frames are checked by zstd's checksum and the length by the end
//!   frame. A damaged or truncated artifact is a corrupt backup
//!   ([`ErrorKind::VerificationFailed`]), never an I/O error, and never reads as whole.
//!
//! The store's own checksum stays over the stored (compressed) bytes.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use async_compression::Level;
use async_compression::tokio::bufread::{ZstdDecoder, ZstdEncoder};
use async_compression::tokio::write::ZstdEncoder as ZstdWriteEncoder;
use async_compression::zstd::CParameter;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadBuf};
use tokio::task::JoinHandle;

use crate::contracts::{ArtifactReader, BackupInfo, BackupStore};
use crate::{Error, ErrorKind, Result};

/// The label naming the codec an artifact is stored with (`zstd`, `raw`).
pub const CODEC_LABEL: &str = "codec";
/// The label with the zstd level.
pub const LEVEL_LABEL: &str = "codec_level";
/// The default zstd level. Measured on a 1.1 GB pgbench dump: level 3 stores 0.34× the size of
/// `pg_dump -Fc` (zlib 6) in the same time; level 1 0.44×, slightly faster (benches/RESULTS.md).
pub const DEFAULT_LEVEL: i32 = 3;
/// How much of the stream the incompressibility test reads.
pub const PROBE_BYTES: usize = 1 << 20;
/// The most zstd worker threads used.
pub const MAX_THREADS: u32 = 8;
/// The pipe between a stage's task and its reader.
const PIPE_BYTES: usize = 1 << 20;

/// The end frame: a zstd skippable frame (magic 0x184D2A5E, 12 bytes) of `OPSZ` and the
/// uncompressed length, little-endian. Decoders skip it; [`decode`] reads it.
const END_MAGIC: [u8; 4] = 0x184D_2A5E_u32.to_le_bytes();
const END_TAG: &[u8; 4] = b"OPSZ";
const END_LEN: usize = 20;

/// How an artifact is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "codec")]
pub enum Codec {
    /// As it is.
    Raw,
    /// zstd at `level` (1 to 19).
    Zstd {
        /// The level.
        level: i32,
    },
}

impl Codec {
    /// The default: zstd at [`DEFAULT_LEVEL`].
    pub const DEFAULT: Codec = Codec::Zstd {
        level: DEFAULT_LEVEL,
    };

    /// Rejects a zstd level outside 1 to 19.
    pub fn validate(&self) -> Result<()> {
        match self {
            Codec::Zstd { level } if !(1..=19).contains(level) => Err(Error::invalid_input(
                "ops-core",
                "codec",
                "level",
                format!("{level} is not a zstd level from 1 to 19"),
            )),
            _ => Ok(()),
        }
    }

    /// The labels that record it.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        match self {
            Codec::Raw => {
                l.insert(CODEC_LABEL.into(), "raw".into());
            }
            Codec::Zstd { level } => {
                l.insert(CODEC_LABEL.into(), "zstd".into());
                l.insert(LEVEL_LABEL.into(), level.to_string());
            }
        }
        l
    }

    /// The codec `labels` record; `Raw` for an artifact written before compression existed.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Result<Codec> {
        match labels.get(CODEC_LABEL).map(String::as_str) {
            None | Some("raw") => Ok(Codec::Raw),
            Some("zstd") => Ok(Codec::Zstd {
                level: labels
                    .get(LEVEL_LABEL)
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(DEFAULT_LEVEL),
            }),
            Some(other) => Err(Error::unsupported(
                "ops-core",
                "decode",
                format!("artifacts stored with codec {other:?}"),
            )),
        }
    }

    /// Its name for reports (`zstd-3`, `raw`).
    pub fn describe(&self) -> String {
        match self {
            Codec::Raw => "raw".into(),
            Codec::Zstd { level } => format!("zstd-{level}"),
        }
    }
}

impl Default for Codec {
    fn default() -> Self {
        Codec::DEFAULT
    }
}

/// Bytes that went through a stage, counted as they pass.
#[derive(Debug, Default)]
pub struct Counts {
    plain: AtomicU64,
    stored: AtomicU64,
}

impl Counts {
    /// Uncompressed bytes.
    pub fn plain(&self) -> u64 {
        self.plain.load(Ordering::Relaxed)
    }

    /// Stored (compressed) bytes.
    pub fn stored(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }
}

/// An artifact on its way into a store.
pub struct Encoded {
    /// The bytes to store.
    pub reader: ArtifactReader,
    /// The codec chosen (`Raw` when the stream is incompressible).
    pub codec: Codec,
    /// The bytes in and out, final once the reader is at its end.
    pub counts: Arc<Counts>,
}

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoded")
            .field("codec", &self.codec)
            .field("counts", &self.counts)
            .finish()
    }
}

/// zstd worker threads for this machine: one per core beyond the one the caller's stream runs
/// on (the dump or copy feeding it), at most [`MAX_THREADS`]; 0 (compress in the caller's
/// thread) on one core.
pub fn default_threads() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    u32::try_from(cores.saturating_sub(1))
        .unwrap_or(MAX_THREADS)
        .min(MAX_THREADS)
}

/// Compresses `input` with `codec` (see the module docs): what to store and the labels to
/// store it with.
pub async fn encode(mut input: ArtifactReader, codec: Codec, threads: u32) -> Result<Encoded> {
    codec.validate()?;
    let counts = Arc::new(Counts::default());
    let Codec::Zstd { level } = codec else {
        let reader = Counting::both(input, counts.clone());
        return Ok(Encoded {
            reader: Box::pin(reader),
            codec: Codec::Raw,
            counts,
        });
    };
    let mut probe = Vec::with_capacity(PROBE_BYTES.min(64 * 1024));
    (&mut input)
        .take(PROBE_BYTES as u64)
        .read_to_end(&mut probe)
        .await
        .map_err(|e| crate::error::from_io("ops-core", "encode", e))?;
    let input: ArtifactReader = Box::pin(std::io::Cursor::new(probe.clone()).chain(input));
    if !probe.is_empty() && !compressible(&probe).await? {
        return Ok(Encoded {
            reader: Box::pin(Counting::both(input, counts.clone())),
            codec: Codec::Raw,
            counts,
        });
    }
    let mut params = vec![CParameter::checksum_flag(true)];
    if threads > 0 {
        params.push(CParameter::nb_workers(threads.min(MAX_THREADS)));
    }
    let plain_counts = counts.clone();
    // The compression runs as a task of its own, so it overlaps with whatever consumes the
    // stream (an upload, a file). It writes into zstd's streaming encoder and never flushes
    // before the end: a flush whenever the source is momentarily empty (what a read-side
    // encoder does) cuts zstd's jobs short, costing a third of the ratio and every bit of
    // multi-threading.
    let compressed = spawn_pipe(move |pipe| async move {
        let mut encoder =
            ZstdWriteEncoder::with_quality_and_params(pipe, Level::Precise(level), &params);
        let mut input = input;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = input.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            plain_counts.plain.fetch_add(n as u64, Ordering::Relaxed);
            encoder.write_all(&buf[..n]).await?;
        }
        encoder.shutdown().await
    });
    let with_end = compressed.chain(EndFrame {
        counts: counts.clone(),
        bytes: None,
        at: 0,
    });
    Ok(Encoded {
        reader: Box::pin(Counting::stored(with_end, counts.clone())),
        codec,
        counts,
    })
}

/// The bytes `work` writes into its pipe, read while it runs as its own task; an error of the
/// work (or its panic) is the reader's error at the end, in place of the end.
fn spawn_pipe<F, Fut>(work: F) -> ArtifactReader
where
    F: FnOnce(DuplexStream) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    let (writer, reader) = tokio::io::duplex(PIPE_BYTES);
    let task = tokio::spawn(work(writer));
    Box::pin(Joined {
        reader,
        task: Some(task),
    })
}

/// A pipe's reading end, and the task writing into it.
struct Joined {
    reader: DuplexStream,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl AsyncRead for Joined {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.reader).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before && buf.remaining() > 0 => {
                // The writer is gone: the end, or the error that ended the work.
                let Some(task) = self.task.as_mut() else {
                    return Poll::Ready(Ok(()));
                };
                let joined = match Pin::new(task).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(joined) => joined,
                };
                self.task = None;
                Poll::Ready(match joined {
                    Ok(result) => result,
                    Err(e) => Err(std::io::Error::other(format!(
                        "the stream's task failed: {e}"
                    ))),
                })
            }
            other => other,
        }
    }
}

impl Drop for Joined {
    fn drop(&mut self) {
        // A reader given up early: the work stops (its next write would fail anyway).
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Whether zstd at level 1 saves at least 5 % of `probe`.
async fn compressible(probe: &[u8]) -> Result<bool> {
    let mut out = Vec::with_capacity(probe.len() / 2);
    ZstdEncoder::with_quality(probe, Level::Precise(1))
        .read_to_end(&mut out)
        .await
        .map_err(|e| crate::error::from_io("ops-core", "encode", e))?;
    Ok((out.len() as u64) * 100 < (probe.len() as u64) * 95)
}

/// The bytes of an artifact stored with `codec`, as they were before it was stored; for
/// `Raw`, the stored bytes themselves. `id` names the backup in errors.
pub fn decode(stored: ArtifactReader, codec: Codec, id: &str) -> (ArtifactReader, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    match codec {
        Codec::Raw => (Box::pin(Counting::both(stored, counts.clone())), counts),
        Codec::Zstd { .. } => {
            let tail = Tail {
                inner: stored,
                last: Vec::with_capacity(END_LEN * 2),
                counts: counts.clone(),
            };
            let mut decoder = ZstdDecoder::new(BufReader::with_capacity(256 * 1024, tail));
            decoder.multiple_members(true);
            let mut checked = Checked {
                decoder,
                counts: counts.clone(),
                id: id.to_string(),
                done: false,
            };
            // Decompressing as its own task overlaps with the consumer (pg_restore's pipe).
            let plain = spawn_pipe(move |mut pipe| async move {
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = checked.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    pipe.write_all(&buf[..n]).await?;
                }
                pipe.shutdown().await
            });
            (plain, counts)
        }
    }
}

/// The backup's bytes as they were before they were stored: [`BackupStore::get_artifact`]
/// through the codec its labels name (what a restore feeds to `pg_restore` or writes as the
/// SQLite file).
pub async fn open_plain(store: &dyn BackupStore, info: &BackupInfo) -> Result<ArtifactReader> {
    let codec = Codec::from_labels(&info.labels)?;
    Ok(decode(store.get_artifact(&info.id).await?, codec, &info.id).0)
}

fn corrupt(id: &str, why: impl std::fmt::Display) -> std::io::Error {
    Error::new(
        "ops-core",
        "decode",
        ErrorKind::VerificationFailed {
            check: "backup".into(),
            detail: format!("corrupt backup {id}: {why}"),
        },
    )
    .into()
}

/// Counts bytes passing through as stored, or as both plain and stored (a raw artifact).
struct Counting<R> {
    inner: R,
    counts: Arc<Counts>,
    plain: bool,
    stored: bool,
}

impl<R> Counting<R> {
    fn stored(inner: R, counts: Arc<Counts>) -> Self {
        Self {
            inner,
            counts,
            plain: false,
            stored: true,
        }
    }

    fn both(inner: R, counts: Arc<Counts>) -> Self {
        Self {
            inner,
            counts,
            plain: true,
            stored: true,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            let n = (buf.filled().len() - before) as u64;
            if self.plain {
                self.counts.plain.fetch_add(n, Ordering::Relaxed);
            }
            if self.stored {
                self.counts.stored.fetch_add(n, Ordering::Relaxed);
            }
        }
        polled
    }
}

/// The end frame, built once the plain stream is at its end (its length is final then).
struct EndFrame {
    counts: Arc<Counts>,
    bytes: Option<[u8; END_LEN]>,
    at: usize,
}

impl AsyncRead for EndFrame {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let bytes = match self.bytes {
            Some(b) => b,
            None => {
                let mut b = [0u8; END_LEN];
                b[..4].copy_from_slice(&END_MAGIC);
                b[4..8].copy_from_slice(&12u32.to_le_bytes());
                b[8..12].copy_from_slice(END_TAG);
                b[12..].copy_from_slice(&self.counts.plain().to_le_bytes());
                self.bytes = Some(b);
                b
            }
        };
        let rest = &bytes[self.at..];
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

/// The stored stream on its way to the decoder: counts it, keeps its last bytes (the end
/// frame), and marks its own errors as the store's (so they are not taken for corruption).
struct Tail {
    inner: ArtifactReader,
    last: Vec<u8>,
    counts: Arc<Counts>,
}

impl AsyncRead for Tail {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match self.inner.as_mut().poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                self.counts
                    .stored
                    .fetch_add(new.len() as u64, Ordering::Relaxed);
                let keep = new.len().min(END_LEN);
                let tail = new[new.len() - keep..].to_vec();
                self.last.extend_from_slice(&tail);
                let excess = self.last.len().saturating_sub(END_LEN);
                self.last.drain(..excess);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                Poll::Ready(Err(crate::error::from_io("ops-core", "read", e).into()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The decoder's output, checked: decoding errors are corruption, and at the end the length
/// must be the end frame's.
struct Checked {
    decoder: ZstdDecoder<BufReader<Tail>>,
    counts: Arc<Counts>,
    id: String,
    done: bool,
}

impl Checked {
    fn end_frame_length(&self) -> Option<u64> {
        let last = &self.decoder.get_ref().get_ref().last;
        let frame: &[u8; END_LEN] = last.as_slice().try_into().ok()?;
        let ok = frame[..4] == END_MAGIC
            && frame[4..8] == 12u32.to_le_bytes()
            && &frame[8..12] == END_TAG;
        ok.then(|| u64::from_le_bytes(frame[12..].try_into().unwrap_or([0; 8])))
    }
}

impl AsyncRead for Checked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.done || buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut self.decoder).poll_read(cx, buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => {
                let from_store = e
                    .get_ref()
                    .is_some_and(|inner| inner.downcast_ref::<Error>().is_some());
                Poll::Ready(Err(if from_store {
                    e
                } else {
                    corrupt(&self.id, format!("zstd: {e}"))
                }))
            }
            Poll::Ready(Ok(())) => {
                let n = (buf.filled().len() - before) as u64;
                if n > 0 {
                    self.counts.plain.fetch_add(n, Ordering::Relaxed);
                    return Poll::Ready(Ok(()));
                }
                // The end: the length must be the one recorded when it was stored.
                self.done = true;
                let read = self.counts.plain();
                Poll::Ready(match self.end_frame_length() {
                    Some(len) if len == read => Ok(()),
                    Some(len) => Err(corrupt(
                        &self.id,
                        format!("{read} bytes decompressed, {len} were stored"),
                    )),
                    None => Err(corrupt(&self.id, "truncated: the end frame is missing")),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
