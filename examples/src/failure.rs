//! Why an example stopped early, and the exit code that says so.

/// Exit code: a run failed, or setup work did.
pub const EXIT_RUN_FAILED: u8 = 1;
/// Exit code: bad flags, a bad config file or missing credentials.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: a rehearsal check found the simulated world not as the runbook left it.
pub const EXIT_CHECK_FAILED: u8 = 3;

/// Why an example stopped early: a one-line message and its exit code. Any error converts
/// with `?` as a failed run (exit 1); [`Failure::usage`] is a problem with the input (exit 2).
///
/// It deliberately does not implement `std::error::Error`, so that every error type
/// converts into it (the same trick as `anyhow::Error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// Bad input: flags, a config file, missing credentials (exit 2).
    pub fn usage(message: impl std::fmt::Display) -> Self {
        Self {
            code: EXIT_USAGE,
            message: message.to_string(),
        }
    }

    /// Setup or a run failed (exit 1).
    pub fn failed(message: impl std::fmt::Display) -> Self {
        Self {
            code: EXIT_RUN_FAILED,
            message: message.to_string(),
        }
    }

    /// `--help`: the text goes to stdout and the exit code is 0.
    pub(crate) fn help(text: String) -> Self {
        Self {
            code: 0,
            message: text,
        }
    }

    /// The exit code.
    pub fn code(&self) -> u8 {
        self.code
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Self {
        Self::failed(e)
    }
}
