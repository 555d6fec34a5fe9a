//! Masking secrets in text and JSON before it reaches an error, a journal or a report.
//!
//! Bodies and arguments can carry secrets (a Secret Manager `payload.data`, a token endpoint's
//! `access_token`, a password argument):
//! - JSON: values under keys that name secrets are replaced with `[REDACTED]`;
//! - text: `Bearer …` credentials and long opaque runs (keys, tokens) are masked;
//! - excerpts are cut to a byte limit on a character boundary.

use serde_json::Value;

/// What a masked value becomes.
pub const MASK: &str = "[REDACTED]";

/// Key fragments (lower case) whose values are never shown. Generic words (`key`, `value`,
/// `data`) are not here: they name ordinary data too (metrics, outputs); a long opaque token in
/// any string is masked by the text rule instead.
const SECRET_KEYS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "authorization",
    "credential",
    "private_key",
    "privatekey",
    "api_key",
    "apikey",
    "access_key",
    "client_secret",
    "cookie",
    "session",
    "signature",
];

/// Extra keys masked in HTTP bodies, where an API may echo a stored value back (Secret Manager's
/// `payload.data`, an env var's `value`).
const BODY_KEYS: &[&str] = &["data", "value", "key", "payload"];

/// A redacted excerpt of `body`, at most `limit` bytes (plus an ellipsis when cut).
///
/// ```
/// use ops_core::redact::redact_excerpt;
/// let body = br#"{"error":"bad","access_token":"ya29.abc"}"#;
/// let e = redact_excerpt(body, 512);
/// assert!(e.contains("[REDACTED]") && !e.contains("ya29"));
/// ```
pub fn redact_excerpt(body: &[u8], limit: usize) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(mut v) => {
            redact_keys(&mut v, true);
            v.to_string()
        }
        Err(_) => redact_text(&String::from_utf8_lossy(body)),
    };
    truncate(text.trim(), limit)
}

/// Masks, in place, the values an HTTP body may carry secrets in (the keys of
/// [`redact_excerpt`]) while keeping every value's JSON type: a masked string stays a string,
/// a masked number becomes `0`. For logs whose readers check shapes, not values.
pub fn redact_body_shape(v: &mut Value) {
    fn mask(v: &mut Value) {
        match v {
            Value::String(s) => *s = MASK.into(),
            Value::Number(_) => *v = Value::from(0),
            Value::Array(items) => items.iter_mut().for_each(mask),
            Value::Object(map) => map.values_mut().for_each(mask),
            _ => {}
        }
    }
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if is_secret_key(k, true) && !child.is_object() {
                    mask(child);
                } else {
                    redact_body_shape(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_body_shape),
        Value::String(s) => {
            let r = redact_text(s);
            if r != *s {
                *s = r;
            }
        }
        _ => {}
    }
}

/// Whether a field or parameter named `name` carries secrets (`access_token`, `api_key`,
/// `client_secret`, `signature`, …; not `privateKeyType` or `token_type`, which name kinds).
///
/// ```
/// use ops_core::redact::is_secret_name;
/// assert!(is_secret_name("privateKeyData") && is_secret_name("access_token"));
/// assert!(!is_secret_name("privateKeyType") && !is_secret_name("token_type"));
/// ```
pub fn is_secret_name(name: &str) -> bool {
    is_secret_key(name, false)
}

/// Names of secrets match anywhere in a key (`client_secret`, `x-api-key`); with
/// `body_keys`, the generic body words match too, but only as the whole key (`value`, not
/// `valueType`; `data`, not `databaseVersion`).
fn is_secret_key(k: &str, body_keys: bool) -> bool {
    let k = k.to_ascii_lowercase();
    if NAMES_NOT_SECRETS.contains(&k.as_str()) {
        return false;
    }
    SECRET_KEYS.iter().any(|s| k.contains(s)) || (body_keys && BODY_KEYS.contains(&k.as_str()))
}

/// Whole keys (lower case) that contain a secret's name but hold a kind, not a value:
/// IAM's `privateKeyType` (`TYPE_GOOGLE_CREDENTIALS_FILE`), OAuth's `token_type` (`Bearer`).
const NAMES_NOT_SECRETS: &[&str] = &["privatekeytype", "private_key_type", "token_type"];

