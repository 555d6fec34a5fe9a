//! One log line read as time, severity and text: the lines of a log file (`ops-host`), of a
//! pod's log (`ops-kubernetes`), of any process that writes its own format.
//!
//! Plain lines start with a timestamp, optionally in brackets: RFC 3339
//! (`2026-11-30T12:00:00.123Z`), `2026-11-30 12:00:00,123` (log4j, Python), `2026/11/30 12:00:00`
//! (nginx's error log) or pm2's `2026-11-30T12:00:00:` prefix. A timestamp without a zone is
//! read in the configured offset. The severity is the first level word among the next few
//! words (`ERROR`, `[warn]`, `level=info`). JSON lines (pino, bunyan, winston) give the time in
//! `time`, `timestamp`, `ts` or `@timestamp` (text, or epoch seconds or milliseconds), the level
//! in `level` or `severity` (a word, or pino's numbers) and the text in `msg` or `message`.
//!
//! Anything else (a stack trace's next line) has no timestamp and continues the entry before
//! it. No input makes the parser panic; property tests keep it so.

use crate::contracts::LogSeverity;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde_json::Value;

/// How the lines of a file are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LineFormat {
    /// JSON objects where a line starts with `{`, plain text otherwise (the default).
    #[default]
    Auto,
    /// Plain text lines only (a `{` at the start is text).
    Plain,
    /// JSON lines only; a line that is not a JSON object continues the entry before it.
    JsonLines,
}

/// What one line says, when it starts an entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLine {
    /// When it was logged.
    pub timestamp: DateTime<Utc>,
    /// Its severity; `None` when the line names none.
    pub severity: Option<LogSeverity>,
    /// The text: after the timestamp for a plain line, the message field for JSON.
    pub message: String,
    /// The JSON object of a JSON line.
    pub payload: Option<Value>,
}

/// Parses `line` (without its newline); `None` when it starts no entry.
pub fn parse_line(line: &str, format: LineFormat, zone: FixedOffset) -> Option<ParsedLine> {
    let trimmed = line.trim_start();
    let json = match format {
        LineFormat::Plain => false,
        LineFormat::JsonLines => true,
        LineFormat::Auto => trimmed.starts_with('{'),
    };
    if json {
        return parse_json(trimmed, zone);
    }
    parse_plain(trimmed, zone)
}

fn parse_plain(line: &str, zone: FixedOffset) -> Option<ParsedLine> {
    let bracketed = line.strip_prefix('[');
    let (timestamp, used) = parse_timestamp(bracketed.unwrap_or(line), zone)?;
    let rest = bracketed.unwrap_or(line).get(used..)?;
    let rest = rest.trim_start_matches([']', ':', ' ', '\t', '|', '-']);
    Some(ParsedLine {
        timestamp,
        severity: severity_in_words(rest),
        message: rest.trim_end().to_string(),
        payload: None,
    })
}

/// The first level word among the first four words of `text` (`ERROR`, `[warn]`,
/// `level=info`).
pub fn severity_in_words(text: &str) -> Option<LogSeverity> {
    text.split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .take(4)
        .find_map(|word| {
            let word = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '=');
            let word = word.rsplit('=').next().unwrap_or(word);
            level_word(word)
        })
}

/// A level word in any case (`warn`, `WARNING`, `Err`, `crit`, `fatal`).
pub fn level_word(word: &str) -> Option<LogSeverity> {
    if word.len() > 9 {
        return None;
    }
    let severity = match word.to_ascii_lowercase().as_str() {
        "trace" | "debug" | "dbg" | "verbose" => LogSeverity::Debug,
        "info" | "inf" | "information" => LogSeverity::Info,
        "notice" => LogSeverity::Notice,
        "warn" | "warning" | "wrn" => LogSeverity::Warning,
        "error" | "err" | "erro" => LogSeverity::Error,
        "crit" | "critical" | "fatal" | "ftl" => LogSeverity::Critical,
        "alert" => LogSeverity::Alert,
        "emerg" | "emergency" | "panic" => LogSeverity::Emergency,
        _ => return None,
    };
    Some(severity)
}

/// Pino's numeric levels (10 trace … 60 fatal); other numbers by the nearest level below.
fn level_number(n: f64) -> Option<LogSeverity> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    Some(match n {
        n if n >= 60.0 => LogSeverity::Critical,
        n if n >= 50.0 => LogSeverity::Error,
        n if n >= 40.0 => LogSeverity::Warning,
        n if n >= 30.0 => LogSeverity::Info,
        _ => LogSeverity::Debug,
    })
}

/// The level a JSON log object states in `level`, `severity`, `lvl` or `log.level`: a word,
/// or pino's numbers.
pub fn severity_of_json(value: &Value) -> Option<LogSeverity> {
    let object = value.as_object()?;
    ["level", "severity", "lvl", "log.level"]
        .iter()
        .find_map(|k| match object.get(*k)? {
            Value::String(s) => level_word(s.trim()),
            Value::Number(n) => level_number(n.as_f64()?),
            _ => None,
        })
}

