//! The flags every example shares ([`Common`], [`GcpArgs`]), and the parse that turns any
//! command line into flags or one line saying what is wrong.
//!
//! An example declares its own flags with clap's derive and flattens [`Common`] into them:
//!
//! ```
//! use clap::Parser;
//!
//! /// roll a new image out in stages
//! #[derive(Parser)]
//! #[command(name = "demo")]
//! struct Flags {
//!     #[command(flatten)]
//!     common: ops_examples::Common,
//!     /// the Cloud Run service
//!     #[arg(long, env = "OPS_SERVICE", default_value = "api")]
//!     service: String,
//! }
//!
//! let parsed = ops_examples::parse::<Flags>(["demo", "--service", "shop"]).unwrap();
//! assert_eq!(parsed.flags.service, "shop");
//! assert!(!parsed.common.live);
//! ```
//!
//! The conventions the parse adds to clap's:
//! - **A default of an example's own flag is its rehearsal value.** With `--live` such a flag
//!   must be given, on the command line or in its environment variable, unless a switch given
//!   conflicts with it (clap's `conflicts_with`); the error names both. Help shows the value as
//!   `(rehearsal: …)`.
//! - **`--fault NAME`** is the example's own flag (a `clap::ValueEnum`, so help lists the
//!   scenarios); it rehearses, so it cannot go with `--live`.
//! - **Errors are one line**, prefixed with the example's name by [`crate::run`].
//! - **An environment variable set but empty** is an error, not an empty value.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::builder::ArgAction;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command, FromArgMatches, Parser};

use crate::failure::Failure;

/// The flags every example takes.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct Common {
    /// use real providers and credentials (default: rehearse against simulators)
    #[arg(long)]
    pub live: bool,
    /// print the plan of calls; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// print the report as JSON instead of Markdown
    #[arg(long)]
    pub json: bool,
    /// where the run journal goes
    #[arg(long, value_name = "DIR", default_value = "target/ops-journal")]
    pub journal_dir: PathBuf,
    /// a rehearsal runs N times faster than real time (a wait beyond an hour plays one hour,
    /// then jumps)
    #[arg(long, value_name = "N", default_value = "600", value_parser = speed)]
    pub speed: f64,
    /// approve gates without asking (with --live)
    #[arg(long)]
    pub yes: bool,
    /// continue an interrupted live run from its journal
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<String>,
    /// a seed's numbers: code-developer, agent-marketplace, loopcloser, godel, monkeytown
    /// (`--config` then overrides the preset field by field)
    #[arg(long, value_name = "SEED", value_parser = preset)]
    pub preset: Option<String>,
    /// The name given to the example's `--fault` (filled in by [`parse`]).
    #[arg(skip)]
    pub fault: Option<String>,
}

/// `--project` and `--region`, for the examples on Google Cloud.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct GcpArgs {
    /// the Google Cloud project
    #[arg(long, env = "GOOGLE_CLOUD_PROJECT", default_value = "sim-project")]
    pub project: String,
    /// the Google Cloud region
    #[arg(long, env = "GOOGLE_CLOUD_REGION", default_value = "europe-west1")]
    pub region: String,
}

fn preset(text: &str) -> Result<String, String> {
    if ops_core::presets::Preset::names().any(|n| n == text) {
        Ok(text.to_string())
    } else {
        let names: Vec<&str> = ops_core::presets::Preset::names().collect();
        Err(format!(
            "no preset {text:?}; the presets are {}",
            names.join(", ")
        ))
    }
}

fn speed(text: &str) -> Result<f64, String> {
    let max = ops_core::clock::ScaledClock::MAX_FACTOR;
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && (1.0..=max).contains(s))
        .ok_or_else(|| format!("give a number from 1 to {max}"))
}

/// An example's parsed command line.
#[derive(Debug)]
pub struct Parsed<F> {
    /// The example's own flags (with [`Common`] flattened in).
    pub flags: F,
    /// The shared flags, with [`Common::fault`] filled in.
    pub common: Common,
    /// The example's name.
    pub name: String,
}

