//! The fixture form of an official API description (written by `conformance/extract.py`):
//! operations with their method, path template, query parameters and request body schema.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One API's description, as vendored under `conformance/descriptions/`.
#[derive(Debug, Clone, Deserialize)]
pub struct Description {
    /// Where it was extracted from (document and revision).
    pub source: String,
    /// The ops provider whose clients call it (`gcp`, `github`, `vercel`).
    pub provider: String,
    /// Query parameters every operation accepts (Google's `alt`, `fields`, …).
    #[serde(default)]
    pub global_query: BTreeMap<String, Param>,
    /// The operations.
    pub operations: Vec<Operation>,
    /// Named schemas that bodies refer to.
    #[serde(default)]
    pub schemas: BTreeMap<String, Schema>,
}

/// One operation.
#[derive(Debug, Clone, Deserialize)]
pub struct Operation {
    /// Its id in the description.
    pub id: String,
    /// The HTTP method.
    pub method: String,
    /// The path template: `{name}` is one segment, `{+name}` one or more.
    pub path: String,
    /// Its query parameters.
    #[serde(default)]
    pub query: BTreeMap<String, Param>,
    /// The request body: a schema name, an inline schema, or none.
    #[serde(default)]
    pub body: Option<Body>,
    /// The success reply's schema (a name in [`Description::schemas`]), when vendored.
    #[serde(default)]
    pub response: Option<String>,
}

/// A request body's schema.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Body {
    /// A name in [`Description::schemas`].
    Named(String),
    /// The schema itself.
    Inline(Box<Schema>),
}

/// A query parameter.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Param {
    /// `string`, `integer`, `number`, `boolean`, `array`, or `any`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// `int64`, `uint64`, `int32`, … (Google writes 64-bit integers as strings).
    #[serde(default)]
    pub format: Option<String>,
    /// The values allowed, if listed.
    #[serde(rename = "enum", default)]
    pub allowed: Option<Vec<String>>,
    /// Whether it must be present.
    #[serde(default)]
    pub required: bool,
    /// Whether it may appear more than once.
    #[serde(default)]
    pub repeated: bool,
}

/// A JSON-Schema-like node.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Schema {
    /// A name in [`Description::schemas`].
    #[serde(rename = "$ref", default)]
    pub reference: Option<String>,
    /// `object`, `array`, `string`, `integer`, `number`, `boolean`, `any`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// `int64`, `date-time`, …
    #[serde(default)]
    pub format: Option<String>,
    /// The values allowed, if listed.
    #[serde(rename = "enum", default)]
    pub allowed: Option<Vec<serde_json::Value>>,
    /// Named fields.
    #[serde(default)]
    pub properties: Option<BTreeMap<String, Schema>>,
    /// Array items.
    #[serde(default)]
    pub items: Option<Box<Schema>>,
    /// A tuple's items, position by position (`[time, "value"]`); the array has exactly these
    /// unless `items` admits more.
    #[serde(rename = "prefixItems", default)]
    pub prefix_items: Option<Vec<Schema>>,
    /// Map values (or `true`/`false` for any/none).
    #[serde(rename = "additionalProperties", default)]
    pub additional: Option<Additional>,
    /// Fields an object must have.
    #[serde(default)]
    pub required: Vec<String>,
    /// Whether `null` is allowed.
    #[serde(default)]
    pub nullable: bool,
    /// Alternatives, one of which must hold.
    #[serde(rename = "oneOf", default)]
    pub one_of: Option<Vec<Schema>>,
    /// Alternatives, at least one of which must hold.
    #[serde(rename = "anyOf", default)]
    pub any_of: Option<Vec<Schema>>,
    /// Parts, all of which must hold.
    #[serde(rename = "allOf", default)]
    pub all_of: Option<Vec<Schema>>,
}

/// `additionalProperties`: a schema for every other field, or whether any is allowed.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Additional {
    /// Any other field (`true`) or none (`false`).
    Allowed(bool),
    /// Other fields, each of this schema.
    Schema(Box<Schema>),
}

impl Description {
    /// Reads a fixture.
    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("not a description fixture: {e}"))
    }
}
