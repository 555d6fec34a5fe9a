//! `LogFiles` on real files: the testkit's log source suite over a log and its rotations
//! (plain and gzip), a rotation between pages, lines being written, stack traces, overlong
//! lines, chunk boundaries, the bounds, and arbitrary bytes.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use ops_core::ErrorKind;
use ops_core::contracts::{LogEntry, LogQuery, LogSeverity, LogSource, TimeWindow};
use ops_core::testkit::{self, LogFixture};
use ops_host::logfile::{LogFiles, LogFilesConfig};
use proptest::prelude::*;

fn t0() -> DateTime<Utc> {
    "2026-11-30T12:00:00Z".parse().unwrap()
}

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

fn stamp(seconds: i64) -> String {
    at(seconds).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn window(from: i64, to: i64) -> TimeWindow {
    TimeWindow::new(at(from), at(to)).unwrap()
}

fn gzip(path: &Path, text: &str) {
    let file = std::fs::File::create(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap();
}

fn source(path: &Path) -> LogFiles {
    LogFiles::new("api", LogFilesConfig::new(path)).unwrap()
}

async fn all(source: &LogFiles, query: LogQuery) -> Vec<LogEntry> {
    let mut q = query;
    let mut out = Vec::new();
    loop {
        let page = source.query_page(&q).await.unwrap();
        out.extend(page.entries);
        match page.next_page_token {
            Some(t) => q.page_token = Some(t),
            None => return out,
        }
    }
}

fn messages(entries: &[LogEntry]) -> Vec<String> {
    entries.iter().map(|e| e.message.clone()).collect()
}

/// The level of the `i`th entry of [`rotated_log`].
fn level_of(i: i64) -> &'static str {
    ["INFO", "WARN", "ERROR", "INFO", "DEBUG", "CRITICAL"][i.rem_euclid(6) as usize]
}

/// `error.log.2.gz` (oldest), `error.log.1`, `error.log`: one entry a minute from -60 min.
fn rotated_log(dir: &Path) -> std::path::PathBuf {
    let line = |i: i64| {
        let level = level_of(i);
        format!("{} {level} event {i}\n", stamp(i * 60))
    };
    let text = |range: std::ops::Range<i64>| range.map(line).collect::<String>();
    gzip(&dir.join("error.log.2.gz"), &text(-60..-40));
    std::fs::write(dir.join("error.log.1"), text(-40..-20)).unwrap();
    std::fs::write(dir.join("error.log"), text(-20..0)).unwrap();
    dir.join("error.log")
}

#[tokio::test]
async fn a_log_and_its_rotations_pass_the_log_source_suite() {
    let dir = tempfile::tempdir().unwrap();
    let path = rotated_log(dir.path());
    let logs = source(&path);
    // From the gzip file into the current one: -50 min to -5 min.
    let fixture_window = window(-50 * 60, -5 * 60);
    let expected = (-50..-5)
        .map(|i| {
            let level = level_of(i);
            LogEntry {
                timestamp: at(i * 60),
                severity: ops_host::logfile::level_word(level).unwrap(),
                message: format!("{level} event {i}"),
                payload: None,
                release: None,
                labels: Default::default(),
            }
        })
        .collect();
    testkit::log_source(
        &logs,
        &LogFixture {
            window: fixture_window,
            expected,
        },
    )
    .await;
    let got = all(&logs, LogQuery::new(window(-50 * 60, -39 * 60))).await;
    let files: Vec<&str> = got.iter().map(|e| e.labels["file"].as_str()).collect();
    assert_eq!(files[0], "error.log.2.gz");
    assert_eq!(files.last(), Some(&"error.log.1"));
}

#[tokio::test]
async fn older_rotations_are_not_read_once_the_window_is_covered() {
    let dir = tempfile::tempdir().unwrap();
    let path = rotated_log(dir.path());
    // A rotation that cannot be read: reaching it would fail the query.
    std::fs::remove_file(dir.path().join("error.log.2.gz")).unwrap();
    std::fs::create_dir(dir.path().join("error.log.2")).unwrap();
    let logs = source(&path);
    let got = all(&logs, LogQuery::new(window(-30 * 60, 0))).await;
    assert_eq!(got.len(), 30);
    assert_eq!(got[0].message, format!("{} event -30", level_of(-30)));
    // A window reaching into it does read it, and says why it failed.
    let err = logs
        .query_page(&LogQuery::new(window(-59 * 60, 0)))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Io { .. }), "{err}");
}