/// Parses `args` (the program name first, as in `std::env::args_os`) into `F`, applying the
/// conventions in the [module docs](self). `--help` comes back as a [`Failure`] with exit
/// code 0 and the help text.
pub fn parse<F: Parser>(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<Parsed<F>, Failure> {
    let command = rehearsal_help(F::command());
    let name = command.get_name().to_string();
    let matches = command
        .clone()
        .try_get_matches_from(args)
        .map_err(one_line)?;
    let flags = F::from_arg_matches(&matches).map_err(one_line)?;
    let mut common = Common::from_arg_matches(&matches).map_err(one_line)?;
    common.fault = matches
        .try_get_raw("fault")
        .ok()
        .flatten()
        .and_then(|mut v| v.next())
        .map(|v| v.to_string_lossy().into_owned());
    if common.live && common.fault.is_some() {
        return Err(Failure::usage(
            "--fault rehearses against the simulators: leave out --live",
        ));
    }
    if common.resume.is_some() && !common.live {
        return Err(Failure::usage(
            "--resume continues a live run: a rehearsal's simulators end with it",
        ));
    }
    if common.resume.is_some() && common.dry_run {
        return Err(Failure::usage(
            "--resume runs what is left; a dry run plans a new run",
        ));
    }
    check_own_values(&command, &matches, common.live)?;
    Ok(Parsed {
        flags,
        common,
        name,
    })
}

/// The ids of the shared flags, which the conventions leave alone.
fn common_ids() -> BTreeSet<String> {
    let shared = Common::augment_args(Command::new("common"));
    let mut ids: BTreeSet<String> = shared
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    ids.insert("help".into());
    ids
}

/// The example's own flags that take a value.
fn own_values(command: &Command) -> impl Iterator<Item = &clap::Arg> {
    let shared = common_ids();
    command.get_arguments().filter(move |a| {
        !shared.contains(a.get_id().as_str())
            && matches!(a.get_action(), ArgAction::Set | ArgAction::Append)
    })
}

/// Help shows an own flag's default as its rehearsal value.
fn rehearsal_help(command: Command) -> Command {
    let ids: Vec<String> = own_values(&command)
        .filter(|a| !a.get_default_values().is_empty())
        .map(|a| a.get_id().to_string())
        .collect();
    ids.iter().fold(command, |command, id| {
        command.mut_arg(id, |arg| {
            let default = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(",");
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            arg.hide_default_value(true)
                .help(format!("{help} (rehearsal: {default})"))
        })
    })
}

/// With `--live`, an own flag left at its rehearsal value is an error, unless a switch given
/// conflicts with it; an environment variable set but empty is an error either way.
fn check_own_values(command: &Command, matches: &ArgMatches, live: bool) -> Result<(), Failure> {
    for arg in own_values(command) {
        let id = arg.get_id().as_str();
        let flag = arg.get_long().unwrap_or(id);
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        let source = matches.value_source(id);
        let raw_empty = matches
            .try_get_raw(id)
            .ok()
            .flatten()
            .is_some_and(|mut v| v.any(|v| v.is_empty()));
        if let (Some(ValueSource::EnvVariable), true, Some(env)) = (source, raw_empty, &env) {
            return Err(Failure::usage(format!(
                "{env} is set but empty: set it, unset it, or give --{flag}"
            )));
        }
        let defaulted = source == Some(ValueSource::DefaultValue);
        // clap records a conflict on the flag that declares it: look both ways.
        let given = |other: &clap::Arg| {
            matches.value_source(other.get_id().as_str()) == Some(ValueSource::CommandLine)
        };
        let excused = command.get_arg_conflicts_with(arg).into_iter().any(given)
            || command.get_arguments().any(|other| {
                given(other)
                    && command
                        .get_arg_conflicts_with(other)
                        .iter()
                        .any(|c| c.get_id() == arg.get_id())
            });
        if live && defaulted && !excused {
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let help = help.split(" (rehearsal:").next().unwrap_or_default();
            return Err(Failure::usage(match env {
                Some(env) => format!("--live needs --{flag} or {env} ({help})"),
                None => format!("--live needs --{flag} ({help})"),
            }));
        }
    }
    Ok(())
}

/// A clap error as one line (help and version as they are, with exit code 0).
fn one_line(e: clap::Error) -> Failure {
    use clap::error::ErrorKind;
    let text = e.render().to_string();
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        return Failure::help(text);
    }
    let line = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("Usage:")
                && !l.starts_with("For more information")
                && !l.starts_with("tip:")
        })
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join(" ");
    Failure::usage(format!("{line} (try --help)"))
}

