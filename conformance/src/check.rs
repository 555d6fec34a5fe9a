//! Checks one recorded request against descriptions: the operation (method and path
//! template), its query parameters (known, typed, required ones present) and its JSON body
//! (known fields, types, enums).

use std::collections::BTreeMap;

use ops_core::http::record::RecordedRequest;
use serde_json::Value;

use crate::description::{Additional, Body, Description, Operation, Param, Schema};

/// Whether `path` (percent-encoded, as sent) fits `template`: `{name}` matches one non-empty
/// segment, `{+name}` one or more, anything else literally (`{name}:verb` included).
pub fn path_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    segments_match(&t, &p)
}

fn segments_match(t: &[&str], p: &[&str]) -> bool {
    match (t.first(), p.first()) {
        (None, None) => true,
        (None, _) | (_, None) => false,
        // A leading `{+prefix}` may also be empty (an API served at the root or below a path).
        (Some(seg), _) if seg.starts_with("{+prefix}") && segments_match(&t[1..], p) => true,
        (Some(seg), _) if seg.starts_with("{+") => {
            // A reserved expansion takes one or more segments; the rest must follow.
            let suffix = seg.split_once('}').map_or("", |(_, s)| s);
            (1..=p.len()).any(|n| {
                let last = p[n - 1];
                last.ends_with(suffix)
                    && (n > 1 || last.len() > suffix.len())
                    && segments_match(&t[1..], &p[n..])
            })
        }
        (Some(seg), Some(got)) => segment_matches(seg, got) && segments_match(&t[1..], &p[1..]),
    }
}

/// One segment: literal text with at most one `{var}` somewhere in it.
fn segment_matches(template: &str, got: &str) -> bool {
    match template.split_once('{') {
        None => template == got,
        Some((prefix, rest)) => {
            let suffix = rest.split_once('}').map_or("", |(_, s)| s);
            got.len() > prefix.len() + suffix.len()
                && got.starts_with(prefix)
                && got.ends_with(suffix)
                && !got[prefix.len()..got.len() - suffix.len()].is_empty()
        }
    }
}

/// What is wrong with a request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    /// The operation it was matched to (or `METHOD path` when none was).
    pub operation: String,
    /// What is wrong.
    pub problem: String,
}

/// The operations of `descriptions` that `request`'s method and path fit.
pub fn candidates<'a>(
    descriptions: &'a [Description],
    request: &RecordedRequest,
) -> Vec<(&'a Description, &'a Operation)> {
    descriptions
        .iter()
        .flat_map(|d| d.operations.iter().map(move |o| (d, o)))
        .filter(|(_, o)| o.method == request.method && path_matches(&o.path, &request.path))
        .collect()
}

/// The violations of `request` against `descriptions`: none when some operation it fits
/// accepts it; otherwise those of the closest one (or "no such operation").
pub fn check(descriptions: &[Description], request: &RecordedRequest) -> Vec<Violation> {
    let found = candidates(descriptions, request);
    if found.is_empty() {
        return vec![Violation {
            operation: format!("{} {}", request.method, request.path),
            problem: "no operation in the description has this method and path".into(),
        }];
    }
    let mut best: Option<Vec<Violation>> = None;
    for (d, op) in found {
        let v = check_operation(d, op, request);
        if v.is_empty() {
            return v;
        }
        if best.as_ref().is_none_or(|b| v.len() < b.len()) {
            best = Some(v);
        }
    }
    best.unwrap_or_default()
}

/// The violations of a simulator's reply recorded with `request`: checked against the reply
/// schema of the operation it answers (fields the description does not have, types, enum
/// values, required fields). `None` when no matching operation has a reply schema vendored.
pub fn check_reply(
    descriptions: &[Description],
    request: &RecordedRequest,
) -> Option<Vec<Violation>> {
    let reply = request.reply.as_ref()?;
    let mut best: Option<Vec<Violation>> = None;
    for (d, op) in candidates(descriptions, request) {
        let Some(schema) = op.response.as_ref().and_then(|n| d.schemas.get(n)) else {
            continue;
        };
        let mut problems = Vec::new();
        value_problems(d, schema, reply, "reply", false, &mut problems);
        let v: Vec<Violation> = problems
            .into_iter()
            .map(|problem| Violation {
                operation: format!("{} (simulator reply)", op.id),
                problem,
            })
            .collect();
        if v.is_empty() {
            return Some(v);
        }
        if best.as_ref().is_none_or(|b| v.len() < b.len()) {
            best = Some(v);
        }
    }
    best
}

fn check_operation(d: &Description, op: &Operation, r: &RecordedRequest) -> Vec<Violation> {
    let mut problems = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, value) in &r.query {
        *counts.entry(name.as_str()).or_default() += 1;
        match op.query.get(name).or_else(|| d.global_query.get(name)) {
            None => problems.push(format!("unknown query parameter {name:?}")),
            Some(p) => {
                if let Some(why) = param_problem(p, value) {
                    problems.push(format!("query parameter {name:?}: {why}"));
                }
            }
        }
    }
    for (name, n) in counts {
        let p = op.query.get(name).or_else(|| d.global_query.get(name));
        if n > 1 && p.is_some_and(|p| !p.repeated && p.kind != "array") {
            problems.push(format!("query parameter {name:?} given {n} times"));
        }
    }
    for (name, p) in &op.query {
        if p.required && !r.query.iter().any(|(k, _)| k == name) {
            problems.push(format!("required query parameter {name:?} missing"));
        }
    }
    match (&op.body, &r.body) {
        (Some(body), Some(value)) => {
            let schema = match body {
                Body::Named(name) => d.schemas.get(name).cloned().unwrap_or_default(),
                Body::Inline(s) => (**s).clone(),
            };
            let patch = r.method == "PATCH";
            value_problems(d, &schema, value, "body", patch, &mut problems);
        }
        (None, Some(value)) if value != &Value::Object(Default::default()) => {
            problems.push("a JSON body where the description has none".into());
        }
        _ => {}
    }
    problems
        .into_iter()
        .map(|problem| Violation {
            operation: op.id.clone(),
            problem,
        })
        .collect()
}

