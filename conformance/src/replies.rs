//! Replies derived from a description's schema, for feeding to the clients' decoders: the
//! shapes a real server may send and a convenient fake never does. A client that fails to
//! decode one of them rejects a valid reply.
//!
//! From one schema: `typical` (every field, typical values), `sparse` (only the required
//! fields and those a test names as always sent), `nulls` (every nullable field `null`),
//! `empty-objects` (every optional object `{}`), `unknown-fields` (an extra field in every
//! object), one variant per enum value plus a value added later, and one per alternative of a
//! field that may take several shapes (`oneOf`/`anyOf`).

use serde_json::{Map, Value, json};

use crate::description::{Additional, Description, Schema};

/// One reply.
#[derive(Debug, Clone)]
pub struct Variant {
    /// What it exercises (`sparse`, `enum body.state=closed`, …).
    pub name: String,
    /// The JSON.
    pub value: Value,
}

/// How deep nested objects are filled (descriptions are recursive in places).
const MAX_DEPTH: usize = 6;

/// An enum value no description lists: a server may add values after the client was built.
pub const LATER_ENUM_VALUE: &str = "VALUE_ADDED_LATER";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Typical,
    Sparse,
    Nulls,
    EmptyObjects,
    Unknown,
}

struct Gen<'a> {
    d: &'a Description,
    keep: &'a [&'a str],
}

impl Gen<'_> {
    fn resolve<'s>(&'s self, mut s: &'s Schema) -> &'s Schema {
        for _ in 0..32 {
            match s.reference.as_deref().and_then(|r| self.d.schemas.get(r)) {
                Some(next) => s = next,
                None => break,
            }
        }
        s
    }

    fn value(&self, s: &Schema, mode: Mode, path: &str, depth: usize) -> Value {
        let s = self.resolve(s);
        if let Some(alts) = s.one_of.as_ref().or(s.any_of.as_ref())
            && let Some(first) = alts.first()
        {
            return self.value(first, mode, path, depth);
        }
        if let Some(parts) = &s.all_of {
            // `allOf: [$ref]` (with `nullable`) is how OpenAPI 3.0 writes a nullable reference,
            // to an enum or a string as often as to an object.
            if let [only] = parts.as_slice() {
                return self.value(only, mode, path, depth);
            }
            let mut merged = Map::new();
            for p in parts {
                if let Value::Object(m) = self.value(p, mode, path, depth) {
                    merged.extend(m);
                }
            }
            return Value::Object(merged);
        }
        if let Some(first) = s.allowed.as_ref().and_then(|a| a.first()) {
            return first.clone();
        }
        match s.kind.as_deref() {
            Some("object") | None if s.properties.is_some() || s.additional.is_some() => {
                self.object(s, mode, path, depth)
            }
            Some("object") => json!({}),
            Some("array") if s.prefix_items.is_some() => Value::Array(
                s.prefix_items
                    .iter()
                    .flatten()
                    .enumerate()
                    .map(|(i, item)| self.value(item, mode, &format!("{path}[{i}]"), depth + 1))
                    .collect(),
            ),
            Some("array") => match (&s.items, depth < MAX_DEPTH) {
                (Some(item), true) => {
                    json!([self.value(item, mode, &format!("{path}[]"), depth + 1)])
                }
                _ => json!([]),
            },
            Some("integer") => json!(1),
            Some("number") => json!(1.5),
            Some("boolean") => json!(true),
            Some("string") => json!(typical_string(s.format.as_deref())),
            _ => json!("x"),
        }
    }

    fn object(&self, s: &Schema, mode: Mode, path: &str, depth: usize) -> Value {
        let mut out = Map::new();
        if depth >= MAX_DEPTH {
            return Value::Object(out);
        }
        for (name, field) in s.properties.iter().flatten() {
            let at = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            let required = s.required.contains(name) || self.keep.contains(&at.as_str());
            let field_s = self.resolve(field);
            let is_object =
                field_s.properties.is_some() || field_s.kind.as_deref() == Some("object");
            let v = match mode {
                Mode::Sparse if !required => continue,
                // Nullable means "may be null", required or not.
                Mode::Nulls if field_s.nullable || field.nullable => Value::Null,
                Mode::EmptyObjects if is_object && !required => json!({}),
                _ => self.value(field, mode, &at, depth + 1),
            };
            out.insert(name.clone(), v);
        }
        if let Some(Additional::Schema(a)) = &s.additional
            && s.properties.is_none()
            && mode != Mode::Sparse
        {
            out.insert(
                "some-key".into(),
                self.value(a, mode, &format!("{path}.*"), depth + 1),
            );
        }
        let closed = matches!(s.additional, Some(Additional::Allowed(false)));
        if mode == Mode::Unknown && !closed && s.properties.is_some() {
            out.insert(
                "fieldAddedLater".into(),
                json!({"nested": [1, "two", null]}),
            );
        }
        Value::Object(out)
    }

    /// Every enum field's path (dotted, `[]` for array items) with its values, and every
    /// field with alternatives (`oneOf`/`anyOf`) with a typical value of each.
    fn enums(&self, s: &Schema, path: &str, depth: usize, out: &mut Vec<(String, Vec<Value>)>) {
        let s = self.resolve(s);
        if depth > MAX_DEPTH {
            return;
        }
        if let Some([only]) = s.all_of.as_deref() {
            return self.enums(only, path, depth, out);
        }
        if let Some(allowed) = &s.allowed
            && !path.is_empty()
        {
            let mut values = allowed.clone();
            values.push(json!(LATER_ENUM_VALUE));
            out.push((path.to_string(), values));
        }
        if let Some(alts) = s.one_of.as_ref().or(s.any_of.as_ref())
            && !path.is_empty()
            && alts.len() > 1
        {
            let values = alts
                .iter()
                .map(|a| self.value(a, Mode::Typical, path, depth + 1))
                .collect();
            out.push((path.to_string(), values));
        }
        for (name, field) in s.properties.iter().flatten() {
            let at = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            self.enums(field, &at, depth + 1, out);
        }
        if let Some(item) = &s.items {
            self.enums(item, &format!("{path}[]"), depth + 1, out);
        }
    }
}

