//! Google's page-token pagination, followed up to a cap.

use std::future::Future;

use ops_core::Result;

/// Calls `fetch` with `None`, then with each `nextPageToken`, until a page has no token or
/// `cap` items are collected (the result is cut to `cap`).
pub async fn collect_pages<T, F, Fut>(cap: usize, mut fetch: F) -> Result<Vec<T>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>)>>,
{
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let (items, next) = fetch(token.take()).await?;
        all.extend(items);
        match next.filter(|t| !t.is_empty()) {
            Some(t) if all.len() < cap => token = Some(t),
            _ => {
                all.truncate(cap);
                return Ok(all);
            }
        }
    }
}
