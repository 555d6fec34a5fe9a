//! Google's page-token pagination, followed up to a cap.

use std::future::Future;

use ops_core::Result;

/// The most pages one listing reads: empty pages with a token are legal, an endless run of
/// them is not.
pub const MAX_PAGES: usize = 10_000;

/// Calls `fetch` with `None`, then with each `nextPageToken`, until a page has no token or
/// `cap` items are collected (the result is cut to `cap`). A token the server already sent
/// (a server stuck on one page) or more than `MAX_PAGES` (10,000) pages is a `Decode` error, never an
/// endless loop.
pub async fn collect_pages<T, F, Fut>(cap: usize, mut fetch: F) -> Result<Vec<T>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>)>>,
{
    let mut all = Vec::new();
    let mut token = None;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..MAX_PAGES {
        let (items, next) = fetch(token.take()).await?;
        all.extend(items);
        match next.filter(|t| !t.is_empty()) {
            Some(t) if all.len() < cap => {
                if !seen.insert(t.clone()) {
                    return Err(stuck(&format!(
                        "the server sent the same page token twice ({} bytes); the listing \
                         would never end",
                        t.len()
                    )));
                }
                token = Some(t);
            }
            _ => {
                all.truncate(cap);
                return Ok(all);
            }
        }
    }
    Err(stuck(&format!("more than {MAX_PAGES} pages")))
}

fn stuck(detail: &str) -> ops_core::Error {
    ops_core::Error::new(
        "gcp",
        "list",
        ops_core::ErrorKind::Decode {
            detail: detail.to_string(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_repeated_page_token_ends_the_listing_with_an_error() {
        let mut calls = 0;
        let err = collect_pages(1000, |_| {
            calls += 1;
            async { Ok((vec![1], Some("same".to_string()))) }
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("same page token twice"), "{err}");
        assert_eq!(calls, 2);
    }

    #[tokio::test]
    async fn pages_follow_their_tokens_to_the_cap() {
        let all = collect_pages(5, |t| async move {
            let n: usize = t.map_or(0, |t| t.parse().unwrap());
            Ok((vec![n, n + 1], Some((n + 2).to_string())))
        })
        .await
        .unwrap();
        assert_eq!(all, vec![0, 1, 2, 3, 4]);
    }
}
