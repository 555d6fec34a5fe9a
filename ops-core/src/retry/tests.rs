use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::*;
use crate::clock::{Clock, SystemClock};

fn err(kind: ErrorKind) -> Error {
    Error::new("test", "op", kind)
}

fn unavailable(after: Option<u64>) -> Error {
    err(ErrorKind::Unavailable {
        retry_after: after.map(Duration::from_secs),
    })
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        ..RetryPolicy::default()
    }
}

#[tokio::test(start_paused = true)]
async fn retries_retryable_errors_until_success() {
    let calls = AtomicU32::new(0);
    let out = fast_policy()
        .run(&SystemClock, Idempotency::Idempotent, |attempt| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if attempt < 3 {
                    Err(unavailable(None))
                } else {
                    Ok(attempt)
                }
            }
        })
        .await
        .unwrap();
    assert_eq!(out, 3);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_max_attempts_with_last_error() {
    let calls = AtomicU32::new(0);
    let e = fast_policy()
        .run(&SystemClock, Idempotency::Idempotent, |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(unavailable(None)) }
        })
        .await
        .unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert!(matches!(e.kind(), ErrorKind::Unavailable { .. }));
}

#[tokio::test(start_paused = true)]
async fn does_not_retry_permanent_errors() {
    for kind in [
        ErrorKind::Unauthorized,
        ErrorKind::Forbidden {
            detail: String::new(),
        },
        ErrorKind::NotFound {
            resource: "x".into(),
        },
        ErrorKind::Conflict {
            detail: "etag".into(),
        },
        ErrorKind::Decode {
            detail: "bad json".into(),
        },
    ] {
        let calls = AtomicU32::new(0);
        let k = kind.clone();
        let e = fast_policy()
            .run(&SystemClock, Idempotency::Idempotent, |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                let k = k.clone();
                async move { Err::<(), _>(err(k)) }
            })
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{kind:?}");
        assert_eq!(e.kind(), &kind);
    }
}

#[tokio::test(start_paused = true)]
async fn non_idempotent_work_is_retried_only_when_it_did_not_run() {
    let run = |e: Error| {
        let calls = AtomicU32::new(0);
        async move {
            let _ = fast_policy()
                .run(&SystemClock, Idempotency::NotIdempotent, |_| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let e = e.clone();
                    async move { Err::<(), _>(e) }
                })
                .await;
            calls.load(Ordering::SeqCst)
        }
    };
    // 503, 500 and timeouts may have run the mutation: never repeated.
    assert_eq!(run(unavailable(None)).await, 1);
    assert_eq!(
        run(err(ErrorKind::Timeout {
            after: Duration::from_secs(1)
        }))
        .await,
        1
    );
    // 429 means the server refused it; a connection that never opened sent nothing.
    assert_eq!(
        run(err(ErrorKind::RateLimited { retry_after: None })).await,
        4
    );
    assert_eq!(run(unavailable(None).mark_not_sent()).await, 4);
}

#[tokio::test(start_paused = true)]
async fn honours_retry_after_exactly() {
    let clock = SystemClock;
    let start = clock.instant();
    fast_policy()
        .run(&clock, Idempotency::Idempotent, |attempt| async move {
            if attempt == 1 {
                Err(err(ErrorKind::RateLimited {
                    retry_after: Some(Duration::from_secs(7)),
                }))
            } else {
                Ok(())
            }
        })
        .await
        .unwrap();
    assert_eq!(clock.instant() - start, Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn clamps_a_long_retry_after() {
    let clock = SystemClock;
    let policy = RetryPolicy {
        max_retry_after: Duration::from_secs(5),
        ..fast_policy()
    };
    let start = clock.instant();
    policy
        .run(&clock, Idempotency::Idempotent, |attempt| async move {
            if attempt == 1 {
                Err(unavailable(Some(3600)))
            } else {
                Ok(())
            }
        })
        .await
        .unwrap();
    assert_eq!(clock.instant() - start, Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_longer_than_the_clamp_is_returned_not_retried_early() {
    let clock = SystemClock;
    let policy = RetryPolicy {
        max_retry_after: Duration::from_secs(5),
        ..fast_policy()
    };
    let calls = AtomicU32::new(0);
    let start = clock.instant();
    let err = policy
        .run(&clock, Idempotency::Idempotent, |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Err::<(), _>(Error::new(
                    "test",
                    "op",
                    ErrorKind::RateLimited {
                        retry_after: Some(Duration::from_secs(3600)),
                    },
                ))
            }
        })
        .await
        .unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(clock.instant(), start, "no wait");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
}

#[tokio::test(start_paused = true)]
async fn never_waits_past_max_elapsed() {
    let clock = SystemClock;
    let policy = RetryPolicy {
        max_attempts: 100,
        max_elapsed: Duration::from_secs(10),
        ..fast_policy()
    };
    let calls = AtomicU32::new(0);
    let start = clock.instant();
    let e = policy
        .run(&clock, Idempotency::Idempotent, |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(unavailable(Some(4))) }
        })
        .await
        .unwrap_err();
    // waits of 4 s at 0, 4 → attempts at 0, 4, 8; a third wait would end at 12 > 10.
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(clock.instant() - start, Duration::from_secs(8));
    assert!(e.is_retryable());
}

#[tokio::test(start_paused = true)]
async fn attempt_timeout_is_inside_the_retry() {
    let clock = SystemClock;
    let policy = RetryPolicy {
        attempt_timeout: Some(Duration::from_secs(2)),
        ..fast_policy()
    };
    let calls = AtomicU32::new(0);
    let out = policy
        .run(&clock, Idempotency::Idempotent, |attempt| {
            calls.fetch_add(1, Ordering::SeqCst);
            let c = SystemClock;
            async move {
                if attempt == 1 {
                    c.sleep(Duration::from_secs(3600)).await; // hangs
                }
                Ok(attempt)
            }
        })
        .await
        .unwrap();
    assert_eq!(out, 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn observer_sees_every_retry() {
    let mut seen = Vec::new();
    let _ = fast_policy()
        .run_observed(
            &SystemClock,
            Idempotency::Idempotent,
            |_| async { Err::<(), _>(unavailable(Some(1))) },
            |ev| seen.push((ev.attempt, ev.wait)),
        )
        .await;
    assert_eq!(
        seen,
        vec![
            (1, Duration::from_secs(1)),
            (2, Duration::from_secs(1)),
            (3, Duration::from_secs(1))
        ]
    );
}

#[test]
fn backoff_stays_within_bounds_and_grows() {
    let base = Duration::from_millis(100);
    let cap = Duration::from_secs(10);
    let mut b = Backoff::with_rng(base, cap, fastrand::Rng::with_seed(7));
    let waits: Vec<Duration> = (0..50).map(|_| b.next_wait()).collect();
    assert!(waits.iter().all(|w| *w >= base && *w <= cap));
    assert!(
        waits.iter().any(|w| *w > Duration::from_secs(1)),
        "{waits:?}"
    );
}

#[test]
fn policy_validation() {
    assert!(
        RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        }
        .validate()
        .is_err()
    );
    assert!(
        RetryPolicy {
            initial_backoff: Duration::from_secs(20),
            ..RetryPolicy::default()
        }
        .validate()
        .is_err()
    );
    RetryPolicy::default().validate().unwrap();
    let p: RetryPolicy =
        serde_json::from_str(r#"{"max_attempts":2,"attempt_timeout":1.5}"#).unwrap();
    assert_eq!(p.attempt_timeout, Some(Duration::from_millis(1500)));
    assert!(serde_json::from_str::<RetryPolicy>(r#"{"max_backoff":-1}"#).is_err());
}
