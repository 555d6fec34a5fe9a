//! The [`Deployer`] suite. It deploys and moves traffic: run it against a simulator or a
//! throwaway target, never a live service.
//!
//! Each case that needs releases deploys its own pair (A with all traffic, then B with none),
//! so a deployer must accept the same version again as a new release, as every platform does
//! (a new Cloud Run revision, a new Vercel deployment, a new workflow run).

use super::{Case, always, cases, check_cases, expect_kind, expect_ok};
use crate::ErrorKind;
use crate::contracts::{
    DeployAction, DeployRequest, Deployer, InitialTraffic, Release, ReleaseState, ScaleSpec,
    TrafficSplit,
};

/// Two versions the deployer under test can deploy.
#[derive(Debug, Clone)]
pub struct DeployerFixture {
    /// Deployed first, with all traffic (the stable release).
    pub version_a: String,
    /// Deployed second, with no traffic (the canary).
    pub version_b: String,
}

/// The deployer suite's cases, for [`super::check_case`] (one test per behaviour).
pub fn deployer_cases() -> Vec<Case<dyn Deployer, DeployerFixture>> {
    cases![dyn Deployer, DeployerFixture;
        a_deployer_names_its_target unless always,
        an_empty_version_is_invalid_input unless always,
        min_above_max_is_invalid_before_anything_runs unless always,
        a_deploy_with_all_traffic_is_ready_and_takes_the_traffic unless always,
        a_deploy_without_traffic_leaves_traffic_alone unless without_dark_deploy,
        a_deploy_without_traffic_without_the_capability_is_unsupported unless with_dark_deploy,
        a_split_is_in_force_and_a_refused_one_changes_nothing unless without_split,
        a_split_without_the_capability_is_unsupported unless with_split,
        all_traffic_moves_to_one_release unless always,
        scale_is_in_force_and_min_above_max_is_refused unless without_scale,
        scale_without_the_capability_is_unsupported unless with_scale,
        stop_serving_stops_and_set_traffic_resumes unless without_stop,
        stop_serving_without_the_capability_is_unsupported unless with_stop,
    ]
}

/// Runs every behaviour `deployer` declares, and reports every one that is broken.
pub async fn deployer(deployer: &(dyn Deployer + 'static), fixture: &DeployerFixture) {
    check_cases("deployer", deployer, fixture, &deployer_cases()).await;
}

fn without_split(d: &dyn Deployer) -> Option<&'static str> {
    (!d.capabilities().traffic_split).then_some("no traffic_split capability")
}
fn with_split(d: &dyn Deployer) -> Option<&'static str> {
    d.capabilities()
        .traffic_split
        .then_some("it splits traffic")
}
fn without_scale(d: &dyn Deployer) -> Option<&'static str> {
    (!d.capabilities().scale).then_some("no scale capability")
}
fn with_scale(d: &dyn Deployer) -> Option<&'static str> {
    d.capabilities().scale.then_some("it scales")
}
fn without_stop(d: &dyn Deployer) -> Option<&'static str> {
    (!d.capabilities().stop_serving).then_some("no stop_serving capability")
}
fn with_stop(d: &dyn Deployer) -> Option<&'static str> {
    d.capabilities().stop_serving.then_some("it stops serving")
}

fn without_dark_deploy(d: &dyn Deployer) -> Option<&'static str> {
    (!d.capabilities().deploy_without_traffic).then_some("every release it deploys serves")
}
fn with_dark_deploy(d: &dyn Deployer) -> Option<&'static str> {
    d.capabilities()
        .deploy_without_traffic
        .then_some("it deploys without traffic")
}

