//! The simulated Cloud Storage JSON API: objects with generations and CRC32C, multipart and
//! resumable uploads (sessions that can be cut mid-upload), ranged media downloads, listing,
//! deletion and rewrites that take several calls.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ops_core::sim::Request;
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

mod upload;

pub(in crate::sim) use upload::SimSession;

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
        self.ledger.mutated();
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
        self.ledger.mutated();
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
        self.ledger.mutated();
        let o = &self.objects[&(db.to_string(), dst.to_string())];
        Reply::json(
            200,
            json!({"kind": "storage#rewriteResponse", "totalBytesRewritten": total.clone(),
            "objectSize": total, "done": true, "resource": self.render_object(db, dst, o)}),
        )
    }
}
