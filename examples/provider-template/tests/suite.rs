//! The template against its simulator: the notifier suite of the testkit, then the fault
//! matrix, each case asserting the typed error and how many requests were sent.

use std::sync::Arc;
use std::time::Duration;

use ops_core::clock::{Clock, ManualClock};
use ops_core::config::Env;
use ops_core::contracts::{Notification, NotificationEvent, Notifier, Severity};
use ops_core::{ErrorKind, testkit};
use ops_provider_template::sim::{Fault, PagerSim, Simulator, TOKEN};
use ops_provider_template::{Alerts, PagerClient, PagerConfig};

fn alerts(sim: &PagerSim, token: &str) -> Alerts {
    let config = PagerConfig::new(token).base_url(&sim.uri()).unwrap();
    Alerts::new("pager", PagerClient::new(config).unwrap())
}

fn page(key: &str) -> Notification {
    Notification::new(Severity::Critical, "checkout is down").dedup_key(key)
}

#[tokio::test]
async fn alerts_pass_the_notifier_suite() {
    let sim = PagerSim::start().await;
    testkit::notifier(&alerts(&sim, TOKEN), "suite/dedup-1").await;
    let alert = &sim.alerts()[0];
    assert_eq!((alert.status.as_str(), alert.events), ("resolved", 3));
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_and_never_shown() {
    let sim = PagerSim::start().await;
    let err = alerts(&sim, "wrong-s3cret")
        .send(&page("k"))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Unauthorized), "{err}");
    assert_eq!(sim.requests().len(), 1, "a 401 is not retried");
    let config = PagerConfig::new("wrong-s3cret");
    for text in [
        format!("{err} {err:?}"),
        format!("{config:?}"),
        format!("{:?}", PagerClient::new(config.clone()).unwrap()),
    ] {
        assert!(!text.contains("wrong-s3cret"), "{text}");
    }
}

/// The wait passes on a manual clock, at once: no test sleeps for real.
#[tokio::test]
async fn a_rate_limit_is_waited_out_on_the_injected_clock_and_pages_once() {
    let sim = PagerSim::start().await;
    let clock = Arc::new(ManualClock::starting_at(
        "2026-11-30T09:00:00Z".parse().unwrap(),
    ));
    let config = PagerConfig::new(TOKEN).base_url(&sim.uri()).unwrap();
    let pager = Alerts::new(
        "pager",
        PagerClient::new(config).unwrap().with_clock(clock.clone()),
    );
    sim.inject(
        Some("POST"),
        "/v1/alerts",
        1,
        Fault::Status {
            status: 429,
            retry_after: Some(7),
        },
    );
    let start = clock.now();
    pager.send(&page("incident/1")).await.unwrap();
    assert!(
        clock.now() - start >= chrono::Duration::seconds(7),
        "Retry-After honoured"
    );
    assert_eq!((sim.requests().len(), sim.mutations()), (2, 1));
    assert_eq!(sim.alerts().len(), 1);
}

#[tokio::test]
async fn faults_are_typed_and_an_unkeyed_trigger_is_never_sent_twice() {
    let sim = PagerSim::start().await;
    let pager = alerts(&sim, TOKEN);

    sim.inject(None, "/v1/alerts", 1, Fault::TruncatedJson);
    let err = pager.send(&page("k1")).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Decode { .. }), "{err}");

    // A trigger without a dedup key could page twice: a 503 is returned, not retried.
    sim.inject(
        None,
        "/v1/alerts",
        1,
        Fault::Status {
            status: 503,
            retry_after: None,
        },
    );
    let before = sim.requests().len();
    let unkeyed = Notification::new(Severity::Warning, "disk at 85 %");
    let err = pager.send(&unkeyed).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Unavailable { .. }), "{err}");
    assert_eq!(sim.requests().len(), before + 1);

    // Resolving twice is the API's 409, read by the provider's one parse_error.
    pager.send(&page("k2")).await.unwrap();
    let resolve = page("k2").event(NotificationEvent::Resolve);
    pager.send(&resolve).await.unwrap();
    let err = pager.send(&resolve).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Conflict { .. }), "{err}");
}

#[tokio::test]
async fn a_slow_answer_times_out_within_the_configured_bound() {
    let sim = PagerSim::start().await;
    let mut config = PagerConfig::new(TOKEN).base_url(&sim.uri()).unwrap();
    config.http.request_timeout = Duration::from_millis(200);
    config.http.retry.max_attempts = 1;
    let pager = Alerts::new("pager", PagerClient::new(config).unwrap());
    sim.inject(None, "/v1/alerts", 1, Fault::Delay(Duration::from_secs(5)));
    let err = pager.send(&page("slow")).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Timeout { .. }), "{err}");
}

#[test]
fn settings_load_from_toml_and_the_environment() {
    let c: PagerConfig = ops_core::config::from_toml(
        "token = \"t0k\"\nbase_url = \"http://127.0.0.1:9/\"\n[http]\nread_timeout = \"5s\"",
    )
    .unwrap();
    assert_eq!(c.http.read_timeout, Duration::from_secs(5));
    assert!(ops_core::config::from_toml::<PagerConfig>("token = \"t\"\ntoken2 = 1").is_err());
    let none = |_: &str| None;
    let err = PagerConfig::from_vars(Env::new("pager", &none)).unwrap_err();
    assert!(err.to_string().contains("PAGER_TOKEN"), "{err}");
}
