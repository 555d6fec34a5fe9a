//! `ops-conformance RECORDS [DESCRIPTIONS]`: checks the requests recorded in RECORDS (a test
//! run with `OPS_HTTP_RECORD=RECORDS`) against the descriptions (default: this crate's
//! `descriptions/`). Exits 1 when a request does not conform or nothing was checked.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(records) = args.next().map(PathBuf::from) else {
        eprintln!("usage: ops-conformance RECORDS [DESCRIPTIONS]");
        return ExitCode::from(2);
    };
    let descriptions = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("descriptions"));
    let result = ops_conformance::report::load_descriptions(&descriptions)
        .and_then(|d| ops_conformance::report::check_dir(&d, &records));
    match result {
        Ok(report) => {
            print!("{}", report.render());
            if report.passed() {
                println!("every checked request conforms to the official descriptions");
                ExitCode::SUCCESS
            } else {
                println!(
                    "requests that do not conform (or none checked): fix the client, or the \
                          simulator or fake that made it send them"
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("ops-conformance: {e}");
            ExitCode::from(2)
        }
    }
}
