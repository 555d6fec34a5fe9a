//! The simulated Cloud Storage JSON API: objects with generations and CRC32C, multipart and
//! resumable uploads (sessions that can be cut mid-upload), ranged media downloads, listing,
//! deletion and rewrites that take several calls.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};
use wiremock::Request;

use super::SimState;
use super::cloud_run::time;
use super::http::Reply;
use crate::storage::wire::encode_crc32c;
use ops_core::checksum::Checksum;

/// Bytes one rewrite call copies before answering `done: false`.
pub(super) const REWRITE_STEP: usize = 4 * 1024 * 1024;

#[derive(Clone)]
pub(super) struct SimObject {
    pub generation: u64,
    pub data: Vec<u8>,
    pub crc32c: Checksum,
    pub metadata: Value,
    pub created: DateTime<Utc>,
    pub metageneration: u64,
    pub updated: DateTime<Utc>,
}

impl std::fmt::Debug for SimObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SimObject(gen {}, {} bytes)",
            self.generation,
            self.data.len()
        )
    }
}

#[derive(Debug, Clone)]
pub(super) struct SimSession {
    bucket: String,
    name: String,
    metadata: Value,
    if_generation: Option<u64>,
    data: Vec<u8>,
}

/// GCS JSON errors have `errors[]` and no `status` name.
fn gcs_error(status: u16, reason: &str, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"error": {"code": status, "message": message,
                         "errors": [{"message": message, "domain": "global", "reason": reason}]}}),
    )
}

fn not_found(bucket: &str, name: &str) -> Reply {
    gcs_error(404, "notFound", &format!("No such object: {bucket}/{name}"))
}

fn precondition_failed() -> Reply {
    gcs_error(
        412,
        "conditionNotMet",
        "At least one of the pre-conditions you specified did not hold.",
    )
}

impl SimState {
    fn render_object(&self, bucket: &str, name: &str, o: &SimObject) -> Value {
        json!({
            "kind": "storage#object",
            "id": format!("{bucket}/{name}/{}", o.generation),
            "selfLink": format!("https://www.googleapis.com/storage/v1/b/{bucket}/o/{}", name.replace('/', "%2F")),
            "mediaLink": format!("https://storage.googleapis.com/download/storage/v1/b/{bucket}/o/{}?generation={}&alt=media", name.replace('/', "%2F"), o.generation),
            "name": name,
            "bucket": bucket,
            "generation": o.generation.to_string(),
            "metageneration": o.metageneration.to_string(),
            "contentType": "application/octet-stream",
            "storageClass": "STANDARD",
            "size": o.data.len().to_string(),
            "crc32c": encode_crc32c(o.crc32c),
            "etag": format!("CP{}EAE=", o.generation),
            "timeCreated": time(o.created),
            "updated": time(o.updated),
            "timeStorageClassUpdated": time(o.created),
            "timeFinalized": time(o.created),
            "metadata": o.metadata,
        })
    }

    /// Stores an object directly (test set-up); returns its generation.
    pub(super) fn put_object(
        &mut self,
        bucket: &str,
        name: &str,
        data: Vec<u8>,
        metadata: Value,
    ) -> u64 {
        self.next_generation += 1;
        let object = SimObject {
            generation: self.next_generation,
            crc32c: Checksum::of(&data),
            data,
            metadata,
            created: self.now(),
            metageneration: 1,
            updated: self.now(),
        };
        self.objects
            .insert((bucket.to_string(), name.to_string()), object);
        self.next_generation
    }

