//! The Markdown rendering of a [`RunReport`].

use std::fmt::Write;

use super::RunReport;
use crate::engine::Mode;

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn secs(d: Option<std::time::Duration>) -> String {
    d.map(|d| format!("{:.1} s", d.as_secs_f64()))
        .unwrap_or_default()
}

pub(super) fn render(r: &RunReport) -> String {
    let mut md = String::new();
    let outcome = r
        .outcome
        .map_or("unfinished".to_string(), |o| o.to_string());
    let _ = writeln!(
        md,
        "# Runbook `{}` on `{}`: {}\n",
        r.runbook, r.target, outcome
    );
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| Run | `{}` |", r.run_id);
    let _ = writeln!(
        md,
        "| Mode | {} |",
        if r.mode == Mode::DryRun {
            "dry run"
        } else {
            "execute"
        }
    );
    let _ = writeln!(md, "| Started | {} |", r.started_at.to_rfc3339());
    if let Some(f) = r.finished_at {
        let took = (f - r.started_at).to_std().unwrap_or_default();
        let _ = writeln!(
            md,
            "| Finished | {} ({:.1} s) |",
            f.to_rfc3339(),
            took.as_secs_f64()
        );
    }
    if r.resumptions > 0 {
        let _ = writeln!(md, "| Resumed | {} time(s) |", r.resumptions);
    }
    if let Some(e) = &r.error {
        let _ = writeln!(md, "| Error | {} |", cell(&e.message));
    }

    let _ = writeln!(
        md,
        "\n## Steps\n\n| # | Step | Status | Attempts | Duration | Detail |\n|---|---|---|---|---|---|"
    );
    for (i, s) in r.steps.iter().enumerate() {
        let detail = s
            .error
            .as_ref()
            .map(|e| cell(&e.message))
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            i + 1,
            cell(&s.name),
            s.status,
            s.attempts,
            secs(s.duration),
            detail
        );
    }

    if !r.planned.is_empty() {
        let _ = writeln!(
            md,
            "\n## Planned actions\n\n| Step | Call | Arguments |\n|---|---|---|"
        );
        for p in &r.planned {
            let _ = writeln!(
                md,
                "| {} | `{}` | `{}` |",
                cell(&p.step),
                cell(&p.call),
                cell(&p.args.to_string())
            );
        }
    }
    if !r.approvals.is_empty() {
        let _ = writeln!(
            md,
            "\n## Approvals\n\n| Gate | Decision | By | Note | At |\n|---|---|---|---|---|"
        );
        for a in &r.approvals {
            let decision = if a.approved { "approved" } else { "denied" };
            let note = a.note.as_deref().map(cell).unwrap_or_default();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                cell(&a.gate),
                decision,
                cell(&a.by),
                note,
                a.at.to_rfc3339()
            );
        }
    }
    if !r.compensations.is_empty() {
        let _ = writeln!(
            md,
            "\n## Compensations\n\n| Step | Call | Result |\n|---|---|---|"
        );
        for c in &r.compensations {
            let result = c.error.as_ref().map_or("undone".to_string(), |e| {
                format!("FAILED: {}", cell(&e.message))
            });
            let _ = writeln!(
                md,
                "| {} | `{}` | {} |",
                cell(&c.step),
                cell(&c.call),
                result
            );
        }
    }
    if !r.evidence.is_empty() {
        let _ = writeln!(md, "\n## Evidence");
        for e in &r.evidence {
            let pretty = serde_json::to_string_pretty(&e.value).unwrap_or_default();
            let _ = writeln!(
                md,
                "\n### {} / {}\n\n```json\n{}\n```",
                e.step, e.key, pretty
            );
        }
    }
    md
}
