//! Conditional requests: the last `ETag` and body of recent GET URLs, sent back as
//! `If-None-Match`. A `304 Not Modified` does not count against the primary rate limit, which
//! matters for the polling loops (workflow runs, deployments).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Bodies larger than this are not cached (lists of that size are not polled).
const MAX_CACHED_BODY: usize = 256 * 1024;

/// URL → (ETag, body), and the URLs in insertion order.
type Entries = (HashMap<String, (String, Vec<u8>)>, VecDeque<String>);

/// A bounded map of URL → (ETag, body); the oldest entry goes first.
#[derive(Debug)]
pub struct EtagCache {
    capacity: usize,
    inner: Mutex<Entries>,
}

impl EtagCache {
    /// A cache of at most `capacity` URLs.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    /// The cached ETag and body of `url`.
    pub fn get(&self, url: &str) -> Option<(String, Vec<u8>)> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.0.get(url).cloned()
    }

    /// Remembers `url`'s `etag` and `body`.
    pub fn put(&self, url: &str, etag: &str, body: &[u8]) {
        if body.len() > MAX_CACHED_BODY || self.capacity == 0 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (map, order) = &mut *inner;
        if map
            .insert(url.to_string(), (etag.to_string(), body.to_vec()))
            .is_none()
        {
            order.push_back(url.to_string());
            while order.len() > self.capacity {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_entries() {
        let c = EtagCache::new(2);
        c.put("a", "\"1\"", b"A");
        c.put("b", "\"2\"", b"B");
        c.put("a", "\"3\"", b"A2");
        c.put("c", "\"4\"", b"C");
        assert_eq!(c.get("a"), None, "the oldest URL went first");
        assert_eq!(c.get("b"), Some(("\"2\"".into(), b"B".to_vec())));
        assert_eq!(c.get("c").map(|e| e.0), Some("\"4\"".into()));
        c.put("big", "\"5\"", &vec![0; MAX_CACHED_BODY + 1]);
        assert_eq!(c.get("big"), None, "large bodies are not kept");
    }
}
