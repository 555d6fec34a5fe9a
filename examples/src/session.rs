//! One example's run: flags, clock, journal, lock, progress, approvals, reports, exit code.

use ops_core::presets::PresetSection;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use async_trait::async_trait;
use ops_core::clock::{Clock, ScaledClock, SharedClock, SystemClock};
use ops_core::engine::{
    ApprovalDecision, ApprovalRequest, Approver, AutoApprove, FileJournal, FileRunLock,
    FsyncPolicy, LockWait, Mode, RunControl, RunOutcome, RunReport, Runbook, Runner,
};
use tokio::task::JoinHandle;

use crate::args::{Common, Parsed};
use crate::failure::{EXIT_CHECK_FAILED, EXIT_RUN_FAILED, Failure};
use crate::progress::Display;

/// Parses the flags into `F`, starts a [`Session`] and runs `body`; a [`Failure`] it returns
/// is printed in one line, prefixed with the example's name, and becomes the exit code. This
/// is an example's whole `main`:
///
/// ```no_run
/// # use std::process::ExitCode;
/// # use ops_examples::{Common, Failure, Session};
/// # #[derive(clap::Parser)]
/// # struct Flags { #[command(flatten)] common: Common }
/// #[tokio::main]
/// async fn main() -> ExitCode {
///     ops_examples::run(example).await
/// }
///
/// async fn example(mut session: Session, flags: Flags) -> Result<ExitCode, Failure> {
///     // build the runbook, `session.run(&runbook).await`, check the rehearsal
///     Ok(session.finish().await)
/// }
/// ```
///
/// `main` cannot return the `Result` itself: the standard library turns every `Err` into exit
/// code 1, and a usage error must exit with 2.
pub async fn run<F, Fut>(body: impl FnOnce(Session, F) -> Fut) -> ExitCode
where
    F: clap::Parser,
    Fut: std::future::Future<Output = Result<ExitCode, Failure>>,
{
    run_with(body, false).await
}

/// [`run`] on the real clock whatever `--speed` says: for a rehearsal on real programs (nginx,
/// pm2) whose own timestamps and timers cannot be sped up.
pub async fn run_in_real_time<F, Fut>(body: impl FnOnce(Session, F) -> Fut) -> ExitCode
where
    F: clap::Parser,
    Fut: std::future::Future<Output = Result<ExitCode, Failure>>,
{
    run_with(body, true).await
}

