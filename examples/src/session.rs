//! One example's run: flags, clock, journal, lock, progress, approvals, reports, exit code.

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
use ops_core::runbooks::RunbookConfig;
use tokio::task::JoinHandle;

use crate::cli::{Cli, Spec, UsageError};
use crate::progress::Display;

/// Exit codes: 0 every run succeeded (or was planned), 1 a run failed, 2 bad flags or missing
/// credentials, 3 a rehearsal check found the simulated world not as the runbook left it.
const EXIT_RUN_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_CHECK_FAILED: u8 = 3;

/// An example's session. Start it first thing in `main`, end it with [`Session::finish`].
pub struct Session {
    /// The parsed flags.
    pub cli: Cli,
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
    /// Parses the flags (printing help or a one-line usage error and exiting on a problem),
    /// sets up logging, the clock (the real one with `--live`, a [`ScaledClock`] in a
    /// rehearsal), the journal and run lock under `--journal-dir`, and the progress display.
    pub async fn start(spec: Spec) -> Session {
        let cli = match Cli::parse_from(spec, std::env::args().skip(1), std::env::vars()) {
            Ok(cli) => cli,
            Err(UsageError(msg)) if msg.contains('\n') => {
                print!("{msg}");
                std::process::exit(0);
            }
            Err(e) => {
                eprintln!("{}: {e}", spec.name);
                std::process::exit(EXIT_USAGE.into());
            }
        };
        let logs = LogCapture::default();
        logs.init(spec.name);
        let clock: SharedClock = if cli.live {
            Arc::new(SystemClock)
        } else {
            match ScaledClock::starting_at(SystemClock.now(), cli.speed) {
                // A 24-hour grace period plays one hour, then jumps.
                Ok(c) => Arc::new(c.jump_beyond(std::time::Duration::from_secs(3600))),
                Err(e) => fail(spec.name, EXIT_USAGE, e),
            }
        };
        let journal_path = cli.journal_dir.join(format!("{}.jsonl", spec.name));
        let journal = FileJournal::open(&journal_path, FsyncPolicy::EveryEvent)
            .await
            .unwrap_or_else(|e| fail(spec.name, EXIT_RUN_FAILED, e));
        let lock = FileRunLock::open(cli.journal_dir.join("locks"))
            .await
            .unwrap_or_else(|e| fail(spec.name, EXIT_RUN_FAILED, e))
            .with_clock(clock.clone());
        let display = Display::new(clock.clone());
        let ticker = display.spawn_ticker();
        let session = Session {
            cli,
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
        session
    }

    fn banner(&self) -> String {
        let c = &self.cli;
        let mode = if c.dry_run { ", dry run" } else { "" };
        if c.live {
            format!("{}: LIVE against real providers{mode}", c.name())
        } else {
            let fault = c
                .fault
                .as_deref()
                .map(|f| format!(", fault {f}"))
                .unwrap_or_default();
            format!(
                "{}: rehearsal against simulators (no credentials; time x{}{fault}{mode})",
                c.name(),
                c.speed
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

    /// Whether this is a rehearsal against simulators.
    pub fn rehearsal(&self) -> bool {
        !self.cli.live
    }

    /// Dry run or execute, from the flags.
    pub fn mode(&self) -> Mode {
        if self.cli.dry_run {
            Mode::DryRun
        } else {
            Mode::Execute
        }
    }

    /// A runner with this session's clock, journal, lock, progress display and approver (a
    /// rehearsal or `--yes` approves; otherwise a person at the terminal decides).
    pub fn runner(&self) -> Runner {
        let approver: Arc<dyn Approver> = if self.rehearsal() || self.cli.yes {
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
        let result = match self.cli.resume.take() {
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
                let body = if self.cli.json {
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
                eprintln!("{}: the run could not start: {e}", self.cli.name());
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

    /// Option `name` (see [`Cli::value`]); a missing one with `--live` is a one-line usage
    /// error naming the flag and its variable.
    pub fn value(&self, name: &str) -> String {
        self.cli.value(name).unwrap_or_else(|e| self.usage_error(e))
    }

    /// Prints a one-line error and exits: bad input or missing credentials (2).
    pub fn usage_error(&self, e: impl std::fmt::Display) -> ! {
        fail(self.cli.name(), EXIT_USAGE, e)
    }

    /// Unwraps setup work; on an error prints it in one line and exits with 1.
    pub fn or_exit<T, E: std::fmt::Display>(&self, result: Result<T, E>) -> T {
        result.unwrap_or_else(|e| fail(self.cli.name(), EXIT_RUN_FAILED, e))
    }

    /// The runbook config from `--config FILE` (TOML, validated), or its defaults; a bad file
    /// is a one-line error naming the field.
    pub fn config<C: RunbookConfig>(&self) -> C {
        let Some(path) = self.cli.optional("config") else {
            return C::default();
        };
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| self.usage_error(format!("--config {path}: {e}")));
        C::from_toml(&text).unwrap_or_else(|e| self.usage_error(format!("--config {path}: {e}")))
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
        eprintln!(
            "\njournal: {} ({})",
            self.journal_path().display(),
            runs.join(", ")
        );
        if let Some((id, _)) = self.runs.iter().find(|(id, o)| {
            matches!(o, RunOutcome::Failed | RunOutcome::Cancelled)
                && self.cli.live
                && !id.starts_with('(')
        }) {
            eprintln!("continue it once the cause is fixed: --live --resume {id}");
        }
        if self.failed_checks > 0 {
            eprintln!(
                "{}: {} rehearsal check(s) failed",
                self.cli.name(),
                self.failed_checks
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

fn fail(name: &str, code: u8, e: impl std::fmt::Display) -> ! {
    eprintln!("{name}: {e}");
    std::process::exit(code.into())
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
