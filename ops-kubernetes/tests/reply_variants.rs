//! Every reply the Kubernetes clients decode, in the shapes the API's description allows
//! (derived by `ops_conformance::replies` from `kubernetes-api.json`): only the required
//! fields, every nullable field `null`, empty objects, unknown fields, every enum value. A typed
//! error about the content is allowed; a decode failure or a panic is not.

use std::sync::Arc;
use std::time::Duration;

use ops_conformance::replay::Replay;
use ops_conformance::replies::variants;
use ops_conformance::{Description, vendored};
use ops_core::clock::ManualClock;
use ops_core::contracts::*;
use ops_kubernetes::{KubeClient, KubeConfig, KubeDeployment, KubeLogs, KubeMetrics, KubeSecrets};
use serde_json::{Value, json};

fn client(base: &str) -> KubeClient {
    let mut cfg = KubeConfig::new(base, "web")
        .unwrap()
        .token("kube-test-token");
    cfg.http.request_timeout = Duration::from_millis(500);
    let clock = Arc::new(ManualClock::starting_at(
        "2026-12-01T09:00:00Z".parse().unwrap(),
    ));
    KubeClient::new(cfg).unwrap().with_clock(clock)
}

fn d() -> Description {
    vendored("kubernetes-api.json")
}

fn deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "api", "uid": "u1", "generation": 1, "resourceVersion": "5",
                        "annotations": {"deployment.kubernetes.io/revision": "1"}},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "api"}},
                    "template": {"metadata": {"labels": {"app": "api"}},
                                 "spec": {"containers": [{"name": "app", "image": "api:1"}]}}},
           "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}})
}

#[tokio::test]
async fn deployments_and_replica_sets_in_every_described_shape() {
    Replay::new("GET", r"^/apis/apps/v1/namespaces/web/deployments/api$")
        .each(
            variants(&d(), "io.k8s.api.apps.v1.Deployment", &[]),
            |base| async move {
                KubeDeployment::new(client(&base), "api")
                    .unwrap()
                    .rollout_status()
                    .await
                    .map(|_| ())
            },
        )
        .await;
    Replay::new("GET", r"^/apis/apps/v1/namespaces/web/replicasets$")
        .then(json!({"items": [], "metadata": {}}))
        .also("GET", r"^/apis/apps/v1/namespaces/web/deployments/api$", deployment())
        .also("GET", r"^/apis/autoscaling/v2/namespaces/web/horizontalpodautoscalers/api$", json!({"spec": {"maxReplicas": 3, "scaleTargetRef": {"kind": "Deployment", "name": "api"}}}))
        .also("GET", r"^/api/v1/namespaces/web/pods$", json!({"items": [], "metadata": {}}))
        .each(variants(&d(), "io.k8s.api.apps.v1.ReplicaSetList", &[]), |base| async move {
            KubeDeployment::new(client(&base), "api").unwrap().current().await.map(|_| ())
        })
        .await;
}

#[tokio::test]
async fn pods_and_secrets_in_every_described_shape() {
    let window = TimeWindow::new(
        "2026-12-01T08:00:00Z".parse().unwrap(),
        "2026-12-01T09:00:00Z".parse().unwrap(),
    )
    .unwrap();
    Replay::new("GET", r"^/api/v1/namespaces/web/pods$")
        .then(json!({"items": [], "metadata": {}}))
        .each(
            variants(&d(), "io.k8s.api.core.v1.PodList", &[]),
            move |base| async move {
                KubeLogs::new(client(&base), "app=api")
                    .unwrap()
                    .query_page(&LogQuery::new(window))
                    .await
                    .map(|_| ())
            },
        )
        .await;
    Replay::new("GET", r"^/api/v1/namespaces/web/secrets/redis$")
        .each(
            variants(&d(), "io.k8s.api.core.v1.Secret", &[]),
            |base| async move {
                KubeSecrets::new(client(&base))
                    .list_versions("redis")
                    .await
                    .map(|_| ())
            },
        )
        .await;
    Replay::new("GET", r"^/api/v1/namespaces/web/secrets$")
        .then(json!({"items": [], "metadata": {}}))
        .each(
            variants(&d(), "io.k8s.api.core.v1.SecretList", &[]),
            |base| async move {
                KubeSecrets::new(client(&base))
                    .list_secrets()
                    .await
                    .map(|_| ())
            },
        )
        .await;
}

#[tokio::test]
async fn pod_metrics_in_every_described_shape() {
    let window = TimeWindow::new(
        "2026-12-01T08:00:00Z".parse().unwrap(),
        "2026-12-01T09:00:00Z".parse().unwrap(),
    )
    .unwrap();
    Replay::new("GET", r"^/apis/metrics.k8s.io/v1beta1/namespaces/web/pods$")
        .then(json!({"items": [], "metadata": {}}))
        .also(
            "GET",
            r"^/apis/apps/v1/namespaces/web/deployments/api$",
            deployment(),
        )
        .also(
            "GET",
            r"^/apis/apps/v1/namespaces/web/replicasets$",
            json!({"items": [], "metadata": {}}),
        )
        .each(
            variants(
                &d(),
                "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetricsList",
                &[],
            ),
            move |base| async move {
                let m = KubeMetrics::new(KubeDeployment::new(client(&base), "api").unwrap());
                let q = MetricQuery {
                    metric: Metric::CpuUtilisation,
                    window,
                    release: None,
                    min_samples: 1,
                };
                m.read(&q).await.map(|_| ())
            },
        )
        .await;
}

#[tokio::test]
async fn http_routes_in_every_described_shape() {
    let slot = |track: &str| {
        let mut d = deployment();
        d["metadata"]["name"] = json!(format!("web-{track}"));
        d["spec"]["selector"]["matchLabels"] = json!({"app": "web", "track": track});
        d["spec"]["template"]["metadata"]["labels"] = json!({"app": "web", "track": track});
        d
    };
    Replay::new(
        "GET",
        r"^/apis/gateway.networking.k8s.io/v1/namespaces/web/httproutes/web$",
    )
    .also(
        "GET",
        r"^/apis/apps/v1/namespaces/web/deployments/web-blue$",
        slot("blue"),
    )
    .also(
        "GET",
        r"^/apis/apps/v1/namespaces/web/deployments/web-green$",
        slot("green"),
    )
    .each(
        variants(&d(), "io.k8s.sigs.gateway-api.apis.v1.HTTPRoute", &[]),
        |base| async move {
            let canary = ops_kubernetes::KubeCanary::http_route(
                client(&base),
                "web",
                &[("web-blue", "web-blue"), ("web-green", "web-green")],
            )
            .unwrap();
            let route = canary.route().await?;
            let _ = route.readiness();
            canary.current().await.map(|_| ())
        },
    )
    .await;
}
