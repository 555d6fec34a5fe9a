//! Routing the simulator's HTTP requests, authentication, and injected faults.

use std::collections::BTreeMap;
use std::time::Duration;

use ops_core::sim::{Ledger, Request, ResponseTemplate, SimApi};
use serde_json::{Value, json};

use super::{Fault, SimState};

/// A response before it becomes a wiremock template.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    pub status: u16,
    pub body: Value,
    /// A non-JSON body (object media), sent instead of `body`.
    pub raw: Option<Vec<u8>>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body,
            raw: None,
            headers: Vec::new(),
        }
    }

    pub fn raw(status: u16, bytes: Vec<u8>) -> Self {
        Self {
            raw: Some(bytes),
            ..Self::json(status, Value::Null)
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// Google's error envelope.
pub(super) fn google_error(status: u16, name: &str, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"error": {"code": status, "message": message, "status": name}}),
    )
}

impl SimApi for SimState {
    fn ledger(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    fn respond(&mut self, req: &Request) -> ResponseTemplate {
        respond(self, req)
    }

    fn fault(&mut self, fault: Fault, _: &Request) -> ResponseTemplate {
        fault_response(&fault)
    }
}

/// Every request, with the state locked.
fn respond(state: &mut SimState, req: &Request) -> ResponseTemplate {
    let method = req.method.as_str().to_string();
    let path = req.url.path().to_string();
    let authorized = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer ") && v.len() > 7);
    if !authorized {
        return template(google_error(
            401,
            "UNAUTHENTICATED",
            "Request is missing required authentication credential.",
        ));
    }
    let query: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
    if path.starts_with("/upload/storage/v1/") || path.starts_with("/storage/v1/") {
        return template(state.storage_route(&method, req, &query));
    }
    let body: Value = if req.body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(_) => {
                return template(google_error(
                    400,
                    "INVALID_ARGUMENT",
                    "Invalid JSON payload received.",
                ));
            }
        }
    };
    template(route(state, &method, &path, &query, &body))
}

fn route(
    state: &mut SimState,
    method: &str,
    path: &str,
    query: &BTreeMap<String, String>,
    body: &Value,
) -> Reply {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("POST", ["v2", "entries:list"]) => state.list_entries(body),
        (_, ["bigquery", "v2", "projects", p, "queries", rest @ ..]) => {
            if *p != state.project {
                return google_error(
                    403,
                    "PERMISSION_DENIED",
                    &format!(
                        "Access Denied: Project {p}: User does not have bigquery.jobs.create permission in project {p}."
                    ),
                );
            }
            state.bigquery_route(method, rest, query, body)
        }
        (_, ["v1", "billingAccounts", account, "budgets", rest @ ..]) => {
            state.budgets_route(method, account, rest, query, body)
        }
        ("GET", ["v3", "projects", project, "timeSeries"]) => {
            if *project != state.project {
                return google_error(
                    403,
                    "PERMISSION_DENIED",
                    "Permission monitoring.timeSeries.list denied.",
                );
            }
            state.list_time_series(query)
        }
        (
            _,
            [
                "v1",
                "projects",
                p,
                "serviceAccounts",
                email,
                "keys",
                rest @ ..,
            ],
        ) => {
            if *p != state.project {
                return google_error(
                    403,
                    "PERMISSION_DENIED",
                    "Permission 'iam.serviceAccountKeys.list' denied.",
                );
            }
            state.keys_route(method, email, rest, query)
        }
        (_, ["v1", "projects", p, "instances" | "operations", ..]) => {
            if *p != state.project {
                return google_error(
                    403,
                    "PERMISSION_DENIED",
                    "The client is not authorized to make this request.",
                );
            }
            state.sql_route(method, &segments[3..], query, body)
        }
        (_, ["v1", "projects", p, "secrets", rest @ ..]) => {
            if *p != state.project {
                return google_error(
                    403,
                    "PERMISSION_DENIED",
                    "Permission denied on resource project.",
                );
            }
            state.secret_route(method, rest, query, body)
        }
        (_, ["v2", "projects", p, "locations", l, rest @ ..]) => {
            if *p != state.project || *l != state.region {
                return google_error(
                    404,
                    "NOT_FOUND",
                    &format!("Location '{l}' of project '{p}' is not simulated."),
                );
            }
            let name = path.trim_start_matches("/v2/").to_string();
            match (method, rest) {
                ("GET", ["services", _]) => state.get_service(&name),
                ("PATCH", ["services", _]) => state.patch_service(&name, query, body),
                ("GET", ["services", _, "revisions"]) => {
                    state.list_revisions(name.trim_end_matches("/revisions"), query)
                }
                ("GET", ["services", _, "revisions", _]) => state.get_revision(&name),
                ("DELETE", ["services", _, "revisions", _]) => state.delete_revision(&name, query),
                ("GET", ["operations", _]) => state.get_operation(&name),
                _ => google_error(
                    404,
                    "NOT_FOUND",
                    &format!("{method} {path} is not simulated"),
                ),
            }
        }
        _ => google_error(
            404,
            "NOT_FOUND",
            &format!("{method} {path} is not simulated"),
        ),
    }
}

fn template(reply: Reply) -> ResponseTemplate {
    let mut t = match reply.raw {
        Some(bytes) => {
            ResponseTemplate::new(reply.status).set_body_raw(bytes, "application/octet-stream")
        }
        None if reply.body.is_null() => ResponseTemplate::new(reply.status),
        None => ResponseTemplate::new(reply.status)
            .insert_header("content-type", "application/json; charset=UTF-8")
            .set_body_string(reply.body.to_string()),
    };
    for (k, v) in reply.headers {
        t = t.insert_header(k.as_str(), v.as_str());
    }
    t
}

fn fault_response(fault: &Fault) -> ResponseTemplate {
    match fault {
        Fault::Status {
            status,
            retry_after,
        } => {
            let name = match status {
                400 => "INVALID_ARGUMENT",
                401 => "UNAUTHENTICATED",
                403 => "PERMISSION_DENIED",
                404 => "NOT_FOUND",
                409 => "ABORTED",
                429 => "RESOURCE_EXHAUSTED",
                503 => "UNAVAILABLE",
                _ => "INTERNAL",
            };
            let mut t = template(google_error(*status, name, "injected fault"));
            if let Some(secs) = retry_after {
                t = t.insert_header("retry-after", secs.to_string().as_str());
            }
            t
        }
        Fault::Delay(d) => ResponseTemplate::new(504).set_delay(*d + Duration::from_millis(1)),
        Fault::TruncatedJson => ResponseTemplate::new(200)
            .insert_header("content-type", "application/json")
            .set_body_string("{\"name\": \"projects/"),
    }
}
