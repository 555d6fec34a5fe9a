//! The fake Slack.

use ops_core::sim::{Fault, Ledger, Request, ResponseTemplate, SimApi, SimServer, Simulator};
use serde_json::{Value, json};

/// The webhook path the fake accepts.
pub const WEBHOOK_PATH: &str = "/services/T000SIM/B000SIM/simsecret000000000000000";
/// The bot token the fake accepts.
pub const BOT_TOKEN: &str = "xoxb-sim-0000000000-token";
/// The channel that exists.
pub const CHANNEL: &str = "C0SIMALERT";

/// A message the fake holds.
#[derive(Debug, Clone, PartialEq)]
pub struct SimMessage {
    /// Its `ts`.
    pub ts: String,
    /// The thread it belongs to (its parent's `ts`), if a reply.
    pub thread_ts: Option<String>,
    /// Fallback text.
    pub text: String,
    /// Block Kit blocks.
    pub blocks: Value,
    /// Message metadata.
    pub metadata: Option<Value>,
    /// Whether `chat.update` changed it.
    pub edited: bool,
}

#[derive(Debug, Default)]
struct State {
    messages: Vec<SimMessage>,
    webhook: Vec<Value>,
    ledger: Ledger,
    next: u64,
}

/// A running fake Slack.
#[derive(Debug)]
pub struct SlackSim {
    sim: SimServer<State>,
}

fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

fn api_error(code: &str) -> ResponseTemplate {
    ok(json!({"ok": false, "error": code}))
}

impl SimApi for State {
    fn ledger(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    fn respond(&mut self, req: &Request) -> ResponseTemplate {
        respond(self, req)
    }

    fn fault(&mut self, fault: Fault, _: &Request) -> ResponseTemplate {
        match fault {
            Fault::Status {
                status: 429,
                retry_after,
            } => ResponseTemplate::new(429)
                .insert_header("retry-after", retry_after.unwrap_or(1).to_string().as_str())
                .set_body_string("rate_limited"),
            // Slack's API reports most failures inside a 200.
            Fault::Status { status: 200, .. } => api_error("internal_error"),
            Fault::Status { status, .. } => {
                ResponseTemplate::new(status).set_body_string("internal_error")
            }
            Fault::Delay(d) => ResponseTemplate::new(200).set_delay(d),
            Fault::TruncatedJson => ResponseTemplate::new(200).set_body_string("{\"ok\": tr"),
        }
    }
}

fn respond(s: &mut State, req: &Request) -> ResponseTemplate {
    let path = req.url.path().to_string();
    if path.starts_with("/services/") {
        if path != WEBHOOK_PATH {
            return ResponseTemplate::new(404).set_body_string("no_service");
        }
        let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
            return ResponseTemplate::new(400).set_body_string("invalid_payload");
        };
        if body.get("text").is_none() && body.get("blocks").is_none() {
            return ResponseTemplate::new(400).set_body_string("no_text");
        }
        s.webhook.push(body);
        return ResponseTemplate::new(200).set_body_string("ok");
    }
    let auth = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth.is_empty() {
        return api_error("not_authed");
    }
    if auth != format!("Bearer {BOT_TOKEN}") {
        return api_error("invalid_auth");
    }
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let query: std::collections::BTreeMap<String, String> =
        req.url.query_pairs().into_owned().collect();
    match path.as_str() {
        "/api/chat.postMessage" | "/api/chat.update" => {
            if body["channel"] != CHANNEL {
                return api_error("channel_not_found");
            }
            if body
                .get("text")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
                && body.get("blocks").is_none()
            {
                return api_error("no_text");
            }
            if path.ends_with("update") {
                let ts = body["ts"].as_str().unwrap_or("").to_string();
                let Some(m) = s.messages.iter_mut().find(|m| m.ts == ts) else {
                    return api_error("message_not_found");
                };
                m.text = body["text"].as_str().unwrap_or("").to_string();
                m.blocks = body["blocks"].clone();
                m.edited = true;
                return ok(json!({"ok": true, "channel": CHANNEL, "ts": ts, "text": m.text}));
            }
            let thread_ts = body
                .get("thread_ts")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let Some(t) = &thread_ts
                && !s.messages.iter().any(|m| &m.ts == t)
            {
                return api_error("thread_not_found");
            }
            s.next += 1;
            let ts = format!("1795424400.{:06}", s.next);
            s.messages.push(SimMessage {
                ts: ts.clone(),
                thread_ts,
                text: body["text"].as_str().unwrap_or("").to_string(),
                blocks: body["blocks"].clone(),
                metadata: body.get("metadata").cloned(),
                edited: false,
            });
            ok(
                json!({"ok": true, "channel": CHANNEL, "ts": ts, "message": {"type": "message", "text": body["text"], "ts": ts}}),
            )
        }
        "/api/conversations.history" => {
            if query.get("channel").map(String::as_str) != Some(CHANNEL) {
                return api_error("channel_not_found");
            }
            let with_meta = query.get("include_all_metadata").map(String::as_str) == Some("true");
            // Pages as Slack pages them: `limit` (default 100, at most 999) and an opaque cursor.
            let limit = query
                .get("limit")
                .and_then(|l| l.parse::<usize>().ok())
                .unwrap_or(100)
                .clamp(1, 999);
            let skip = match query.get("cursor") {
                Some(c) => match c.strip_prefix("bmV4dF90czo").and_then(|n| n.parse().ok()) {
                    Some(n) => n,
                    None => return api_error("invalid_cursor"),
                },
                None => 0usize,
            };
            let top: Vec<&_> = s
                .messages
                .iter()
                .rev()
                .filter(|m| m.thread_ts.is_none())
                .collect();
            let messages: Vec<Value> = top
                .iter()
                .skip(skip)
                .take(limit)
                .map(|m| {
                    let mut v = json!({"type": "message", "ts": m.ts, "text": m.text});
                    if with_meta && let Some(meta) = &m.metadata {
                        v["metadata"] = meta.clone();
                    }
                    v
                })
                .collect();
            let more = skip + limit < top.len();
            let next = if more {
                format!("bmV4dF90czo{}", skip + limit)
            } else {
                String::new()
            };
            ok(json!({"ok": true, "messages": messages, "has_more": more,
                      "response_metadata": {"next_cursor": next}}))
        }
        _ => api_error("unknown_method"),
    }
}

impl SlackSim {
    /// Starts the server.
    pub async fn start() -> Self {
        Self {
            sim: SimServer::start(State::default()).await,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.sim.state()
    }

    /// The base URL (the Web API is at `…/api/`).
    pub fn uri(&self) -> String {
        self.sim.uri()
    }

    /// The webhook URL that works.
    pub fn webhook_url(&self) -> String {
        format!("{}{WEBHOOK_PATH}", self.sim.uri())
    }

    /// Messages posted through the Web API, in order.
    pub fn messages(&self) -> Vec<SimMessage> {
        self.state().messages.clone()
    }

    /// Bodies posted to the webhook, in order.
    pub fn webhook_posts(&self) -> Vec<Value> {
        self.state().webhook.clone()
    }
}

impl Simulator for SlackSim {
    fn with_ledger<R>(&self, f: impl FnOnce(&mut Ledger) -> R) -> R {
        self.sim.with_ledger(f)
    }
}
