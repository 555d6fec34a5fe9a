//! The access-log line `ops` reads: nginx's `log_format` [`LOG_FORMAT`], one line per
//! request, every upstream attempt in it.
//!
//! ```text
//! 1796040001.123 200 0.015 "127.0.0.1:3001" "200" "0.014"
//! 1796040002.480 200 0.031 "127.0.0.1:3002, 127.0.0.1:3001" "502, 200" "0.001, 0.029"
//! ```
//!
//! The second request failed on the canary (3002, connection refused: nginx's 502) and was
//! retried on stable: the client saw 200, the canary's failure still counts against it. That
//! is why the line keeps every attempt, not only the client's status.

/// The `log_format` to declare in nginx's `http` block; its name is `ops_canary`.
pub const LOG_FORMAT: &str = r#"log_format ops_canary '$msec $status $request_time "$upstream_addr" "$upstream_status" "$upstream_response_time"';"#;

/// One upstream attempt of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt<'a> {
    /// The server tried (`127.0.0.1:3001`, or a socket path).
    pub addr: &'a [u8],
    /// Its status; `None` when nginx logged `-` (no answer).
    pub status: Option<u16>,
    /// Its response time in milliseconds; `None` for `-`.
    pub millis: Option<u64>,
}

/// One request: when it ended, what the client got, how long it took, and its attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// Its end, in milliseconds since the epoch (`$msec`).
    pub at_ms: i64,
    /// The status sent to the client.
    pub status: u16,
    /// `$request_time` in milliseconds.
    pub millis: u64,
    addrs: &'a [u8],
    statuses: &'a [u8],
    times: &'a [u8],
}

impl<'a> Request<'a> {
    /// The upstream attempts, in the order nginx made them (none when nginx answered itself).
    pub fn attempts(&self) -> impl Iterator<Item = Attempt<'a>> + 'a {
        let mut statuses = split_list(self.statuses);
        let mut times = split_list(self.times);
        split_list(self.addrs)
            .filter(|a| *a != b"-")
            .map(move |addr| Attempt {
                addr,
                status: statuses.next().and_then(parse_u16),
                millis: times.next().and_then(seconds_to_millis),
            })
    }
}

/// nginx joins attempts with `, ` and internal redirects with ` : `.
fn split_list(field: &[u8]) -> impl Iterator<Item = &[u8]> {
    field
        .split(|&c| c == b',')
        .flat_map(split_redirects)
        .map(trim_spaces)
        .filter(|p| !p.is_empty())
}

