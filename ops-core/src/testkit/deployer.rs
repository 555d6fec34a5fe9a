//! The [`Deployer`] suite. It deploys and moves traffic: run it against a simulator or a
//! throwaway target, never a live service.

use super::{expect_kind, expect_ok};
use crate::ErrorKind;
use crate::contracts::{
    DeployAction, DeployRequest, Deployer, InitialTraffic, ReleaseState, ScaleSpec, TrafficSplit,
};

/// Two versions the deployer under test can deploy.
#[derive(Debug, Clone)]
pub struct DeployerFixture {
    /// Deployed first, with all traffic (the stable release).
    pub version_a: String,
    /// Deployed second, with no traffic (the canary).
    pub version_b: String,
}

/// Runs every behaviour `deployer` declares.
pub async fn deployer(deployer: &dyn Deployer, fixture: &DeployerFixture) {
    let caps = deployer.capabilities();
    assert!(!deployer.target().is_empty(), "a deployer names its target");

    expect_kind(
        "deploy of an empty version",
        deployer.deploy(&DeployRequest::new("")).await,
        |k| matches!(k, ErrorKind::InvalidInput { .. }),
    );
    let bad_scale = ScaleSpec {
        min_instances: Some(5),
        max_instances: Some(2),
        ..Default::default()
    };
    expect_kind(
        "validate of min > max",
        deployer
            .validate(&DeployAction::Scale(bad_scale.clone()))
            .await,
        |k| matches!(k, ErrorKind::InvalidInput { .. }),
    );

    let a = expect_ok(
        "deploy A with all traffic",
        deployer
            .deploy(&DeployRequest {
                traffic: InitialTraffic::All,
                ..DeployRequest::new(&fixture.version_a)
            })
            .await,
    );
    assert_eq!(
        a.state,
        ReleaseState::Ready,
        "deploy returns once the release is ready"
    );
    assert_eq!(
        a.version, fixture.version_a,
        "the release records its version"
    );
    let state = expect_ok("current after A", deployer.current().await);
    assert!(state.serving, "serving after a deploy with traffic");
    assert_eq!(
        state.primary_release(),
        Some(a.id.as_str()),
        "A takes the traffic"
    );
    assert_eq!(state.target, deployer.target());

    let b = expect_ok(
        "deploy B with no traffic",
        deployer
            .deploy(&DeployRequest::new(&fixture.version_b))
            .await,
    );
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

    let canary =
        TrafficSplit::new([(b.id.as_str(), 10), (a.id.as_str(), 90)]).expect("a valid split");
    if caps.traffic_split {
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
        let unknown = TrafficSplit::all_to("no-such-release-0").expect("a valid split");
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
    } else {
        expect_kind(
            "a split without the capability",
            deployer.set_traffic(&canary).await,
            |k| matches!(k, ErrorKind::Unsupported { .. }),
        );
    }
    let all_b = TrafficSplit::all_to(b.id.as_str()).expect("a valid split");
    let state = expect_ok("all traffic to B", deployer.set_traffic(&all_b).await);
    assert_eq!(state.primary_release(), Some(b.id.as_str()));

    if caps.scale {
        expect_kind(
            "scale with min > max",
            deployer.scale(&bad_scale).await,
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
    } else {
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

    if caps.stop_serving {
        let state = expect_ok("stop_serving", deployer.stop_serving().await);
        assert!(!state.serving, "stopped");
        let state = expect_ok(
            "resume with set_traffic",
            deployer.set_traffic(&all_b).await,
        );
        assert!(state.serving, "set_traffic resumes serving");
    } else {
        expect_kind(
            "stop_serving without the capability",
            deployer.stop_serving().await,
            |k| matches!(k, ErrorKind::Unsupported { .. }),
        );
    }
}