fn param_problem(p: &Param, value: &str) -> Option<String> {
    let ok = match (p.kind.as_str(), p.format.as_deref()) {
        ("integer", _) | ("string", Some("int64" | "int32")) => value.parse::<i64>().is_ok(),
        ("string", Some("uint64" | "uint32")) => value.parse::<u64>().is_ok(),
        ("number", _) => value.parse::<f64>().is_ok_and(f64::is_finite),
        ("boolean", _) => matches!(value, "true" | "false"),
        _ => true,
    };
    if !ok {
        return Some(format!(
            "{value:?} is not a {}",
            p.format.as_deref().unwrap_or(&p.kind)
        ));
    }
    match &p.allowed {
        Some(allowed) if !allowed.iter().any(|a| a == value) => {
            Some(format!("{value:?} is not one of {allowed:?}"))
        }
        _ => None,
    }
}

/// Resolves `$ref`s (bounded, so a cycle cannot loop).
fn resolve<'a>(d: &'a Description, mut s: &'a Schema) -> &'a Schema {
    for _ in 0..32 {
        match s.reference.as_deref().and_then(|r| d.schemas.get(r)) {
            Some(next) => s = next,
            None => break,
        }
    }
    s
}

fn value_problems(
    d: &Description,
    schema: &Schema,
    v: &Value,
    at: &str,
    patch: bool,
    out: &mut Vec<String>,
) {
    let s = resolve(d, schema);
    if v.is_null() {
        // A patch clears a field with null (Google's patch semantics).
        if !(s.nullable || patch) {
            out.push(format!(
                "{at}: null where the description does not allow it"
            ));
        }
        return;
    }
    for (alts, all) in [(&s.one_of, false), (&s.any_of, false), (&s.all_of, true)] {
        if let Some(alts) = alts {
            let results: Vec<Vec<String>> = alts
                .iter()
                .map(|a| {
                    let mut p = Vec::new();
                    value_problems(d, a, v, at, patch, &mut p);
                    p
                })
                .collect();
            let ok = if all {
                results.iter().all(Vec::is_empty)
            } else {
                results.iter().any(Vec::is_empty)
            };
            if !ok {
                // Report against the alternative of the value's own type with the fewest
                // problems: an array reply is judged by the array alternative.
                let closest = alts
                    .iter()
                    .zip(results)
                    .min_by_key(|(a, p)| (!same_type(resolve(d, a), v), p.len()))
                    .map(|(_, p)| p)
                    .unwrap_or_default();
                out.extend(closest);
            }
        }
    }
    let kind = s.kind.as_deref().unwrap_or("");
    let type_ok = match kind {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.as_i64().is_some() || v.as_u64().is_some(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => true,
    };
    if !type_ok {
        out.push(format!(
            "{at}: {} where the description has {kind}",
            type_name(v)
        ));
        return;
    }
    if let Some(allowed) = &s.allowed
        && !allowed.contains(v)
    {
        out.push(format!("{at}: {v} is not one of the described values"));
    }
    match v {
        Value::Object(map) => {
            if !patch {
                for name in s.required.iter().filter(|n| !map.contains_key(n.as_str())) {
                    out.push(format!("{at}.{name}: required and missing"));
                }
            }
            for (k, child) in map {
                let field = s.properties.as_ref().and_then(|p| p.get(k));
                let path = format!("{at}.{k}");
                match (field, &s.additional) {
                    (Some(f), _) => value_problems(d, f, child, &path, patch, out),
                    (None, Some(Additional::Schema(a))) => {
                        value_problems(d, a, child, &path, patch, out)
                    }
                    (None, Some(Additional::Allowed(true))) => {}
                    // Fields of a schema with no listed properties are not checked.
                    (None, _) if s.properties.is_none() => {}
                    (None, _) => out.push(format!("{path}: a field the description does not have")),
                }
            }
        }
        Value::Array(items) if s.prefix_items.is_some() => {
            let tuple = s.prefix_items.as_deref().unwrap_or_default();
            if items.len() < tuple.len() || (items.len() > tuple.len() && s.items.is_none()) {
                out.push(format!(
                    "{at}: {} items where the description has {}",
                    items.len(),
                    tuple.len()
                ));
            }
            for (i, (item, child)) in tuple.iter().zip(items).enumerate() {
                value_problems(d, item, child, &format!("{at}[{i}]"), patch, out);
            }
        }
        Value::Array(items) => {
            if let Some(item) = &s.items {
                for (i, child) in items.iter().enumerate() {
                    value_problems(d, item, child, &format!("{at}[{i}]"), patch, out);
                }
            }
        }
        _ => {}
    }
}

/// Whether `v` has the type `s` declares (a schema without a type admits any).
fn same_type(s: &Schema, v: &Value) -> bool {
    match s.kind.as_deref() {
        Some("object") => v.is_object(),
        Some("array") => v.is_array(),
        Some("string") => v.is_string(),
        Some("integer" | "number") => v.is_number(),
        Some("boolean") => v.is_boolean(),
        _ => true,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