/// Masks, in place, every scalar under a key that names a secret, and credentials in strings.
///
/// ```
/// let mut v = serde_json::json!({"user": "ann", "password": "pw", "value": 3});
/// ops_core::redact::redact_json(&mut v);
/// assert_eq!(v, serde_json::json!({"user": "ann", "password": "[REDACTED]", "value": 3}));
/// ```
pub fn redact_json(v: &mut Value) {
    redact_keys(v, false);
}

fn redact_keys(v: &mut Value, body_keys: bool) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if is_secret_key(k, body_keys) && !child.is_object() && !child.is_array() {
                    *child = Value::String(MASK.into());
                } else {
                    redact_keys(child, body_keys);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| redact_keys(i, body_keys)),
        Value::String(s) => {
            let r = redact_text(s);
            if r != *s {
                *s = r;
            }
        }
        _ => {}
    }
}

/// Masks `Bearer <token>` / `Basic <creds>` and opaque runs of 32+ token characters with
/// letters, digits and an unbroken stretch of 20 or more (names of short parts such as
/// `pre-restore-app-20261123-090000.dump` or UUIDs stay readable).
///
/// ```
/// use ops_core::redact::redact_text;
/// assert!(!redact_text("key sk_live_4eC39HqLyjWDarjtT1zdp7dc").contains("4eC39"));
/// assert!(!redact_text("ghp_16C7e42F292c6912E7710c838347Ae178B4a leaked").contains("ghp_"));
/// let name = "pre-restore-app-20261123-090000.dump";
/// assert_eq!(redact_text(name), name);
/// ```
pub fn redact_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut mask_next = false;
    for word in s.split_inclusive(char::is_whitespace) {
        let bare = word.trim_end();
        let lower = bare.to_ascii_lowercase();
        if mask_next && !bare.is_empty() {
            out.push_str(MASK);
            out.push_str(&word[bare.len()..]);
            mask_next = false;
            continue;
        }
        if lower == "bearer" || lower == "basic" || lower.ends_with("bearer") {
            mask_next = true;
            out.push_str(word);
            continue;
        }
        match word.find("://") {
            Some(at) => out.push_str(&mask_url(word, at)),
            None => out.push_str(&mask_opaque_runs(word, true)),
        }
    }
    out
}

/// A URL keeps its shape: the password of a `user:password@` part and every query value are
/// masked, and each path segment is judged alone, so a long path is not taken for a token
/// but a token that *is* a segment still is.
fn mask_url(word: &str, scheme_end: usize) -> String {
    let (scheme, rest) = word.split_at(scheme_end + 3);
    let (rest, query) = match rest.find('?') {
        Some(q) => rest.split_at(q),
        None => (rest, ""),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:{MASK}@{host}"),
            None => format!("{MASK}@{host}"),
        },
        None => authority.to_string(),
    };
    let mut out = format!("{scheme}{authority}{}", mask_opaque_runs(path, false));
    if !query.is_empty() {
        // Query strings carry signatures and tokens under any name: keep only the names.
        let names: Vec<String> = query[1..]
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) => format!("{}={MASK}", mask_opaque_runs(name, false)),
                None => mask_opaque_runs(pair, false),
            })
            .collect();
        out.push('?');
        out.push_str(&names.join("&"));
    }
    out
}

