//! The flags every example shares, plus the ones it declares.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// What an example is and which flags it takes beyond the shared ones.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The example's name (`cargo run --example NAME`).
    pub name: &'static str,
    /// One line on what it does.
    pub about: &'static str,
    /// Its own options.
    pub options: &'static [Opt],
    /// The scenarios `--fault NAME` can inject in a rehearsal: name and what happens.
    pub faults: &'static [(&'static str, &'static str)],
}

/// One option an example declares.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// The flag without dashes (`service` for `--service`).
    pub name: &'static str,
    /// The environment variable read when the flag is absent (empty: none).
    pub env: &'static str,
    /// What it is.
    pub help: &'static str,
    /// Its value in a rehearsal when not given; `None` for a switch (`--blue-green`).
    pub rehearsal: Option<&'static str>,
}

impl Opt {
    /// An option with a value, read from `--name VALUE` or `env`, defaulting to `rehearsal`
    /// against the simulators. With `--live` it must be given.
    pub const fn value(
        name: &'static str,
        env: &'static str,
        help: &'static str,
        rehearsal: &'static str,
    ) -> Self {
        Self {
            name,
            env,
            help,
            rehearsal: Some(rehearsal),
        }
    }

    /// `--config FILE`: the runbook's TOML config (defaults when absent).
    pub const fn config() -> Self {
        Self::value(
            "config",
            "",
            "the runbook config, TOML (defaults when absent)",
            "",
        )
    }

    /// A switch: `--name` turns it on.
    pub const fn switch(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            env: "",
            help,
            rehearsal: None,
        }
    }
}

/// A usage problem, said in one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parsed flags.
#[derive(Debug, Clone)]
pub struct Cli {
    spec: Spec,
    /// Against real providers with real credentials (`--live`).
    pub live: bool,
    /// Print the plan; change nothing (`--dry-run`).
    pub dry_run: bool,
    /// The scenario injected into the rehearsal (`--fault NAME`).
    pub fault: Option<String>,
    /// Print the report as JSON instead of Markdown (`--json`).
    pub json: bool,
    /// Where the run journal goes (`--journal-dir`, default `target/ops-journal`).
    pub journal_dir: PathBuf,
    /// How many times faster than real time a rehearsal runs (`--speed`, default 600: one
    /// second per ten minutes).
    pub speed: f64,
    /// Ask before nothing: approval gates approve themselves (`--yes`; always so in a
    /// rehearsal).
    pub yes: bool,
    /// Continue this interrupted run from its journal instead of starting a new one
    /// (`--resume RUN_ID`, with `--live`).
    pub resume: Option<String>,
    values: BTreeMap<&'static str, String>,
    switches: BTreeSet<&'static str>,
    env: BTreeMap<String, String>,
}

/// The shared flags, for `--help`.
const SHARED: &str =
    "  --live             use real providers and credentials (default: rehearse against simulators)
  --dry-run          print the plan of calls; change nothing
  --fault NAME       inject a named failure into the rehearsal
  --json             print the report as JSON instead of Markdown
  --journal-dir DIR  where the run journal goes (default target/ops-journal)
  --speed N          a rehearsal runs N times faster than real time (default 600;
                     a wait beyond an hour plays one hour, then jumps)
  --yes              approve gates without asking (with --live)
  --resume RUN_ID    continue an interrupted live run from its journal
  -h, --help         this help";

