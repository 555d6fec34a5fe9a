//! The end of a long text (a job's log) read in chunks, holding only the last bytes: what
//! [`super::GithubClient::download_tail`] keeps of a download.

/// The last `keep` bytes of a stream, then its last lines.
#[derive(Debug)]
pub struct Tail {
    keep: usize,
    buf: Vec<u8>,
    dropped: bool,
    read: u64,
}

impl Tail {
    /// Keeps at most `keep` bytes (at least one).
    pub fn new(keep: usize) -> Self {
        let keep = keep.max(1);
        Self {
            keep,
            buf: Vec::with_capacity(keep.min(1 << 20).saturating_mul(2)),
            dropped: false,
            read: 0,
        }
    }

    /// Takes the next chunk. Memory stays under twice `keep`.
    pub fn push(&mut self, chunk: &[u8]) {
        self.read = self.read.saturating_add(chunk.len() as u64);
        self.buf.extend_from_slice(chunk);
        if self.buf.len() > self.keep.saturating_mul(2) {
            self.trim();
        }
    }

    fn trim(&mut self) {
        if self.buf.len() > self.keep {
            self.buf.drain(..self.buf.len() - self.keep);
            self.dropped = true;
        }
    }

    /// Bytes taken so far.
    pub fn read(&self) -> u64 {
        self.read
    }

    /// The last `max_lines` whole lines kept (a line the cut went through is left out; bytes
    /// that are not UTF-8 read as U+FFFD).
    pub fn lines(mut self, max_lines: usize) -> Vec<String> {
        self.trim();
        let text = String::from_utf8_lossy(&self.buf);
        let mut lines: Vec<&str> = text.lines().collect();
        if self.dropped && !lines.is_empty() {
            lines.remove(0);
        }
        let from = lines.len().saturating_sub(max_lines);
        lines[from..].iter().map(|l| l.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tail_of(text: &str, chunks: &[usize], keep: usize, max: usize) -> Vec<String> {
        let mut t = Tail::new(keep);
        let bytes = text.as_bytes();
        let mut at = 0;
        for c in chunks {
            let end = (at + c).min(bytes.len());
            t.push(&bytes[at..end]);
            at = end;
        }
        t.push(&bytes[at..]);
        t.lines(max)
    }

    proptest! {
        /// Kept whole, any chunking gives the text's last lines.
        #[test]
        fn a_short_text_gives_its_last_lines(
            lines in proptest::collection::vec("[a-z0-9 ]{0,12}", 0..40),
            chunks in proptest::collection::vec(0usize..50, 0..20),
            max in 0usize..50,
        ) {
            let text = lines.join("\n");
            let want: Vec<String> = text.lines().map(str::to_string).collect();
            let want = want[want.len().saturating_sub(max)..].to_vec();
            prop_assert_eq!(tail_of(&text, &chunks, text.len() + 1, max), want);
        }

        /// Cut short, the lines are whole lines of the text, in order, ending with its last.
        #[test]
        fn a_long_text_gives_whole_lines_from_its_end(
            lines in proptest::collection::vec("[a-z0-9]{1,12}", 1..80),
            chunks in proptest::collection::vec(1usize..30, 0..40),
            keep in 1usize..60,
            max in 1usize..20,
        ) {
            let text = lines.join("\n");
            let got = tail_of(&text, &chunks, keep, max);
            prop_assert!(got.len() <= max);
            let all: Vec<&str> = text.lines().collect();
            if let Some(last) = got.last() {
                prop_assert_eq!(last.as_str(), *all.last().unwrap());
                let start = all.len() - got.len();
                prop_assert_eq!(got.iter().map(String::as_str).collect::<Vec<_>>(), all[start..].to_vec());
            }
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_do_not_stop_it() {
        let mut t = Tail::new(100);
        t.push(b"ok\n\xff\xfebad\nlast");
        assert_eq!(t.lines(2), ["\u{fffd}\u{fffd}bad", "last"]);
    }
}
