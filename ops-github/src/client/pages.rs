//! `Link` header pagination (`<…?page=2>; rel="next", <…?page=5>; rel="last"`).

use ops_core::{Error, ErrorKind, Result};
use reqwest::header::{HeaderMap, LINK};
use url::Url;

/// The `rel="next"` URL of a response, if it has one.
///
/// ```
/// use ops_github::client::next_link;
/// let mut h = reqwest::header::HeaderMap::new();
/// h.insert("link", r#"<https://api.github.com/repositories/1/issues?page=2>; rel="next", <https://api.github.com/repositories/1/issues?page=5>; rel="last""#.parse().unwrap());
/// assert_eq!(next_link(&h).unwrap().unwrap().as_str(), "https://api.github.com/repositories/1/issues?page=2");
/// ```
pub fn next_link(headers: &HeaderMap) -> Result<Option<Url>> {
    let Some(value) = headers.get(LINK) else {
        return Ok(None);
    };
    let bad = |detail: &str| {
        Error::new(
            "github",
            "pagination",
            ErrorKind::Decode {
                detail: format!("Link header: {detail}"),
            },
        )
    };
    let value = value.to_str().map_err(|_| bad("not ASCII"))?;
    for part in value.split(',') {
        let mut pieces = part.split(';').map(str::trim);
        let target = pieces.next().unwrap_or_default();
        let is_next = pieces.any(|p| {
            p.strip_prefix("rel=")
                .map(|r| r.trim_matches('"').split_whitespace().any(|r| r == "next"))
                .unwrap_or(false)
        });
        if is_next {
            let url = target
                .strip_prefix('<')
                .and_then(|t| t.strip_suffix('>'))
                .ok_or_else(|| bad("next target is not <…>"))?;
            return Url::parse(url)
                .map(Some)
                .map_err(|_| bad("next is not a URL"));
        }
    }
    Ok(None)
}