/// A clap value parser for durations written like the configs: `"30s"`, `"26h"`, `"1h30m"`,
/// `"7d"` ([`ops_core::config::human_duration::parse`]).
pub fn duration(text: &str) -> Result<std::time::Duration, String> {
    ops_core::config::human_duration::parse(text)
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;
    use proptest::prelude::Strategy;

    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
    enum Fault {
        /// the new revision fails at 25 %
        #[value(name = "error-rate-at-25")]
        ErrorRateAt25,
    }

    /// a demo
    #[derive(Parser, Debug)]
    #[command(name = "demo")]
    struct Demo {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        gcp: GcpArgs,
        /// the Cloud Run service
        #[arg(long, env = "OPS_DEMO_SERVICE_UNSET", default_value = "api")]
        service: String,
        /// blue-green instead of canary
        #[arg(long, conflicts_with = "service")]
        blue_green: bool,
        /// extra endpoints
        #[arg(long)]
        url: Option<String>,
        /// inject a named failure into the rehearsal
        #[arg(long, value_enum, value_name = "NAME")]
        fault: Option<Fault>,
    }

    fn parse_demo(args: &[&str]) -> Result<Parsed<Demo>, Failure> {
        parse::<Demo>(std::iter::once("demo").chain(args.iter().copied()))
    }

    #[test]
    fn a_rehearsal_takes_defaults_and_live_needs_values() {
        let p = parse_demo(&[]).unwrap();
        assert!(!p.common.live && !p.common.dry_run && p.common.fault.is_none());
        assert_eq!((p.flags.service.as_str(), p.gcp()), ("api", "sim-project"));
        let err = parse_demo(&["--live", "--project", "p", "--region", "r"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--live needs --service or OPS_DEMO_SERVICE_UNSET (the Cloud Run service)"
        );
        assert_eq!(err.code(), 2);
        let p = parse_demo(&[
            "--live",
            "--project=p",
            "--region",
            "r",
            "--service",
            "shop",
        ]);
        assert_eq!(p.unwrap().flags.service, "shop");
        // A switch that conflicts with a flag excuses it.
        let p = parse_demo(&["--live", "--project", "p", "--region", "r", "--blue-green"]);
        assert!(p.unwrap().flags.blue_green);
    }

    impl Parsed<Demo> {
        fn gcp(&self) -> &str {
            &self.flags.gcp.project
        }
    }

    #[test]
    fn flags_switches_and_faults_parse() {
        let p = parse_demo(&["--fault", "error-rate-at-25", "--json", "--speed", "60"]).unwrap();
        assert_eq!(p.flags.fault, Some(Fault::ErrorRateAt25));
        assert_eq!(p.common.fault.as_deref(), Some("error-rate-at-25"));
        assert!(p.common.json);
        assert_eq!(p.common.speed, 60.0);
        assert_eq!(p.common.journal_dir, PathBuf::from("target/ops-journal"));
    }

    #[test]
    fn bad_flags_say_what_is_wrong_in_one_line() {
        for (args, want) in [
            (
                &["--nope"][..],
                "unexpected argument '--nope' found (try --help)",
            ),
            (
                &["--fault", "meteor"],
                "invalid value 'meteor' for '--fault <NAME>' [possible values: error-rate-at-25] (try --help)",
            ),
            (
                &["--speed", "0.5"],
                "invalid value '0.5' for '--speed <N>': give a number from 1 to 1000000 (try --help)",
            ),
            (
                &["--speed", "1e308"],
                "invalid value '1e308' for '--speed <N>': give a number from 1 to 1000000 (try --help)",
            ),
            (
                &["--speed", "NaN"],
                "invalid value 'NaN' for '--speed <N>': give a number from 1 to 1000000 (try --help)",
            ),
            (
                &["--service"],
                "a value is required for '--service <SERVICE>' but none was supplied (try --help)",
            ),
            (
                &["--service", "--live"],
                "a value is required for '--service <SERVICE>' but none was supplied (try --help)",
            ),
            (
                &["--blue-green=yes"],
                "unexpected value 'yes' for '--blue-green' found; no more were expected (try --help)",
            ),
            (
                &["--live=false"],
                "unexpected value 'false' for '--live' found; no more were expected (try --help)",
            ),
            (
                &["--live", "--fault", "error-rate-at-25"],
                "--fault rehearses against the simulators: leave out --live",
            ),
            (
                &["--resume", "r-1"],
                "--resume continues a live run: a rehearsal's simulators end with it",
            ),
            (
                &["--live", "--resume", "r-1", "--dry-run"],
                "--resume runs what is left; a dry run plans a new run",
            ),
        ] {
            let err = parse_demo(args).unwrap_err();
            assert_eq!(
                (err.to_string().as_str(), err.code()),
                (want, 2),
                "{args:?}"
            );
        }
        for bare in ["--dry-run=false", "--json=yes", "--yes=no", "--live="] {
            let err = parse_demo(&[bare]).unwrap_err();
            assert!(
                err.to_string().contains("unexpected value"),
                "{bare}: {err}"
            );
        }
    }

    #[test]
    fn help_lists_faults_and_rehearsal_values() {
        let help = parse_demo(&["--help"]).unwrap_err();
        assert_eq!(help.code(), 0);
        let text = help.to_string();
        for want in [
            "error-rate-at-25",
            "the Cloud Run service (rehearsal: api)",
            "the Google Cloud project (rehearsal: sim-project)",
            "[env: GOOGLE_CLOUD_PROJECT",
            "--dry-run",
        ] {
            assert!(text.contains(want), "{want:?} missing from:\n{text}");
        }
        assert!(!text.contains("[default: api]"), "{text}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 2000,
            failure_persistence: None,
            ..Default::default()
        })]

        /// Any arguments: flags or a one-line usage error, never a panic; and only the bare
        /// `--live` ever goes live.
        #[test]
        fn any_arguments_parse_or_say_why_and_only_bare_live_goes_live(
            args in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(vec![
                        "--live", "--dry-run", "--json", "--yes", "--help", "-h", "--fault",
                        "--speed", "--journal-dir", "--resume", "--service", "--blue-green",
                        "--project", "error-rate-at-25", "--", "-", "",
                    ]).prop_map(String::from),
                    "--(live|dry-run|json|yes|speed|fault|service|blue-green)=\\PC{0,8}",
                    "[0-9.e+-]{0,10}",
                    "\\PC{0,12}",
                ],
                0..8,
            ),
        ) {
            match parse_demo(&args.iter().map(String::as_str).collect::<Vec<_>>()) {
                Ok(p) => {
                    proptest::prop_assert_eq!(p.common.live, args.iter().any(|a| a == "--live"));
                    proptest::prop_assert!(p.common.speed.is_finite() && p.common.speed >= 1.0);
                }
                Err(e) if e.code() == 0 => {
                    proptest::prop_assert!(args.iter().any(|a| a == "--help" || a == "-h"));
                }
                Err(e) => {
                    let msg = e.to_string();
                    proptest::prop_assert!(!msg.is_empty() && !msg.contains('\n'), "{}", msg);
                }
            }
        }
    }
}