fn parse_json(line: &str, zone: FixedOffset) -> Option<ParsedLine> {
    let value: Value = serde_json::from_str(line.trim_end()).ok()?;
    let object = value.as_object()?;
    let timestamp = ["time", "timestamp", "ts", "@timestamp", "date"]
        .iter()
        .find_map(|k| object.get(*k).and_then(|v| json_time(v, zone)))?;
    let severity = severity_of_json(&value);
    let message = ["msg", "message", "text"]
        .iter()
        .find_map(|k| object.get(*k).and_then(Value::as_str))
        .map_or_else(|| line.trim_end().to_string(), str::to_string);
    Some(ParsedLine {
        timestamp,
        severity,
        message,
        payload: Some(value),
    })
}

/// A JSON time: text as a plain line's timestamp, or epoch seconds or milliseconds.
fn json_time(value: &Value, zone: FixedOffset) -> Option<DateTime<Utc>> {
    match value {
        Value::String(s) => {
            let (t, used) = parse_timestamp(s.trim(), zone)?;
            (used == s.trim().len()).then_some(t)
        }
        Value::Number(n) => {
            let n = n.as_f64()?;
            // Epoch milliseconds from 2001 on are above 1e12; seconds stay below it until 33658.
            let millis = if n.abs() >= 1e12 { n } else { n * 1000.0 };
            if !millis.is_finite() || millis.abs() > 8.2e15 {
                return None;
            }
            DateTime::from_timestamp_millis(millis.round() as i64)
        }
        _ => None,
    }
}

/// A timestamp at the start of `s` and the bytes it takes.
pub fn parse_timestamp(s: &str, zone: FixedOffset) -> Option<(DateTime<Utc>, usize)> {
    let b = s.as_bytes();
    let digits = |from: usize, n: usize| -> Option<u32> {
        let part = b.get(from..from.checked_add(n)?)?;
        part.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let year = digits(0, 4)?;
    let sep = *b.get(4)?;
    if !(sep == b'-' || sep == b'/') || b.get(7) != Some(&sep) {
        return None;
    }
    let (month, day) = (digits(5, 2)?, digits(8, 2)?);
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) || b.get(13) != Some(&b':') {
        return None;
    }
    let (hour, minute) = (digits(11, 2)?, digits(14, 2)?);
    if b.get(16) != Some(&b':') {
        return None;
    }
    let second = digits(17, 2)?;
    let mut at = 19;
    let mut nanos = 0u32;
    if matches!(b.get(at), Some(b'.' | b',')) && b.get(at + 1).is_some_and(u8::is_ascii_digit) {
        at += 1;
        let mut scale = 100_000_000u32;
        while let Some(c) = b.get(at).filter(|c| c.is_ascii_digit()) {
            nanos += u32::from(c - b'0') * scale;
            scale /= 10;
            at += 1;
        }
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    // A leap second (60) is read as the last nanosecond before the next minute.
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second.min(59), nanos)?;
    let naive = NaiveDateTime::new(date, time);
    let (offset, used) = match b.get(at) {
        Some(b'Z' | b'z') => (Some(FixedOffset::east_opt(0)?), 1),
        Some(&sign @ (b'+' | b'-')) => match zone_offset(b, at + 1) {
            Some((seconds, used)) => {
                let seconds = if sign == b'-' { -seconds } else { seconds };
                (Some(FixedOffset::east_opt(seconds)?), used + 1)
            }
            None => (None, 0),
        },
        _ => (None, 0),
    };
    let local = offset
        .unwrap_or(zone)
        .from_local_datetime(&naive)
        .single()?;
    Some((local.with_timezone(&Utc), at + used))
}