/// A with all traffic, then B ready without traffic: deployed with none, or, where every
/// release serves once deployed, deployed with all and the traffic moved back to A.
async fn stable_and_canary(deployer: &dyn Deployer, f: &DeployerFixture) -> (Release, Release) {
    let a = expect_ok(
        "deploy A with all traffic",
        deployer
            .deploy(&DeployRequest {
                traffic: InitialTraffic::All,
                ..DeployRequest::new(&f.version_a)
            })
            .await,
    );
    if deployer.capabilities().deploy_without_traffic {
        let b = expect_ok(
            "deploy B with no traffic",
            deployer.deploy(&DeployRequest::new(&f.version_b)).await,
        );
        return (a, b);
    }
    let b = expect_ok(
        "deploy B (it takes the traffic)",
        deployer
            .deploy(&DeployRequest {
                traffic: InitialTraffic::All,
                ..DeployRequest::new(&f.version_b)
            })
            .await,
    );
    let back = TrafficSplit::all_to(a.id.as_str()).expect("a split");
    let state = expect_ok("all traffic back to A", deployer.set_traffic(&back).await);
    assert_eq!(
        state.primary_release(),
        Some(a.id.as_str()),
        "traffic moves back to A"
    );
    (a, b)
}

async fn a_deploy_without_traffic_without_the_capability_is_unsupported(
    deployer: &dyn Deployer,
    f: &DeployerFixture,
) {
    expect_kind(
        "a deploy without traffic, without the capability",
        deployer.deploy(&DeployRequest::new(&f.version_b)).await,
        |k| matches!(k, ErrorKind::Unsupported { .. }),
    );
}

/// 10 % to `canary`, 90 % to `stable`.
fn ten_percent_to(canary: &Release, stable: &Release) -> TrafficSplit {
    TrafficSplit::new([(canary.id.as_str(), 10), (stable.id.as_str(), 90)]).expect("a split")
}

fn min_above_max() -> ScaleSpec {
    ScaleSpec {
        min_instances: Some(5),
        max_instances: Some(2),
        ..Default::default()
    }
}

async fn a_deployer_names_its_target(deployer: &dyn Deployer, _: &DeployerFixture) {
    assert!(!deployer.target().is_empty(), "a deployer names its target");
}

async fn an_empty_version_is_invalid_input(deployer: &dyn Deployer, _: &DeployerFixture) {
    expect_kind(
        "deploy of an empty version",
        deployer.deploy(&DeployRequest::new("")).await,
        |k| matches!(k, ErrorKind::InvalidInput { .. }),
    );
}

async fn min_above_max_is_invalid_before_anything_runs(
    deployer: &dyn Deployer,
    _: &DeployerFixture,
) {
    expect_kind(
        "validate of min > max",
        deployer
            .validate(&DeployAction::Scale(min_above_max()))
            .await,
        |k| matches!(k, ErrorKind::InvalidInput { .. }),
    );
}

async fn a_deploy_with_all_traffic_is_ready_and_takes_the_traffic(
    deployer: &dyn Deployer,
    f: &DeployerFixture,
) {
    let a = expect_ok(
        "deploy A with all traffic",
        deployer
            .deploy(&DeployRequest {
                traffic: InitialTraffic::All,
                ..DeployRequest::new(&f.version_a)
            })
            .await,
    );
    assert_eq!(
        a.state,
        ReleaseState::Ready,
        "deploy returns once the release is ready"
    );
    assert_eq!(a.version, f.version_a, "the release records its version");
    let state = expect_ok("current after A", deployer.current().await);
    assert!(state.serving, "serving after a deploy with traffic");
    assert_eq!(
        state.primary_release(),
        Some(a.id.as_str()),
        "A takes the traffic"
    );
    assert_eq!(
        state.target,
        deployer.target(),
        "the state names the target"
    );
}

async fn a_deploy_without_traffic_leaves_traffic_alone(
    deployer: &dyn Deployer,
    f: &DeployerFixture,
) {
    let (a, b) = stable_and_canary(deployer, f).await;
    let releases = expect_ok("releases", deployer.releases().await);
    let pos = |id: &str| releases.iter().position(|r| r.id == id);
    assert!(
        pos(&b.id).is_some() && pos(&b.id) < pos(&a.id),
        "releases are newest first"
    );
    let state = expect_ok("current after B", deployer.current().await);
    assert_eq!(
        state.primary_release(),
        Some(a.id.as_str()),
        "a no-traffic deploy leaves traffic alone"
    );
    assert_eq!(
        state.latest_ready.as_deref(),
        Some(b.id.as_str()),
        "latest_ready is the newest ready release"
    );
}

