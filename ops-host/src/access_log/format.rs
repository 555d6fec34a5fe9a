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

/// One upstream attempt of a request; its status and time are read only when asked for (a
/// scan for one release skips the others' attempts unread).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt<'a> {
    /// The server tried (`127.0.0.1:3001`, or a socket path).
    pub addr: &'a [u8],
    status: &'a [u8],
    time: &'a [u8],
}

impl Attempt<'_> {
    /// Its status; `None` when nginx logged `-` (no answer).
    pub fn status(&self) -> Option<u16> {
        parse_u16(self.status)
    }

    /// Its response time in milliseconds; `None` for `-`.
    pub fn millis(&self) -> Option<u64> {
        seconds_to_millis(self.time)
    }
}

/// One request: when it ended, what the client got, how long it took, and its attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// Its end, in milliseconds since the epoch (`$msec`).
    pub at_ms: i64,
    /// The status sent to the client.
    pub status: u16,
    request_time: &'a [u8],
    addrs: &'a [u8],
    statuses: &'a [u8],
    times: &'a [u8],
}

impl<'a> Request<'a> {
    /// The upstream attempts, in the order nginx made them (none when nginx answered itself).
    pub fn attempts(&self) -> impl Iterator<Item = Attempt<'a>> + 'a {
        // Most requests make one attempt: no list to split.
        let single = !self.addrs.iter().any(|&c| c == b',' || c == b' ');
        let one = single.then(|| Attempt {
            addr: self.addrs,
            status: trim_spaces(self.statuses),
            time: trim_spaces(self.times),
        });
        let (mut statuses, mut times) = (List(Some(self.statuses)), List(Some(self.times)));
        let many = List((!single).then_some(self.addrs)).map(move |addr| Attempt {
            addr,
            status: statuses.next().unwrap_or(b"-"),
            time: times.next().unwrap_or(b"-"),
        });
        // Zipped before filtering, so a `-` keeps the lists in step.
        one.into_iter().chain(many).filter(|a| a.addr != b"-")
    }

    /// `$request_time` in milliseconds; `None` if nginx wrote something else.
    pub fn millis(&self) -> Option<u64> {
        seconds_to_millis(self.request_time)
    }
}

/// The items of an nginx list: joined with `, ` (attempts) and ` : ` (internal redirects),
/// trimmed, empty ones left out.
struct List<'a>(Option<&'a [u8]>);

impl<'a> Iterator for List<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let r = self.0?;
            // One pass over a short field: a separator is `,` or ` : ` (an address holds `:`
            // without spaces around it).
            let mut cut = None;
            for (i, &c) in r.iter().enumerate() {
                if c == b',' {
                    cut = Some((i, 1));
                    break;
                }
                if c == b' ' && r.get(i + 1) == Some(&b':') && r.get(i + 2) == Some(&b' ') {
                    cut = Some((i, 3));
                    break;
                }
            }
            let item = match cut {
                Some((i, len)) => {
                    self.0 = Some(&r[i + len..]);
                    &r[..i]
                }
                None => {
                    self.0 = None;
                    r
                }
            };
            let item = trim_spaces(item);
            if !item.is_empty() {
                return Some(item);
            }
        }
    }
}

fn trim_spaces(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| c != b' ').unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c != b' ').map_or(start, |i| i + 1);
    &b[start..end.max(start)]
}

fn parse_u16(b: &[u8]) -> Option<u16> {
    if b.is_empty() || b.len() > 5 {
        return None;
    }
    let n = b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })?;
    u16::try_from(n).ok()
}

/// `12.345` seconds (nginx writes milliseconds) as whole milliseconds, further digits cut;
/// `None` for `-` or anything else. At most 12 digits of seconds and 9 of fraction (no
/// overflow). One pass: it runs for every line of a large log.
fn seconds_to_millis(b: &[u8]) -> Option<u64> {
    let mut whole = 0u64;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'.' {
            break;
        }
        let d = c.wrapping_sub(b'0');
        if d > 9 || i >= 12 {
            return None;
        }
        whole = whole * 10 + u64::from(d);
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let mut millis = whole * 1000;
    if let Some(frac) = b.get(i + 1..) {
        if frac.len() > 9 {
            return None;
        }
        let mut scale = 100;
        for &c in frac {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            millis += u64::from(d) * scale;
            scale /= 10;
        }
    }
    Some(millis)
}

/// Parses one line of [`LOG_FORMAT`]; `None` for any other line.
pub fn parse(line: &[u8]) -> Option<Request<'_>> {
    let (msec, rest) = word(line)?;
    let (status, rest) = word(rest)?;
    let (request_time, rest) = word(rest)?;
    let status = parse_u16(status)?;
    // Read when asked for; a shape check keeps other lines out.
    if !request_time.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
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
        request_time,
        addrs,
        statuses,
        times,
    })
}

/// The word before the first space of `b`, and what follows that space.
fn word(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = b.iter().position(|&c| c == b' ')?;
    Some((&b[..i], &b[i + 1..]))
}

/// `"…"` at the start of `b`: its inside and what follows it.
fn quoted(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let inner = b.strip_prefix(b"\"")?;
    let end = inner.iter().position(|&c| c == b'"')?;
    Some((&inner[..end], &inner[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_request_served_by_stable() {
        let r = parse(br#"1796040001.123 200 0.015 "127.0.0.1:3001" "200" "0.014""#).unwrap();
        assert_eq!(
            (r.at_ms, r.status, r.millis()),
            (1_796_040_001_123, 200, Some(15))
        );
        let a: Vec<(&[u8], Option<u16>, Option<u64>)> = r
            .attempts()
            .map(|a| (a.addr, a.status(), a.millis()))
            .collect();
        assert_eq!(a, vec![(&b"127.0.0.1:3001"[..], Some(200), Some(14))]);
    }

    #[test]
    fn a_failed_attempt_retried_elsewhere_and_an_internal_redirect() {
        let line = br#"1796040002.480 200 0.031 "127.0.0.1:3002, 127.0.0.1:3001 : unix:/run/b.sock" "502, 200 : 204" "0.001, 0.029 : -""#;
        let r = parse(line).unwrap();
        let a: Vec<(Vec<u8>, Option<u16>, Option<u64>)> = r
            .attempts()
            .map(|a| (a.addr.to_vec(), a.status(), a.millis()))
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
            prop_assert_eq!(r.millis(), Some(1234));
            let got: Vec<(Option<u16>, Option<u64>)> = r.attempts().map(|a| (a.status(), a.millis())).collect();
            let want: Vec<(Option<u16>, Option<u64>)> = attempts.iter().map(|(_, s, t)| (*s, *t)).collect();
            prop_assert_eq!(got, want);
        }
    }
}