/// Masks opaque runs in `word`; `/` joins a run only where it may be part of a base64 token
/// (`slash_joins`), not between the segments of a URL path.
fn mask_opaque_runs(word: &str, slash_joins: bool) -> String {
    let is_tok = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(c, '+' | '=' | '_' | '-' | '.')
            || (slash_joins && c == '/')
    };
    let mut out = String::with_capacity(word.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        // A Google resource name (`billingAccounts/0123AB-4567CD-89EF01/budgets/b1`) is judged
        // segment by segment, as a URL path is: its ids are short parts, not one token.
        if slash_joins && is_resource_name(run) {
            let judged: Vec<String> = run.split('/').map(|s| mask_opaque_runs(s, false)).collect();
            out.push_str(&judged.join("/"));
            run.clear();
            return;
        }
        // A long run with both letters and digits looks like a key or token, not a word —
        // unless it is a name made of short parts (`app-20261123-090000.dump`, a UUID): a
        // token has a long unbroken stretch somewhere.
        let longest_part = run.split(['-', '.', '_']).map(str::len).max().unwrap_or(0);
        let digits_and_letters =
            run.chars().any(|c| c.is_ascii_digit()) && run.chars().any(|c| c.is_ascii_alphabetic());
        let mixed_case = run.chars().any(|c| c.is_ascii_uppercase())
            && run.chars().any(|c| c.is_ascii_lowercase());
        let opaque = if slash_joins {
            run.len() >= 32 && longest_part >= 20 && digits_and_letters
        } else {
            // One URL path segment: shorter secrets live there (a webhook's 24 characters).
            longest_part >= 20 && (digits_and_letters || mixed_case)
        };
        out.push_str(if opaque { MASK } else { run });
        run.clear();
    };
    for c in word.chars() {
        if is_tok(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// The collections Google resource names start with.
const RESOURCE_ROOTS: &[&str] = &[
    "projects/",
    "billingAccounts/",
    "organizations/",
    "folders/",
];

fn is_resource_name(run: &str) -> bool {
    RESOURCE_ROOTS.iter().any(|r| run.starts_with(r)) && run.split('/').count() >= 2
}

fn truncate(s: &str, limit: usize) -> String {
    if s.len() <= limit {
        return s.to_string();
    }
    let mut end = limit;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_secret_fields_are_masked_recursively() {
        let body = br#"{"error":{"code":403,"message":"denied"},"payload":{"data":"c2VjcmV0"},"items":[{"password":"p@ss"}]}"#;
        let e = redact_excerpt(body, 1000);
        assert!(!e.contains("c2VjcmV0") && !e.contains("p@ss"), "{e}");
        assert!(e.contains("denied") && e.contains("403"));
    }

    #[test]
    fn text_credentials_are_masked() {
        let e = redact_excerpt(
            b"invalid header Authorization: Bearer abc.def.ghi for user",
            1000,
        );
        assert!(!e.contains("abc.def.ghi"), "{e}");
        assert!(e.contains("for user"));
        let key = "AKIAIOSFODNN7EXAMPLEwJalrXUtnFEMIK7MDENGbPxRfiCY";
        let e = redact_excerpt(format!("bad key {key}!").as_bytes(), 1000);
        assert!(!e.contains(key), "{e}");
        assert!(e.ends_with('!'));
    }

    #[test]
    fn urls_keep_their_shape_and_lose_their_credentials() {
        let location =
            "https://api.github.com/repositories/1296269/issues/1347/comments?per_page=100";
        assert_eq!(
            redact_text(&format!("moved to {location}")),
            "moved to https://api.github.com/repositories/1296269/issues/1347/comments?per_page=[REDACTED]"
        );
        let long = "https://api.github.com/repos/acme-platform-infrastructure/deployment-automation-service/deployments";
        assert_eq!(redact_text(long), long, "a long path is not a token");
        let masked = redact_text("https://ann:hunter2@db.example.com/x?sig=abc&token=def");
        assert_eq!(
            masked,
            "https://ann:[REDACTED]@db.example.com/x?sig=[REDACTED]&token=[REDACTED]"
        );
        let hook = "https://hooks.slack.com/services/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";
        assert_eq!(
            redact_text(hook),
            "https://hooks.slack.com/services/T0A1B2C3D/B0A1B2C3D/[REDACTED]"
        );
    }

    #[test]
    fn resource_names_stay_readable_and_their_tokens_do_not() {
        let budget = "billingAccounts/0123AB-4567CD-89EF01/budgets/4f1c2e0a-sim";
        assert_eq!(redact_text(budget), budget);
        let leaked = "projects/p/secrets/ghp_16C7e42F292c6912E7710c838347Ae178B4a/versions/1";
        let masked = redact_text(leaked);
        assert!(!masked.contains("ghp_16C7"), "{masked}");
        assert!(masked.starts_with("projects/p/secrets/"), "{masked}");
        // A token that merely contains a slash is still one token.
        assert!(!redact_text("aGVsbG8gd29ybGQgaGVsbG8/d29ybGQgaGVsbG8gd29y").contains("aGVs"));
    }

    #[test]
    fn excerpts_are_bounded_on_char_boundaries() {
        let body = "é".repeat(1000);
        let e = redact_excerpt(body.as_bytes(), 101);
        assert!(e.len() <= 101 + '…'.len_utf8());
        assert!(e.ends_with('…'));
    }
}
