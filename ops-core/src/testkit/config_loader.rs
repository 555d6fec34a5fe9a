//! The property every runbook config loader must have: whatever TOML it is given, it returns a
//! config that validates or a typed [`ErrorKind::InvalidInput`], never a panic; and the default
//! config, written out, loads back unchanged.

use std::fmt::Debug;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde::Serialize;
use serde_json::Value;

use crate::ErrorKind;
use crate::config::RunbookConfig;

/// Runs `cases` random configs through `C::from_toml` and checks the property; panics with the
/// smallest failing TOML found. Call it from a test, with a bounded number of cases (a few
/// hundred run in well under a second).
///
/// ```
/// ops_core::testkit::config_loader::<ops_core::runbooks::RotateConfig>(64);
/// ```
pub fn config_loader<C>(cases: u32)
where
    C: RunbookConfig + Serialize + PartialEq + Debug,
{
    config_loader_from(&C::default(), cases)
}

/// [`config_loader`] around `base` instead of the default (for configs whose default does
/// not validate on its own, such as a router with no routes yet).
pub fn config_loader_from<C>(base: &C, cases: u32)
where
    C: RunbookConfig + Serialize + PartialEq + Debug,
{
    let default = serde_json::to_value(base).expect("a config serializes to JSON");
    let written = render_table(&default);
    match C::from_toml(&written) {
        Ok(back) => assert_eq!(
            &back, base,
            "the config, written as {written:?}, loads back different"
        ),
        Err(e) => panic!("the config, written as {written:?}, does not load: {e}"),
    }

    // Every field, optional ones included (they serialize as null).
    let mut paths = Vec::new();
    leaf_paths(&default, &mut Vec::new(), &mut paths);
    // Mostly a value of the default's own type (so loading gets past the type check and
    // validation is what is tried), sometimes anything.
    let leaves: Vec<Value> = paths
        .iter()
        .map(|p| get(&default, p).cloned().unwrap_or(Value::Null))
        .collect();
    let mutation = (
        0..paths.len(),
        prop::bool::weighted(0.85),
        number(),
        text(),
        value(),
    );
    let mutations = proptest::collection::vec(mutation, 1..5);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&mutations, |mutations| {
        let mut doc = default.clone();
        for (i, same_type, number, text, anything) in mutations {
            let v = match (&leaves[i], same_type) {
                (Value::Number(_), true) => number,
                (Value::String(_), true) => text,
                (Value::Bool(_), true) => Value::Bool(!leaves[i].as_bool().unwrap_or(false)),
                _ => anything,
            };
            set(&mut doc, &paths[i], v);
        }
        let text = render_table(&doc);
        match C::from_toml(&text) {
            Ok(config) => prop_assert!(
                config.validate().is_ok(),
                "loaded but does not validate: {text}"
            ),
            Err(e) => prop_assert!(
                matches!(e.kind(), ErrorKind::InvalidInput { .. }),
                "not InvalidInput but {e} for {text}"
            ),
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("config loader {}: {e}", std::any::type_name::<C>());
    }
}

fn leaf_paths(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                at.push(k.clone());
                leaf_paths(child, at, out);
                at.pop();
            }
        }
        _ => out.push(at.clone()),
    }
}

fn get<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |here, key| here.get(key))
}

fn set(doc: &mut Value, path: &[String], v: Value) {
    let mut here = doc;
    for key in &path[..path.len().saturating_sub(1)] {
        if !here.is_object() {
            *here = Value::Object(Default::default());
        }
        here = here
            .as_object_mut()
            .map(|m| m.entry(key.clone()).or_insert(Value::Null))
            .expect("an object");
    }
    if let (Some(last), Some(map)) = (path.last(), here.as_object_mut()) {
        map.insert(last.clone(), v);
    }
}

/// Numbers at the edges: limits of the integer types, zero, negatives, special floats.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            0i64,
            1,
            -1,
            100,
            u32::MAX as i64,
            u32::MAX as i64 + 1,
            i64::MAX,
            i64::MIN
        ])
        .prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0i64..1000).prop_map(Value::from),
        any::<f64>().prop_map(special_float),
        prop::sample::select(vec!["nan", "inf", "-inf", "1e308", "-0.0", "0.5", "1.0"])
            .prop_map(|s| Value::String(format!("\u{0}float:{s}"))),
    ]
}

/// Text: durations (well formed, overflowing, with unknown units) and odd strings.
fn text() -> impl Strategy<Value = Value> {
    let duration = (
        "[0-9]{0,22}(\\.[0-9]{0,3})?",
        "(ms|s|m|h|d|w|y|)",
        1..4usize,
    )
        .prop_map(|(n, unit, times)| Value::String(format!("{n}{unit}").repeat(times)));
    prop_oneof![
        3 => duration,
        1 => "(\\PC|[ ./\\\\-]){0,12}".prop_map(Value::String),
    ]
}

/// Anything a TOML value can be, nested a little.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![text(), number(), any::<bool>().prop_map(Value::Bool),];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop::sample::select(vec![
                    "percent",
                    "bake",
                    "rule",
                    "metric",
                    "warning",
                    "critical",
                    "window",
                    "after",
                    "channels",
                    "table",
                    "column",
                    "older_than",
                    "batch",
                    "hourly",
                ]),
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// JSON holds no NaN or infinity: those travel as a marked string the renderer writes bare.
fn special_float(f: f64) -> Value {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or_else(|| Value::String(format!("\u{0}float:{f}")))
}

fn render_table(v: &Value) -> String {
    let Value::Object(map) = v else {
        return String::new();
    };
    let mut out = String::new();
    for (k, v) in map {
        if let Some(text) = render_inline(v) {
            out.push_str(&format!("{} = {text}\n", key(k)));
        }
    }
    out
}

fn key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        k.to_string()
    } else {
        quote(k)
    }
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn render_inline(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => format!("{f:?}"),
            _ => n.to_string(),
        },
        Value::String(s) => match s.strip_prefix("\u{0}float:") {
            Some(f) => match f {
                "NaN" | "nan" => "nan".into(),
                "inf" => "inf".into(),
                "-inf" => "-inf".into(),
                other => other.to_string(),
            },
            None => quote(s),
        },
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(render_inline).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .filter_map(|(k, v)| render_inline(v).map(|t| format!("{} = {t}", key(k))))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
    })
}
