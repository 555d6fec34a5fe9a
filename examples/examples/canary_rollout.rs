//! Canary rollout on Cloud Run: 1 % → 5 % → 25 % → 100 % with bakes of 15, 30 and 60 minutes.
//! Every minute of a bake, the new revision's requests, errors and latencies from Cloud
//! Monitoring are judged against the stable revision's (the sequential canary judge), and all
//! traffic goes back on the stable revision at the look that finds a regression.
//! `--blue-green` runs 0 % → 10 % → 100 % instead.
//!
//! It replaces seed 003's *Canary Deployment Steps* (1 → 5 → 25 → 100 %, watching the error
//! rate and latency at each stage, rolling back on a regression) and the *Blue-Green
//! Deployment* of seeds 000 and 002; `--kubernetes` gives seed 004's Kubernetes service the
//! same procedure.
//!
//! `--kubernetes` runs the same runbook on Kubernetes ([`KubeCanary`]): the release goes into
//! the idle one of two slot Deployments (`api-blue`, `api-green`) and the weights of an
//! `HTTPRoute` split the traffic; `--replica-ratio N` splits by replicas behind one Service
//! instead (N replicas in all, so shares move in steps of 100/N %: the stages are 25 → 50 →
//! 100 % for N = 4). The judge reads each slot's requests from Prometheus.
//!
//! ```sh
//! cargo run -p ops-examples --example canary_rollout                            # rehearsal
//! cargo run -p ops-examples --example canary_rollout -- --fault error-rate-at-25
//! cargo run -p ops-examples --example canary_rollout -- --live --project P --region R \
//!     --service api --image europe-docker.pkg.dev/P/app/api:1.1
//! cargo run -p ops-examples --example canary_rollout -- --kubernetes --fault error-rate-at-25
//! cargo run -p ops-examples --example canary_rollout -- --kubernetes --replica-ratio 4
//! cargo run -p ops-examples --example canary_rollout -- --kubernetes --live --namespace prod \
//!     --service api --image registry.example/api:1.1 --prometheus http://prometheus:9090
//! ```
//!
//! On Kubernetes the slots are `SERVICE-blue` and `SERVICE-green`, each with a Service of the
//! same name, routed by the `HTTPRoute` `SERVICE`; with a replica ratio, the Service
//! `SERVICE` selects both slots' pods. Prometheus counts each slot's requests by pod name:
//! `sum(increase(http_requests_total{namespace="NS",pod=~"SLOT-[a-z0-9]+-[a-z0-9]+"}[WINDOW]))`,
//! the same with `code=~"5.."` for the errors, and the errors over the requests for the error
//! ratio.
//!
//! A rehearsal runs against the Google Cloud (or Kubernetes and Prometheus) simulator on a
//! clock 600 times faster than real time, so the 105 minutes of bakes take about ten seconds.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use std::sync::Arc;

use ops_core::contracts::{Deployer, MetricsSource};
use ops_core::runbooks::Procedure;
use ops_core::runbooks::{
    Analysis, JudgedBy, Rollout, RolloutConfig, RolloutSummary, Stage, Strategy, Verdict,
};
use ops_examples::providers::{gcp_client, gcp_sim, kube_client, prometheus_over_kube_sim};
use ops_examples::{Common, Failure, GcpArgs, Session};
use ops_gcp::sim::Behaviour;
use ops_gcp::{CloudMonitoring, CloudRun};
use ops_kubernetes::KubeCanary;
use ops_kubernetes::canary::deployment_of;
use ops_kubernetes::sim::KubeSim;
use ops_prometheus::{PromQueries, Prometheus, PrometheusConfig};

