//! The logic the contracts carry themselves (log paging defaults, filters) and the mocks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
use ops_core::contracts::*;
use ops_core::{Error, ErrorKind, Result};

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(secs)
}

/// 25 entries served 10 a page; page 3 fails when `fail_on_third` is set.
struct Paged {
    calls: AtomicUsize,
    fail_on_third: bool,
}

#[async_trait]
impl LogSource for Paged {
    fn name(&self) -> &str {
        "paged"
    }
    async fn query_page(&self, q: &LogQuery) -> Result<LogPage> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let start: usize = q.page_token.as_deref().map_or(0, |t| t.parse().unwrap());
        if start >= 20 && self.fail_on_third {
            return Err(Error::new(
                "paged",
                "query",
                ErrorKind::Unavailable { retry_after: None },
            ));
        }
        let end = (start + 10).min(25);
        let entries = (start..end)
            .map(|i| LogEntry {
                timestamp: t(i as i64),
                severity: LogSeverity::Error,
                message: format!("e{i}"),
                payload: None,
                release: None,
                labels: BTreeMap::new(),
            })
            .collect();
        Ok(LogPage {
            entries,
            next_page_token: (end < 25).then(|| end.to_string()),
        })
    }
}

fn query() -> LogQuery {
    LogQuery::new(TimeWindow::new(t(0), t(100)).unwrap()).min_severity(LogSeverity::Error)
}

#[tokio::test]
async fn count_pages_through_and_stops_at_the_cap() {
    let src = Paged {
        calls: AtomicUsize::new(0),
        fail_on_third: false,
    };
    assert_eq!(src.count(&query(), 1000).await.unwrap(), 25);
    assert_eq!(src.calls.swap(0, Ordering::SeqCst), 3);
    assert_eq!(src.count(&query(), 12).await.unwrap(), 12);
    assert_eq!(
        src.calls.load(Ordering::SeqCst),
        2,
        "no page fetched past the cap"
    );
}

#[tokio::test]
async fn log_entries_streams_across_pages_with_a_cap_and_ends_after_an_error() {
    let src = Paged {
        calls: AtomicUsize::new(0),
        fail_on_third: false,
    };
    let all: Vec<_> = log_entries(&src, query(), usize::MAX).collect().await;
    let msgs: Vec<String> = all.into_iter().map(|e| e.unwrap().message).collect();
    assert_eq!(msgs.len(), 25);
    assert_eq!(msgs[24], "e24");
    let capped: Vec<_> = log_entries(&src, query(), 15).collect().await;
    assert_eq!(capped.len(), 15);

    let failing = Paged {
        calls: AtomicUsize::new(0),
        fail_on_third: true,
    };
    let got: Vec<_> = log_entries(&failing, query(), usize::MAX).collect().await;
    assert_eq!(got.len(), 21, "20 entries, then the error, then nothing");
    assert!(got[20].as_ref().is_err_and(|e| e.is_retryable()));
}

#[test]
fn log_query_and_window_validation() {
    assert!(TimeWindow::new(t(10), t(5)).is_err());
    let mut q = query();
    q.page_size = 0;
    assert!(q.validate().is_err());
    let e = LogEntry {
        timestamp: t(5),
        severity: LogSeverity::Warning,
        message: "x".into(),
        payload: None,
        release: None,
        labels: BTreeMap::new(),
    };
    assert!(!query().matches(&e), "below the minimum severity");
    assert!(LogQuery::new(TimeWindow::new(t(0), t(100)).unwrap()).matches(&e));
}

#[test]
fn metric_queries_are_validated_and_readings_are_honest() {
    let w = TimeWindow::new(t(0), t(60)).unwrap();
    let q = |metric| MetricQuery {
        metric,
        window: w,
        release: None,
        min_samples: 100,
    };
    assert!(
        q(Metric::LatencyPercentile { percentile: 0.0 })
            .validate()
            .is_err()
    );
    assert!(
        q(Metric::LatencyPercentile { percentile: 101.0 })
            .validate()
            .is_err()
    );
    assert!(q(Metric::Named { name: " ".into() }).validate().is_err());
    q(Metric::LatencyPercentile { percentile: 95.0 })
        .validate()
        .unwrap();
    let none = MetricReading::InsufficientData {
        samples: 3,
        detail: "no traffic".into(),
    };
    assert_eq!(none.value(), None, "too little data is never a value");
}

