//! The [`RunLock`] suite.

use std::time::Duration;

use super::{expect_kind, expect_ok};
use crate::ErrorKind;
use crate::clock::{Clock, SystemClock};
use crate::engine::{LockHolder, LockWait, RunLock};

fn holder(run: &str) -> LockHolder {
    LockHolder::this_process(
        run,
        "testkit",
        chrono::DateTime::UNIX_EPOCH + chrono::Duration::seconds(1_800_000_000),
    )
}

/// Checks exclusion per key, conflicts naming the holder, waiting in line, and release. `key`
/// should be unique per run when the lock is shared. Uses real time (a few hundred ms).
pub async fn run_lock(lock: &dyn RunLock, key: &str) {
    let first = expect_ok(
        "acquire a free lock",
        lock.acquire(key, &holder("suite-1"), LockWait::Fail).await,
    );
    assert_eq!(first.key, key);
    let err = expect_kind(
        "acquire a taken lock",
        lock.acquire(key, &holder("suite-2"), LockWait::Fail).await,
        |k| matches!(k, ErrorKind::Conflict { .. }),
    );
    assert!(
        err.to_string().contains("suite-1"),
        "the conflict names the holder: {err}"
    );
    let other_key = format!("{key}-other");
    let other = expect_ok(
        "another key is independent",
        lock.acquire(&other_key, &holder("suite-3"), LockWait::Fail)
            .await,
    );
    expect_ok("release other", lock.release(&other).await);

    expect_kind(
        "a waiter gives up at its deadline",
        lock.acquire(
            key,
            &holder("suite-4"),
            LockWait::Wait(Duration::from_millis(100)),
        )
        .await,
        |k| matches!(k, ErrorKind::Conflict { .. } | ErrorKind::Timeout { .. }),
    );

    // A waiter gets the lock when the holder lets go.
    let fifth = holder("suite-5");
    let waiter = lock.acquire(key, &fifth, LockWait::Wait(Duration::from_secs(10)));
    let releaser = async {
        SystemClock.sleep(Duration::from_millis(150)).await;
        lock.release(&first).await
    };
    let (waited, released) = tokio::join!(waiter, releaser);
    expect_ok("release", released);
    let second = expect_ok("acquire after waiting in line", waited);
    assert_eq!(second.holder.run_id, "suite-5");
    expect_ok("release second", lock.release(&second).await);
    assert!(
        lock.release(&second).await.is_err(),
        "releasing twice is an error"
    );
    let again = expect_ok(
        "acquire after release",
        lock.acquire(key, &holder("suite-6"), LockWait::Fail).await,
    );
    expect_ok("release again", lock.release(&again).await);
}
