//! Feeds derived replies (see [`crate::replies`]) to a client through a local HTTP server, one
//! at a time, and collects every reply the client refused to decode.
//!
//! ```no_run
//! # async fn demo(d: ops_conformance::Description) {
//! use ops_conformance::replay::Replay;
//! use ops_conformance::replies::variants;
//! Replay::new("GET", r"^/v1/things$")
//!     .also("GET", r"^/v1/other$", serde_json::json!({"items": []}))
//!     .each(variants(&d, "ListThingsResponse", &[]), |base| async move {
//!         // build a client against `base`, call it, map the answer to `()`
//!         # let _ = base;
//!         Ok(())
//!     })
//!     .await;
//! # }
//! ```

use std::future::Future;

use ops_core::ErrorKind;
use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::replies::Variant;

/// Where each variant is served and what else the server answers.
#[derive(Debug, Clone)]
pub struct Replay {
    verb: String,
    pattern: String,
    status: u16,
    then: Value,
    extra: Vec<(String, String, Value)>,
}

impl Replay {
    /// Serves each variant, once, to the first `verb` request whose path matches `pattern` (a
    /// regular expression). Later requests there get `{}` (see [`Replay::then`]).
    pub fn new(verb: &str, pattern: &str) -> Self {
        Self {
            verb: verb.to_owned(),
            pattern: pattern.to_owned(),
            status: 200,
            then: json!({}),
            extra: Vec::new(),
        }
    }

    /// The status the variant is served with (200 unless set: a creation may answer 201).
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// What the same route answers after the variant: a listing's next page, empty as a real
    /// server's last page would be (`[]` for APIs that page bare arrays).
    pub fn then(mut self, reply: Value) -> Self {
        self.then = reply;
        self
    }

    /// Another route the call needs, answered with `reply` every time.
    pub fn also(mut self, verb: &str, pattern: &str, reply: Value) -> Self {
        self.extra
            .push((verb.to_owned(), pattern.to_owned(), reply));
        self
    }

    /// Runs `call` (given the server's base URL) once per variant and returns, for each variant
    /// the client refused with a decode error, its name, the error and the reply. A typed error
    /// about the content (a checksum that does not match, a state it cannot act on) is not a
    /// refusal; a call that never requested the variant is one (the route is wrong).
    pub async fn refusals<F, Fut>(&self, replies: Vec<Variant>, call: F) -> Vec<String>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = ops_core::Result<()>>,
    {
        let server = MockServer::start().await;
        let mut refused = Vec::new();
        for v in replies {
            server.reset().await;
            let served = Mock::given(method(self.verb.as_str()))
                .and(path_regex(self.pattern.as_str()))
                .respond_with(ResponseTemplate::new(self.status).set_body_json(&v.value))
                .up_to_n_times(1)
                .mount_as_scoped(&server)
                .await;
            Mock::given(method(self.verb.as_str()))
                .and(path_regex(self.pattern.as_str()))
                .respond_with(ResponseTemplate::new(self.status).set_body_json(&self.then))
                .mount(&server)
                .await;
            for (verb, pattern, body) in &self.extra {
                Mock::given(method(verb.as_str()))
                    .and(path_regex(pattern.as_str()))
                    .respond_with(ResponseTemplate::new(200).set_body_json(body))
                    .mount(&server)
                    .await;
            }
            let result = call(server.uri()).await;
            // A call that never asked for the variant proves nothing about it.
            if served.received_requests().await.is_empty() {
                refused.push(format!(
                    "{}: never requested ({} {} is not what the call asks for; it answered {:?})",
                    v.name,
                    self.verb,
                    self.pattern,
                    result.map_err(|e| e.to_string())
                ));
                continue;
            }
            if let Err(e) = result
                && matches!(e.kind(), ErrorKind::Decode { .. })
            {
                refused.push(format!("{}: {e}\n    reply: {}", v.name, v.value));
            }
            drop(served);
        }
        refused
    }

    /// [`Replay::refusals`], failing the test with every refusal.
    ///
    /// # Panics
    /// When `replies` is empty (the schema name is wrong) or any variant was refused.
    pub async fn each<F, Fut>(&self, replies: Vec<Variant>, call: F)
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = ops_core::Result<()>>,
    {
        assert!(!replies.is_empty(), "no variants: the schema name is wrong");
        let refused = self.refusals(replies, call).await;
        assert!(
            refused.is_empty(),
            "valid replies refused:\n{}",
            refused.join("\n")
        );
    }
}
