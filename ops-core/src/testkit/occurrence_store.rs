//! The [`OccurrenceStore`] suite: what replicas rely on to run each occurrence once. Each case
//! uses schedules named under the fixture's prefix, so cases (and runs) never see each other.

use chrono::{DateTime, Duration, Utc};

use super::{Case, always, cases, check_cases, expect_ok};
use crate::schedule::{OccurrenceRecord, OccurrenceStatus, OccurrenceStore};

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::UNIX_EPOCH + Duration::seconds(1_800_000_000) + Duration::minutes(minutes)
}

fn running(
    schedule: &str,
    occurrence: DateTime<Utc>,
    replica: &str,
    lease: i64,
) -> OccurrenceRecord {
    let mut r = OccurrenceRecord::new(schedule, occurrence, OccurrenceStatus::Running);
    r.replica = Some(replica.into());
    r.lease_until = Some(occurrence + Duration::seconds(lease));
    r
}

/// The occurrence store suite's cases; the fixture is the schedule name prefix.
pub fn occurrence_store_cases() -> Vec<Case<dyn OccurrenceStore, String>> {
    cases![dyn OccurrenceStore, String;
        an_occurrence_is_claimed_once_however_many_race unless always,
        only_the_holder_renews_starts_and_finishes unless always,
        an_expired_lease_is_taken_over_by_one_replica unless always,
        a_cancel_request_reaches_the_holder_at_its_renewal unless always,
        the_watermark_never_moves_back unless always,
        records_come_back_oldest_first_within_the_range unless always,
    ]
}

/// Checks atomic claims, holder-only writes, takeover of expired leases, cancel requests,
/// watermarks and listing, reporting every behaviour broken. `prefix` should be unique per
/// run when the store is shared.
pub async fn occurrence_store(store: &(dyn OccurrenceStore + 'static), prefix: &str) {
    check_cases(
        "occurrence_store",
        store,
        &prefix.to_string(),
        &occurrence_store_cases(),
    )
    .await;
}

async fn an_occurrence_is_claimed_once_however_many_race(
    store: &dyn OccurrenceStore,
    prefix: &String,
) {
    let schedule = format!("{prefix}-claim");
    let claims = (0..8).map(|i| {
        let r = running(&schedule, at(0), &format!("replica-{i}"), 60);
        async move { store.claim(&r).await }
    });
    let won = futures_util::future::join_all(claims)
        .await
        .into_iter()
        .map(|r| expect_ok("claim", r))
        .filter(|won| *won)
        .count();
    assert_eq!(won, 1, "eight replicas claimed one occurrence: {won} won");
    let missed = OccurrenceRecord::new(&schedule, at(0), OccurrenceStatus::Missed);
    assert!(
        !expect_ok("claim again", store.claim(&missed).await),
        "a claimed occurrence cannot be recorded again, even as missed"
    );
    let records = expect_ok("records", store.records(&schedule, at(0), at(0)).await);
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].status,
        OccurrenceStatus::Running,
        "the winner's record stands"
    );
}

async fn only_the_holder_renews_starts_and_finishes(store: &dyn OccurrenceStore, prefix: &String) {
    let schedule = format!("{prefix}-holder");
    expect_ok(
        "claim",
        store.claim(&running(&schedule, at(0), "a", 60)).await,
    );
    let renewed = expect_ok(
        "renew by b",
        store.renew(&schedule, at(0), "b", at(5)).await,
    );
    assert!(renewed.is_none(), "b does not hold it");
    assert!(!expect_ok(
        "started by b",
        store.started(&schedule, at(0), "b", "run-b").await
    ));
    let finished = store
        .finish(&schedule, at(0), "b", OccurrenceStatus::Succeeded, None)
        .await;
    assert!(!expect_ok("finish by b", finished));

    let renewed = expect_ok(
        "renew by a",
        store.renew(&schedule, at(0), "a", at(5)).await,
    );
    assert_eq!(
        renewed.and_then(|r| r.lease_until),
        Some(at(5)),
        "a's renewal sets the lease"
    );
    assert!(expect_ok(
        "started by a",
        store.started(&schedule, at(0), "a", "run-a").await
    ));
    let finished = store
        .finish(
            &schedule,
            at(0),
            "a",
            OccurrenceStatus::Failed,
            Some("boom".into()),
        )
        .await;
    assert!(expect_ok("finish by a", finished));
    let r = &expect_ok("records", store.records(&schedule, at(0), at(0)).await)[0];
    assert_eq!(
        (r.status, r.run_id.as_deref(), r.detail.as_deref()),
        (OccurrenceStatus::Failed, Some("run-a"), Some("boom"))
    );
    assert!(
        expect_ok(
            "renew a finished one",
            store.renew(&schedule, at(0), "a", at(9)).await
        )
        .is_none(),
        "a finished occurrence has no lease to renew"
    );
    let running_now = expect_ok("running", store.running(&schedule).await);
    assert!(running_now.is_empty(), "{running_now:?}");
}

