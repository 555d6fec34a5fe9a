//! Retention deletes: rows older than an age, and only those that match typed conditions
//! (seed 000: notifications older than 90 days *and* `status = 'completed'`). Names are quoted
//! identifiers; values are always bound parameters, never spliced into the SQL.

use std::time::Duration;

use ops_core::config::human_duration;
use ops_core::{Error, Result};
use serde::{Deserialize, Serialize};
use tokio_postgres::types::ToSql;

use crate::connect::Postgres;
use crate::error::pg_error;

/// The most conditions one rule may carry.
pub const MAX_CONDITIONS: usize = 16;
/// The most values one `in` / `not_in` list may carry.
pub const MAX_LIST: usize = 1000;

/// Rows of `table` older than `older_than` (by `column`), and matching every condition of
/// `only`, are deleted `batch` at a time.
///
/// ```toml
/// [[retention]]
/// table = "notifications"
/// column = "created_at"
/// older_than = "90d"
/// only = [{ column = "status", op = "eq", value = "completed" }]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    /// The table (`schema.table` or `table`).
    pub table: String,
    /// Its timestamp column.
    pub column: String,
    /// Age beyond which rows go.
    #[serde(with = "human_duration")]
    pub older_than: Duration,
    /// Rows per delete (short transactions, no long lock).
    #[serde(default = "default_batch")]
    pub batch: i64,
    /// Only rows matching all of these go (at most [`MAX_CONDITIONS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<Condition>,
}

fn default_batch() -> i64 {
    5000
}

/// `column op value`: the value is bound as a parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The column compared.
    pub column: String,
    /// How.
    pub op: ConditionOp,
    /// A text, integer or boolean (`in` / `not_in`: a list of one kind); none for the null tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<ConditionValue>,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionOp {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `= ANY (list)`
    In,
    /// `<> ALL (list)`
    NotIn,
    /// `IS NULL`
    IsNull,
    /// `IS NOT NULL`
    IsNotNull,
}

/// A literal to compare with. Text compares with the column's text form, so it matches text,
/// `varchar` and enum columns alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConditionValue {
    /// `true` / `false`.
    Bool(bool),
    /// A whole number (compared as `bigint`).
    Integer(i64),
    /// Text.
    Text(String),
    /// For `in` / `not_in`.
    List(Vec<ConditionValue>),
}

impl ConditionOp {
    fn sql(self) -> &'static str {
        match self {
            ConditionOp::Eq | ConditionOp::In => "=",
            ConditionOp::Ne | ConditionOp::NotIn => "<>",
            ConditionOp::Lt => "<",
            ConditionOp::Le => "<=",
            ConditionOp::Gt => ">",
            ConditionOp::Ge => ">=",
            ConditionOp::IsNull => "IS NULL",
            ConditionOp::IsNotNull => "IS NOT NULL",
        }
    }
}

fn bad(field: String, reason: impl Into<String>) -> Error {
    Error::invalid_input("postgres", "maintenance", field, reason)
}

/// A quoted identifier, `schema.table` split at the dot.
pub(crate) fn ident(name: &str) -> Result<String> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.is_empty()
        || parts.len() > 2
        || parts
            .iter()
            .any(|p| p.is_empty() || p.contains('"') || p.contains('\0'))
    {
        return Err(bad("table".into(), format!("{name:?} is not a table name")));
    }
    Ok(parts
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join("."))
}

/// A column: one identifier, no dot.
fn column(name: &str, field: String) -> Result<String> {
    if name.contains('.') {
        return Err(bad(field, "not a column name"));
    }
    ident(name).map_err(|_| bad(field, "not a column name"))
}

impl RetentionRule {
    /// Checks the names, bounds and conditions; `at` is the rule's field path.
    pub(crate) fn validate(&self, at: &str) -> Result<()> {
        ident(&self.table).map_err(|_| bad(format!("{at}.table"), "not a table name"))?;
        column(&self.column, format!("{at}.column"))?;
        if !(1..=100_000).contains(&self.batch) {
            return Err(bad(format!("{at}.batch"), "1 to 100000"));
        }
        if self.older_than.is_zero() {
            return Err(bad(format!("{at}.older_than"), "must be positive"));
        }
        if self.only.len() > MAX_CONDITIONS {
            return Err(bad(
                format!("{at}.only"),
                format!("at most {MAX_CONDITIONS} conditions"),
            ));
        }
        // Building the predicate checks every condition.
        self.predicate(1, at).map(|_| ())
    }

    /// `AND …` for the conditions, numbering parameters from `$first`, with their values.
    fn predicate(&self, first: usize, at: &str) -> Result<(String, Vec<Param>)> {
        let mut sql = String::new();
        let mut params = Vec::with_capacity(self.only.len());
        for (i, c) in self.only.iter().enumerate() {
            let field = format!("{at}.only[{i}]");
            let col = column(&c.column, format!("{field}.column"))?;
            let n = first + params.len();
            let (clause, param) = match (c.op, &c.value) {
                (ConditionOp::IsNull | ConditionOp::IsNotNull, None) => {
                    (format!(" AND {col} {}", c.op.sql()), None)
                }
                (ConditionOp::IsNull | ConditionOp::IsNotNull, Some(_)) => {
                    return Err(bad(format!("{field}.value"), "a null test takes no value"));
                }
                (ConditionOp::In | ConditionOp::NotIn, Some(ConditionValue::List(items))) => {
                    let list = Param::list(items, &field)?;
                    let quant = if c.op == ConditionOp::In {
                        "ANY"
                    } else {
                        "ALL"
                    };
                    let clause = format!(
                        " AND {} {} {quant}(${n}::{}[])",
                        list.column_side(&col),
                        c.op.sql(),
                        list.sql_type()
                    );
                    (clause, Some(list))
                }
                (ConditionOp::In | ConditionOp::NotIn, _) => {
                    return Err(bad(format!("{field}.value"), "`in` takes a list"));
                }
                (_, None) => return Err(bad(format!("{field}.value"), "needs a value")),
                (op, Some(v)) => {
                    let Some(p) = Param::scalar(v) else {
                        return Err(bad(format!("{field}.value"), "a list is for `in` only"));
                    };
                    let clause = format!(
                        " AND {} {} ${n}::{}",
                        p.column_side(&col),
                        op.sql(),
                        p.sql_type()
                    );
                    (clause, Some(p))
                }
            };
            sql.push_str(&clause);
            params.extend(param);
        }
        Ok((sql, params))
    }
}