#[tokio::test]
async fn a_rotation_between_pages_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = rotated_log(dir.path());
    let logs = source(&path);
    let mut q = LogQuery {
        page_size: 7,
        ..LogQuery::new(window(-45 * 60, 10 * 60))
    };
    let first = logs.query_page(&q).await.unwrap();
    // logrotate: .2.gz stays (max reached elsewhere), .1 -> .2, current -> .1, a new current
    // with later lines.
    let d = dir.path();
    std::fs::remove_file(d.join("error.log.2.gz")).unwrap();
    std::fs::rename(d.join("error.log.1"), d.join("error.log.2")).unwrap();
    std::fs::rename(d.join("error.log"), d.join("error.log.1")).unwrap();
    std::fs::write(&path, format!("{} ERROR after the rotation\n", stamp(60))).unwrap();
    let mut got = first.entries;
    q.page_token = first.next_page_token;
    while q.page_token.is_some() {
        let page = logs.query_page(&q).await.unwrap();
        got.extend(page.entries);
        q.page_token = page.next_page_token;
    }
    let mut want: Vec<String> = (-45..0)
        .map(|i| {
            let level = level_of(i);
            format!("{level} event {i}")
        })
        .collect();
    want.push("ERROR after the rotation".into());
    assert_eq!(messages(&got), want);
}

#[tokio::test]
async fn entries_at_the_same_second_page_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.log");
    let text: String = (0..25)
        .map(|i| format!("{} INFO burst {i}\n", stamp(i / 10)))
        .collect();
    std::fs::write(&path, text).unwrap();
    let logs = source(&path);
    let q = LogQuery {
        page_size: 3,
        ..LogQuery::new(window(0, 60))
    };
    let got = all(&logs, q).await;
    let want: Vec<String> = (0..25).map(|i| format!("INFO burst {i}")).collect();
    assert_eq!(messages(&got), want);
}

#[tokio::test]
async fn stack_traces_continue_their_entry_and_a_line_being_written_waits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("error.log");
    let text = [
        format!("{} INFO up\r", stamp(0)),
        format!("{} ERROR TypeError: x is undefined", stamp(1)),
        "    at Pool.connect (/srv/app/db.js:10:5)".into(),
        "    at main (/srv/app/index.js:3:1)".into(),
        format!(
            r#"{{"level":40,"time":{},"msg":"slow"}}"#,
            at(2).timestamp_millis()
        ),
        format!("{} ERROR half writ", stamp(3)),
    ]
    .join("\n");
    std::fs::write(&path, text).unwrap();
    let logs = source(&path);
    let got = all(&logs, LogQuery::new(window(0, 60))).await;
    assert_eq!(
        messages(&got),
        vec![
            "INFO up".to_string(),
            "ERROR TypeError: x is undefined\n    at Pool.connect (/srv/app/db.js:10:5)\n    at main (/srv/app/index.js:3:1)".into(),
            "slow".into(),
        ]
    );
    assert_eq!(got[2].severity, LogSeverity::Warning);
    assert_eq!(got[2].payload.as_ref().unwrap()["level"], 40);
    // The line is finished: now it counts.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"ten\n").unwrap();
    let got = all(
        &logs,
        LogQuery::new(window(0, 60)).min_severity(LogSeverity::Error),
    )
    .await;
    assert_eq!(got.last().unwrap().message, "ERROR half written");
}

#[tokio::test]
async fn many_chunks_and_an_overlong_line_read_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut text = String::new();
    for i in 0..6000 {
        text.push_str(&format!(
            "{} INFO request {i} {}\n",
            stamp(i),
            "x".repeat(i as usize % 200)
        ));
        if i == 3000 {
            // 2 MiB without a newline: skipped, the lines around it kept.
            text.push_str(&"y".repeat(2 << 20));
            text.push('\n');
        }
    }
    std::fs::write(&path, &text).unwrap();
    let logs = source(&path);
    let got = all(&logs, LogQuery::new(window(0, 7000))).await;
    assert_eq!(got.len(), 6000);
    for (i, e) in got.iter().enumerate() {
        assert_eq!(e.timestamp, at(i as i64));
        let want = format!("INFO request {i} {}", "x".repeat(i % 200));
        assert_eq!(e.message, want.trim_end(), "{i}");
    }
    assert_eq!(
        logs.count(&LogQuery::new(window(0, 7000)), 100)
            .await
            .unwrap(),
        100
    );
}