#[test]
fn backup_filter_orders_newest_first_and_limits() {
    let info = |id: &str, at: i64| BackupInfo {
        id: id.into(),
        created_at: t(at),
        state: BackupState::Complete,
        size_bytes: None,
        checksum: None,
        source: None,
        location: String::new(),
        labels: BTreeMap::new(),
        verification: Default::default(),
    };
    let all = vec![
        info("db-1", 10),
        info("db-3", 30),
        info("other", 40),
        info("db-2", 20),
    ];
    let f = BackupFilter {
        prefix: Some("db-".into()),
        created_after: Some(t(15)),
        limit: Some(5),
        ..Default::default()
    };
    let ids: Vec<String> = f.apply(all.clone()).into_iter().map(|b| b.id).collect();
    assert_eq!(ids, vec!["db-3", "db-2"]);
    let one = BackupFilter {
        limit: Some(1),
        ..Default::default()
    }
    .apply(all);
    assert_eq!(one[0].id, "other");
}

#[test]
fn notifications_need_a_title_and_updates_need_a_key() {
    assert!(Notification::new(Severity::Info, "").validate().is_err());
    let update = Notification::new(Severity::Info, "still down").event(NotificationEvent::Update);
    assert!(update.validate().is_err());
    update.dedup_key("inc-1").validate().unwrap();
}

#[tokio::test]
async fn mocks_stand_in_for_contracts_behind_arc_dyn() {
    let mut mock = MockDeployer::new();
    mock.expect_target().return_const("api".to_string());
    mock.expect_set_traffic()
        .withf(|split| split.percent_of("rev-2") == 100)
        .times(1)
        .returning(|split| {
            Ok(ServiceState {
                target: "api".into(),
                serving: true,
                traffic: split.allocations().to_vec(),
                latest_ready: Some("rev-2".into()),
                url: None,
                scale: None,
                etag: None,
            })
        });
    let deployer: Arc<dyn Deployer> = Arc::new(mock);
    let state = deployer
        .set_traffic(&TrafficSplit::all_to("rev-2").unwrap())
        .await
        .unwrap();
    assert_eq!(deployer.target(), "api");
    assert_eq!(state.primary_release(), Some("rev-2"));

    let mut secrets = MockSecretStore::new();
    secrets
        .expect_read()
        .returning(|_, _| Err(Error::unsupported("mock", "read", "reading values")));
    let secrets: Arc<dyn SecretStore> = Arc::new(secrets);
    let err = secrets.read("x", &VersionRef::Latest).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Unsupported { .. }));
}

#[tokio::test]
async fn the_default_validate_runs_local_checks() {
    struct NoValidate;
    #[async_trait]
    impl Deployer for NoValidate {
        fn target(&self) -> &str {
            "t"
        }
        fn capabilities(&self) -> DeployerCapabilities {
            DeployerCapabilities {
                traffic_split: false,
                scale: false,
                stop_serving: false,
                deploy_without_traffic: true,
            }
        }
        async fn current(&self) -> Result<ServiceState> {
            Err(Error::unsupported("t", "current", "x"))
        }
        async fn releases(&self) -> Result<Vec<Release>> {
            Ok(vec![])
        }
        async fn deploy(&self, _: &DeployRequest) -> Result<Release> {
            Err(Error::unsupported("t", "deploy", "x"))
        }
        async fn set_traffic(&self, _: &TrafficSplit) -> Result<ServiceState> {
            Err(Error::unsupported("t", "set_traffic", "x"))
        }
        async fn scale(&self, _: &ScaleSpec) -> Result<ServiceState> {
            Err(Error::unsupported("t", "scale", "x"))
        }
        async fn stop_serving(&self) -> Result<ServiceState> {
            Err(Error::unsupported("t", "stop_serving", "x"))
        }
    }
    let d = NoValidate;
    let bad = DeployAction::Scale(ScaleSpec {
        min_instances: Some(5),
        max_instances: Some(1),
        ..Default::default()
    });
    assert!(matches!(
        d.validate(&bad).await.unwrap_err().kind(),
        ErrorKind::InvalidInput { .. }
    ));
    let ok = DeployAction::Deploy(DeployRequest::new("gcr.io/p/api:1.2.3"));
    assert_eq!(d.validate(&ok).await.unwrap(), Validation::CheckedLocally);
    let empty = DeployAction::Deploy(DeployRequest::new(" "));
    assert!(d.validate(&empty).await.is_err());
}

#[tokio::test]
async fn mocked_readers_and_streams_are_owned_values() {
    use tokio::io::AsyncReadExt;
    let mut store = MockBackupStore::new();
    store
        .expect_get_artifact()
        .returning(|_| Ok(Box::pin(std::io::Cursor::new(b"bytes".to_vec()))));
    let store: Arc<dyn BackupStore> = Arc::new(store);
    let mut out = Vec::new();
    store
        .get_artifact("a")
        .await
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    assert_eq!(out, b"bytes");
}