fn typical_string(format: Option<&str>) -> &'static str {
    match format {
        Some("int64" | "uint64" | "int32" | "uint32") => "1",
        Some("date-time" | "google-datetime") => "2026-11-23T09:00:00.123Z",
        Some("date") => "2026-11-23",
        Some("google-duration") => "1.5s",
        Some("byte") => "AAAA",
        Some("uri" | "url") => "https://example.com/x",
        Some("double" | "float") => "1.5",
        _ => "x",
    }
}

/// Sets the value at `path` (dotted; `[]` steps into every item) in `v`.
fn set_at(v: &mut Value, path: &str, new: &Value) {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let (key, into_items) = match head.strip_suffix("[]") {
        Some(k) => (k, true),
        None => (head, false),
    };
    // An empty key is the value itself (a reply that is an array: `[].field`).
    let slot = if key.is_empty() {
        v
    } else {
        let Some(slot) = v.get_mut(key) else { return };
        slot
    };
    let targets: Vec<&mut Value> = if into_items {
        slot.as_array_mut()
            .map(|a| a.iter_mut().collect())
            .unwrap_or_default()
    } else {
        vec![slot]
    };
    for t in targets {
        match rest {
            Some(r) => set_at(t, r, new),
            None if into_items => *t = new.clone(),
            None => *t = new.clone(),
        }
    }
}

/// The replies of `schema` (a name in `d.schemas`). `keep` lists dotted paths a server always
/// sends although the description does not mark them required; the test using them says why.
///
/// A reply that may take several shapes (`oneOf`/`anyOf` at the top) gets the whole set for
/// each shape, named `shape N: …`.
pub fn variants(d: &Description, schema: &str, keep: &[&str]) -> Vec<Variant> {
    let Some(root) = d.schemas.get(schema) else {
        return Vec::new();
    };
    let g = Gen { d, keep };
    let root = g.resolve(root);
    match root.one_of.as_ref().or(root.any_of.as_ref()) {
        Some(shapes) if shapes.len() > 1 => shapes
            .iter()
            .enumerate()
            .flat_map(|(i, shape)| {
                of_shape(&g, shape).into_iter().map(move |v| Variant {
                    name: format!("shape {}: {}", i + 1, v.name),
                    value: v.value,
                })
            })
            .collect(),
        _ => of_shape(&g, root),
    }
}

fn of_shape(g: &Gen<'_>, root: &Schema) -> Vec<Variant> {
    let mut out: Vec<Variant> = [
        ("typical", Mode::Typical),
        ("sparse", Mode::Sparse),
        ("nulls", Mode::Nulls),
        ("empty-objects", Mode::EmptyObjects),
        ("unknown-fields", Mode::Unknown),
    ]
    .into_iter()
    .map(|(name, mode)| Variant {
        name: name.into(),
        value: g.value(root, mode, "", 0),
    })
    .collect();
    let mut enums = Vec::new();
    g.enums(root, "", 0, &mut enums);
    let typical = g.value(root, Mode::Typical, "", 0);
    for (path, values) in enums {
        for value in values {
            let mut v = typical.clone();
            set_at(&mut v, &path, &value);
            out.push(Variant {
                name: format!("value {path}={value}"),
                value: v,
            });
        }
    }
    out
}