async fn a_split_is_in_force_and_a_refused_one_changes_nothing(
    deployer: &dyn Deployer,
    f: &DeployerFixture,
) {
    let (a, b) = stable_and_canary(deployer, f).await;
    let canary = ten_percent_to(&b, &a);
    let state = expect_ok("set_traffic 10/90", deployer.set_traffic(&canary).await);
    let pct = |id: &str| {
        state
            .traffic
            .iter()
            .find(|t| t.release == id)
            .map_or(0, |t| t.percent)
    };
    assert_eq!(
        (pct(&b.id), pct(&a.id)),
        (10, 90),
        "the split is in force: {:?}",
        state.traffic
    );
    let unknown = TrafficSplit::all_to("no-such-release-0").expect("a split");
    expect_kind(
        "traffic to an unknown release",
        deployer.set_traffic(&unknown).await,
        |k| {
            matches!(
                k,
                ErrorKind::InvalidInput { .. } | ErrorKind::NotFound { .. }
            )
        },
    );
    let still = expect_ok("current after a refused split", deployer.current().await);
    assert_eq!(
        still.traffic, state.traffic,
        "a refused split changes nothing"
    );
}

async fn a_split_without_the_capability_is_unsupported(
    deployer: &dyn Deployer,
    f: &DeployerFixture,
) {
    let (a, b) = stable_and_canary(deployer, f).await;
    let canary = ten_percent_to(&b, &a);
    expect_kind(
        "a split without the capability",
        deployer.set_traffic(&canary).await,
        |k| matches!(k, ErrorKind::Unsupported { .. }),
    );
}

async fn all_traffic_moves_to_one_release(deployer: &dyn Deployer, f: &DeployerFixture) {
    let (_, b) = stable_and_canary(deployer, f).await;
    let all_b = TrafficSplit::all_to(b.id.as_str()).expect("a split");
    let state = expect_ok("all traffic to B", deployer.set_traffic(&all_b).await);
    assert_eq!(
        state.primary_release(),
        Some(b.id.as_str()),
        "B takes all the traffic"
    );
}

async fn scale_is_in_force_and_min_above_max_is_refused(
    deployer: &dyn Deployer,
    f: &DeployerFixture,
) {
    stable_and_canary(deployer, f).await;
    expect_kind(
        "scale with min > max",
        deployer.scale(&min_above_max()).await,
        |k| matches!(k, ErrorKind::InvalidInput { .. }),
    );
    let spec = ScaleSpec {
        min_instances: Some(1),
        max_instances: Some(4),
        ..Default::default()
    };
    let state = expect_ok("scale", deployer.scale(&spec).await);
    if let Some(s) = state.scale {
        assert_eq!(
            (s.min_instances, s.max_instances),
            (Some(1), Some(4)),
            "scale is in force"
        );
    }
}

async fn scale_without_the_capability_is_unsupported(deployer: &dyn Deployer, _: &DeployerFixture) {
    let spec = ScaleSpec {
        max_instances: Some(3),
        ..Default::default()
    };
    expect_kind(
        "scale without the capability",
        deployer.scale(&spec).await,
        |k| matches!(k, ErrorKind::Unsupported { .. }),
    );
}

async fn stop_serving_stops_and_set_traffic_resumes(deployer: &dyn Deployer, f: &DeployerFixture) {
    let (_, b) = stable_and_canary(deployer, f).await;
    let state = expect_ok("stop_serving", deployer.stop_serving().await);
    assert!(!state.serving, "stopped");
    let all_b = TrafficSplit::all_to(b.id.as_str()).expect("a split");
    let state = expect_ok(
        "resume with set_traffic",
        deployer.set_traffic(&all_b).await,
    );
    assert!(state.serving, "set_traffic resumes serving");
}

async fn stop_serving_without_the_capability_is_unsupported(
    deployer: &dyn Deployer,
    _: &DeployerFixture,
) {
    expect_kind(
        "stop_serving without the capability",
        deployer.stop_serving().await,
        |k| matches!(k, ErrorKind::Unsupported { .. }),
    );
}
