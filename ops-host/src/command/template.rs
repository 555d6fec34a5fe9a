//! Argv templates: `["npm", "run", "deploy:canary", "--", "--stage={percent}"]`, their
//! placeholders filled per argument — never through a shell, so a value cannot become a second
//! command. `{{` and `}}` are literal braces.

use std::collections::BTreeMap;

use ops_core::{Error, Result};

/// Checks `template` for operation `op`: a program first, only the `allowed` placeholders,
/// braces balanced.
pub fn check(op: &str, template: &[String], allowed: &[&str]) -> Result<()> {
    let bad = |why: String| Error::invalid_input("host", "command_deployer", op, why);
    let program = template
        .first()
        .ok_or_else(|| bad("names no program".into()))?;
    if program.trim().is_empty() || program.contains('{') {
        return Err(bad("its program must be a plain name or path".into()));
    }
    for arg in template {
        if arg.contains('\0') {
            return Err(bad("an argument holds a NUL byte".into()));
        }
        for name in placeholders(arg).map_err(|why| bad(format!("{arg:?}: {why}")))? {
            if !allowed.contains(&name.as_str()) {
                return Err(bad(format!(
                    "{arg:?} uses {{{name}}}; {op} knows {}",
                    allowed
                        .iter()
                        .map(|a| format!("{{{a}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
    Ok(())
}

/// Whether any argument of `template` uses `{name}`.
pub fn uses(template: &[String], name: &str) -> bool {
    template
        .iter()
        .any(|a| placeholders(a).is_ok_and(|p| p.iter().any(|n| n == name)))
}

fn placeholders(arg: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = arg.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
            }
            '{' => {
                let mut name = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '}' {
                        closed = true;
                        break;
                    }
                    name.push(c);
                }
                if !closed {
                    return Err("an unclosed `{`".into());
                }
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    return Err(format!("{{{name}}} is not a placeholder"));
                }
                out.push(name);
            }
            '}' => return Err("a lone `}`".into()),
            _ => {}
        }
    }
    Ok(out)
}

/// `template` with its placeholders replaced by `values` (checked by [`check`] before).
pub fn fill(template: &[String], values: &BTreeMap<&str, String>) -> Vec<String> {
    template
        .iter()
        .map(|arg| {
            let mut out = String::new();
            let mut chars = arg.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '{' if chars.peek() == Some(&'{') => {
                        chars.next();
                        out.push('{');
                    }
                    '}' if chars.peek() == Some(&'}') => {
                        chars.next();
                        out.push('}');
                    }
                    '{' => {
                        let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                        out.push_str(values.get(name.as_str()).map_or("", String::as_str));
                    }
                    c => out.push(c),
                }
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_seeds_commands() {
        let canary = t(&[
            "npm",
            "run",
            "deploy:canary",
            "--",
            "--stage={percent}",
            "--version={release}",
        ]);
        check("traffic", &canary, &["release", "percent", "stable"]).unwrap();
        let values = BTreeMap::from([
            ("percent", "5".to_string()),
            ("release", "v2.1.0; rm -rf /".to_string()),
        ]);
        assert_eq!(
            fill(&canary, &values),
            t(&[
                "npm",
                "run",
                "deploy:canary",
                "--",
                "--stage=5",
                "--version=v2.1.0; rm -rf /"
            ])
        );
        assert!(uses(&canary, "percent") && !uses(&canary, "stable"));
        assert_eq!(
            fill(&t(&["echo", "{{literal}}"]), &BTreeMap::new()),
            t(&["echo", "{literal}"])
        );
    }

    #[test]
    fn templates_that_cannot_work_are_refused() {
        for bad in [
            t(&[]),
            t(&[""]),
            t(&["{version}"]),
            t(&["deploy", "{unknown}"]),
            t(&["deploy", "{Version}"]),
            t(&["deploy", "{version"]),
            t(&["deploy", "x}"]),
            t(&["deploy", "a\0b"]),
        ] {
            assert!(check("deploy", &bad, &["version"]).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn any_template_is_checked_or_refused_and_fills_without_panic(
            args in proptest::collection::vec(".{0,20}", 0..5),
            value in ".{0,20}",
        ) {
            if check("deploy", &args, &["version"]).is_ok() {
                let filled = fill(&args, &BTreeMap::from([("version", value.clone())]));
                prop_assert_eq!(filled.len(), args.len());
            }
        }
    }
}
