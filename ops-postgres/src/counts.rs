//! Row counts: taken in the dump's own snapshot, recorded in the backup's labels, and compared
//! with what a restore of the backup holds. Verification never reads the live database, so a
//! database under write traffic verifies as well as an idle one.

use std::collections::BTreeMap;

use ops_core::checksum::Checksum;
use ops_core::{Error, ErrorKind, Result};

use crate::connect::Postgres;
use crate::error::pg_error;
use crate::sql::quote_ident;

/// Label with every table's row count, as compact JSON (`{"public.orders": 2500}`), when it
/// fits in [`INLINE_LIMIT`] bytes.
pub const ROW_COUNTS_LABEL: &str = "ops-row-counts";
/// Label with the total number of rows.
pub const ROW_TOTAL_LABEL: &str = "ops-row-total";
/// Label with the CRC32C of the per-table counts' JSON: checks databases with too many tables
/// for [`ROW_COUNTS_LABEL`] (object metadata is small).
pub const ROW_DIGEST_LABEL: &str = "ops-row-digest";
/// The largest per-table JSON kept as a label.
pub const INLINE_LIMIT: usize = 4096;

/// Exact row counts of every user table, by `schema.table`, as `client` sees them (inside a
/// transaction: as its snapshot sees them).
pub async fn count_rows(client: &tokio_postgres::Client) -> Result<BTreeMap<String, i64>> {
    let tables = client
        .query(
            "SELECT table_schema, table_name FROM information_schema.tables
             WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
             ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(|e| pg_error("row_counts", &e))?;
    let mut out = BTreeMap::new();
    for t in tables {
        let (schema, name): (String, String) = (t.get(0), t.get(1));
        let n: i64 = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM {}.{}",
                    quote_ident(&schema),
                    quote_ident(&name)
                ),
                &[],
            )
            .await
            .map_err(|e| pg_error("row_counts", &e))?
            .get(0);
        out.insert(format!("{schema}.{name}"), n);
    }
    Ok(out)
}

/// Exact row counts of every user table of `db`, by `schema.table`, now.
pub async fn row_counts(db: &Postgres) -> Result<BTreeMap<String, i64>> {
    let client = db.client().await?;
    count_rows(&client).await
}

fn digest(counts: &BTreeMap<String, i64>) -> String {
    let json = serde_json::to_vec(counts).unwrap_or_default();
    Checksum::of(&json).to_string()
}

/// The labels recording `counts`.
pub fn counts_labels(counts: &BTreeMap<String, i64>) -> BTreeMap<String, String> {
    let total: i64 = counts.values().fold(0i64, |a, n| a.saturating_add(*n));
    let mut labels = BTreeMap::from([
        (ROW_TOTAL_LABEL.to_string(), total.to_string()),
        (ROW_DIGEST_LABEL.to_string(), digest(counts)),
    ]);
    let json = serde_json::to_string(counts).unwrap_or_default();
    if json.len() <= INLINE_LIMIT {
        labels.insert(ROW_COUNTS_LABEL.to_string(), json);
    }
    labels
}