impl Cli {
    /// Parses `args` (without the program name), reading option defaults from `env`.
    pub fn parse_from(
        spec: Spec,
        args: impl IntoIterator<Item = String>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, UsageError> {
        let mut cli = Cli {
            spec,
            live: false,
            dry_run: false,
            fault: None,
            json: false,
            journal_dir: PathBuf::from("target/ops-journal"),
            speed: 600.0,
            yes: false,
            resume: None,
            values: BTreeMap::new(),
            switches: BTreeSet::new(),
            env: env.into_iter().collect(),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            // A following flag is never taken as the value: `--service --live` is a missing
            // value, not a service named "--live" (and a rehearsal that forgot a value).
            let mut value = || match inline.clone() {
                Some(v) => Ok(v),
                None => match args.next() {
                    Some(v) if !v.starts_with("--") => Ok(v),
                    _ => Err(UsageError(format!("{flag} needs a value"))),
                },
            };
            // A shared switch is only ever the bare flag: `--live=false` must never go live.
            let is_switch = matches!(
                flag.as_str(),
                "-h" | "--help" | "--live" | "--dry-run" | "--json" | "--yes"
            );
            if is_switch && inline.is_some() {
                return Err(UsageError(format!("{flag} takes no value")));
            }
            match flag.as_str() {
                "-h" | "--help" => return Err(UsageError(cli.usage())),
                "--live" => cli.live = true,
                "--dry-run" => cli.dry_run = true,
                "--json" => cli.json = true,
                "--yes" => cli.yes = true,
                "--fault" => {
                    let name = value()?;
                    if !spec.faults.iter().any(|(f, _)| *f == name) {
                        let known: Vec<&str> = spec.faults.iter().map(|(f, _)| *f).collect();
                        return Err(UsageError(if known.is_empty() {
                            format!("{} has no faults to inject", spec.name)
                        } else {
                            format!("unknown fault {name:?}: choose one of {}", known.join(", "))
                        }));
                    }
                    cli.fault = Some(name);
                }
                "--journal-dir" => cli.journal_dir = PathBuf::from(value()?),
                "--resume" => cli.resume = Some(value()?),
                "--speed" => {
                    let v = value()?;
                    cli.speed = v
                        .parse::<f64>()
                        .ok()
                        .filter(|s| {
                            s.is_finite()
                                && (1.0..=ops_core::clock::ScaledClock::MAX_FACTOR).contains(s)
                        })
                        .ok_or_else(|| {
                            UsageError(format!(
                                "--speed {v}: give a number from 1 to {}",
                                ops_core::clock::ScaledClock::MAX_FACTOR
                            ))
                        })?;
                }
                other => {
                    let name = other.strip_prefix("--").unwrap_or("");
                    let Some(opt) = spec.options.iter().find(|o| o.name == name) else {
                        return Err(UsageError(format!("unknown flag {other} (try --help)")));
                    };
                    if opt.rehearsal.is_some() {
                        cli.values.insert(opt.name, value()?);
                    } else if inline.is_some() {
                        return Err(UsageError(format!("{other} takes no value")));
                    } else {
                        cli.switches.insert(opt.name);
                    }
                }
            }
        }
        if cli.live && cli.fault.is_some() {
            return Err(UsageError(
                "--fault rehearses against the simulators: leave out --live".into(),
            ));
        }
        if cli.resume.is_some() && !cli.live {
            return Err(UsageError(
                "--resume continues a live run: a rehearsal's simulators end with it".into(),
            ));
        }
        if cli.resume.is_some() && cli.dry_run {
            return Err(UsageError(
                "--resume runs what is left; a dry run plans a new run".into(),
            ));
        }
        Ok(cli)
    }

    /// The example's name.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The value of option `name`: the flag, else its environment variable, else (in a
    /// rehearsal) its rehearsal default. With `--live` a missing value is an error naming the
    /// flag and the variable.
    pub fn value(&self, name: &str) -> Result<String, UsageError> {
        let opt = self
            .spec
            .options
            .iter()
            .find(|o| o.name == name)
            .unwrap_or_else(|| panic!("{} declares no option {name}", self.spec.name));
        if let Some(v) = self.values.get(opt.name) {
            return Ok(v.clone());
        }
        if !opt.env.is_empty()
            && let Some(v) = self.env.get(opt.env).filter(|v| !v.is_empty())
        {
            return Ok(v.clone());
        }
        match (self.live, opt.rehearsal) {
            (false, Some(default)) => Ok(default.to_string()),
            _ if opt.env.is_empty() => Err(UsageError(format!(
                "--live needs --{} ({})",
                opt.name, opt.help
            ))),
            _ => Err(UsageError(format!(
                "--live needs --{} or {} ({})",
                opt.name, opt.env, opt.help
            ))),
        }
    }

    /// Option `name` when given by flag or environment, in a rehearsal or live alike (for
    /// options that have a sensible absence, such as a config file).
    pub fn optional(&self, name: &str) -> Option<String> {
        let opt = self.spec.options.iter().find(|o| o.name == name)?;
        self.values.get(opt.name).cloned().or_else(|| {
            (!opt.env.is_empty())
                .then(|| self.env.get(opt.env).filter(|v| !v.is_empty()).cloned())
                .flatten()
        })
    }

    /// Whether switch `name` is on.
    pub fn switch(&self, name: &str) -> bool {
        self.switches.contains(name)
    }

    /// Whether the rehearsal injects fault `name`.
    pub fn fault_is(&self, name: &str) -> bool {
        self.fault.as_deref() == Some(name)
    }

    /// A credential from the environment, required with `--live`: the error says what to set.
    pub fn credential(&self, var: &str, what: &str) -> Result<String, UsageError> {
        self.env
            .get(var)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| UsageError(format!("--live needs {var} ({what})")))
    }

    /// An environment variable, when set and not empty.
    pub fn env_var(&self, var: &str) -> Option<String> {
        self.env.get(var).filter(|v| !v.is_empty()).cloned()
    }