/// `hh:mm`, `hhmm` or `hh` at `from`: the offset in seconds and the bytes it takes.
fn zone_offset(b: &[u8], from: usize) -> Option<(i32, usize)> {
    let two = |i: usize| -> Option<i32> {
        let (x, y) = (*b.get(i)?, *b.get(i + 1)?);
        (x.is_ascii_digit() && y.is_ascii_digit())
            .then(|| i32::from(x - b'0') * 10 + i32::from(y - b'0'))
    };
    let hours = two(from)?;
    let (minutes, used) = match b.get(from + 2) {
        Some(b':') => (two(from + 3)?, 5),
        Some(c) if c.is_ascii_digit() => (two(from + 2)?, 4),
        _ => (0, 2),
    };
    (hours <= 23 && minutes <= 59).then_some((hours * 3600 + minutes * 60, used))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_plain_shapes_of_the_seed_and_common_servers() {
        let cases = [
            (
                "2026-11-30T12:00:01.250Z ERROR db timeout",
                "2026-11-30T12:00:01.25Z",
                Some(LogSeverity::Error),
                "ERROR db timeout",
            ),
            (
                "[2026-11-30 12:00:01] WARN: slow query",
                "2026-11-30T12:00:01Z",
                Some(LogSeverity::Warning),
                "WARN: slow query",
            ),
            (
                "2026/11/30 12:00:01 [error] 812#0: *3 upstream timed out",
                "2026-11-30T12:00:01Z",
                Some(LogSeverity::Error),
                "[error] 812#0: *3 upstream timed out",
            ),
            (
                "2026-11-30T12:00:01: PM2 log: App [api:0] online",
                "2026-11-30T12:00:01Z",
                None,
                "PM2 log: App [api:0] online",
            ),
            (
                "2026-11-30 13:00:01,5+01:00 level=info started",
                "2026-11-30T12:00:01.5Z",
                Some(LogSeverity::Info),
                "level=info started",
            ),
            (
                "2026-11-30T07:00:01-0500 | fatal | out of memory",
                "2026-11-30T12:00:01Z",
                Some(LogSeverity::Critical),
                "fatal | out of memory",
            ),
        ];
        for (line, when, severity, message) in cases {
            let p = parse_line(line, LineFormat::Auto, utc()).unwrap_or_else(|| panic!("{line}"));
            assert_eq!(p.timestamp, at(when), "{line}");
            assert_eq!(p.severity, severity, "{line}");
            assert_eq!(p.message, message, "{line}");
        }
    }

    #[test]
    fn a_timestamp_without_a_zone_is_read_in_the_configured_one() {
        let cet = FixedOffset::east_opt(3600).unwrap();
        let p = parse_line("2026-11-30 13:00:00 INFO up", LineFormat::Plain, cet).unwrap();
        assert_eq!(p.timestamp, at("2026-11-30T12:00:00Z"));
    }

    #[test]
    fn json_lines_of_pino_bunyan_and_winston() {
        let pino = r#"{"level":50,"time":1796040001000,"pid":7,"msg":"payment failed"}"#;
        let p = parse_line(pino, LineFormat::Auto, utc()).unwrap();
        assert_eq!(p.timestamp, at("2026-11-30T12:00:01Z"));
        assert_eq!(p.severity, Some(LogSeverity::Error));
        assert_eq!(p.message, "payment failed");
        assert_eq!(p.payload.unwrap()["pid"], 7);

        let winston =
            r#"{"level":"warn","message":"retrying","timestamp":"2026-11-30T12:00:01.000Z"}"#;
        let p = parse_line(winston, LineFormat::JsonLines, utc()).unwrap();
        assert_eq!(
            (p.severity, p.message.as_str()),
            (Some(LogSeverity::Warning), "retrying")
        );

        let seconds = r#"{"ts":1796040001.5,"severity":"CRITICAL","text":"disk"}"#;
        let p = parse_line(seconds, LineFormat::Auto, utc()).unwrap();
        assert_eq!(p.timestamp, at("2026-11-30T12:00:01.5Z"));
        assert_eq!(p.severity, Some(LogSeverity::Critical));
    }

    #[test]
    fn lines_that_start_no_entry() {
        for line in [
            "    at Object.<anonymous> (/srv/app/index.js:10:11)",
            "",
            "2026-13-01T00:00:00Z month 13",
            "2026-02-30 10:00:00 no such day",
            "2026-11-30T25:00:00Z hour 25",
            "{\"msg\":\"no time\"}",
            "{not json",
            "[2026-11-30",
            "2026-11-30T12:00",
        ] {
            assert_eq!(parse_line(line, LineFormat::Auto, utc()), None, "{line:?}");
        }
        // Plain only: a JSON line is text, and it has no leading timestamp.
        assert_eq!(
            parse_line(r#"{"time":1796040001000}"#, LineFormat::Plain, utc()),
            None
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn any_line_parses_or_is_a_continuation(line in ".{0,120}", offset in -50_000i32..50_000) {
            let zone = FixedOffset::east_opt(offset).unwrap();
            for format in [LineFormat::Auto, LineFormat::Plain, LineFormat::JsonLines] {
                let _ = parse_line(&line, format, zone);
            }
        }

        #[test]
        fn timestamp_like_noise_never_panics(
            digits in "[0-9:/ T.,+Z-]{0,40}",
            tail in ".{0,20}",
        ) {
            let _ = parse_line(&format!("{digits}{tail}"), LineFormat::Auto, utc());
            let _ = parse_line(&format!("{{\"time\":\"{digits}\"}}"), LineFormat::Auto, utc());
        }

        #[test]
        fn a_written_rfc3339_time_reads_back(secs in 0i64..4_102_444_800, nanos in 0u32..1_000_000_000) {
            let t = DateTime::from_timestamp(secs, nanos).unwrap();
            let line = format!("{} ERROR x", t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
            let p = parse_line(&line, LineFormat::Auto, utc()).unwrap();
            prop_assert_eq!(p.timestamp, t);
            prop_assert_eq!(p.severity, Some(LogSeverity::Error));
        }
    }
}
