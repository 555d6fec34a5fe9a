//! Reading a listing page after page, whatever the cursor: Google's `pageToken`, Vercel's
//! `until`, Slack's `cursor`, GitHub's `Link: rel="next"` URL. Bounded by an item cap and by
//! [`MAX_PAGES`], and refusing a cursor the server already sent (a listing that would never
//! end).
//!
//! ```
//! # async fn demo() -> ops_core::Result<()> {
//! use ops_core::http::pages::collect_pages;
//! let listed = collect_pages("acme", "list_things", 5, |cursor: Option<u32>| async move {
//!     let from = cursor.unwrap_or(0);
//!     Ok((vec![from, from + 1], Some(from + 2)))   // items, and the next page's cursor
//! })
//! .await?;
//! assert_eq!(listed.items, [0, 1, 2, 3, 4]);
//! assert!(listed.truncated);
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;

use crate::{Error, ErrorKind, Result};

/// The most pages one listing reads: a listing longer than this is an error, not a loop.
pub const MAX_PAGES: usize = 10_000;

/// Items of a listing, and whether the cap cut it short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paged<T> {
    /// The items, at most the cap.
    pub items: Vec<T>,
    /// Whether the listing had more than the cap.
    pub truncated: bool,
}

/// Reads pages with `fetch` (given the previous page's cursor, `None` for the first) until a
/// page names no next cursor or `cap` items are read. A cursor seen before, or more than
/// [`MAX_PAGES`] pages, is an [`ErrorKind::Decode`] error naming `provider` and `operation`.
pub async fn collect_pages<T, C, F, Fut>(
    provider: &'static str,
    operation: &'static str,
    cap: usize,
    mut fetch: F,
) -> Result<Paged<T>>
where
    C: Clone + Eq + Hash + Debug,
    F: FnMut(Option<C>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<C>)>>,
{
    let stuck = |detail: String| Error::new(provider, operation, ErrorKind::Decode { detail });
    let mut items = Vec::new();
    let mut cursor = None;
    let mut seen = HashSet::new();
    for _ in 0..MAX_PAGES {
        let (page, next) = fetch(cursor.take()).await?;
        items.extend(page);
        let Some(next) = next else {
            let truncated = items.len() > cap;
            items.truncate(cap);
            return Ok(Paged { items, truncated });
        };
        if items.len() >= cap {
            items.truncate(cap);
            return Ok(Paged {
                items,
                truncated: true,
            });
        }
        if !seen.insert(next.clone()) {
            return Err(stuck(format!(
                "the server sent the same page cursor twice; the listing would never end \
                 (after {} items)",
                items.len()
            )));
        }
        cursor = Some(next);
    }
    Err(stuck(format!("more than {MAX_PAGES} pages")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_repeated_cursor_ends_the_listing_with_an_error() {
        let mut calls = 0;
        let err = collect_pages("t", "list", 1000, |_: Option<String>| {
            calls += 1;
            async { Ok((vec![1], Some("same".to_string()))) }
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("same page cursor twice"), "{err}");
        assert_eq!(calls, 2);
    }

    #[tokio::test]
    async fn the_last_page_ends_the_listing_untruncated() {
        let listed = collect_pages("t", "list", 10, |c: Option<u8>| async move {
            Ok(match c {
                None => (vec![1, 2], Some(1)),
                Some(_) => (vec![3], None),
            })
        })
        .await
        .unwrap();
        assert_eq!(
            listed,
            Paged {
                items: vec![1, 2, 3],
                truncated: false
            }
        );
        let exact = collect_pages("t", "list", 3, |c: Option<u8>| async move {
            Ok(match c {
                None => (vec![1, 2], Some(1)),
                Some(_) => (vec![3], None),
            })
        })
        .await
        .unwrap();
        assert!(!exact.truncated, "exactly the cap, and no more pages");
    }
}
