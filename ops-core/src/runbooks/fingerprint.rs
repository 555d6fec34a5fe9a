//! Error fingerprints: messages with their variable parts (UUIDs, timestamps, hex ids,
//! numbers) normalised away, so "the same error" groups together.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Writes `message`'s fingerprint into `out` (cleared first): UUIDs become `<uuid>`, ISO
/// timestamps `<ts>`, `0x…` and long hex ids `<hex>`, other digit runs `<n>`. One pass over the
/// bytes, no allocation beyond `out`'s growth.
///
/// ```
/// use ops_core::runbooks::fingerprint;
/// let mut fp = String::new();
/// fingerprint("order 8412 failed at 2026-01-02T03:04:05Z (req 3f2a9c1e-77b0-4c55-9e1d-0a1b2c3d4e5f)", &mut fp);
/// assert_eq!(fp, "order <n> failed at <ts> (req <uuid>)");
/// fingerprint("commit 9fceb02d0ae598e95dc970b74767f19372d61af8 at 0xdeadBEEF", &mut fp);
/// assert_eq!(fp, "commit <hex> at <hex>");
/// ```
pub fn fingerprint(message: &str, out: &mut String) {
    out.clear();
    let b = message.as_bytes();
    let mut plain_from = 0;
    let mut i = 0;
    // Every token holds a digit: jump from digit to digit, and look for a token where the
    // word holding it starts. Plain words are copied without a second look.
    while let Some(d) = b[i..].iter().position(u8::is_ascii_digit) {
        let digit = i + d;
        let word = start_of(b, digit, plain_from, |c| c.is_ascii_alphanumeric());
        let try_at = |s: usize| {
            let (len, token) = token_at(&b[s..]);
            (len > 0 && s + len > digit).then_some((s, len, token))
        };
        // A UUID's digits may sit after a '-': then also try from where the '-' run starts.
        let wide = if word > plain_from && b[word - 1] == b'-' {
            start_of(b, digit, plain_from, |c| {
                c.is_ascii_alphanumeric() || c == b'-'
            })
        } else {
            word
        };
        let found = if wide < word {
            try_at(wide).or_else(|| try_at(word))
        } else {
            try_at(word)
        };
        match found {
            Some((s, len, token)) => {
                out.push_str(&message[plain_from..s]);
                out.push_str(token);
                plain_from = s + len;
                i = plain_from;
            }
            // A digit inside a name (`user42`): skip the rest of that word.
            None => {
                i = digit
                    + b[digit..]
                        .iter()
                        .take_while(|c| c.is_ascii_alphanumeric())
                        .count()
            }
        }
    }
    out.push_str(&message[plain_from..]);
}

/// Where the run of bytes matching `part` that contains `at` starts (not before `floor`).
fn start_of(b: &[u8], at: usize, floor: usize, part: impl Fn(u8) -> bool) -> usize {
    let mut s = at;
    while s > floor && part(b[s - 1]) {
        s -= 1;
    }
    s
}

