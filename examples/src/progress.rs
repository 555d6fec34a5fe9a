//! Draws the engine's progress events: a bar redrawn in place on a terminal, one line per
//! finished step otherwise (CI logs). Durations are on the run's clock, so a rehearsal shows
//! the 15-minute bake it simulated, not the second it took.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

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

    /// The line redrawn in place while a step runs.
    pub fn status_line(&self, now: Instant) -> Option<String> {
        let step = self.current.as_ref()?;
        let since = self.running.get(step)?;
        Some(format!(
            "  ..     {} {step} {}",
            bar(self.done, self.total, 20),
            human(now.saturating_duration_since(*since))
        ))
    }
}

/// The progress display: a [`ProgressSink`] that prints as events arrive (so the lines of a
/// run always come before its report), plus a ticker redrawing the running step on a terminal.
#[derive(Debug)]
pub struct Display {
    renderer: Mutex<Renderer>,
    clock: SharedClock,
    tty: bool,
}

impl Display {
    /// A display on stderr, timing steps on `clock`.
    pub fn new(clock: SharedClock) -> Arc<Self> {
        Arc::new(Self {
            renderer: Mutex::new(Renderer::default()),
            clock,
            tty: std::io::stderr().is_terminal(),
        })
    }

    fn renderer(&self) -> std::sync::MutexGuard<'_, Renderer> {
        self.renderer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Redraws the running step ten times a second (on a terminal only) until aborted.
    pub fn spawn_ticker(self: &Arc<Self>) -> JoinHandle<()> {
        let display = self.clone();
        tokio::spawn(async move {
            if !display.tty {
                return;
            }
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                let line = display.renderer().status_line(display.clock.instant());
                if let Some(line) = line {
                    let _ = write!(std::io::stderr().lock(), "\r\x1b[K{line}");
                }
            }
        })
    }
}

impl ProgressSink for Display {
    fn emit(&self, event: ProgressEvent) {
        let lines = self.renderer().on_event(&event, self.clock.instant());
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[K");
        }
        for line in lines {
            let _ = writeln!(err, "{line}");
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
            r.status_line(later).unwrap(),
            "  ..     [--------------------] bake-1 15m00s"
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
        assert_eq!(r.status_line(later), None);
        let end = r.on_event(
            &ProgressEvent::RunFinished {
                outcome: RunOutcome::Failed,
            },
            later,
        );
        assert_eq!(end, vec!["> failed"]);
    }
}