/// roll a new image out in stages, judged by Cloud Monitoring, rolled back on failure
#[derive(Parser)]
#[command(name = "canary_rollout")]
struct Flags {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    gcp: GcpArgs,
    /// the Cloud Run service (on Kubernetes: the app, naming its slots, Services and route)
    #[arg(long, env = "OPS_SERVICE", default_value = "api")]
    service: String,
    /// the image to roll out
    #[arg(long, env = "OPS_IMAGE", default_value = "registry.example/api:1.1")]
    image: String,
    /// blue-green (0 → 10 → 100 %) instead of canary stages
    #[arg(long)]
    blue_green: bool,
    /// the runbook config, TOML (defaults when absent)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// inject a named failure into the rehearsal
    #[arg(long, value_enum, value_name = "NAME")]
    fault: Option<Fault>,
    /// on Kubernetes: slot Deployments SERVICE-blue and SERVICE-green, HTTPRoute SERVICE
    #[arg(long, conflicts_with_all = ["project", "region"])]
    kubernetes: bool,
    /// on Kubernetes: split by replicas behind the Service SERVICE, N in all
    #[arg(long, value_name = "N", requires = "kubernetes")]
    replica_ratio: Option<u32>,
    /// on Kubernetes: the namespace (default: the kubeconfig context's)
    #[arg(long, requires = "kubernetes")]
    namespace: Option<String>,
    /// on Kubernetes with --live: the Prometheus that counts each slot's requests
    #[arg(long, value_name = "URL", requires = "kubernetes")]
    prometheus: Option<String>,
}

/// Where the rollout runs.
struct Platform {
    deployer: Arc<dyn Deployer>,
    metrics: Arc<dyn MetricsSource>,
    /// Failed requests a release served (rehearsals).
    failed_requests: Box<dyn Fn(&str) -> f64>,
    /// Kept running for the rollout.
    _sims: Vec<Box<dyn std::any::Any>>,
}

/// The failures a rehearsal can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Fault {
    /// the new revision fails 8 % of requests once it takes 25 % of traffic
    #[value(name = "error-rate-at-25")]
    ErrorRateAt25,
}

/// What the stable revision runs in a rehearsal.
const STABLE_IMAGE: &str = "registry.example/api:1.0";
/// Where a bare version's image is (`1.1` → `registry.example/api:1.1`).
const IMAGE_REPOSITORY: &str = "registry.example/api";

#[tokio::main]
async fn main() -> ExitCode {
    ops_examples::run(example).await
}

async fn example(mut session: Session, flags: Flags) -> Result<ExitCode, Failure> {
    let image = flags.image.clone();
    let mut config: RolloutConfig = session.config(flags.config.as_deref())?;
    if flags.blue_green {
        config.strategy = Strategy::BlueGreen;
        config.stages = None;
    }
    let platform = if flags.kubernetes {
        on_kubernetes(&session, &flags, &mut config).await?
    } else {
        on_cloud_run(&session, &flags).await?
    };
    let run = platform.deployer.clone();
    let stable = run.current().await?;

    let stages = config.stages();
    let rollout = Rollout::new(&image, run.clone(), platform.metrics.clone(), config);
    let runbook = rollout.runbook()?;
    let Some(report) = session.run(&runbook).await else {
        return Ok(session.finish().await);
    };

    // How each stage was judged, and why the rollout went on or stopped.
    let summary = RolloutSummary::from_report(&report);
    if !flags.common.json && !flags.common.dry_run {
        for line in summary.lines() {
            eprintln!("  {line}");
        }
    }

    if session.rehearsal() && !flags.common.dry_run {
        let now = run.current().await?;
        let new_release = report
            .output::<ops_core::contracts::Release>("deploy")
            .map(|r| r.id);
        if flags.fault.is_some() {
            // The bug shows from 25 %: the first stage at 25 % or more fails at a look; every
            // look is in the evidence.
            let (before, at): (Vec<u8>, Vec<u8>) = stages
                .iter()
                .filter(|s| !s.bake.is_zero())
                .map(|s| s.percent)
                .partition(|p| *p < 25);
            let at = at.first().copied().unwrap_or(25);
            let bake = format!("bake-{at}");
            let failed_there = report.evidence.iter().any(|e| {
                e.step == bake
                    && e.value["decision"] == "fail"
                    && e.value["why"]
                        .as_str()
                        .is_some_and(|w| w.starts_with("errors"))
            });
            session.check(
                &format!("the judge aborted the {at} % bake on the errors"),
                failed_there,
            );
            let took = report
                .steps
                .iter()
                .find(|s| s.name == bake)
                .and_then(|s| s.duration)
                .unwrap_or(Duration::MAX);
            let failed = new_release
                .as_deref()
                .map_or(f64::INFINITY, |id| (platform.failed_requests)(id));
            eprintln!(
                "  caught {}s into the {at} % stage; {failed:.0} failed requests reached users",
                took.as_secs()
            );
            session.check(
                &format!("caught within 3 minutes of the {at} % stage"),
                took <= Duration::from_secs(180),
            );
            session.check("at most 100 failed requests reached users", failed <= 100.0);
            session.check(
                "the analyses of the stages below 25 % passed",
                before.iter().all(|p| {
                    report
                        .output::<Analysis>(&format!("analyze-{p}"))
                        .is_some_and(|a| a.verdict == Verdict::Pass)
                }),
            );
            session.check(
                "all traffic is back on the stable revision",
                now.primary_release() == stable.primary_release()
                    && now
                        .traffic
                        .iter()
                        .all(|t| t.percent == 0 || t.percent == 100),
            );
        } else {
            session.check(
                "the judge passed every stage, canary against stable",
                summary.stages.iter().all(|s| {
                    s.judged_by == JudgedBy::Sequential && s.verdict == Some(Verdict::Pass)
                }) && !summary.stages.is_empty(),
            );
            session.check(
                "the new revision takes all traffic",
                new_release.is_some() && now.primary_release() == new_release.as_deref(),
            );
        }
    }
    Ok(session.finish().await)
}

