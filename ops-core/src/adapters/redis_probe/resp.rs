//! The part of RESP (the Redis serialization protocol, version 2) a health probe needs:
//! commands out as arrays of bulk strings, replies in with bounds on every length, and the
//! `INFO` text. Replies come from a server, so every input is outside input: a malformed or
//! oversized reply is an error, never a panic or an unbounded allocation.

use std::collections::BTreeMap;

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`, `+PONG`.
    Simple(String),
    /// `-ERR …`, `-WRONGPASS …`, `-NOAUTH …`.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$5\r\nhello`, or the null bulk string `$-1`.
    Bulk(Option<Vec<u8>>),
    /// `*2\r\n…`, or the null array `*-1`.
    Array(Option<Vec<Reply>>),
}

/// How much of a reply the parser accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest bulk string (`INFO` is a few kilobytes).
    pub max_bulk: usize,
    /// The most elements in one array.
    pub max_elements: usize,
    /// The deepest nesting of arrays.
    pub max_depth: usize,
    /// The longest simple string, error or number line.
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bulk: 1024 * 1024,
            max_elements: 1024,
            max_depth: 8,
            max_line: 64 * 1024,
        }
    }
}

/// The outcome of looking at the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// One whole reply, and how many bytes it took.
    Complete(Reply, usize),
    /// More bytes are needed.
    Incomplete,
}

/// Parses one reply from the start of `buf`. `Err` names what is malformed or too large.
pub fn parse(buf: &[u8], limits: &Limits) -> Result<Parsed, String> {
    match parse_at(buf, 0, limits, 0)? {
        Some((reply, end)) => Ok(Parsed::Complete(reply, end)),
        None => Ok(Parsed::Incomplete),
    }
}

/// The line starting at `at` (without its CRLF) and where the next one starts.
fn line<'a>(
    buf: &'a [u8],
    at: usize,
    limits: &Limits,
) -> Result<Option<(&'a [u8], usize)>, String> {
    let rest = buf.get(at..).unwrap_or_default();
    let window = &rest[..rest.len().min(limits.max_line.saturating_add(2))];
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(n) => Ok(Some((&rest[..n], at + n + 2))),
        None if window.len() > limits.max_line => {
            Err(format!("a line longer than {} bytes", limits.max_line))
        }
        None if window.contains(&b'\n') => Err("a line ending in LF without CR".into()),
        None => Ok(None),
    }
}

fn integer(text: &[u8]) -> Result<i64, String> {
    let s = std::str::from_utf8(text).map_err(|_| "a number that is not text".to_string())?;
    s.parse::<i64>()
        .map_err(|_| format!("{:?} is not a 64-bit integer", truncate(s)))
}