/// Compares the counts of a restored backup with the ones recorded when it was taken: `Ok`
/// says what matched, `VerificationFailed` names the tables that differ. A backup taken before
/// counts were recorded is `Ok` with a note (the restore itself succeeded).
pub fn compare(
    labels: &BTreeMap<String, String>,
    restored: &BTreeMap<String, i64>,
) -> Result<String> {
    let rows: i64 = restored.values().fold(0i64, |a, n| a.saturating_add(*n));
    let failed = |detail: String| {
        Err(Error::new(
            "postgres",
            "verify",
            ErrorKind::VerificationFailed {
                check: "row_counts".into(),
                detail,
            },
        ))
    };
    if let Some(json) = labels.get(ROW_COUNTS_LABEL) {
        let Ok(recorded) = serde_json::from_str::<BTreeMap<String, i64>>(json) else {
            return failed(format!("the recorded {ROW_COUNTS_LABEL} label is damaged"));
        };
        let mut tables: Vec<&String> = recorded.keys().chain(restored.keys()).collect();
        tables.sort();
        tables.dedup();
        let differences: Vec<String> = tables
            .into_iter()
            .filter(|t| recorded.get(*t) != restored.get(*t))
            .map(|t| {
                let show = |m: &BTreeMap<String, i64>| {
                    m.get(t).map_or("missing".to_string(), i64::to_string)
                };
                format!(
                    "{t}: recorded {}, restored {}",
                    show(&recorded),
                    show(restored)
                )
            })
            .collect();
        if !differences.is_empty() {
            return failed(differences.join("; "));
        }
        return Ok(format!(
            "restored into a scratch database: {} tables, {rows} rows, as counted in the dump's snapshot",
            restored.len()
        ));
    }
    match (labels.get(ROW_TOTAL_LABEL), labels.get(ROW_DIGEST_LABEL)) {
        (Some(total), Some(want)) => {
            if *want != digest(restored) {
                return failed(format!(
                    "the restored counts ({rows} rows) differ from the recorded ones ({total} rows)"
                ));
            }
            Ok(format!(
                "restored into a scratch database: {} tables, {rows} rows, matching the recorded digest",
                restored.len()
            ))
        }
        _ => Ok(format!(
            "restored into a scratch database: {} tables, {rows} rows (the backup records no row counts to compare)",
            restored.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
        pairs.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    #[test]
    fn recorded_counts_round_trip_and_differences_are_named() {
        let taken = counts(&[("public.orders", 2500), ("public.users", 10)]);
        let labels = counts_labels(&taken);
        assert_eq!(labels[ROW_TOTAL_LABEL], "2510");
        assert!(compare(&labels, &taken).is_ok());
        let lost = counts(&[("public.orders", 2400), ("public.users", 10)]);
        let err = compare(&labels, &lost).unwrap_err().to_string();
        assert!(
            err.contains("public.orders: recorded 2500, restored 2400"),
            "{err}"
        );
        let missing = counts(&[("public.orders", 2500)]);
        let err = compare(&labels, &missing).unwrap_err().to_string();
        assert!(
            err.contains("public.users: recorded 10, restored missing"),
            "{err}"
        );
    }

    #[test]
    fn many_tables_are_checked_by_digest() {
        let taken: BTreeMap<String, i64> = (0..400)
            .map(|i| (format!("public.table_with_a_long_name_{i}"), i))
            .collect();
        let labels = counts_labels(&taken);
        assert!(!labels.contains_key(ROW_COUNTS_LABEL), "too big to inline");
        assert!(compare(&labels, &taken).is_ok());
        let mut changed = taken.clone();
        changed.insert("public.table_with_a_long_name_7".into(), 8);
        assert!(compare(&labels, &changed).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 1000,
            failure_persistence: None,
            ..Default::default()
        })]

        /// Labels come back from a store (a sidecar, object metadata): whatever they hold, the
        /// comparison is a verdict, never a panic; and recorded counts always match themselves.
        #[test]
        fn any_recorded_labels_give_a_verdict(
            counts_json in "\\PC{0,40}",
            total in "\\PC{0,12}",
            digest in "\\PC{0,12}",
            restored in proptest::collection::btree_map("[a-z.]{1,12}", proptest::prelude::any::<i64>(), 0..8),
        ) {
            let labels = BTreeMap::from([
                (ROW_COUNTS_LABEL.to_string(), counts_json),
                (ROW_TOTAL_LABEL.to_string(), total),
                (ROW_DIGEST_LABEL.to_string(), digest),
            ]);
            let _ = compare(&labels, &restored);
            proptest::prop_assert!(compare(&counts_labels(&restored), &restored).is_ok());
        }
    }

    #[test]
    fn a_backup_without_counts_is_checked_by_its_restore_alone() {
        let note = compare(&BTreeMap::new(), &counts(&[("public.t", 1)])).unwrap();
        assert!(note.contains("records no row counts"), "{note}");
    }
}
