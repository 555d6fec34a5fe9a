//! Quoting for the few statements that cannot take parameters (identifiers, DDL).

/// `ident` as a quoted SQL identifier (`"a""b"`): any text is safe inside.
pub(crate) fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// `text` as a SQL string literal (`'o''brien'`), for DDL such as `COMMENT ON`.
pub(crate) fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
