//! Checks a directory of recorded requests against a directory of descriptions and reports
//! what does not conform, grouped, with one example each.

use std::collections::BTreeMap;
use std::path::Path;

use ops_core::http::record::RecordedRequest;

use crate::check::{Violation, check, check_reply, path_matches};
use crate::description::Description;

/// Endpoints the clients call that the vendored descriptions do not cover, each with the
/// document that describes it instead. Nothing else is let through.
pub const NOT_IN_THE_DESCRIPTIONS: &[(&str, &str, &str)] = &[
    (
        "gcp",
        "/token",
        "Google's OAuth 2.0 token endpoint (RFC 6749; developers.google.com/identity/protocols/oauth2)",
    ),
    (
        "slack",
        "/services/{+hook}",
        "Slack incoming webhooks (api.slack.com/messaging/webhooks): a URL per channel, \
         outside the Web API; the body is a message (`text`, `blocks`)",
    ),
    (
        "github",
        "/repositories/{+rest}",
        "where GitHub redirects a renamed or transferred repository (docs.github.com: \
         'Follow redirects'); the same operations, addressed by repository id",
    ),
];

/// Requests a client sends that are not API calls at all, by provider and operation name.
pub const NOT_API_CALLS: &[(&str, &str, &str)] = &[
    (
        "vercel",
        "probe_site",
        "the health probe reading the deployed site itself, not the Vercel API",
    ),
    (
        "github",
        "download_job_log",
        "a job's log at the signed URL GitHub's `GET …/actions/jobs/{job_id}/logs` redirects \
         to: GitHub's log storage, not the REST API, fetched without the token",
    ),
];

/// The outcome of a check.
#[derive(Debug, Default)]
pub struct Report {
    /// Requests checked, per provider.
    pub checked: BTreeMap<String, usize>,
    /// Requests let through by [`NOT_IN_THE_DESCRIPTIONS`], per provider.
    pub exempt: BTreeMap<String, usize>,
    /// Requests of providers without a vendored description, per provider.
    pub not_covered: BTreeMap<String, usize>,
    /// Simulator replies checked against a reply schema, per provider.
    pub replies_checked: BTreeMap<String, usize>,
    /// Simulator replies to operations with no reply schema vendored, per provider.
    pub replies_unchecked: BTreeMap<String, usize>,
    /// Each distinct violation with how often it occurred and one request showing it.
    pub violations: BTreeMap<Violation, (usize, RecordedRequest)>,
}

impl Report {
    /// Whether every checked request conformed.
    pub fn passed(&self) -> bool {
        self.violations.is_empty() && self.checked.values().sum::<usize>() > 0
    }

    /// Adds `request`'s outcome.
    pub fn add(&mut self, descriptions: &[Description], request: RecordedRequest) {
        let own: Vec<Description> = descriptions
            .iter()
            .filter(|d| d.provider == request.provider)
            .cloned()
            .collect();
        if own.is_empty() {
            *self
                .not_covered
                .entry(request.provider.clone())
                .or_default() += 1;
            return;
        }
        let exempt = NOT_IN_THE_DESCRIPTIONS
            .iter()
            .any(|(p, t, _)| *p == request.provider && path_matches(t, &request.path))
            || NOT_API_CALLS
                .iter()
                .any(|(p, o, _)| *p == request.provider && *o == request.operation);
        if exempt {
            *self.exempt.entry(request.provider.clone()).or_default() += 1;
            return;
        }
        if request.reply.is_some() {
            let counter = match check_reply(&own, &request) {
                Some(violations) => {
                    for v in violations {
                        self.note(v, &request);
                    }
                    &mut self.replies_checked
                }
                None => &mut self.replies_unchecked,
            };
            *counter.entry(request.provider.clone()).or_default() += 1;
            return;
        }
        *self.checked.entry(request.provider.clone()).or_default() += 1;
        for v in check(&own, &request) {
            self.note(v, &request);
        }
    }

    fn note(&mut self, mut v: Violation, request: &RecordedRequest) {
        // `reply[3].creator` and `reply[4].creator` are one problem.
        v.problem = strip_indices(&v.problem);
        self.violations
            .entry(v)
            .and_modify(|(n, _)| *n += 1)
            .or_insert_with(|| (1, request.clone()));
    }

    /// A human-readable account.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let list = |m: &BTreeMap<String, usize>| {
            m.iter()
                .map(|(p, n)| format!("{p} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!("requests checked: {}\n", list(&self.checked)));
        out.push_str(&format!(
            "simulator replies checked: {}\n",
            list(&self.replies_checked)
        ));
        if !self.replies_unchecked.is_empty() {
            out.push_str(&format!(
                "simulator replies to operations without a vendored reply schema: {}\n",
                list(&self.replies_unchecked)
            ));
        }
        if !self.exempt.is_empty() {
            out.push_str(&format!(
                "outside the descriptions (NOT_IN_THE_DESCRIPTIONS, NOT_API_CALLS): {}\n",
                list(&self.exempt)
            ));
        }
        if !self.not_covered.is_empty() {
            out.push_str(&format!(
                "not checked, no description vendored for these providers: {}\n",
                list(&self.not_covered)
            ));
        }
        for (v, (n, example)) in &self.violations {
            let query: Vec<String> = example
                .query
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            out.push_str(&format!(
                "VIOLATION {} ({n}×): {}\n    e.g. {} {}?{} (operation {:?})\n",
                v.operation,
                v.problem,
                example.method,
                example.path,
                query.join("&"),
                example.operation
            ));
        }
        out
    }
}

/// Every `*.json` description in `dir`.
pub fn load_descriptions(dir: &Path) -> Result<Vec<Description>, String> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    paths.sort();
    for path in paths
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
    {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        out.push(Description::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?);
    }
    Ok(out)
}

/// Checks every request recorded in `records` (`*.jsonl`).
pub fn check_dir(descriptions: &[Description], records: &Path) -> Result<Report, String> {
    let mut report = Report::default();
    let entries = std::fs::read_dir(records).map_err(|e| format!("{}: {e}", records.display()))?;
    for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        if path.extension().is_none_or(|x| x != "jsonl") {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let request: RecordedRequest = serde_json::from_str(line)
                .map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
            report.add(descriptions, request);
        }
    }
    Ok(report)
}

/// `a[3].b[12]` → `a[].b[]`.
fn strip_indices(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_index = false;
    for c in text.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push(c);
            }
            ']' => {
                in_index = false;
                out.push(c);
            }
            c if in_index && c.is_ascii_digit() => {}
            c => {
                in_index = false;
                out.push(c);
            }
        }
    }
    out
}
