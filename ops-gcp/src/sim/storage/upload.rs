//! Simulated uploads: multipart in one request, and resumable sessions that take chunks,
//! report how much they hold, and can be cut mid-upload.

use std::collections::BTreeMap;

use ops_core::sim::Request;
use serde_json::{Value, json};

use super::{SimState, gcs_error};
use crate::sim::http::Reply;
use crate::storage::wire::encode_crc32c;
use ops_core::checksum::Checksum;

#[derive(Debug, Clone)]
pub(in crate::sim) struct SimSession {
    bucket: String,
    name: String,
    metadata: Value,
    if_generation: Option<u64>,
    data: Vec<u8>,
}

impl SimState {
    fn finalize(
        &mut self,
        bucket: &str,
        name: &str,
        data: Vec<u8>,
        metadata: Value,
        if_generation: Option<u64>,
        claimed: Option<String>,
    ) -> Reply {
        if let Err(reply) = self.check_precondition(bucket, name, if_generation) {
            return reply;
        }
        if let Some(claimed) = claimed
            && claimed != encode_crc32c(Checksum::of(&data))
        {
            return gcs_error(
                400,
                "invalid",
                "Provided CRC32C \"\" doesn't match calculated CRC32C.",
            );
        }
        self.put_object(bucket, name, data, metadata);
        self.ledger.mutated();
        let o = &self.objects[&(bucket.to_string(), name.to_string())];
        Reply::json(200, self.render_object(bucket, name, o))
    }

    pub(super) fn start_upload(
        &mut self,
        bucket: &str,
        req: &Request,
        query: &BTreeMap<String, String>,
    ) -> Reply {
        let if_generation = query.get("ifGenerationMatch").and_then(|g| g.parse().ok());
        match query.get("uploadType").map(String::as_str) {
            Some("media") => {
                let Some(name) = query.get("name") else {
                    return gcs_error(400, "required", "Required parameter: name");
                };
                self.finalize(
                    bucket,
                    name,
                    req.body.clone(),
                    json!({}),
                    if_generation,
                    None,
                )
            }
            Some("multipart") => {
                let Some((resource, data)) = split_multipart(req) else {
                    return gcs_error(400, "invalid", "Invalid multipart request.");
                };
                let name = resource
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let claimed = resource
                    .get("crc32c")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let metadata = resource.get("metadata").cloned().unwrap_or(json!({}));
                self.finalize(bucket, &name, data, metadata, if_generation, claimed)
            }
            Some("resumable") => {
                let resource: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                let Some(name) = resource.get("name").and_then(Value::as_str) else {
                    return gcs_error(400, "required", "Required: the object's name");
                };
                if let Err(reply) = self.check_precondition(bucket, name, if_generation) {
                    return reply;
                }
                let id = format!("sim-{:016x}", fastrand::u64(..));
                self.sessions.insert(
                    id.clone(),
                    SimSession {
                        bucket: bucket.to_string(),
                        name: name.to_string(),
                        metadata: resource.get("metadata").cloned().unwrap_or(json!({})),
                        if_generation,
                        data: Vec::new(),
                    },
                );
                let location = format!(
                    "{}/upload/storage/v1/b/{bucket}/o?uploadType=resumable&upload_id={id}",
                    self.base_uri
                );
                Reply::json(200, json!({})).header("location", location)
            }
            _ => gcs_error(
                400,
                "invalid",
                "uploadType must be media, multipart or resumable",
            ),
        }
    }

    pub(super) fn upload_chunk(
        &mut self,
        req: &Request,
        query: &BTreeMap<String, String>,
    ) -> Reply {
        let id = query.get("upload_id").cloned().unwrap_or_default();
        let range = req
            .headers
            .get("content-range")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Some(spec) = range.strip_prefix("bytes ") else {
            return gcs_error(400, "invalid", "Content-Range is required.");
        };
        let (span, total) = spec.split_once('/').unwrap_or((spec, "*"));
        let total: Option<usize> = total.parse().ok();
        let Some(kept) = self.sessions.get(&id).map(|s| s.data.len()) else {
            // A finished session answers status queries with its object.
            if span == "*"
                && let Some((bucket, name)) = self.finished_sessions.get(&id)
                && let Some(o) = self.objects.get(&(bucket.clone(), name.clone()))
            {
                return Reply::json(200, self.render_object(bucket, name, o));
            }
            return gcs_error(404, "notFound", "No such upload session.");
        };
        if span != "*" {
            let Some((start, end)) = span
                .split_once('-')
                .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
            else {
                return gcs_error(400, "invalid", "Bad Content-Range.");
            };
            if end + 1 - start != req.body.len() || start > kept {
                return gcs_error(
                    400,
                    "invalid",
                    "The Content-Range does not match the data or skips bytes.",
                );
            }
            if total.is_none() && !req.body.len().is_multiple_of(crate::storage::CHUNK_GRANULE) {
                return gcs_error(
                    400,
                    "invalid",
                    "Chunks other than the last must be multiples of 256 KiB.",
                );
            }
            let fresh = &req.body[(kept - start).min(req.body.len())..];
            let mut accepted = fresh.len();
            let mut cut = false;
            if let Some(limit) = self.cut_upload_after
                && kept + fresh.len() > limit
            {
                // The connection "drops": the server kept whole 256 KiB units up to the limit.
                let granule = crate::storage::CHUNK_GRANULE;
                accepted = ((limit.max(kept) / granule) * granule)
                    .saturating_sub(kept)
                    .min(fresh.len());
                self.cut_upload_after = None;
                cut = true;
            }
            let s = self.sessions.get_mut(&id).expect("exists");
            s.data.extend_from_slice(&fresh[..accepted]);
            if cut {
                return gcs_error(
                    503,
                    "backendError",
                    "The connection was reset mid-upload (simulated).",
                );
            }
        }
        let kept = self.sessions.get(&id).map_or(0, |s| s.data.len());
        if total != Some(kept) {
            let mut r = Reply::raw(308, Vec::new());
            if kept > 0 {
                r = r.header("range", format!("bytes=0-{}", kept - 1));
            }
            return r;
        }
        let s = self.sessions.remove(&id).expect("exists");
        let claimed = req
            .headers
            .get("x-goog-hash")
            .and_then(|v| v.to_str().ok())
            .and_then(|h| h.strip_prefix("crc32c="))
            .map(str::to_owned);
        let reply = self.finalize(
            &s.bucket,
            &s.name,
            s.data,
            s.metadata,
            s.if_generation,
            claimed,
        );
        if reply.status == 200 {
            self.finished_sessions.insert(id, (s.bucket, s.name));
        }
        reply
    }
}

/// The JSON resource and the data of a `multipart/related` upload.
fn split_multipart(req: &Request) -> Option<(Value, Vec<u8>)> {
    let ct = req.headers.get("content-type")?.to_str().ok()?;
    let boundary = ct.split("boundary=").nth(1)?.trim_matches('"');
    let delim = format!("--{boundary}");
    let body = &req.body;
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    let p1 = find(body, delim.as_bytes(), 0)?;
    let h1 = find(body, b"\r\n\r\n", p1)? + 4;
    let p2 = find(body, delim.as_bytes(), h1)?;
    let resource: Value = serde_json::from_slice(body[h1..p2].strip_suffix(b"\r\n")?).ok()?;
    let h2 = find(body, b"\r\n\r\n", p2)? + 4;
    let end = find(body, format!("\r\n{delim}--").as_bytes(), h2)?;
    Some((resource, body[h2..end].to_vec()))
}