#[tokio::test]
async fn bounds_and_bad_input_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = source(&dir.path().join("nothing.log"));
    let err = missing
        .query_page(&LogQuery::new(window(0, 60)))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotFound { .. }), "{err}");

    let path = rotated_log(dir.path());
    let mut config = LogFilesConfig::new(&path);
    config.max_entries = 10;
    let capped = LogFiles::new("api", config).unwrap();
    let err = capped
        .query_page(&LogQuery::new(window(-30 * 60, 0)))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("more than 10"), "{err}");

    let logs = source(&path);
    for token in ["", "x", "1.", ".1", "99999999999999999999.1", "1.-1"] {
        let q = LogQuery {
            page_token: Some(token.into()),
            ..LogQuery::new(window(-30 * 60, 0))
        };
        let err = logs.query_page(&q).await.unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidInput { .. }),
            "{token:?}: {err}"
        );
    }

    for bad in [
        LogFilesConfig {
            max_rotated: 101,
            ..LogFilesConfig::new(&path)
        },
        LogFilesConfig {
            max_entries: 0,
            ..LogFilesConfig::new(&path)
        },
        LogFilesConfig {
            disorder: Duration::days(2),
            ..LogFilesConfig::new(&path)
        },
        LogFilesConfig::new("/"),
    ] {
        let err = LogFiles::new("api", bad).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidInput { .. }),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_file_of_stderr_names_its_lines_errors_and_its_release() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api-error.log");
    std::fs::write(
        &path,
        format!("{}: Error: ECONNREFUSED 127.0.0.1:5432\n", stamp(0)),
    )
    .unwrap();
    let mut config = LogFilesConfig::new(&path);
    config.default_severity = LogSeverity::Error;
    config.release = Some("v2.1.0".into());
    let logs = LogFiles::new("api", config).unwrap();
    let q = LogQuery {
        release: Some("v2.1.0".into()),
        ..LogQuery::new(window(0, 60)).min_severity(LogSeverity::Error)
    };
    let got = all(&logs, q).await;
    assert_eq!(
        messages(&got),
        vec!["Error: ECONNREFUSED 127.0.0.1:5432".to_string()]
    );
    assert_eq!(got[0].severity, LogSeverity::Error);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any bytes, with any rotation: an answer or a typed error, never a panic; and every
    /// entry returned is inside the window.
    #[test]
    fn any_file_content_gives_entries_inside_the_window_or_an_error(
        current in proptest::collection::vec(any::<u8>(), 0..4000),
        rotated in proptest::collection::vec(any::<u8>(), 0..2000),
        lines in proptest::collection::vec((0i64..120, "[A-Za-z \\[\\]{}\":,0-9]{0,30}"), 0..40),
        gz in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let mut text = current.clone();
        for (s, rest) in &lines {
            text.extend_from_slice(format!("{} {rest}\n", stamp(*s)).as_bytes());
        }
        std::fs::write(&path, &text).unwrap();
        if gz {
            std::fs::write(dir.path().join("x.log.1.gz"), &rotated).unwrap();
        } else {
            std::fs::write(dir.path().join("x.log.1"), &rotated).unwrap();
        }
        let logs = source(&path);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let w = window(10, 100);
        let got: ops_core::Result<Vec<LogEntry>> = rt.block_on(async {
            let mut q = LogQuery { page_size: 5, ..LogQuery::new(w) };
            let mut out = Vec::new();
            for _ in 0..100 {
                let page = logs.query_page(&q).await?;
                out.extend(page.entries);
                match page.next_page_token {
                    Some(t) => q.page_token = Some(t),
                    None => break,
                }
            }
            Ok(out)
        });
        if let Ok(entries) = got {
            prop_assert!(entries.iter().all(|e| w.contains(e.timestamp)));
            prop_assert!(entries.windows(2).all(|p| p[0].timestamp <= p[1].timestamp));
        }
    }
}