/// ` : ` separates groups (an address holds `:` without spaces around it).
fn split_redirects(part: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(part);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memmem::find(r, b" : ") {
            Some(i) => {
                rest = Some(&r[i + 3..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

fn trim_spaces(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| c != b' ').unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c != b' ').map_or(start, |i| i + 1);
    &b[start..end.max(start)]
}

fn parse_u16(b: &[u8]) -> Option<u16> {
    if b.is_empty() || b.len() > 5 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// `12.345` seconds (nginx writes milliseconds) as whole milliseconds, further digits cut;
/// `None` for `-` or anything else. At most 12 digits of seconds (no overflow).
fn seconds_to_millis(b: &[u8]) -> Option<u64> {
    let (whole, frac) = match memchr::memchr(b'.', b) {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &b[..0]),
    };
    let all_digits = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
    if whole.is_empty()
        || whole.len() > 12
        || frac.len() > 9
        || !all_digits(whole)
        || !all_digits(frac)
    {
        return None;
    }
    let value = |d: &[u8]| {
        d.iter()
            .fold(0u64, |acc, &c| acc * 10 + u64::from(c - b'0'))
    };
    let mut millis = value(whole) * 1000;
    for (i, &c) in frac.iter().take(3).enumerate() {
        millis += u64::from(c - b'0') * [100, 10, 1][i];
    }
    Some(millis)
}

/// Parses one line of [`LOG_FORMAT`]; `None` for any other line.
pub fn parse(line: &[u8]) -> Option<Request<'_>> {
    let mut fields = line.splitn(4, |&c| c == b' ');
    let msec = fields.next()?;
    let status = parse_u16(fields.next()?)?;
    let millis = seconds_to_millis(fields.next()?)?;
    let rest = fields.next()?;
    let at_ms = i64::try_from(seconds_to_millis(msec)?).ok()?;
    let (addrs, rest) = quoted(rest)?;
    let (statuses, rest) = quoted(rest.strip_prefix(b" ")?)?;
    let (times, rest) = quoted(rest.strip_prefix(b" ")?)?;
    if !rest.is_empty() {
        return None;
    }
    Some(Request {
        at_ms,
        status,
        millis,
        addrs,
        statuses,
        times,
    })
}

/// `"…"` at the start of `b`: its inside and what follows it.
fn quoted(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let inner = b.strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', inner)?;
    Some((&inner[..end], &inner[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_request_served_by_stable() {
        let r = parse(br#"1796040001.123 200 0.015 "127.0.0.1:3001" "200" "0.014""#).unwrap();
        assert_eq!((r.at_ms, r.status, r.millis), (1_796_040_001_123, 200, 15));
        let a: Vec<Attempt<'_>> = r.attempts().collect();
        assert_eq!(
            a,
            vec![Attempt {
                addr: b"127.0.0.1:3001",
                status: Some(200),
                millis: Some(14)
            }]
        );
    }

    #[test]
    fn a_failed_attempt_retried_elsewhere_and_an_internal_redirect() {
        let line = br#"1796040002.480 200 0.031 "127.0.0.1:3002, 127.0.0.1:3001 : unix:/run/b.sock" "502, 200 : 204" "0.001, 0.029 : -""#;
        let r = parse(line).unwrap();
        let a: Vec<(Vec<u8>, Option<u16>, Option<u64>)> = r
            .attempts()
            .map(|a| (a.addr.to_vec(), a.status, a.millis))
            .collect();
        assert_eq!(
            a,
            vec![
                (b"127.0.0.1:3002".to_vec(), Some(502), Some(1)),
                (b"127.0.0.1:3001".to_vec(), Some(200), Some(29)),
                (b"unix:/run/b.sock".to_vec(), Some(204), None),
            ]
        );
    }

    #[test]
    fn nginx_answering_itself_has_no_attempts_and_other_lines_are_not_requests() {
        let r = parse(br#"1796040003.000 404 0.000 "-" "-" "-""#).unwrap();
        assert_eq!(r.attempts().count(), 0);
        for line in [
            &br#"127.0.0.1 - - [30/Nov/2026:12:00:00 +0000] "GET / HTTP/1.1" 200 12"#[..],
            br#"1796040003.000 404 0.000 "-" "-""#,
            br#"1796040003.000 4o4 0.000 "-" "-" "-""#,
            br#"1796040003.000 404 0.000 "-" "-" "-" extra"#,
            br#"99999999999999999999.000 200 0.000 "-" "-" "-""#,
            b"",
        ] {
            assert_eq!(parse(line), None, "{}", String::from_utf8_lossy(line));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn any_line_is_a_request_or_not_never_a_panic(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Some(r) = parse(&line) {
                let _ = r.attempts().count();
            }
        }

        #[test]
        fn written_requests_read_back(
            secs in 0u64..4_000_000_000, ms in 0u64..1000, status in 100u16..600,
            attempts in proptest::collection::vec((1u16..65535, proptest::option::of(100u16..600), proptest::option::of(0u64..100_000)), 0..4),
        ) {
            let fmt_time = |m: u64| format!("{}.{:03}", m / 1000, m % 1000);
            let addrs: Vec<String> = attempts.iter().map(|(p, _, _)| format!("10.0.0.1:{p}")).collect();
            let statuses: Vec<String> = attempts.iter().map(|(_, s, _)| s.map_or("-".into(), |s| s.to_string())).collect();
            let times: Vec<String> = attempts.iter().map(|(_, _, t)| t.map_or("-".into(), fmt_time)).collect();
            let or_dash = |v: Vec<String>| if v.is_empty() { "-".to_string() } else { v.join(", ") };
            let line = format!(
                "{secs}.{ms:03} {status} {} \"{}\" \"{}\" \"{}\"",
                fmt_time(1234), or_dash(addrs), or_dash(statuses), or_dash(times)
            );
            let r = parse(line.as_bytes()).unwrap();
            prop_assert_eq!(r.at_ms, (secs * 1000 + ms) as i64);
            prop_assert_eq!(r.status, status);
            prop_assert_eq!(r.millis, 1234);
            let got: Vec<(Option<u16>, Option<u64>)> = r.attempts().map(|a| (a.status, a.millis)).collect();
            let want: Vec<(Option<u16>, Option<u64>)> = attempts.iter().map(|(_, s, t)| (*s, *t)).collect();
            prop_assert_eq!(got, want);
        }
    }
}
