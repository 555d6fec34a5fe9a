//! The [`RunLock`] suite. Each case takes its own key under the one given, so cases never
//! see each other's holders.

use std::time::Duration;

use super::{Case, always, cases, check_cases, expect_kind, expect_ok};
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

/// The run lock suite's cases; the fixture is the key prefix.
pub fn run_lock_cases() -> Vec<Case<dyn RunLock, String>> {
    cases![dyn RunLock, String;
        a_taken_lock_is_a_conflict_naming_its_holder unless always,
        another_key_is_independent unless always,
        a_waiter_gives_up_at_its_deadline unless always,
        a_waiter_gets_the_lock_when_the_holder_lets_go unless always,
        releasing_twice_is_an_error_and_the_lock_is_free_again unless always,
    ]
}

/// Checks exclusion per key, conflicts naming the holder, waiting in line, and release,
/// reporting every behaviour broken. `key` should be unique per run when the lock is shared.
/// Uses real time (a few hundred ms).
pub async fn run_lock(lock: &(dyn RunLock + 'static), key: &str) {
    check_cases("run_lock", lock, &key.to_string(), &run_lock_cases()).await;
}

async fn a_taken_lock_is_a_conflict_naming_its_holder(lock: &dyn RunLock, key: &String) {
    let key = format!("{key}/conflict");
    let first = expect_ok(
        "acquire a free lock",
        lock.acquire(&key, &holder("suite-1"), LockWait::Fail).await,
    );
    assert_eq!(first.key, key, "the guard names its key");
    let err = expect_kind(
        "acquire a taken lock",
        lock.acquire(&key, &holder("suite-2"), LockWait::Fail).await,
        |k| matches!(k, ErrorKind::Conflict { .. }),
    );
    expect_ok("release", lock.release(&first).await);
    assert!(
        err.to_string().contains("suite-1"),
        "the conflict names the holder: {err}"
    );
}

async fn another_key_is_independent(lock: &dyn RunLock, key: &String) {
    let (key, other_key) = (format!("{key}/one"), format!("{key}/other"));
    let one = expect_ok(
        "acquire one key",
        lock.acquire(&key, &holder("suite-1"), LockWait::Fail).await,
    );
    let other = lock
        .acquire(&other_key, &holder("suite-3"), LockWait::Fail)
        .await;
    expect_ok("release one", lock.release(&one).await);
    let other = expect_ok("another key is independent", other);
    expect_ok("release other", lock.release(&other).await);
}

async fn a_waiter_gives_up_at_its_deadline(lock: &dyn RunLock, key: &String) {
    let key = format!("{key}/deadline");
    let first = expect_ok(
        "acquire a free lock",
        lock.acquire(&key, &holder("suite-1"), LockWait::Fail).await,
    );
    let waited = lock
        .acquire(
            &key,
            &holder("suite-4"),
            LockWait::Wait(Duration::from_millis(100)),
        )
        .await;
    expect_ok("release", lock.release(&first).await);
    expect_kind("a waiter gives up at its deadline", waited, |k| {
        matches!(k, ErrorKind::Conflict { .. } | ErrorKind::Timeout { .. })
    });
}

async fn a_waiter_gets_the_lock_when_the_holder_lets_go(lock: &dyn RunLock, key: &String) {
    let key = format!("{key}/queue");
    let first = expect_ok(
        "acquire a free lock",
        lock.acquire(&key, &holder("suite-1"), LockWait::Fail).await,
    );
    let fifth = holder("suite-5");
    let waiter = lock.acquire(&key, &fifth, LockWait::Wait(Duration::from_secs(10)));
    let releaser = async {
        SystemClock.sleep(Duration::from_millis(150)).await;
        lock.release(&first).await
    };
    let (waited, released) = tokio::join!(waiter, releaser);
    expect_ok("release", released);
    let second = expect_ok("acquire after waiting in line", waited);
    assert_eq!(second.holder.run_id, "suite-5", "the waiter holds it");
    expect_ok("release second", lock.release(&second).await);
}

async fn releasing_twice_is_an_error_and_the_lock_is_free_again(lock: &dyn RunLock, key: &String) {
    let key = format!("{key}/twice");
    let first = expect_ok(
        "acquire a free lock",
        lock.acquire(&key, &holder("suite-1"), LockWait::Fail).await,
    );
    expect_ok("release", lock.release(&first).await);
    assert!(
        lock.release(&first).await.is_err(),
        "releasing twice is an error"
    );
    let again = expect_ok(
        "acquire after release",
        lock.acquire(&key, &holder("suite-6"), LockWait::Fail).await,
    );
    expect_ok("release again", lock.release(&again).await);
}
