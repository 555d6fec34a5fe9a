//! Uploads: one multipart request for small objects, the resumable protocol for the rest.
//!
//! The resumable upload reads the source one chunk ahead (two chunks in memory, whatever the
//! size), sends chunks that are multiples of 256 KiB, and when a chunk fails (connection cut,
//! timeout, 5xx) asks the session how far it got (`Content-Range: bytes */*`) and sends the
//! rest from there: the source is never read twice. The CRC32C of the whole stream goes with
//! the last chunk (`X-Goog-Hash`) and is compared with the finished object's.

use std::collections::BTreeMap;

use bytes::Bytes;
use ops_core::checksum::{Checksum, Hasher};
use ops_core::contracts::ArtifactReader;
use ops_core::http::SendOptions;
use ops_core::retry::Idempotency;
use ops_core::{Error, ErrorKind, Result};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::AsyncReadExt;

use super::CloudStorage;
use super::wire::{Object, UPLOAD_ID_KEY, encode_crc32c, record};

/// Consecutive failed attempts on one chunk before giving up.
const MAX_CHUNK_FAILURES: u32 = 6;

enum ChunkOutcome {
    /// The server has everything before this offset.
    Persisted(u64),
    /// The upload is complete.
    Done(Box<Object>),
}

impl CloudStorage {
    /// Streams `data` into the new object `name` (which must not exist yet), then makes sure
    /// the object carries the writer's CRC32C and size in its custom metadata
    /// ([`RECORDED_CRC32C_KEY`](super::wire::RECORDED_CRC32C_KEY)), so that reads check what
    /// was written, not whatever the object holds now.
    pub(super) async fn upload(
        &self,
        name: &str,
        metadata: &BTreeMap<String, String>,
        mut data: ArtifactReader,
    ) -> Result<Object> {
        let mut hasher = Hasher::new();
        let mut metadata = metadata.clone();
        // Tells this upload's object apart from anyone else's when a retried request finds
        // the name taken.
        metadata.insert(UPLOAD_ID_KEY.into(), format!("{:016x}", fastrand::u64(..)));
        let first = read_chunk(&mut data, self.chunk_size, &mut hasher).await?;
        let object = if first.len() < self.chunk_size {
            let recorded = record(&metadata, hasher.checksum(), hasher.len());
            self.multipart(name, &recorded, first, hasher.checksum())
                .await?
        } else {
            self.resumable(name, &metadata, first, &mut data, &mut hasher)
                .await?
        };
        let expected = hasher.checksum();
        if object.checksum() != Some(expected) || object.size() != Some(hasher.len()) {
            // Never keep an object that is not what was sent.
            self.discard(&object).await;
            return Err(Error::new(
                "gcp",
                "upload",
                ErrorKind::ChecksumMismatch {
                    expected: format!("{expected} ({} bytes)", hasher.len()),
                    actual: format!(
                        "{} ({} bytes)",
                        object.checksum().map_or("none".into(), |c| c.to_string()),
                        object.size().map_or("?".into(), |n| n.to_string())
                    ),
                },
            ));
        }
        if object.recorded() == Some((expected, hasher.len())) {
            return Ok(object);
        }
        // A resumable session fixes the metadata before the bytes are known: record them now,
        // on this generation only. An object that cannot carry its record is not kept.
        match self
            .patch_metadata(&object, &record(&BTreeMap::new(), expected, hasher.len()))
            .await
        {
            // The bytes did not change: what the patch reply leaves out (fake-gcs-server
            // answers in its own shape, without `timeCreated`) is still the upload's.
            Ok(patched) => Ok(Object {
                time_created: patched.time_created.or(object.time_created),
                crc32c: patched.crc32c.or(object.crc32c),
                size: patched.size.or(object.size),
                ..patched
            }),
            Err(e) => {
                self.discard(&object).await;
                Err(e)
            }
        }
    }

    /// Deletes `object` at its generation, logging (not returning) a failure: the caller is
    /// already reporting the error that made the object unwanted.
    pub(super) async fn discard(&self, object: &Object) {
        if let Err(e) = self
            .delete_object(&object.name, Some(&object.generation))
            .await
        {
            tracing::error!(object = %object.name, generation = %object.generation, error = %e,
                "could not delete an incomplete upload; delete it by hand");
        }
    }

