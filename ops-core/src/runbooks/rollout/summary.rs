//! What a rollout's report says about its analysis, rebuilt from the journal: per stage, how
//! it was judged and why it passed or stopped, and every look with its counts and evidence.
//! People read [`RolloutSummary::to_markdown`]; programs read the fields.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::{Analysis, Verdict, Watched};
use crate::engine::{RunReport, StepStatus};
use crate::judge::{Look, TestReading};

/// A rollout's analysis, stage by stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutSummary {
    /// Why the rollout stopped, when it did: the look that rejected the canary, or else the
    /// error that ended the run (a guard rail, a failed deploy).
    pub stopped: Option<String>,
    /// Every stage with a watched or analysed bake, in order, as far as the run got.
    pub stages: Vec<StageSummary>,
}

/// One stage's analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageSummary {
    /// The canary's share, in percent.
    pub percent: u8,
    /// How the stage was judged.
    pub judged_by: JudgedBy,
    /// Its looks, in order (none when judged by thresholds).
    pub looks: Vec<Look>,
    /// The stage's verdict, once its analysis ran.
    pub verdict: Option<Verdict>,
    /// Why: the closing look's reason, the thresholds' readings, or what stopped the bake.
    pub why: Option<String>,
}

/// How a stage was judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum JudgedBy {
    /// The sequential judge, canary against stable, at every look.
    Sequential,
    /// Fixed thresholds at the end of the bake, because the metrics source cannot count
    /// requests per release (its `Unsupported` reason).
    Thresholds {
        /// Why the judge could not be used.
        reason: String,
    },
    /// The bake did not get far enough to say (it is running, or the run stopped before it).
    Unknown,
}

impl RolloutSummary {
    /// Reads a rollout's report (its steps, outputs and evidence).
    pub fn from_report(report: &RunReport) -> Self {
        let stages = report
            .steps
            .iter()
            .filter_map(|s| Some((s, s.name.strip_prefix("bake-")?.parse::<u8>().ok()?)))
            .filter(|(_, percent)| *percent > 0)
            .map(|(step, percent)| stage(report, step, percent))
            .collect::<Vec<_>>();
        // The judge's own words when a look stopped it; else the error that ended the run.
        let judged = stages.iter().rev().find_map(|s| {
            let last = s.looks.last().filter(|l| l.decision.stops())?;
            Some(format!("analysis at {} %: {}", s.percent, last.why))
        });
        let stopped = report
            .error
            .as_ref()
            .map(|e| judged.unwrap_or_else(|| e.message.clone()));
        Self { stopped, stages }
    }

    /// The analysis for people: why it stopped first, then a line per stage, then every look.
    pub fn to_markdown(&self) -> String {
        let mut md = String::from("## Canary analysis\n\n");
        if let Some(why) = &self.stopped {
            let _ = writeln!(md, "**Stopped:** {}\n", cell(why));
        }
        let _ = writeln!(
            md,
            "| Stage | Judged by | Looks | Verdict | Why |\n|---|---|---|---|---|"
        );
        for s in &self.stages {
            let by = match &s.judged_by {
                JudgedBy::Sequential => "sequential judge".to_string(),
                JudgedBy::Thresholds { reason } => format!("thresholds ({})", cell(reason)),
                JudgedBy::Unknown => "—".to_string(),
            };
            let verdict = s.verdict.map_or("—".to_string(), |v| format!("{v:?}"));
            let why = s.why.as_deref().map(cell).unwrap_or_default();
            let _ = writeln!(
                md,
                "| {} % | {by} | {} | {verdict} | {why} |",
                s.percent,
                s.looks.len()
            );
        }
        for s in self.stages.iter().filter(|s| !s.looks.is_empty()) {
            let _ = writeln!(
                md,
                "\n### Looks at {} %\n\nEvidence is shown as log₁₀ of the evidence / log₁₀ of \
                 the bound it must reach.\n\n| Look | Canary requests this stage | Tests | Decision |\n|---|---|---|---|",
                s.percent
            );
            for look in &s.looks {
                let tests = look
                    .tests
                    .iter()
                    .map(describe)
                    .collect::<Vec<_>>()
                    .join("; ");
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {:?} |",
                    look.number, look.stage_canary_requests, tests, look.decision
                );
            }
        }
        md
    }

    /// One line per stage for a terminal.
    pub fn lines(&self) -> Vec<String> {
        self.stages
            .iter()
            .map(|s| {
                let verdict = s
                    .verdict
                    .map_or("stopped".to_string(), |v| format!("{v:?}").to_lowercase());
                let by = match &s.judged_by {
                    JudgedBy::Sequential if s.looks.len() == 1 => "1 look".to_string(),
                    JudgedBy::Sequential => format!("{} looks", s.looks.len()),
                    JudgedBy::Thresholds { .. } => "thresholds".to_string(),
                    JudgedBy::Unknown => "not judged".to_string(),
                };
                format!(
                    "{:>3} %: {verdict} ({by}){}",
                    s.percent,
                    s.why
                        .as_deref()
                        .map(|w| format!(" — {w}"))
                        .unwrap_or_default()
                )
            })
            .collect()
    }
}

fn stage(report: &RunReport, step: &crate::engine::StepReport, percent: u8) -> StageSummary {
    let looks: Vec<Look> = report
        .evidence
        .iter()
        .filter(|e| e.step == step.name && e.key.starts_with("look "))
        .filter_map(|e| serde_json::from_value(e.value.clone()).ok())
        .collect();
    let watched = report.output::<Watched>(&step.name);
    let analysis = report.output::<Analysis>(&format!("analyze-{percent}"));
    let judged_by = match (&watched, looks.is_empty()) {
        (
            Some(Watched {
                fallback: Some(reason),
                ..
            }),
            _,
        ) => JudgedBy::Thresholds {
            reason: reason.clone(),
        },
        (_, false) | (Some(_), true) => JudgedBy::Sequential,
        (None, true) => JudgedBy::Unknown,
    };
    let why = match (&analysis, &watched) {
        (Some(a), _) => Some(analysis_why(a)),
        (
            None,
            Some(Watched {
                stopped: Some(why), ..
            }),
        ) => Some(why.clone()),
        (None, _) if step.status == StepStatus::Failed => {
            match looks.last().filter(|l| l.decision.stops()) {
                Some(look) => Some(look.why.clone()),
                None => step.error.as_ref().map(|e| e.message.clone()),
            }
        }
        (None, _) => None,
    };
    StageSummary {
        percent,
        judged_by,
        looks,
        verdict: analysis.map(|a| a.verdict),
        why,
    }
}

fn analysis_why(a: &Analysis) -> String {
    match &a.sequential {
        Some(s) => s.last.why.clone(),
        None => a
            .metrics
            .iter()
            .map(|m| {
                let value = m.value.map_or("n/a".to_string(), |v| format!("{v:.4}"));
                format!("{:?} {value} ({:?})", m.metric, m.verdict)
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn describe(t: &TestReading) -> String {
    let mark = if t.rejected { " **rejected**" } else { "" };
    if t.test == "sample_ratio" {
        return format!(
            "{} {} vs {} requests: 10^{:.1} / 10^{:.1}{mark}",
            t.test, t.canary.exposure, t.baseline.exposure, t.log10_evidence, t.log10_bound
        );
    }
    format!(
        "{} {}/{} vs {}/{}: 10^{:.1} / 10^{:.1}{mark}",
        t.test,
        t.canary.events,
        t.canary.exposure,
        t.baseline.events,
        t.baseline.exposure,
        t.log10_evidence,
        t.log10_bound
    )
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