/// A bound value.
#[derive(Debug)]
enum Param {
    Bool(bool),
    Int(i64),
    Text(String),
    Bools(Vec<bool>),
    Ints(Vec<i64>),
    Texts(Vec<String>),
}

impl Param {
    fn scalar(v: &ConditionValue) -> Option<Param> {
        match v {
            ConditionValue::Bool(b) => Some(Param::Bool(*b)),
            ConditionValue::Integer(i) => Some(Param::Int(*i)),
            ConditionValue::Text(t) => Some(Param::Text(t.clone())),
            ConditionValue::List(_) => None,
        }
    }

    fn list(items: &[ConditionValue], field: &str) -> Result<Param> {
        if items.is_empty() || items.len() > MAX_LIST {
            return Err(bad(
                format!("{field}.value"),
                format!("1 to {MAX_LIST} values"),
            ));
        }
        let mixed = || bad(format!("{field}.value"), "values of one kind, not lists");
        Ok(match &items[0] {
            ConditionValue::Bool(_) => Param::Bools(
                items
                    .iter()
                    .map(|v| match v {
                        ConditionValue::Bool(b) => Ok(*b),
                        _ => Err(mixed()),
                    })
                    .collect::<Result<_>>()?,
            ),
            ConditionValue::Integer(_) => Param::Ints(
                items
                    .iter()
                    .map(|v| match v {
                        ConditionValue::Integer(i) => Ok(*i),
                        _ => Err(mixed()),
                    })
                    .collect::<Result<_>>()?,
            ),
            ConditionValue::Text(_) => Param::Texts(
                items
                    .iter()
                    .map(|v| match v {
                        ConditionValue::Text(t) => Ok(t.clone()),
                        _ => Err(mixed()),
                    })
                    .collect::<Result<_>>()?,
            ),
            ConditionValue::List(_) => return Err(mixed()),
        })
    }

    fn sql_type(&self) -> &'static str {
        match self {
            Param::Bool(_) | Param::Bools(_) => "boolean",
            Param::Int(_) | Param::Ints(_) => "bigint",
            Param::Text(_) | Param::Texts(_) => "text",
        }
    }

    /// Text compares with the column's text form (enum and varchar columns included).
    fn column_side(&self, col: &str) -> String {
        match self {
            Param::Text(_) | Param::Texts(_) => format!("{col}::text"),
            _ => col.to_string(),
        }
    }

    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Param::Bool(b) => b,
            Param::Int(i) => i,
            Param::Text(t) => t,
            Param::Bools(b) => b,
            Param::Ints(i) => i,
            Param::Texts(t) => t,
        }
    }
}

/// How many rows the rule would delete now.
pub(crate) async fn count_old(db: &Postgres, r: &RetentionRule) -> Result<i64> {
    let (only, params) = r.predicate(2, "retention")?;
    let sql = format!(
        "SELECT count(*) FROM {} WHERE {} < now() - make_interval(secs => $1){only}",
        ident(&r.table)?,
        ident(&r.column)?
    );
    let secs = r.older_than.as_secs_f64();
    let mut args: Vec<&(dyn ToSql + Sync)> = vec![&secs];
    args.extend(params.iter().map(Param::as_sql));
    let client = db.client().await?;
    Ok(client
        .query_one(&sql, &args)
        .await
        .map_err(|e| pg_error("count_old", &e))?
        .get(0))
}

/// Deletes in batches of `r.batch` rows, each its own short transaction, until none are left.
pub(crate) async fn delete_old(db: &Postgres, r: &RetentionRule) -> Result<i64> {
    let (only, params) = r.predicate(3, "retention")?;
    let sql = format!(
        "DELETE FROM {t} WHERE ctid IN (SELECT ctid FROM {t} WHERE {c} < now() - make_interval(secs => $1){only} LIMIT $2)",
        t = ident(&r.table)?,
        c = ident(&r.column)?
    );
    let secs = r.older_than.as_secs_f64();
    let mut args: Vec<&(dyn ToSql + Sync)> = vec![&secs, &r.batch];
    args.extend(params.iter().map(Param::as_sql));
    let client = db.client().await?;
    let mut total = 0u64;
    loop {
        let n = client
            .execute(&sql, &args)
            .await
            .map_err(|e| pg_error("delete_old", &e))?;
        total = total.saturating_add(n);
        if n < r.batch.unsigned_abs() {
            tracing::info!(table = %r.table, deleted = total, "retention done");
            return Ok(i64::try_from(total).unwrap_or(i64::MAX));
        }
    }
}