/// Cloud Run and Cloud Monitoring (the Google Cloud simulator in a rehearsal).
async fn on_cloud_run(session: &Session, flags: &Flags) -> Result<Platform, Failure> {
    let sim = gcp_sim(session, &flags.gcp).await;
    if let Some(sim) = &sim {
        sim.create_service(&flags.service, STABLE_IMAGE);
        if flags.fault == Some(Fault::ErrorRateAt25) {
            // A bug that hides under light load: fine at 1 % and 5 %, failing at 25 %.
            sim.set_behaviour(&flags.image, Behaviour::failing_from_share(25, 0.08));
        }
    }
    let client = gcp_client(session, &flags.gcp, sim.as_ref()).await?;
    let run = Arc::new(CloudRun::new(client.clone(), &flags.service)?);
    let metrics = Arc::new(CloudMonitoring::new(client, &flags.service)?);
    let sim = sim.map(Arc::new);
    let counted = sim.clone();
    Ok(Platform {
        deployer: run,
        metrics,
        failed_requests: Box::new(move |id| {
            counted
                .as_ref()
                .map_or(f64::INFINITY, |s| s.served_by(id).1)
        }),
        _sims: sim
            .into_iter()
            .map(|s| Box::new(s) as Box<dyn std::any::Any>)
            .collect(),
    })
}

/// Requests per second the rehearsal's users send.
const KUBE_RPS: f64 = 20.0;