    /// The help text.
    pub fn usage(&self) -> String {
        let s = self.spec;
        let mut out = format!(
            "{}: {}\n\nusage: cargo run -p ops-examples --example {} -- [FLAGS]\n\n{SHARED}\n",
            s.name, s.about, s.name
        );
        if !s.options.is_empty() {
            out.push_str("\noptions:\n");
            for o in s.options {
                let flag = match o.rehearsal {
                    Some(_) => format!("--{} VALUE", o.name),
                    None => format!("--{}", o.name),
                };
                let env = if o.env.is_empty() {
                    String::new()
                } else {
                    format!(" [env {}]", o.env)
                };
                let default = o
                    .rehearsal
                    .filter(|d| !d.is_empty())
                    .map(|d| format!(" (rehearsal: {d})"))
                    .unwrap_or_default();
                out.push_str(&format!("  {flag:<22} {}{env}{default}\n", o.help));
            }
        }
        if !s.faults.is_empty() {
            out.push_str("\nfaults (--fault NAME):\n");
            for (name, what) in s.faults {
                out.push_str(&format!("  {name:<22} {what}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::Strategy;

    use super::*;

    const SPEC: Spec = Spec {
        name: "demo",
        about: "a demo",
        options: &[
            Opt::value("service", "OPS_SERVICE", "the Cloud Run service", "api"),
            Opt::switch("blue-green", "blue-green instead of canary"),
        ],
        faults: &[("error-rate-at-25", "the new revision fails at 25 %")],
    };

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Cli, UsageError> {
        Cli::parse_from(
            SPEC,
            args.iter().map(|s| s.to_string()),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn a_rehearsal_takes_defaults_and_live_needs_values() {
        let cli = parse(&[], &[]).unwrap();
        assert!(!cli.live && !cli.dry_run && cli.fault.is_none());
        assert_eq!(cli.value("service").unwrap(), "api");
        let live = parse(&["--live"], &[]).unwrap();
        assert_eq!(
            live.value("service").unwrap_err().0,
            "--live needs --service or OPS_SERVICE (the Cloud Run service)"
        );
        let live = parse(&["--live"], &[("OPS_SERVICE", "web")]).unwrap();
        assert_eq!(live.value("service").unwrap(), "web");
        let flag = parse(&["--live", "--service=shop"], &[("OPS_SERVICE", "web")]).unwrap();
        assert_eq!(flag.value("service").unwrap(), "shop", "the flag wins");
    }

    #[test]
    fn flags_switches_and_faults_parse() {
        let cli = parse(
            &[
                "--blue-green",
                "--fault",
                "error-rate-at-25",
                "--json",
                "--speed",
                "60",
            ],
            &[],
        )
        .unwrap();
        assert!(cli.switch("blue-green") && cli.json);
        assert!(cli.fault_is("error-rate-at-25"));
        assert_eq!(cli.speed, 60.0);
    }

    #[test]
    fn bad_flags_say_what_is_wrong_in_one_line() {
        for (args, want) in [
            (&["--nope"][..], "unknown flag --nope (try --help)"),
            (
                &["--fault", "meteor"],
                "unknown fault \"meteor\": choose one of error-rate-at-25",
            ),
            (
                &["--speed", "0.5"],
                "--speed 0.5: give a number from 1 to 1000000",
            ),
            (&["--service"], "--service needs a value"),
            (&["--service", "--live"], "--service needs a value"),
            (&["--blue-green=yes"], "--blue-green takes no value"),
            (&["--live=false"], "--live takes no value"),
            (&["--live="], "--live takes no value"),
            (&["--dry-run=false"], "--dry-run takes no value"),
            (&["--json=yes"], "--json takes no value"),
            (&["--yes=no"], "--yes takes no value"),
            (&["--help=1"], "--help takes no value"),
            (
                &["--speed", "1e308"],
                "--speed 1e308: give a number from 1 to 1000000",
            ),
            (
                &["--speed", "NaN"],
                "--speed NaN: give a number from 1 to 1000000",
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
            let err = parse(args, &[]).unwrap_err();
            assert_eq!(err.0, want, "{args:?}");
            assert!(!err.0.contains('\n'));
        }
        let help = parse(&["--help"], &[]).unwrap_err().0;
        assert!(help.contains("--service VALUE") && help.contains("error-rate-at-25"));
        // Every flag line is indented alike, the first shared one included.
        for line in help.lines().filter(|l| l.trim_start().starts_with("--")) {
            assert!(line.starts_with("  --"), "not indented: {line:?}");
        }
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
                        "error-rate-at-25", "--", "-", "",
                    ]).prop_map(String::from),
                    "--(live|dry-run|json|yes|speed|fault|service|blue-green)=\\PC{0,8}",
                    "[0-9.e+-]{0,10}",
                    "\\PC{0,12}",
                ],
                0..8,
            ),
        ) {
            match parse(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]) {
                Ok(cli) => {
                    proptest::prop_assert_eq!(cli.live, args.iter().any(|a| a == "--live"));
                    proptest::prop_assert!(cli.speed.is_finite() && cli.speed >= 1.0);
                }
                Err(UsageError(msg)) => proptest::prop_assert!(!msg.is_empty()),
            }
        }
    }

    #[test]
    fn a_missing_credential_names_the_variable() {
        let cli = parse(&["--live"], &[("VERCEL_TOKEN", "")]).unwrap();
        assert_eq!(
            cli.credential("VERCEL_TOKEN", "a Vercel access token")
                .unwrap_err()
                .0,
            "--live needs VERCEL_TOKEN (a Vercel access token)"
        );
    }
}