    fn object_resource(name: &str, metadata: &BTreeMap<String, String>) -> serde_json::Value {
        json!({ "name": name, "contentType": "application/octet-stream", "metadata": metadata })
    }

    async fn multipart(
        &self,
        name: &str,
        metadata: &BTreeMap<String, String>,
        data: Vec<u8>,
        checksum: Checksum,
    ) -> Result<Object> {
        let mut resource = Self::object_resource(name, metadata);
        // The server checks the bytes against this and refuses a mismatch.
        resource["crc32c"] = json!(encode_crc32c(checksum));
        let boundary = format!("ops-{:016x}", fastrand::u64(..));
        let mut body = Vec::with_capacity(data.len() + 512);
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{resource}\r\n\
                 --{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let mut url = self.upload_url()?;
        url.query_pairs_mut()
            .append_pair("uploadType", "multipart")
            .append_pair("ifGenerationMatch", "0");
        let req = self
            .client
            .http()
            .request(Method::POST, url)
            .header(
                CONTENT_TYPE,
                format!("multipart/related; boundary={boundary}"),
            )
            .body(body);
        let req = self.client.authorize(req).await?;
        // `ifGenerationMatch=0` makes a repeat harmless: it cannot replace anything, so
        // throttling, outages and lost replies are retried.
        let options = SendOptions {
            idempotency: Some(Idempotency::Idempotent),
            ..self.options(name)
        };
        match self.client.http().send_bytes("upload", req, &options).await {
            Ok((_, _, body)) => ops_core::http::decode_json("gcp", "upload", &body),
            // A repeat of a request whose reply was lost finds its own object.
            Err(e) if matches!(e.kind(), ErrorKind::Conflict { .. }) => {
                match self.object(name).await {
                    Ok(o) if o.metadata.get(UPLOAD_ID_KEY) == metadata.get(UPLOAD_ID_KEY) => Ok(o),
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn resumable(
        &self,
        name: &str,
        metadata: &BTreeMap<String, String>,
        first: Vec<u8>,
        data: &mut ArtifactReader,
        hasher: &mut Hasher,
    ) -> Result<Object> {
        let session = self.start_session(name, metadata).await?;
        let result = self.send_chunks(&session, first, data, hasher).await;
        if result.is_err() {
            // Nothing was finalized: dropping the session leaves no object behind.
            self.cancel_session(&session).await;
        }
        result
    }

    async fn start_session(
        &self,
        name: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<String> {
        let mut url = self.upload_url()?;
        url.query_pairs_mut()
            .append_pair("uploadType", "resumable")
            .append_pair("ifGenerationMatch", "0");
        let req = self
            .client
            .http()
            .request(Method::POST, url)
            .header("x-upload-content-type", "application/octet-stream")
            .json(&Self::object_resource(name, metadata));
        let req = self.client.authorize(req).await?;
        // Opening a session changes nothing: safe to retry.
        let options = SendOptions {
            idempotency: Some(Idempotency::Idempotent),
            ..self.options(name)
        };
        let (_, headers, _) = self
            .client
            .http()
            .send_bytes("start_upload", req, &options)
            .await?;
        headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| {
                decode_error("start_upload", "no Location header for the upload session")
            })
    }

    async fn send_chunks(
        &self,
        session: &str,
        first: Vec<u8>,
        data: &mut ArtifactReader,
        hasher: &mut Hasher,
    ) -> Result<Object> {
        let mut offset = 0u64;
        let mut current = Bytes::from(first);
        // The buffer of the chunk sent before, read into again: no fresh allocation (and no
        // page faults on it) per chunk, whatever the chunk size.
        let mut spare: Option<Vec<u8>> = None;
        loop {
            let next = read_chunk_into(data, self.chunk_size, hasher, spare.take()).await?;
            let last = next.len() < self.chunk_size;
            let end = offset + current.len() as u64;
            // `current` is full-size; it is the last chunk only when nothing follows.
            if next.is_empty() {
                return self
                    .finish(session, &current, offset, hasher.checksum())
                    .await;
            }
            match self
                .send_chunk(session, &current, offset, None, None)
                .await?
            {
                ChunkOutcome::Persisted(n) if n == end => offset = end,
                ChunkOutcome::Persisted(n) => {
                    return Err(decode_error(
                        "upload_chunk",
                        &format!("the session kept {n} bytes, expected {end}"),
                    ));
                }
                ChunkOutcome::Done(object) => {
                    // The server finished the object early (an emulator does this on a status
                    // query): it is truncated, and must not stay where it would list as a backup
                    // or block a retry of the same id.
                    self.discard(&object).await;
                    return Err(decode_error(
                        "upload_chunk",
                        &format!(
                            "the session finished at {} bytes, before the last chunk; the partial \
                             object was deleted",
                            object.size().map_or("?".into(), |n| n.to_string())
                        ),
                    ));
                }
            }
            // Sent and acknowledged: nothing else holds it any more.
            spare = std::mem::replace(&mut current, Bytes::from(next))
                .try_into_mut()
                .ok()
                .map(Vec::from);
            if last {
                return self
                    .finish(session, &current, offset, hasher.checksum())
                    .await;
            }
        }
    }

    async fn finish(
        &self,
        session: &str,
        chunk: &Bytes,
        offset: u64,
        checksum: Checksum,
    ) -> Result<Object> {
        let total = offset + chunk.len() as u64;
        match self
            .send_chunk(session, chunk, offset, Some(total), Some(checksum))
            .await?
        {
            ChunkOutcome::Done(object) => Ok(*object),
            ChunkOutcome::Persisted(n) => Err(decode_error(
                "upload_chunk",
                &format!("the session kept {n} of {total} bytes and did not finish"),
            )),
        }
    }

    /// Sends `chunk` (starting at `offset`) until the server has all of it, resuming from what
    /// it kept after a failure.
    async fn send_chunk(
        &self,
        session: &str,
        chunk: &Bytes,
        offset: u64,
        total: Option<u64>,
        checksum: Option<Checksum>,
    ) -> Result<ChunkOutcome> {
        let end = offset + chunk.len() as u64;
        let mut from = offset;
        let mut failures = 0u32;
        // Waits follow the client's retry policy; the failure budget is per chunk, and
        // progress renews it.
        let policy = self.client.http().retry_policy();
        let mut backoff = policy.backoff();
        loop {
            let part = chunk.slice((from - offset) as usize..);
            let attempt = self.put_range(session, part, from, total, checksum).await;
            let outcome = match attempt {
                Ok(o) => o,
                Err(e) if e.is_retryable() || matches!(e.kind(), ErrorKind::Io { .. }) => {
                    failures += 1;
                    if failures >= MAX_CHUNK_FAILURES {
                        return Err(e);
                    }
                    tracing::warn!(error = %e, offset = from, "upload chunk failed; asking the session where to resume");
                    let mut last = e;
                    // Never re-send before the session has said how far it got: ask until it
                    // answers, backing off, within the same failure budget.
                    loop {
                        let Some(wait) = policy.wait_after(&last, &mut backoff) else {
                            return Err(last);
                        };
                        self.client.clock().sleep(wait).await;
                        match self.query_session(session, total).await {
                            Ok(o) => break o,
                            Err(q) if q.is_retryable() => {
                                failures += 1;
                                if failures >= MAX_CHUNK_FAILURES {
                                    return Err(q);
                                }
                                tracing::warn!(error = %q, "asking the upload session failed; asking again");
                                last = q;
                            }
                            Err(q) => return Err(q),
                        }
                    }
                }
                Err(e) => return Err(e),
            };
            match outcome {
                ChunkOutcome::Persisted(n) if n >= end => return Ok(ChunkOutcome::Persisted(n)),
                ChunkOutcome::Persisted(n) if n >= offset => {
                    if n > from {
                        failures = 0;
                    }
                    from = n;
                }
                ChunkOutcome::Persisted(n) => {
                    return Err(decode_error(
                        "upload_chunk",
                        &format!(
                            "the session lost data: it has {n} bytes, {offset} were acknowledged"
                        ),
                    ));
                }
                done @ ChunkOutcome::Done(_) => return Ok(done),
            }
        }
    }

    async fn put_range(
        &self,
        session: &str,
        part: Bytes,
        from: u64,
        total: Option<u64>,
        checksum: Option<Checksum>,
    ) -> Result<ChunkOutcome> {
        let total_text = total.map_or("*".to_string(), |t| t.to_string());
        let range = if part.is_empty() {
            format!("bytes */{total_text}")
        } else {
            format!("bytes {from}-{}/{total_text}", from + part.len() as u64 - 1)
        };
        let mut req = self
            .client
            .http()
            .request(Method::PUT, session)
            .header("content-range", range)
            .header(CONTENT_LENGTH, part.len());
        if let Some(c) = checksum {
            req = req.header("x-goog-hash", format!("crc32c={}", encode_crc32c(c)));
        }
        let req = self.client.authorize(req.body(part)).await?;
        self.session_response("upload_chunk", req).await
    }

    /// Asks an interrupted session how many bytes it kept.
    async fn query_session(&self, session: &str, total: Option<u64>) -> Result<ChunkOutcome> {
        let total_text = total.map_or("*".to_string(), |t| t.to_string());
        let req = self
            .client
            .http()
            .request(Method::PUT, session)
            .header("content-range", format!("bytes */{total_text}"))
            .header(CONTENT_LENGTH, 0);
        let req = self.client.authorize(req).await?;
        self.session_response("upload_status", req)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound { .. } => Error::new(
                    "gcp",
                    "upload_status",
                    // Not a transient fault: asking again cannot bring the session back.
                    ErrorKind::Io {
                        kind: std::io::ErrorKind::Other,
                        message: "the upload session expired or was cancelled; the source \
                                  cannot be replayed"
                            .into(),
                    },
                ),
                _ => e,
            })
    }

    /// Sends one session request. As a non-idempotent request it is repeated only when it
    /// provably did not run (refused connection, throttling); other failures go back to
    /// [`Self::send_chunk`], which resumes rather than repeats.
    async fn session_response(
        &self,
        operation: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Result<ChunkOutcome> {
        let options = SendOptions {
            idempotency: Some(Idempotency::NotIdempotent),
            accept: vec![308],
            resource: Some("upload session".into()),
        };
        let (status, headers, body) = self
            .client
            .http()
            .send_bytes(operation, req, &options)
            .await?;
        if status == StatusCode::PERMANENT_REDIRECT {
            // `Range: bytes=0-N` means N + 1 bytes are kept; no header means none.
            let kept = headers
                .get("range")
                .and_then(|v| v.to_str().ok())
                .and_then(|r| r.strip_prefix("bytes=0-"))
                .and_then(|n| n.parse::<u64>().ok())
                .map_or(0, |n| n + 1);
            return Ok(ChunkOutcome::Persisted(kept));
        }
        let object: Object = ops_core::http::decode_json("gcp", operation, &body)?;
        Ok(ChunkOutcome::Done(Box::new(object)))
    }

    async fn cancel_session(&self, session: &str) {
        let req = self.client.http().request(Method::DELETE, session);
        let Ok(req) = self.client.authorize(req).await else {
            return;
        };
        let options = SendOptions {
            accept: vec![499],
            ..SendOptions::default()
        };
        if let Err(e) = self
            .client
            .http()
            .send_bytes("cancel_upload", req, &options)
            .await
        {
            tracing::debug!(error = %e, "cancelling the upload session failed; it expires on its own");
        }
    }
}

/// Reads until `size` bytes or the end of `data`, hashing what it reads.
async fn read_chunk(
    data: &mut ArtifactReader,
    size: usize,
    hasher: &mut Hasher,
) -> Result<Vec<u8>> {
    read_chunk_into(data, size, hasher, None).await
}

/// [`read_chunk`] into `reuse`'s allocation when given.
async fn read_chunk_into(
    data: &mut ArtifactReader,
    size: usize,
    hasher: &mut Hasher,
    reuse: Option<Vec<u8>>,
) -> Result<Vec<u8>> {
    let mut buf = reuse.unwrap_or_default();
    buf.resize(size, 0);
    let mut filled = 0;
    while filled < size {
        let n = data
            .read(&mut buf[filled..])
            .await
            .map_err(|e| ops_core::error::from_io("gcp", "read_source", e))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    hasher.update(&buf);
    Ok(buf)
}

fn decode_error(operation: &'static str, detail: &str) -> Error {
    Error::new(
        "gcp",
        operation,
        ErrorKind::Decode {
            detail: detail.to_string(),
        },
    )
}