/// Two slot Deployments split by an HTTPRoute or a replica ratio, judged from Prometheus (the
/// Kubernetes and Prometheus simulators in a rehearsal).
async fn on_kubernetes(
    session: &Session,
    flags: &Flags,
    config: &mut RolloutConfig,
) -> Result<Platform, Failure> {
    let app = flags.service.as_str();
    ops_kubernetes::client::check_name("flags", "service", app)
        .map_err(|e| Failure::usage(format!("--service: {e}")))?;
    let (blue, green) = (format!("{app}-blue"), format!("{app}-green"));
    let sim = if session.rehearsal() {
        let sim = KubeSim::builder().clock(session.clock()).start().await;
        let total = flags.replica_ratio.unwrap_or(3);
        let replicas = i32::try_from(total)
            .map_err(|_| Failure::usage("--replica-ratio: at most 2^31 - 1"))?;
        for (slot, n) in [(&blue, replicas), (&green, 0)] {
            let track = slot.rsplit('-').next().unwrap_or("blue");
            sim.add_deployment_labelled(slot, STABLE_IMAGE, n, &[("app", app), ("track", track)]);
            sim.add_service(slot, &[("app", app), ("track", track)]);
        }
        let front = if flags.replica_ratio.is_some() {
            sim.add_service(app, &[("app", app)]);
            app
        } else {
            sim.add_http_route(app, &[(&blue, 100), (&green, 0)]);
            app
        };
        sim.send_traffic(front, KUBE_RPS);
        if flags.fault == Some(Fault::ErrorRateAt25) {
            sim.failing_from_share(&flags.image, 25, 0.08);
        }
        Some(Arc::new(sim))
    } else {
        None
    };
    let client = kube_client(session, sim.as_deref(), flags.namespace.as_deref()).await?;
    let namespace = client.namespace().to_string();
    let canary = match flags.replica_ratio {
        Some(n) => KubeCanary::replica_ratio(client, app, &[&blue, &green], n)
            .map_err(|e| Failure::usage(format!("--replica-ratio: {e}")))?,
        None => KubeCanary::http_route(client, app, &[(&blue, &blue), (&green, &green)])?,
    };
    if flags.replica_ratio == Some(4) && flags.config.is_none() && !flags.blue_green {
        // Four replicas give 25 % steps: the seed's 1 % and 5 % stages cannot be represented.
        let m = |n: u64| Duration::from_secs(n * 60);
        config.stages = Some(vec![
            Stage::new(25, m(15)),
            Stage::new(50, m(30)),
            Stage::new(100, m(0)),
        ]);
    }
    if let Some(p) = config
        .stages()
        .iter()
        .map(|s| s.percent)
        .find(|p| !canary.can_give(*p))
    {
        return Err(Failure::usage(format!(
            "a {p} % stage cannot be given by {} replicas: give stages in the config that are whole pods, or more replicas",
            flags.replica_ratio.unwrap_or(0)
        )));
    }

    // Each slot's requests, counted by pod name (`SLOT-<template hash>-<pod hash>`).
    let pods = format!(r#"namespace="{namespace}",pod=~"$release-[a-z0-9]+-[a-z0-9]+""#);
    let requests = format!("sum(increase(http_requests_total{{{pods}}}[$window]))");
    let errors = format!(r#"sum(increase(http_requests_total{{{pods},code=~"5.."}}[$window]))"#);
    let queries = PromQueries {
        error_ratio: format!("{errors} / {requests}"),
        requests,
        errors,
        ..PromQueries::default()
    };
    let (prometheus_config, prometheus_sim) = match &sim {
        Some(sim) => {
            let prom = prometheus_over_kube_sim(sim.clone()).await;
            (PrometheusConfig::new(&prom.uri(), queries)?, Some(prom))
        }
        None => {
            let url = flags.prometheus.as_deref().ok_or_else(|| {
                Failure::usage(
                    "--kubernetes --live needs --prometheus URL: the judge counts requests there",
                )
            })?;
            (PrometheusConfig::new(url, queries)?, None)
        }
    };
    let prometheus = Prometheus::new(prometheus_config)?.with_clock(session.clock());
    let metrics = Arc::new(canary.metrics(Arc::new(prometheus)));
    let canary = canary
        .repository(IMAGE_REPOSITORY)
        .polling(Duration::from_secs(2));
    let (counted, clock) = (sim.clone(), session.clock());
    let start = clock.now();
    let mut sims: Vec<Box<dyn std::any::Any>> = Vec::new();
    if let Some(s) = sim {
        sims.push(Box::new(s));
    }
    if let Some(p) = prometheus_sim {
        sims.push(Box::new(p));
    }
    Ok(Platform {
        deployer: Arc::new(canary),
        metrics,
        failed_requests: Box::new(move |id| match &counted {
            Some(s) => s.requests_served(deployment_of(id), start, clock.now()).1 as f64,
            None => f64::INFINITY,
        }),
        _sims: sims,
    })
}