    pub(super) fn storage_route(
        &mut self,
        method: &str,
        req: &Request,
        query: &BTreeMap<String, String>,
    ) -> Reply {
        let segments: Vec<String> = req
            .url
            .path_segments()
            .map(|s| {
                s.map(|p| percent_decode_str(p).decode_utf8_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        match (method, seg.as_slice()) {
            ("POST", ["upload", "storage", "v1", "b", bucket, "o"]) => {
                self.start_upload(bucket, req, query)
            }
            ("PUT", ["upload", "storage", "v1", "b", _, "o"]) => self.upload_chunk(req, query),
            ("DELETE", ["upload", "storage", "v1", "b", _, "o"]) => {
                let id = query.get("upload_id").cloned().unwrap_or_default();
                self.sessions.remove(&id);
                Reply::json(499, json!({}))
            }
            ("GET", ["storage", "v1", "b", bucket, "o"]) => self.list_objects(bucket, query),
            ("GET", ["storage", "v1", "b", bucket, "o", name]) => {
                self.get_object(bucket, name, req, query)
            }
            ("DELETE", ["storage", "v1", "b", bucket, "o", name]) => {
                self.delete_object(bucket, name, query)
            }
            ("PATCH", ["storage", "v1", "b", bucket, "o", name]) => {
                self.patch_object(bucket, name, query, req)
            }
            (
                "POST",
                [
                    "storage",
                    "v1",
                    "b",
                    sb,
                    "o",
                    src,
                    "rewriteTo",
                    "b",
                    db,
                    "o",
                    dst,
                ],
            ) => self.rewrite(sb, src, db, dst, query, req),
            _ => gcs_error(
                404,
                "notFound",
                &format!("{method} {} is not simulated", req.url.path()),
            ),
        }
    }

    fn check_precondition(&self, bucket: &str, name: &str, want: Option<u64>) -> Result<(), Reply> {
        let current = self
            .objects
            .get(&(bucket.to_string(), name.to_string()))
            .map(|o| o.generation);
        match want {
            Some(0) if current.is_some() => Err(precondition_failed()),
            Some(g) if g != 0 && current != Some(g) => Err(precondition_failed()),
            _ => Ok(()),
        }
    }

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
        self.mutations += 1;
        let o = &self.objects[&(bucket.to_string(), name.to_string())];
        Reply::json(200, self.render_object(bucket, name, o))
    }

    fn start_upload(
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

    fn upload_chunk(&mut self, req: &Request, query: &BTreeMap<String, String>) -> Reply {
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

    fn list_objects(&self, bucket: &str, query: &BTreeMap<String, String>) -> Reply {
        let prefix = query.get("prefix").cloned().unwrap_or_default();
        let items: Vec<Value> = self
            .objects
            .iter()
            .filter(|((b, n), _)| b == bucket && n.starts_with(&prefix))
            .map(|((b, n), o)| self.render_object(b, n, o))
            .collect();
        let size = query
            .get("maxResults")
            .and_then(|s| s.parse().ok())
            .unwrap_or(1000usize)
            .clamp(1, 1000);
        let offset: usize = query
            .get("pageToken")
            .and_then(|t| t.strip_prefix("obj-"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let mut out = json!({"kind": "storage#objects"});
        let page: Vec<Value> = items.iter().skip(offset).take(size).cloned().collect();
        if !page.is_empty() {
            out["items"] = json!(page);
        }
        if offset + size < items.len() {
            out["nextPageToken"] = json!(format!("obj-{}", offset + size));
        }
        Reply::json(200, out)
    }

    fn get_object(
        &self,
        bucket: &str,
        name: &str,
        req: &Request,
        query: &BTreeMap<String, String>,
    ) -> Reply {
        let Some(o) = self.objects.get(&(bucket.to_string(), name.to_string())) else {
            return not_found(bucket, name);
        };
        if let Some(g) = query.get("generation")
            && *g != o.generation.to_string()
        {
            return not_found(bucket, name);
        }
        if query.get("alt").map(String::as_str) != Some("media") {
            return Reply::json(200, self.render_object(bucket, name, o));
        }
        let hash = format!(
            "crc32c={},md5=AAAAAAAAAAAAAAAAAAAAAA==",
            encode_crc32c(o.crc32c)
        );
        let range = req.headers.get("range").and_then(|v| v.to_str().ok());
        let (status, body) = match range
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(from) if from <= o.data.len() => (206, o.data[from..].to_vec()),
            Some(_) => {
                return gcs_error(
                    416,
                    "requestedRangeNotSatisfiable",
                    "The requested range cannot be satisfied.",
                );
            }
            None => (200, o.data.clone()),
        };
        Reply::raw(status, body)
            .header("x-goog-hash", hash)
            .header("x-goog-generation", o.generation.to_string())
            .header("x-goog-stored-content-length", o.data.len().to_string())
    }

    /// `objects.patch` of custom metadata: keys given are set, keys given as `null` removed;
    /// the generation and metageneration preconditions hold; the metageneration goes up.
    fn patch_object(
        &mut self,
        bucket: &str,
        name: &str,
        query: &BTreeMap<String, String>,
        req: &Request,
    ) -> Reply {
        let now = self.now();
        let Some(o) = self
            .objects
            .get_mut(&(bucket.to_string(), name.to_string()))
        else {
            return not_found(bucket, name);
        };
        let holds = |key: &str, have: u64| query.get(key).is_none_or(|g| *g == have.to_string());
        if !holds("ifGenerationMatch", o.generation)
            || !holds("ifMetagenerationMatch", o.metageneration)
        {
            return precondition_failed();
        }
        let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
            return gcs_error(400, "parseError", "Parse Error");
        };
        if let Some(patch) = body.get("metadata").and_then(Value::as_object) {
            if !o.metadata.is_object() {
                o.metadata = json!({});
            }
            let Some(meta) = o.metadata.as_object_mut() else {
                return gcs_error(500, "backendError", "metadata is not an object");
            };
            for (k, v) in patch {
                match v {
                    Value::Null => {
                        meta.remove(k);
                    }
                    Value::String(_) => {
                        meta.insert(k.clone(), v.clone());
                    }
                    _ => return gcs_error(400, "invalid", "metadata values must be strings"),
                }
            }
        }
        o.metageneration += 1;
        o.updated = now;
        self.mutations += 1;
        let o = o.clone();
        Reply::json(200, self.render_object(bucket, name, &o))
    }

    fn delete_object(
        &mut self,
        bucket: &str,
        name: &str,
        query: &BTreeMap<String, String>,
    ) -> Reply {
        let key = (bucket.to_string(), name.to_string());
        let Some(o) = self.objects.get(&key) else {
            return not_found(bucket, name);
        };
        if let Some(g) = query.get("ifGenerationMatch")
            && *g != o.generation.to_string()
        {
            return precondition_failed();
        }
        self.objects.remove(&key);
        self.mutations += 1;
        Reply::json(204, Value::Null)
    }

    fn rewrite(
        &mut self,
        sb: &str,
        src: &str,
        db: &str,
        dst: &str,
        query: &BTreeMap<String, String>,
        req: &Request,
    ) -> Reply {
        let Some(source) = self
            .objects
            .get(&(sb.to_string(), src.to_string()))
            .cloned()
        else {
            return not_found(sb, src);
        };
        if let Some(g) = query.get("ifSourceGenerationMatch")
            && *g != source.generation.to_string()
        {
            return precondition_failed();
        }
        let if_generation = query.get("ifGenerationMatch").and_then(|g| g.parse().ok());
        if let Err(reply) = self.check_precondition(db, dst, if_generation) {
            return reply;
        }
        let done_before: usize = query
            .get("rewriteToken")
            .and_then(|t| t.strip_prefix("rw-"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let copied = (done_before + REWRITE_STEP).min(source.data.len());
        let total = source.data.len().to_string();
        if copied < source.data.len() {
            return Reply::json(
                200,
                json!({"kind": "storage#rewriteResponse", "totalBytesRewritten": copied.to_string(),
                "objectSize": total, "done": false, "rewriteToken": format!("rw-{copied}")}),
            );
        }
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(json!({}));
        let metadata = body
            .get("metadata")
            .cloned()
            .unwrap_or(source.metadata.clone());
        self.put_object(db, dst, source.data.clone(), metadata);
        self.mutations += 1;
        let o = &self.objects[&(db.to_string(), dst.to_string())];
        Reply::json(
            200,
            json!({"kind": "storage#rewriteResponse", "totalBytesRewritten": total.clone(),
            "objectSize": total, "done": true, "resource": self.render_object(db, dst, o)}),
        )
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