/// The variable token at the start of `b`, if any: its length and placeholder.
fn token_at(b: &[u8]) -> (usize, &'static str) {
    // Most tokens are plain numbers: settle those before trying the longer shapes.
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits > 0 {
        let next = b.get(digits).copied().unwrap_or(b' ');
        // 8+ digits may be a hex id that happens to have no letters: same fingerprint as one that has.
        let maybe_longer = digits >= 8
            || next.is_ascii_hexdigit()
            || next == b'-'
            || (digits == 1 && (next == b'x' || next == b'X'));
        if !maybe_longer {
            return (number_len(b, digits), "<n>");
        }
    }
    if let Some(n) = uuid_len(b) {
        return (n, "<uuid>");
    }
    if let Some(n) = timestamp_len(b) {
        return (n, "<ts>");
    }
    if b.len() > 2 && b[0] == b'0' && (b[1] == b'x' || b[1] == b'X') {
        let n = 2 + b[2..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
        if n > 2 && ends_word(b, n) {
            return (n, "<hex>");
        }
    }
    let hex = b.iter().take_while(|c| c.is_ascii_hexdigit()).count();
    if hex >= 8 && b[..hex].iter().any(u8::is_ascii_digit) && ends_word(b, hex) {
        return (hex, "<hex>");
    }
    // A digit run is a number wherever it ends (`5000ms` → `<n>ms`).
    if digits > 0 {
        return (number_len(b, digits), "<n>");
    }
    (0, "")
}

/// `digits` digits, then `.digits` groups (`1.5`, `10.0.0.1`): one number.
fn number_len(b: &[u8], digits: usize) -> usize {
    let mut n = digits;
    while n + 1 < b.len() && b[n] == b'.' && b[n + 1].is_ascii_digit() {
        n += 1 + b[n + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
    }
    n
}

/// Whether the token of length `n` ends at a word boundary (ids must not eat into words).
fn ends_word(b: &[u8], n: usize) -> bool {
    b.get(n).is_none_or(|c| !c.is_ascii_alphanumeric())
}

fn uuid_len(b: &[u8]) -> Option<usize> {
    const GROUPS: [usize; 5] = [8, 4, 4, 4, 12];
    let mut i = 0;
    for (g, len) in GROUPS.iter().enumerate() {
        if b.len() < i + len || !b[i..i + len].iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        i += len;
        if g < 4 {
            if b.get(i) != Some(&b'-') {
                return None;
            }
            i += 1;
        }
    }
    ends_word(b, i).then_some(i)
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.frac][Z|±HH:MM]`.
fn timestamp_len(b: &[u8]) -> Option<usize> {
    let d = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let is = |i: usize, c: u8| b.get(i) == Some(&c);
    let ok = (0..4).all(d)
        && is(4, b'-')
        && d(5)
        && d(6)
        && is(7, b'-')
        && d(8)
        && d(9)
        && (is(10, b'T') || is(10, b' '))
        && d(11)
        && d(12)
        && is(13, b':')
        && d(14)
        && d(15)
        && is(16, b':')
        && d(17)
        && d(18);
    if !ok {
        return None;
    }
    let mut i = 19;
    if is(i, b'.') {
        i += 1;
        while d(i) {
            i += 1;
        }
    }
    if is(i, b'Z') {
        i += 1;
    } else if (is(i, b'+') || is(i, b'-')) && d(i + 1) && d(i + 2) {
        i += 3;
        if is(i, b':') {
            i += 1;
        }
        if d(i) && d(i + 1) {
            i += 2;
        }
    }
    Some(i)
}

/// Messages that share a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorGroup {
    /// The fingerprint.
    pub fingerprint: String,
    /// How many messages had it.
    pub count: u64,
    /// The first message seen with it, as it was.
    pub example: String,
    /// The earliest time seen, when times were given.
    pub first_seen: Option<DateTime<Utc>>,
    /// The latest time seen, when times were given.
    pub last_seen: Option<DateTime<Utc>>,
}

/// Counts messages by fingerprint.
#[derive(Debug, Default)]
pub struct ErrorGrouper {
    // foldhash: several times faster than SipHash on short keys, and randomly seeded, so
    // crafted log lines cannot cheaply flood it.
    groups: HashMap<String, ErrorGroup, foldhash::fast::RandomState>,
    buf: String,
    total: u64,
}

impl ErrorGrouper {
    /// An empty grouper.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one message (seen at `at`, if known).
    pub fn add(&mut self, message: &str, at: Option<DateTime<Utc>>) {
        self.total += 1;
        fingerprint(message, &mut self.buf);
        // Look up by &str first: a fingerprint seen before allocates nothing.
        if let Some(g) = self.groups.get_mut(self.buf.as_str()) {
            g.count += 1;
            if let Some(t) = at {
                g.first_seen = Some(g.first_seen.map_or(t, |f| f.min(t)));
                g.last_seen = Some(g.last_seen.map_or(t, |l| l.max(t)));
            }
            return;
        }
        let key = self.buf.clone();
        self.groups.insert(
            key.clone(),
            ErrorGroup {
                fingerprint: key,
                count: 1,
                example: message.to_string(),
                first_seen: at,
                last_seen: at,
            },
        );
    }

    /// Messages added.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The `n` largest groups, largest first (ties by fingerprint).
    pub fn top(&self, n: usize) -> Vec<ErrorGroup> {
        let mut all: Vec<&ErrorGroup> = self.groups.values().collect();
        all.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.fingerprint.cmp(&b.fingerprint))
        });
        all.into_iter().take(n).cloned().collect()
    }

    /// How many distinct fingerprints.
    pub fn distinct(&self) -> usize {
        self.groups.len()
    }

    /// Adds another grouper's counts (the example kept is this one's, when both have one).
    pub fn merge(&mut self, other: ErrorGrouper) {
        self.total += other.total;
        for (key, g) in other.groups {
            match self.groups.get_mut(&key) {
                Some(mine) => {
                    mine.count += g.count;
                    mine.first_seen = min_opt(mine.first_seen, g.first_seen);
                    mine.last_seen = max_opt(mine.last_seen, g.last_seen);
                }
                None => {
                    self.groups.insert(key, g);
                }
            }
        }
    }
}

fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Groups the lines of `text` on `threads` threads (split at line boundaries, then merged).
/// `message_of` picks a line's message, or `None` to skip the line (not an error).
///
/// ```
/// use ops_core::runbooks::group_lines;
/// let text = "t1 ERROR disk 91% full\nt2 INFO ok\nt3 ERROR disk 97% full\n";
/// let g = group_lines(text, 2, |l| l.split_once(' ').and_then(|(_, r)| r.strip_prefix("ERROR ")));
/// assert_eq!(g.top(1)[0].fingerprint, "disk <n>% full");
/// assert_eq!(g.total(), 2);
/// ```
pub fn group_lines<F>(text: &str, threads: usize, message_of: F) -> ErrorGrouper
where
    F: Fn(&str) -> Option<&str> + Sync,
{
    let group = |part: &str| {
        let mut g = ErrorGrouper::new();
        for line in part.lines() {
            if let Some(m) = message_of(line) {
                g.add(m, None);
            }
        }
        g
    };
    let threads = threads.max(1);
    if threads == 1 || text.len() < 1 << 20 {
        return group(text);
    }
    // Cut at the newline after each even share, so no line is split.
    let mut parts = Vec::with_capacity(threads);
    let mut start = 0;
    for k in 1..threads {
        let target = (text.len() * k / threads).max(start);
        let end = text[target..]
            .find('\n')
            .map_or(text.len(), |i| target + i + 1);
        parts.push(&text[start..end]);
        start = end;
    }
    parts.push(&text[start..]);
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|p| scope.spawn(move || group(p)))
            .collect();
        let mut all = ErrorGrouper::new();
        for h in handles {
            all.merge(h.join().expect("grouping threads do not panic"));
        }
        all
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(s: &str) -> String {
        let mut out = String::new();
        fingerprint(s, &mut out);
        out
    }

    #[test]
    fn normalises_the_variable_parts() {
        assert_eq!(fp("timeout after 5000 ms"), "timeout after <n> ms");
        assert_eq!(fp("took 5000ms"), "took <n>ms");
        assert_eq!(
            fp("user42 not found"),
            "user42 not found",
            "letters then digits: a name, kept"
        );
        assert_eq!(fp("at 2026-01-02 03:04:05.123+02:00 x"), "at <ts> x");
        assert_eq!(fp("from 10.0.0.12 port 443"), "from <n> port <n>");
        assert_eq!(
            fp("deadbeef is a word here"),
            "deadbeef is a word here",
            "hex without digits is a word"
        );
        assert_eq!(fp("id=5f3c9a01b2"), "id=<hex>");
        assert_eq!(fp("naïve 12 café"), "naïve <n> café");
        assert_eq!(
            fp("req deadbeef-0000-4abc-9def-0123456789ab done"),
            "req <uuid> done",
            "a UUID that starts with letters"
        );
        assert_eq!(fp("order-1234 and a-5"), "order-<n> and a-<n>");
        assert_eq!(
            fp("webhook 123456789012"),
            fp("webhook 12345678901a"),
            "an id is an id, letters or not"
        );
        assert_eq!(fp(""), "");
    }

    #[test]
    fn groups_count_and_keep_an_example() {
        let mut g = ErrorGrouper::new();
        let t = |s: i64| Some(DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(s));
        g.add("payment 1 declined", t(5));
        g.add("payment 22 declined", t(1));
        g.add("db timeout", t(3));
        let top = g.top(10);
        assert_eq!(
            (
                top[0].fingerprint.as_str(),
                top[0].count,
                top[0].example.as_str()
            ),
            ("payment <n> declined", 2, "payment 1 declined")
        );
        assert_eq!((top[0].first_seen, top[0].last_seen), (t(1), t(5)));
        assert_eq!((g.total(), g.distinct()), (3, 2));
        assert_eq!(g.top(1).len(), 1);
    }

    #[test]
    fn parallel_grouping_equals_sequential() {
        let text: String = (0..200_000)
            .map(|i| format!("t ERROR job {i} failed on node-{}\n", i % 7))
            .collect();
        fn pick(l: &str) -> Option<&str> {
            l.strip_prefix("t ERROR ")
        }
        let one = group_lines(&text, 1, pick);
        let two = group_lines(&text, 2, pick);
        assert_eq!((one.total(), two.total()), (200_000, 200_000));
        assert_eq!(
            one.top(10)
                .iter()
                .map(|g| (&g.fingerprint, g.count))
                .collect::<Vec<_>>(),
            two.top(10)
                .iter()
                .map(|g| (&g.fingerprint, g.count))
                .collect::<Vec<_>>()
        );
        assert_eq!(one.distinct(), 1);
    }
}