async fn an_expired_lease_is_taken_over_by_one_replica(
    store: &dyn OccurrenceStore,
    prefix: &String,
) {
    let schedule = format!("{prefix}-takeover");
    expect_ok(
        "claim",
        store.claim(&running(&schedule, at(0), "a", 60)).await,
    );
    let before = expect_ok("expired before", store.expired(at(0)).await);
    assert!(
        !before.iter().any(|r| r.schedule == schedule),
        "a lease not yet run out is not expired"
    );
    let expired: Vec<_> = expect_ok("expired after", store.expired(at(2)).await)
        .into_iter()
        .filter(|r| r.schedule == schedule)
        .collect();
    assert_eq!(expired.len(), 1, "{expired:?}");
    let attempts = ["b", "c", "d"].map(|replica| {
        let e = expired[0].clone();
        async move { store.take_over(&e, replica, at(10)).await }
    });
    let won = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| expect_ok("take over", r))
        .filter(|w| *w)
        .count();
    assert_eq!(won, 1, "three replicas took over one occurrence: {won} won");
    let r = &expect_ok("records", store.records(&schedule, at(0), at(0)).await)[0];
    assert_eq!((r.takeovers, r.lease_until), (1, Some(at(10))));
    let holder = r.replica.clone().unwrap_or_default();
    assert!(["b", "c", "d"].contains(&holder.as_str()), "{r:?}");
    assert!(
        expect_ok(
            "old holder renews",
            store.renew(&schedule, at(0), "a", at(20)).await
        )
        .is_none(),
        "the dead replica's late renewal is refused"
    );
    assert!(
        !expect_ok(
            "stale take over",
            store.take_over(&expired[0], "e", at(30)).await
        ),
        "a take-over from a stale read changes nothing"
    );
}

async fn a_cancel_request_reaches_the_holder_at_its_renewal(
    store: &dyn OccurrenceStore,
    prefix: &String,
) {
    let schedule = format!("{prefix}-cancel");
    assert!(
        !expect_ok(
            "cancel nothing",
            store.request_cancel(&schedule, at(0)).await
        ),
        "nothing to cancel"
    );
    expect_ok(
        "claim",
        store.claim(&running(&schedule, at(0), "a", 60)).await,
    );
    assert!(expect_ok(
        "cancel",
        store.request_cancel(&schedule, at(0)).await
    ));
    let r = expect_ok("renew", store.renew(&schedule, at(0), "a", at(5)).await);
    assert!(
        r.is_some_and(|r| r.cancel_requested),
        "the holder sees the request"
    );
}

async fn the_watermark_never_moves_back(store: &dyn OccurrenceStore, prefix: &String) {
    let schedule = format!("{prefix}-watermark");
    assert_eq!(expect_ok("fresh", store.watermark(&schedule).await), None);
    expect_ok("advance", store.advance(&schedule, at(10)).await);
    expect_ok("advance back", store.advance(&schedule, at(5)).await);
    assert_eq!(
        expect_ok("read", store.watermark(&schedule).await),
        Some(at(10))
    );
    expect_ok("advance on", store.advance(&schedule, at(20)).await);
    assert_eq!(
        expect_ok("read", store.watermark(&schedule).await),
        Some(at(20))
    );
    assert_eq!(
        expect_ok(
            "another",
            store.watermark(&format!("{schedule}-other")).await
        ),
        None,
        "watermarks are per schedule"
    );
}

async fn records_come_back_oldest_first_within_the_range(
    store: &dyn OccurrenceStore,
    prefix: &String,
) {
    let schedule = format!("{prefix}-records");
    for m in [30, 10, 20, 40] {
        let r = OccurrenceRecord::new(&schedule, at(m), OccurrenceStatus::Missed);
        assert!(expect_ok("claim", store.claim(&r).await));
    }
    let other = OccurrenceRecord::new(&format!("{schedule}-x"), at(20), OccurrenceStatus::Skipped);
    expect_ok("claim other", store.claim(&other).await);
    let got: Vec<_> = expect_ok("records", store.records(&schedule, at(10), at(30)).await)
        .into_iter()
        .map(|r| (r.schedule, r.occurrence))
        .collect();
    let want: Vec<_> = [10, 20, 30].map(|m| (schedule.clone(), at(m))).into();
    assert_eq!(
        got, want,
        "inclusive bounds, oldest first, this schedule only"
    );
    let none = expect_ok(
        "reversed range",
        store.records(&schedule, at(30), at(10)).await,
    );
    assert!(none.is_empty());
}