/// A length field: `-1` is null (`None`), anything else below zero or above `max` an error.
fn length(text: &[u8], max: usize, what: &str) -> Result<Option<usize>, String> {
    match integer(text)? {
        -1 => Ok(None),
        n if n < -1 => Err(format!("a {what} length of {n}")),
        n => {
            let n = usize::try_from(n).map_err(|_| format!("a {what} length of {n}"))?;
            if n > max {
                Err(format!("a {what} of {n}, above the limit of {max}"))
            } else {
                Ok(Some(n))
            }
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

fn parse_at(
    buf: &[u8],
    at: usize,
    limits: &Limits,
    depth: usize,
) -> Result<Option<(Reply, usize)>, String> {
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some((head, next)) = line(buf, at + 1, limits)? else {
        return Ok(None);
    };
    match kind {
        b'+' => Ok(Some((Reply::Simple(text(head)), next))),
        b'-' => Ok(Some((Reply::Error(text(head)), next))),
        b':' => Ok(Some((Reply::Integer(integer(head)?), next))),
        b'$' => {
            let Some(n) = length(head, limits.max_bulk, "bulk string")? else {
                return Ok(Some((Reply::Bulk(None), next)));
            };
            // n ≤ max_bulk, so these sums cannot overflow on any platform Redis runs on;
            // checked all the same.
            let data_end = next.checked_add(n).ok_or("a bulk string past the end")?;
            let end = data_end
                .checked_add(2)
                .ok_or("a bulk string past the end")?;
            if buf.len() < end {
                return Ok(None);
            }
            if &buf[data_end..end] != b"\r\n" {
                return Err("a bulk string not followed by CRLF".into());
            }
            Ok(Some((Reply::Bulk(Some(buf[next..data_end].to_vec())), end)))
        }
        b'*' => {
            let Some(n) = length(head, limits.max_elements, "array")? else {
                return Ok(Some((Reply::Array(None), next)));
            };
            if depth >= limits.max_depth {
                return Err(format!("arrays nested deeper than {}", limits.max_depth));
            }
            let mut items = Vec::with_capacity(n.min(64));
            let mut pos = next;
            for _ in 0..n {
                match parse_at(buf, pos, limits, depth + 1)? {
                    Some((item, end)) => {
                        items.push(item);
                        pos = end;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Reply::Array(Some(items)), pos)))
        }
        other => Err(format!("an unknown reply type byte 0x{other:02x}")),
    }
}

/// A command as RESP: an array of bulk strings (any bytes, a password included).
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let size: usize = args.iter().map(|a| a.len() + 16).sum::<usize>() + 16;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The `key:value` lines of an `INFO` reply (section headers and blank lines skipped). At most
/// `max_fields` fields are kept; a line without a colon is ignored, as Redis adds fields over
/// versions.
pub fn parse_info(text: &str, max_fields: usize) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .take(max_fields)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn complete(buf: &[u8]) -> Reply {
        match parse(buf, &Limits::default()).unwrap() {
            Parsed::Complete(r, n) => {
                assert_eq!(n, buf.len());
                r
            }
            Parsed::Incomplete => panic!("incomplete: {buf:?}"),
        }
    }

    #[test]
    fn every_reply_type_of_resp2() {
        assert_eq!(complete(b"+PONG\r\n"), Reply::Simple("PONG".into()));
        assert_eq!(
            complete(b"-WRONGPASS invalid username-password pair\r\n"),
            Reply::Error("WRONGPASS invalid username-password pair".into())
        );
        assert_eq!(complete(b":-42\r\n"), Reply::Integer(-42));
        assert_eq!(
            complete(b"$3\r\na\r\n\r\n"),
            Reply::Bulk(Some(b"a\r\n".to_vec()))
        );
        assert_eq!(complete(b"$0\r\n\r\n"), Reply::Bulk(Some(Vec::new())));
        assert_eq!(complete(b"$-1\r\n"), Reply::Bulk(None));
        assert_eq!(complete(b"*-1\r\n"), Reply::Array(None));
        assert_eq!(
            complete(b"*2\r\n:1\r\n*1\r\n+x\r\n"),
            Reply::Array(Some(vec![
                Reply::Integer(1),
                Reply::Array(Some(vec![Reply::Simple("x".into())]))
            ]))
        );
    }

    #[test]
    fn malformed_and_oversized_replies_are_errors() {
        let limits = Limits {
            max_bulk: 8,
            max_elements: 2,
            max_depth: 2,
            max_line: 16,
        };
        for bad in [
            &b"?x\r\n"[..],
            b":12x\r\n",
            b":99999999999999999999\r\n",
            b"$-2\r\n",
            b"$9\r\n",
            b"*3\r\n",
            b"$2\r\nabXY",
            b"*1\r\n*1\r\n*1\r\n:1\r\n",
            b"+aaaaaaaaaaaaaaaaaaaaaaa",
            b"+ok\n",
        ] {
            assert!(
                parse(bad, &limits).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn info_fields_are_read_and_headers_skipped() {
        let info = parse_info(
            "# Memory\r\nused_memory:1024\r\nmaxmemory:0\r\n\r\n# Stats\r\nkeyspace_hits:9\r\nnoise\r\n",
            100,
        );
        assert_eq!(info.get("used_memory").map(String::as_str), Some("1024"));
        assert_eq!(info.get("keyspace_hits").map(String::as_str), Some("9"));
        assert_eq!(info.len(), 3);
    }

    fn reply() -> impl Strategy<Value = Reply> {
        let leaf = prop_oneof![
            "[a-zA-Z0-9 ]{0,20}".prop_map(Reply::Simple),
            "[a-zA-Z0-9 ]{0,20}".prop_map(Reply::Error),
            any::<i64>().prop_map(Reply::Integer),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64))
                .prop_map(Reply::Bulk),
        ];
        leaf.prop_recursive(3, 32, 4, |inner| {
            proptest::option::of(proptest::collection::vec(inner, 0..4)).prop_map(Reply::Array)
        })
    }

    fn encode(r: &Reply, out: &mut Vec<u8>) {
        match r {
            Reply::Simple(s) => out.extend_from_slice(format!("+{s}\r\n").as_bytes()),
            Reply::Error(s) => out.extend_from_slice(format!("-{s}\r\n").as_bytes()),
            Reply::Integer(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
            Reply::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
            Reply::Bulk(Some(b)) => {
                out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Array(None) => out.extend_from_slice(b"*-1\r\n"),
            Reply::Array(Some(items)) => {
                out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
                for i in items {
                    encode(i, out);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any bytes at all: an answer, never a panic.
        #[test]
        fn any_bytes_parse_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse(&bytes, &Limits::default());
            let _ = parse_info(&String::from_utf8_lossy(&bytes), 16);
        }

        /// Every reply round-trips, and every cut short of its end is incomplete, not wrong.
        #[test]
        fn replies_round_trip_and_prefixes_are_incomplete(r in reply(), cut in any::<prop::sample::Index>()) {
            let mut bytes = Vec::new();
            encode(&r, &mut bytes);
            prop_assert_eq!(parse(&bytes, &Limits::default()), Ok(Parsed::Complete(r, bytes.len())));
            let at = cut.index(bytes.len());
            prop_assert_eq!(parse(&bytes[..at], &Limits::default()), Ok(Parsed::Incomplete));
        }

        /// A command encodes as an array of bulk strings that parses back to its arguments.
        #[test]
        fn commands_encode_as_bulk_arrays(args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..32), 1..5)) {
            let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            let bytes = encode_command(&refs);
            let want = Reply::Array(Some(args.iter().cloned().map(|a| Reply::Bulk(Some(a))).collect()));
            prop_assert_eq!(parse(&bytes, &Limits::default()), Ok(Parsed::Complete(want, bytes.len())));
        }
    }
}
