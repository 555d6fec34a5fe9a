//! Google's page-token pagination: the provider kit's [`ops_core::http::pages`], with an empty
//! `nextPageToken` read as the last page (Google sends `""` as often as it leaves it out).

use std::future::Future;

use ops_core::Result;
use ops_core::http::pages;

/// Calls `fetch` with `None`, then with each `nextPageToken`, until a page has no token or
/// `cap` items are collected (the result is cut to `cap`). A token the server already sent
/// is an error, not an endless listing.
pub async fn collect_pages<T, F, Fut>(cap: usize, mut fetch: F) -> Result<Vec<T>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>)>>,
{
    let listed = pages::collect_pages("gcp", "list", cap, |token| {
        let page = fetch(token);
        async move {
            let (items, next) = page.await?;
            Ok((items, next.filter(|t| !t.is_empty())))
        }
    })
    .await?;
    Ok(listed.items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_empty_token_is_the_last_page() {
        let mut calls = 0;
        let all = collect_pages(1000, |_| {
            calls += 1;
            async { Ok((vec![1], Some(String::new()))) }
        })
        .await
        .unwrap();
        assert_eq!((all, calls), (vec![1], 1));
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