async fn run_with<F, Fut>(body: impl FnOnce(Session, F) -> Fut, real_time: bool) -> ExitCode
where
    F: clap::Parser,
    Fut: std::future::Future<Output = Result<ExitCode, Failure>>,
{
    let name = F::command().get_name().to_string();
    let parsed = crate::args::parse::<F>(std::env::args_os()).map(|mut p| {
        if real_time {
            p.common.speed = 1.0;
        }
        p
    });
    let outcome = match parsed {
        Ok(parsed) => match Session::start(&parsed).await {
            Ok(session) => body(session, parsed.flags).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match outcome {
        Ok(code) => code,
        Err(e) if e.code() == 0 => {
            print!("{e}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::from(e.code())
        }
    }
}

/// An example's session: its clock, journal, lock, progress display, runs and checks. [`run`]
/// starts it; the example ends it with [`Session::finish`].
pub struct Session {
    /// The shared flags.
    pub args: Common,
    name: String,
    clock: SharedClock,
    journal: Arc<FileJournal>,
    lock: Arc<FileRunLock>,
    display: Arc<Display>,
    ticker: JoinHandle<()>,
    runs: Vec<(String, RunOutcome)>,
    failed_checks: usize,
    logs: LogCapture,
}

/// The log lines printed so far, kept (up to [`LogCapture::LIMIT`]) so a rehearsal's leak
/// checks can prove that no secret reached the logs, at any `RUST_LOG` level.
#[derive(Clone, Default)]
struct LogCapture(Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    const LIMIT: usize = 256 << 20;

    /// Logs to stderr at `RUST_LOG` (default `error`), through this capture.
    fn init(&self, name: &str) {
        let filter = match tracing_subscriber::EnvFilter::try_from_default_env() {
            Ok(f) => f,
            Err(e) => {
                if std::env::var_os("RUST_LOG").is_some() {
                    eprintln!("{name}: RUST_LOG ignored ({e}); logging errors only");
                }
                tracing_subscriber::EnvFilter::new("error")
            }
        };
        let capture = self.clone();
        tracing_subscriber::fmt()
            .with_target(false)
            .with_env_filter(filter)
            .with_writer(move || capture.clone())
            .init();
    }

    fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        {
            let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let room = Self::LIMIT.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..buf.len().min(room)]);
        }
        std::io::stderr().write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl Session {
    /// Sets up logging, the clock (the real one with `--live`, a [`ScaledClock`] in a
    /// rehearsal), the journal and run lock under `--journal-dir`, and the progress display.
    pub async fn start<F>(parsed: &Parsed<F>) -> Result<Session, Failure> {
        let (args, name) = (parsed.common.clone(), parsed.name.clone());
        let logs = LogCapture::default();
        logs.init(&name);
        let clock: SharedClock = if args.live || args.speed == 1.0 {
            Arc::new(SystemClock)
        } else {
            let c =
                ScaledClock::starting_at(SystemClock.now(), args.speed).map_err(Failure::usage)?;
            // A 24-hour grace period plays one hour, then jumps.
            Arc::new(c.jump_beyond(std::time::Duration::from_secs(3600)))
        };
        let journal_path = args.journal_dir.join(format!("{name}.jsonl"));
        let journal = FileJournal::open(&journal_path, FsyncPolicy::EveryEvent).await?;
        let lock = FileRunLock::open(args.journal_dir.join("locks"))
            .await?
            .with_clock(clock.clone());
        let display = Display::new(clock.clone());
        let ticker = display.spawn_ticker();
        let session = Session {
            args,
            name,
            clock,
            journal: Arc::new(journal),
            lock: Arc::new(lock),
            display,
            ticker,
            runs: Vec::new(),
            failed_checks: 0,
            logs,
        };
        eprintln!("{}", session.banner());
        Ok(session)
    }

    fn banner(&self) -> String {
        let c = &self.args;
        let mode = if c.dry_run { ", dry run" } else { "" };
        if c.live {
            format!("{}: LIVE against real providers{mode}", self.name)
        } else {
            let fault = c
                .fault
                .as_deref()
                .map(|f| format!(", fault {f}"))
                .unwrap_or_default();
            format!(
                "{}: rehearsal against simulators (no credentials; time x{}{fault}{mode})",
                self.name, c.speed
            )
        }
    }

    /// Everything logged so far (at the `RUST_LOG` level), for leak checks.
    pub fn logs(&self) -> String {
        self.logs.text()
    }

    /// The clock everything in this run shares (hand it to the simulators).
    pub fn clock(&self) -> SharedClock {
        self.clock.clone()
    }

    /// The session's journal (`--journal-dir`), for runners an example builds itself.
    pub fn journal(&self) -> Arc<dyn ops_core::engine::Journal> {
        self.journal.clone()
    }

    /// Whether this is a rehearsal against simulators.
    pub fn rehearsal(&self) -> bool {
        !self.args.live
    }

    /// Dry run or execute, from the flags.
    pub fn mode(&self) -> Mode {
        if self.args.dry_run {
            Mode::DryRun
        } else {
            Mode::Execute
        }
    }

    /// A runner with this session's clock, journal, lock, progress display and approver (a
    /// rehearsal or `--yes` approves; otherwise a person at the terminal decides).
    pub fn runner(&self) -> Runner {
        let approver: Arc<dyn Approver> = if self.rehearsal() || self.args.yes {
            Arc::new(AutoApprove {
                by: if self.rehearsal() {
                    "rehearsal".into()
                } else {
                    "--yes".into()
                },
            })
        } else {
            Arc::new(ConsoleApprover)
        };
        Runner::new()
            .with_clock(self.clock.clone())
            .with_journal(self.journal.clone())
            .with_lock(self.lock.clone(), LockWait::Fail)
            .with_approver(approver)
            .with_progress(self.display.clone())
    }

    /// Runs `runbook` in the session's mode (or, with `--resume RUN_ID`, continues that run
    /// from the journal without repeating its completed steps) and prints its report; `None`
    /// when it could not run at all (the error is printed). Ctrl-C cancels the run at its next
    /// await point, and the compensations of completed steps run.
    pub async fn run(&mut self, runbook: &Runbook) -> Option<RunReport> {
        let control = RunControl::new();
        let on_interrupt = control.clone();
        // Ctrl-C, and SIGTERM (what `timeout`, systemd, Kubernetes and CI send), both cancel.
        let watcher = tokio::spawn(async move {
            let terminate = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            let why = tokio::select! {
                r = tokio::signal::ctrl_c() => r.is_ok().then_some("interrupted"),
                () = terminate => Some("terminated"),
            };
            if let Some(why) = why {
                eprintln!("\n{why}: cancelling, undoing what was done");
                on_interrupt.cancel();
            }
        });
        let runner = self.runner();
        let result = match self.args.resume.take() {
            Some(run_id) => runner.resume(runbook, &run_id, &control).await,
            None => runner.run_with(runbook, self.mode(), &control, None).await,
        };
        watcher.abort();
        self.report(result)
    }

    /// Prints a run's report (or its error) and counts its outcome.
    pub fn report(&mut self, result: ops_core::Result<RunReport>) -> Option<RunReport> {
        match result {
            Ok(report) => {
                let body = if self.args.json {
                    report.to_json()
                } else {
                    report.to_markdown()
                };
                println!("\n{body}");
                eprintln!("\n{}", report.summary().trim_end());
                let outcome = report.outcome.unwrap_or(RunOutcome::Failed);
                self.runs.push((report.run_id.clone(), outcome));
                Some(report)
            }
            Err(e) => {
                eprintln!("{}: the run could not start: {e}", self.name);
                self.runs.push(("(not started)".into(), RunOutcome::Failed));
                None
            }
        }
    }

    /// Counts the outcome of work that is not an engine run (an incident response).
    pub fn outcome(&mut self, id: &str, outcome: RunOutcome) {
        self.runs.push((id.to_string(), outcome));
    }

    /// A rehearsal check: after a run, the simulated world must look as the runbook left it.
    pub fn check(&mut self, what: &str, ok: bool) {
        if self.runs.iter().any(|(_, o)| *o == RunOutcome::Cancelled) {
            eprintln!("  check  skip  {what} (the run was cancelled)");
            return;
        }
        if ok {
            eprintln!("  check  ok    {what}");
        } else {
            eprintln!("  check  FAIL  {what}");
            self.failed_checks += 1;
        }
    }

    /// A credential from the environment, required with `--live`: the error says what to set.
    pub fn credential(&self, var: &str, what: &str) -> Result<String, Failure> {
        env_var(var).ok_or_else(|| Failure::usage(format!("--live needs {var} ({what})")))
    }

    /// `value` when given; otherwise the `rehearsal` value in a rehearsal, and with `--live` a
    /// usage error naming `flag`. For flags whose rehearsal value depends on other flags; a
    /// flag with one rehearsal value declares it as its clap default instead.
    pub fn or_rehearsal(
        &self,
        value: Option<String>,
        flag: &str,
        rehearsal: &str,
    ) -> Result<String, Failure> {
        match value {
            Some(v) => Ok(v),
            None if self.rehearsal() => Ok(rehearsal.to_string()),
            None => Err(Failure::usage(format!("--live needs {flag}"))),
        }
    }

    /// The runbook config: the `--preset` seed's section with `--config FILE` (TOML, the
    /// config's own shape) laid over it field by field; without a preset, the file alone or
    /// the defaults. A bad file is a one-line usage error naming the field.
    pub fn config<C: PresetSection>(&self, file: Option<&std::path::Path>) -> Result<C, Failure> {
        let text = match file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| Failure::usage(format!("--config {}: {e}", path.display())))?,
            None => String::new(),
        };
        let from = match (file, &self.args.preset) {
            (Some(path), Some(p)) => format!("--preset {p} --config {}", path.display()),
            (Some(path), None) => format!("--config {}", path.display()),
            (None, Some(p)) => format!("--preset {p}"),
            (None, None) => return Ok(C::default()),
        };
        let loaded = match &self.args.preset {
            Some(p) => ops_core::presets::Preset::section::<C>(p, &text),
            None => C::from_toml(&text),
        };
        loaded.map_err(|e| Failure::usage(format!("{from}: {e}")))
    }

    /// The `--preset` seed, if one was given.
    pub fn preset(&self) -> Option<ops_core::presets::Preset> {
        let name = self.args.preset.as_deref()?;
        ops_core::presets::Preset::load(name).ok()
    }

    /// Where the journal is.
    pub fn journal_path(&self) -> PathBuf {
        self.journal.path().to_path_buf()
    }

    /// Ends the session: says where the journal is, and turns
    /// the runs and checks into the exit code.
    pub async fn finish(self) -> ExitCode {
        self.ticker.abort();
        let runs: Vec<String> = self
            .runs
            .iter()
            .map(|(id, o)| format!("{id} {o}"))
            .collect();
        if runs.is_empty() {
            eprintln!("\njournal: {}", self.journal_path().display());
        } else {
            eprintln!(
                "\njournal: {} ({})",
                self.journal_path().display(),
                runs.join(", ")
            );
        }
        if let Some((id, _)) = self.runs.iter().find(|(id, o)| {
            matches!(o, RunOutcome::Failed | RunOutcome::Cancelled)
                && self.args.live
                && !id.starts_with('(')
        }) {
            eprintln!("continue it once the cause is fixed: --live --resume {id}");
        }
        if self.failed_checks > 0 {
            eprintln!(
                "{}: {} rehearsal check(s) failed",
                self.name, self.failed_checks
            );
            return ExitCode::from(EXIT_CHECK_FAILED);
        }
        let failed = self
            .runs
            .iter()
            .any(|(_, o)| !matches!(o, RunOutcome::Succeeded | RunOutcome::Planned));
        if failed {
            ExitCode::from(EXIT_RUN_FAILED)
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// An environment variable, when set and not empty.
pub fn env_var(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// Asks the person at the terminal; with no terminal it denies and says to pass `--yes`.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleApprover;

#[async_trait]
impl Approver for ConsoleApprover {
    async fn decide(&self, request: &ApprovalRequest) -> ops_core::Result<ApprovalDecision> {
        if !std::io::stdin().is_terminal() {
            return Ok(ApprovalDecision::Denied {
                by: "console".into(),
                reason: "no terminal to ask: pass --yes to approve gates up front".into(),
            });
        }
        let prompt = format!(
            "\n{} on {}: {} [y/N] ",
            request.runbook, request.target, request.prompt
        );
        let answer = tokio::task::spawn_blocking(move || {
            eprint!("{prompt}");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|_| line)
        })
        .await;
        let by = std::env::var("USER").unwrap_or_else(|_| "console".into());
        Ok(match answer {
            Ok(Ok(line)) if matches!(line.trim(), "y" | "Y" | "yes") => {
                ApprovalDecision::Approved { by, comment: None }
            }
            _ => ApprovalDecision::Denied {
                by,
                reason: "declined at the terminal".into(),
            },
        })
    }
}
