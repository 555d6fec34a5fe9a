//! Draws the engine's progress events: one line per finished step (the only output in CI
//! logs) and, on a terminal, an `indicatif` bar below them for the running step. Durations
//! are on the run's clock, so a rehearsal shows the 15-minute bake it simulated, not the
//! second it took.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use ops_core::clock::SharedClock;
use std::sync::{Arc, Mutex};

use ops_core::engine::{ProgressEvent, ProgressSink};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Turns events into lines; pure, so it is tested without a terminal.
#[derive(Debug, Default)]
pub struct Renderer {
    total: usize,
    done: usize,
    running: BTreeMap<String, Instant>,
    current: Option<String>,
}

/// `[#####-----]` for `done` of `total`.
pub fn bar(done: usize, total: usize, width: usize) -> String {
    let filled = (done.min(total) * width).checked_div(total).unwrap_or(0);
    format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
}

/// `850ms`, `42s`, `15m00s`, `1h05m`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        1..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

impl Renderer {
    /// The lines to print for one event, `now` on the run's clock.
    pub fn on_event(&mut self, event: &ProgressEvent, now: Instant) -> Vec<String> {
        match event {
            ProgressEvent::RunStarted {
                runbook,
                total,
                run_id,
            } => {
                *self = Renderer {
                    total: *total,
                    ..Renderer::default()
                };
                vec![format!("> {runbook}: {total} steps (run {run_id})")]
            }
            ProgressEvent::StepStarted { step, .. } => {
                self.running.insert(step.clone(), now);
                self.current = Some(step.clone());
                Vec::new()
            }
            ProgressEvent::StepRetrying {
                step,
                attempt,
                wait,
            } => vec![format!(
                "  retry  {step}: attempt {attempt} failed, next in {}",
                human(*wait)
            )],
            ProgressEvent::StepFinished { step, status, .. } => {
                self.done += 1;
                let took = self
                    .running
                    .remove(step)
                    .map(|t| format!(" ({})", human(now.saturating_duration_since(t))))
                    .unwrap_or_default();
                if self.current.as_deref() == Some(step) {
                    self.current = self.running.keys().next_back().cloned();
                }
                vec![format!(
                    "  {:<6} {} {step}{took}",
                    status.mark(),
                    bar(self.done, self.total, 20)
                )]
            }
            ProgressEvent::AwaitingApproval { gate } => {
                vec![format!("  ?      {gate}: waiting for approval")]
            }
            ProgressEvent::Compensating { step } => vec![format!("  undo   {step}")],
            ProgressEvent::Paused => vec!["  paused".into()],
            ProgressEvent::Resumed => vec!["  resumed".into()],
            ProgressEvent::RunFinished { outcome } => {
                self.running.clear();
                self.current = None;
                vec![format!("> {outcome}")]
            }
            _ => Vec::new(),
        }
    }

    /// The step running now and how long it has run, `now` on the run's clock.
    pub fn running_step(&self, now: Instant) -> Option<(&str, Duration)> {
        let step = self.current.as_ref()?;
        let since = self.running.get(step)?;
        Some((step, now.saturating_duration_since(*since)))
    }
}

/// The progress display: a [`ProgressSink`] that prints as events arrive (so the lines of a
/// run always come before its report), plus, on a terminal, a bar for the running step whose
/// time a ticker keeps current on the run's clock.
#[derive(Debug)]
pub struct Display {
    renderer: Mutex<Renderer>,
    clock: SharedClock,
    /// `None` when stderr is not a terminal: then only the plain lines are printed.
    bar: Option<ProgressBar>,
}

impl Display {
    /// A display on stderr, timing steps on `clock`.
    pub fn new(clock: SharedClock) -> Arc<Self> {
        let target = ProgressDrawTarget::stderr();
        let bar = (!target.is_hidden()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), target);
            let style = ProgressStyle::with_template("  ..     [{bar:20}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("#-");
            bar.set_style(style);
            bar
        });
        Arc::new(Self {
            renderer: Mutex::new(Renderer::default()),
            clock,
            bar,
        })
    }

    fn renderer(&self) -> std::sync::MutexGuard<'_, Renderer> {
        self.renderer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps the running step's time current ten times a second (on a terminal only) until
    /// aborted.
    pub fn spawn_ticker(self: &Arc<Self>) -> JoinHandle<()> {
        let display = self.clone();
        tokio::spawn(async move {
            let Some(bar) = display.bar.clone() else {
                return;
            };
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                let message = display
                    .renderer()
                    .running_step(display.clock.instant())
                    .map(|(step, took)| format!("{step} {}", human(took)))
                    .unwrap_or_default();
                bar.set_message(message);
            }
        })
    }
}

impl ProgressSink for Display {
    fn emit(&self, event: ProgressEvent) {
        let (lines, done, total) = {
            let mut r = self.renderer();
            let lines = r.on_event(&event, self.clock.instant());
            (lines, r.done, r.total)
        };
        match &self.bar {
            Some(bar) => {
                if matches!(event, ProgressEvent::RunStarted { .. }) {
                    bar.reset();
                }
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                if matches!(event, ProgressEvent::RunFinished { .. }) {
                    bar.finish_and_clear();
                }
                for line in lines {
                    bar.println(line);
                }
            }
            None => {
                let mut err = std::io::stderr().lock();
                for line in lines {
                    let _ = writeln!(err, "{line}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ops_core::engine::{RunOutcome, StepStatus};

    #[test]
    fn bars_and_durations_read_well() {
        assert_eq!(bar(0, 4, 8), "[--------]");
        assert_eq!(bar(2, 4, 8), "[####----]");
        assert_eq!(bar(9, 4, 8), "[########]");
        assert_eq!(bar(0, 0, 4), "[----]");
        assert_eq!(human(Duration::from_millis(850)), "850ms");
        assert_eq!(human(Duration::from_secs(42)), "42s");
        assert_eq!(human(Duration::from_secs(900)), "15m00s");
        assert_eq!(human(Duration::from_secs(3900)), "1h05m");
    }

    #[tokio::test(start_paused = true)]
    async fn steps_show_their_time_on_the_runs_clock() {
        let mut r = Renderer::default();
        let t0 = ops_core::clock::SimulatedClock::starting_at(chrono::DateTime::UNIX_EPOCH);
        let t0 = ops_core::clock::Clock::instant(&t0);
        let start = r.on_event(
            &ProgressEvent::RunStarted {
                run_id: "r1".into(),
                runbook: "progressive-rollout".into(),
                total: 2,
            },
            t0,
        );
        assert_eq!(start, vec!["> progressive-rollout: 2 steps (run r1)"]);
        r.on_event(
            &ProgressEvent::StepStarted {
                index: 0,
                step: "bake-1".into(),
            },
            t0,
        );
        let later = t0 + Duration::from_secs(900);
        assert_eq!(
            r.running_step(later),
            Some(("bake-1", Duration::from_secs(900)))
        );
        let done = r.on_event(
            &ProgressEvent::StepFinished {
                index: 0,
                step: "bake-1".into(),
                status: StepStatus::Succeeded,
            },
            later,
        );
        assert_eq!(
            done,
            vec!["  ok     [##########----------] bake-1 (15m00s)"]
        );
        assert_eq!(r.running_step(later), None);
        let end = r.on_event(
            &ProgressEvent::RunFinished {
                outcome: RunOutcome::Failed,
            },
            later,
        );
        assert_eq!(end, vec!["> failed"]);
    }
}
