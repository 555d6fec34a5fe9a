//! Reading how long a server asked us to wait: `Retry-After` (seconds or HTTP date), and the
//! rate-limit reset headers of GitHub / Vercel (`x-ratelimit-reset`, epoch seconds) and the
//! IETF draft (`ratelimit-reset`, seconds from now).

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;

/// The wait a response asks for, if it asks.
///
/// ```
/// use ops_core::http::retry_after;
/// let mut h = reqwest::header::HeaderMap::new();
/// h.insert("retry-after", "120".parse().unwrap());
/// assert_eq!(retry_after(&h, chrono::DateTime::UNIX_EPOCH), Some(std::time::Duration::from_secs(120)));
/// ```
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(v) = get("retry-after") {
        if let Ok(secs) = v.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(at) = httpdate::parse_http_date(v) {
            let at: DateTime<Utc> = at.into();
            return Some((at - now).to_std().unwrap_or(Duration::ZERO));
        }
    }
    let exhausted = get("x-ratelimit-remaining").is_some_and(|r| r == "0");
    if exhausted && let Some(reset) = get("x-ratelimit-reset").and_then(|v| v.parse::<i64>().ok()) {
        // Epoch seconds (GitHub, Vercel); small values are deltas from now.
        if reset > 1_000_000_000 {
            let at = DateTime::<Utc>::from_timestamp(reset, 0)?;
            return Some((at - now).to_std().unwrap_or(Duration::ZERO));
        }
        return u64::try_from(reset).ok().map(Duration::from_secs);
    }
    get("ratelimit-reset")
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn parses_every_form() {
        let now: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            retry_after(&headers(&[("retry-after", "3")]), now),
            Some(Duration::from_secs(3))
        );
        let date = headers(&[("retry-after", "Thu, 01 Jan 2026 00:00:30 GMT")]);
        assert_eq!(retry_after(&date, now), Some(Duration::from_secs(30)));
        let past = headers(&[("retry-after", "Wed, 31 Dec 2025 00:00:00 GMT")]);
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
        let gh = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &(now.timestamp() + 42).to_string()),
        ]);
        assert_eq!(retry_after(&gh, now), Some(Duration::from_secs(42)));
        let not_exhausted =
            headers(&[("x-ratelimit-remaining", "10"), ("x-ratelimit-reset", "99")]);
        assert_eq!(retry_after(&not_exhausted, now), None);
        assert_eq!(
            retry_after(&headers(&[("ratelimit-reset", "9")]), now),
            Some(Duration::from_secs(9))
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
    }
}
