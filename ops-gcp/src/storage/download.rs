//! Downloads that verify and resume: the body is checked against the object's CRC32C
//! (`X-Goog-Hash`) before the reader reports its end, and a connection lost mid-body is picked
//! up with a `Range` request pinned to the same generation, never restarted.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use ops_core::checksum::VerifyingReader;
use ops_core::contracts::ArtifactReader;
use ops_core::{Error, ErrorKind, Result};
use reqwest::header::RANGE;
use tokio_util::io::StreamReader;
use url::Url;

use super::CloudStorage;
use super::wire::{Object, crc32c_from_goog_hash};

/// Reconnections one download may make.
const MAX_RESUMES: u32 = 5;

type BodyStream = std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

struct Resume {
    store: CloudStorage,
    url: Url,
    generation: String,
    received: u64,
    body: Option<BodyStream>,
    resumes: u32,
}

impl CloudStorage {
    /// Streams the object `name`, verified against the CRC32C and size its writer recorded
    /// (when it recorded them) and against the server's: the object's resource is read first,
    /// and the bytes are fetched at that generation only.
    pub(super) async fn download(&self, name: &str) -> Result<ArtifactReader> {
        let object = self.object(name).await?;
        if let Some(problem) = object.integrity_problem() {
            return Err(corrupt(&object, problem));
        }
        let mut url = self.object_url(name)?;
        url.query_pairs_mut().append_pair("alt", "media");
        let mut pinned = url.clone();
        if !object.generation.is_empty() {
            pinned
                .query_pairs_mut()
                .append_pair("generation", &object.generation);
        }
        let req = self
            .client
            .authorize(self.client.http().get(pinned))
            .await?;
        let resp = self
            .client
            .http()
            .send_with("download", req, &self.options(name))
            .await?;
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let served = header("x-goog-hash")
            .as_deref()
            .and_then(crc32c_from_goog_hash);
        let expected = object
            .recorded()
            .map(|(c, _)| c)
            .or_else(|| object.checksum())
            .or(served)
            .ok_or_else(|| {
                Error::new(
                    "gcp",
                    "download",
                    ErrorKind::Decode {
                        detail: format!(
                            "{name}: no crc32c in the object or X-Goog-Hash; refusing an \
                             unverifiable download"
                        ),
                    },
                )
            })?;
        if let Some(served) = served
            && served != expected
        {
            return Err(corrupt(
                &object,
                format!("{name}: served with checksum {served}, expected {expected}"),
            ));
        }
        let length = object
            .recorded()
            .map(|(_, n)| n)
            .or_else(|| object.size())
            .or_else(|| {
                header("x-goog-stored-content-length")
                    .or_else(|| header("content-length"))
                    .and_then(|n| n.parse().ok())
            });
        let generation = match object.generation.is_empty() {
            true => header("x-goog-generation").unwrap_or_default(),
            false => object.generation.clone(),
        };
        let state = Resume {
            store: self.clone(),
            url,
            generation,
            received: 0,
            body: Some(Box::pin(resp.bytes_stream())),
            resumes: 0,
        };
        let stream = futures_util::stream::unfold(state, next_piece);
        Ok(Box::pin(VerifyingReader::new(
            StreamReader::new(Box::pin(stream)),
            expected,
            length,
            "gcp",
        )))
    }
}

fn corrupt(object: &Object, detail: String) -> Error {
    Error::new(
        "gcp",
        "download",
        ErrorKind::ChecksumMismatch {
            expected: object
                .recorded()
                .map_or("the recorded checksum".into(), |(c, n)| {
                    format!("{c} ({n} bytes)")
                }),
            actual: detail,
        },
    )
}

async fn next_piece(mut st: Resume) -> Option<(std::io::Result<Bytes>, Resume)> {
    loop {
        let body = match st.body.as_mut() {
            Some(b) => b,
            None => return None,
        };
        match body.next().await {
            Some(Ok(bytes)) => {
                st.received += bytes.len() as u64;
                return Some((Ok(bytes), st));
            }
            None => return None,
            Some(Err(e)) if st.resumes < MAX_RESUMES && !st.generation.is_empty() => {
                st.resumes += 1;
                tracing::warn!(error = %e, received = st.received, "download interrupted; resuming");
                let again = reopen(
                    st.store.clone(),
                    st.url.clone(),
                    st.generation.clone(),
                    st.received,
                );
                match again.await {
                    Ok(b) => st.body = Some(b),
                    Err(e) => {
                        st.body = None;
                        return Some((Err(e.into()), st));
                    }
                }
            }
            Some(Err(e)) => {
                st.body = None;
                let err = Error::new(
                    "gcp",
                    "download",
                    ErrorKind::Io {
                        kind: std::io::ErrorKind::ConnectionAborted,
                        message: format!("download cut after {} bytes: {e}", st.received),
                    },
                );
                return Some((Err(err.into()), st));
            }
        }
    }
}

async fn reopen(
    store: CloudStorage,
    mut url: Url,
    generation: String,
    received: u64,
) -> Result<BodyStream> {
    // The same generation, or nothing: a newer object must not be spliced in.
    url.query_pairs_mut().append_pair("generation", &generation);
    let req = store
        .client
        .http()
        .get(url)
        .header(RANGE, format!("bytes={received}-"));
    let req = store.client.authorize(req).await?;
    let resp = store
        .client
        .http()
        .send_with("download", req, &store.options("object (resuming)"))
        .await?;
    if resp.status() != reqwest::StatusCode::PARTIAL_CONTENT {
        return Err(Error::new(
            "gcp",
            "download",
            ErrorKind::Decode {
                detail: format!(
                    "resuming at byte {received} got status {} instead of 206",
                    resp.status()
                ),
            },
        ));
    }
    Ok(Box::pin(resp.bytes_stream()))
}
