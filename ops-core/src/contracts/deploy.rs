//! [`Deployer`]: releases, traffic and scale of one service (one *target*).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The lifecycle state of a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseState {
    /// Still being built or started.
    Pending,
    /// Ready to serve.
    Ready,
    /// Failed to build or start.
    Failed,
}

/// One deployable release of the target (a Cloud Run revision, a Vercel deployment, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The provider's id of the release (revision name, deployment id).
    pub id: String,
    /// What was deployed: an image reference, a git commit, a version tag.
    pub version: String,
    /// Its state.
    pub state: ReleaseState,
    /// When it was created, if the provider says.
    pub created_at: Option<DateTime<Utc>>,
    /// Where the release can be reached directly, if anywhere.
    pub url: Option<String>,
    /// Provider labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A share of traffic sent to one release.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TrafficAllocation {
    /// The release id.
    pub release: String,
    /// Percent of requests, 0 to 100.
    pub percent: u8,
}

/// A validated traffic split: percentages sum to 100, no release appears twice, no empty id.
///
/// ```
/// use ops_core::contracts::TrafficSplit;
/// let split = TrafficSplit::new([("rev-2", 5), ("rev-1", 95)]).unwrap();
/// assert_eq!(split.percent_of("rev-2"), 5);
/// assert!(TrafficSplit::new([("rev-2", 5), ("rev-1", 90)]).is_err()); // sums to 95
/// assert!(TrafficSplit::new([("rev-1", 50), ("rev-1", 50)]).is_err()); // duplicate
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrafficSplit {
    allocations: Vec<TrafficAllocation>,
}

impl TrafficSplit {
    /// Validates and builds a split.
    pub fn new<I, S>(allocations: I) -> Result<Self>
    where
        I: IntoIterator<Item = (S, u8)>,
        S: Into<String>,
    {
        let allocations: Vec<TrafficAllocation> = allocations
            .into_iter()
            .map(|(release, percent)| TrafficAllocation {
                release: release.into(),
                percent,
            })
            .collect();
        Self::from_allocations(allocations)
    }

    /// Validates and builds a split from allocations.
    pub fn from_allocations(allocations: Vec<TrafficAllocation>) -> Result<Self> {
        let invalid = |field: &str, reason: String| {
            Error::invalid_input("ops-core", "traffic_split", field, reason)
        };
        if allocations.is_empty() {
            return Err(invalid(
                "allocations",
                "a split needs at least one release".into(),
            ));
        }
        let mut seen = HashSet::new();
        let mut total: u32 = 0;
        for a in &allocations {
            if a.release.trim().is_empty() {
                return Err(invalid("release", "release id must not be empty".into()));
            }
            if a.percent > 100 {
                return Err(invalid(
                    "percent",
                    format!("{}: {} is over 100", a.release, a.percent),
                ));
            }
            if !seen.insert(a.release.as_str()) {
                return Err(invalid(
                    "release",
                    format!("{} appears more than once", a.release),
                ));
            }
            total += u32::from(a.percent);
        }
        if total != 100 {
            return Err(invalid(
                "percent",
                format!("percentages sum to {total}, not 100"),
            ));
        }
        Ok(Self { allocations })
    }

    /// All traffic to one release.
    pub fn all_to(release: impl Into<String>) -> Result<Self> {
        Self::new([(release.into(), 100)])
    }

    /// The allocations, in the order given.
    pub fn allocations(&self) -> &[TrafficAllocation] {
        &self.allocations
    }

    /// The percent sent to `release` (0 when absent).
    pub fn percent_of(&self, release: &str) -> u8 {
        self.allocations
            .iter()
            .find(|a| a.release == release)
            .map_or(0, |a| a.percent)
    }

    /// Checks every release in the split is one of `known` (and ready); `InvalidInput` names
    /// the first that is not.
    pub fn check_known(&self, known: &[Release]) -> Result<()> {
        for a in &self.allocations {
            match known.iter().find(|r| r.id == a.release) {
                None => {
                    return Err(Error::invalid_input(
                        "ops-core",
                        "traffic_split",
                        "release",
                        format!("unknown release {}", a.release),
                    ));
                }
                Some(r) if r.state != ReleaseState::Ready && a.percent > 0 => {
                    return Err(Error::invalid_input(
                        "ops-core",
                        "traffic_split",
                        "release",
                        format!("release {} is not ready ({:?})", a.release, r.state),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for TrafficSplit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            allocations: Vec<TrafficAllocation>,
        }
        let raw = Raw::deserialize(d)?;
        Self::from_allocations(raw.allocations).map_err(serde::de::Error::custom)
    }
}

/// Instance counts and sizes. `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleSpec {
    /// Minimum instances kept warm.
    pub min_instances: Option<u32>,
    /// Maximum instances.
    pub max_instances: Option<u32>,
    /// CPU per instance in the platform's notation (`"1"`, `"2"`, `"500m"`).
    pub cpu: Option<String>,
    /// Memory per instance in the platform's notation (`"512Mi"`, `"2Gi"`).
    pub memory: Option<String>,
}

impl ScaleSpec {
    /// Rejects `min > max`, `max == 0` (use [`Deployer::stop_serving`]) and empty sizes.
    pub fn validate(&self) -> Result<()> {
        let invalid =
            |field: &str, reason: &str| Error::invalid_input("ops-core", "scale", field, reason);
        if let (Some(min), Some(max)) = (self.min_instances, self.max_instances)
            && min > max
        {
            return Err(invalid("min_instances", "is greater than max_instances"));
        }
        if self.max_instances == Some(0) {
            return Err(invalid(
                "max_instances",
                "0 stops the service: use stop_serving",
            ));
        }
        if self.cpu.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err(invalid("cpu", "must not be empty"));
        }
        if self.memory.as_deref().is_some_and(|m| m.trim().is_empty()) {
            return Err(invalid("memory", "must not be empty"));
        }
        if *self == ScaleSpec::default() {
            return Err(invalid("scale", "nothing to change"));
        }
        Ok(())
    }
}

/// Where a new release's traffic starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialTraffic {
    /// The new release gets no traffic (canary and blue-green start here).
    #[default]
    None,
    /// The new release gets all traffic at once.
    All,
}

/// What to deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRequest {
    /// What to deploy: an image reference, a git ref, a version.
    pub version: String,
    /// Where its traffic starts.
    #[serde(default)]
    pub traffic: InitialTraffic,
    /// Labels to put on the release.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// How long to wait for the provider's long-running operation before giving up
    /// with a timeout error.
    #[serde(with = "crate::serde_duration")]
    pub deadline: Duration,
}

impl DeployRequest {
    /// A request for `version`, no traffic, a 10-minute deadline.
    pub fn new(version: impl Into<String>) -> Self {
        Self {
            version: version.into(),
            traffic: InitialTraffic::None,
            labels: BTreeMap::new(),
            deadline: Duration::from_secs(600),
        }
    }

    /// Rejects an empty version and a zero deadline.
    pub fn validate(&self) -> Result<()> {
        crate::contracts::validate_name("ops-core", "deploy", "version", self.version.trim())?;
        if self.deadline.is_zero() {
            return Err(Error::invalid_input(
                "ops-core",
                "deploy",
                "deadline",
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// The live state of the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceState {
    /// The target's name.
    pub target: String,
    /// Whether it is serving traffic at all (false after [`Deployer::stop_serving`]).
    pub serving: bool,
    /// The traffic split in force (empty when not serving).
    pub traffic: Vec<TrafficAllocation>,
    /// The newest ready release, if any.
    pub latest_ready: Option<String>,
    /// The public URL, if any.
    pub url: Option<String>,
    /// Current scale settings, where the platform has them.
    pub scale: Option<ScaleSpec>,
    /// The provider's version tag of this state (etag), for optimistic concurrency.
    pub etag: Option<String>,
}

impl ServiceState {
    /// The release with the largest share of traffic (the stable one during a canary).
    pub fn primary_release(&self) -> Option<&str> {
        self.traffic
            .iter()
            .max_by_key(|a| a.percent)
            .filter(|a| a.percent > 0)
            .map(|a| a.release.as_str())
    }
}

/// A mutating deployer call, as data: what a dry-run plan lists and what
/// [`Deployer::validate`] checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum DeployAction {
    /// [`Deployer::deploy`].
    Deploy(DeployRequest),
    /// [`Deployer::set_traffic`].
    SetTraffic(TrafficSplit),
    /// [`Deployer::scale`].
    Scale(ScaleSpec),
    /// [`Deployer::stop_serving`].
    StopServing,
}

/// The outcome of [`Deployer::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validation {
    /// The provider checked the change without applying it (e.g. Cloud Run `validateOnly`).
    ValidatedByProvider,
    /// Only local checks ran; the provider offers no validation.
    CheckedLocally,
}

/// What a deployer can do; runbooks and the testkit choose by these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployerCapabilities {
    /// Arbitrary traffic splits across releases (Cloud Run yes, Vercel no).
    pub traffic_split: bool,
    /// [`Deployer::scale`].
    pub scale: bool,
    /// [`Deployer::stop_serving`].
    pub stop_serving: bool,
    /// A deploy with [`InitialTraffic::None`]: a ready release that serves nothing yet (a
    /// Cloud Run revision without traffic, a Vercel preview). Without it, every release
    /// serves once rolled out (a Kubernetes Deployment), and such a deploy is `Unsupported`.
    #[serde(default = "yes")]
    pub deploy_without_traffic: bool,
}

fn yes() -> bool {
    true
}

/// Releases, traffic and scale of one target service.
///
/// Every call concerns the target given when the deployer was built. Long-running provider
/// operations are awaited inside the call, bounded by a deadline. Calls the platform cannot do
/// fail with [`crate::ErrorKind::Unsupported`]; invalid input fails with
/// [`crate::ErrorKind::InvalidInput`] before anything is sent.
///
/// Each method's `# Behavior` names the cases of the testkit's deployer suite
/// (`testkit::deployer_cases`) that check it.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Deployer: Send + Sync {
    /// The target's name (service, project), used in locks, journals and reports.
    ///
    /// # Behavior
    /// Never empty (`a_deployer_names_its_target`).
    fn target(&self) -> &str;
    /// What this deployer supports.
    fn capabilities(&self) -> DeployerCapabilities;
    /// The live state: traffic, serving, latest ready release.
    ///
    /// # Behavior
    /// Names the target, shows the traffic in force and serving after a deploy with traffic
    /// (`a_deploy_with_all_traffic_is_ready_and_takes_the_traffic`); `latest_ready` is the
    /// newest ready release (`a_deploy_without_traffic_leaves_traffic_alone`).
    async fn current(&self) -> Result<ServiceState>;
    /// The known releases, newest first.
    ///
    /// # Behavior
    /// Newest first (`a_deploy_without_traffic_leaves_traffic_alone`).
    async fn releases(&self) -> Result<Vec<Release>>;
    /// Deploys a new release and waits until it is ready (or failed, or the deadline passed).
    ///
    /// # Behavior
    /// - Returns the release once ready, with its version; with all traffic it takes the
    ///   traffic (`a_deploy_with_all_traffic_is_ready_and_takes_the_traffic`), with none it
    ///   leaves traffic alone (`a_deploy_without_traffic_leaves_traffic_alone`), or is
    ///   `Unsupported` without [`DeployerCapabilities::deploy_without_traffic`]
    ///   (`a_deploy_without_traffic_without_the_capability_is_unsupported`). The same version
    ///   deployed again is a new release.
    /// - An empty version is `InvalidInput` (`an_empty_version_is_invalid_input`).
    async fn deploy(&self, request: &DeployRequest) -> Result<Release>;
    /// Sets the traffic split; unknown releases are rejected.
    ///
    /// # Behavior
    /// - Moves all traffic to one release (`all_traffic_moves_to_one_release`).
    /// - With [`DeployerCapabilities::traffic_split`] a split is in force as given, and a split
    ///   naming an unknown release is `InvalidInput` or `NotFound` and changes nothing
    ///   (`a_split_is_in_force_and_a_refused_one_changes_nothing`); without it a split is
    ///   `Unsupported` (`a_split_without_the_capability_is_unsupported`).
    async fn set_traffic(&self, split: &TrafficSplit) -> Result<ServiceState>;
    /// Changes instance counts and sizes.
    ///
    /// # Behavior
    /// With [`DeployerCapabilities::scale`] the counts are in force and min above max is
    /// `InvalidInput` (`scale_is_in_force_and_min_above_max_is_refused`); without it,
    /// `Unsupported` (the default body; `scale_without_the_capability_is_unsupported`).
    async fn scale(&self, spec: &ScaleSpec) -> Result<ServiceState> {
        let _ = spec;
        Err(super::common::unsupported_by(
            self.target(),
            "scale",
            "scaling",
        ))
    }
    /// Stops serving entirely (emergency shutdown). Undo with [`Deployer::set_traffic`].
    ///
    /// # Behavior
    /// With [`DeployerCapabilities::stop_serving`] the target stops serving and
    /// `set_traffic` resumes it (`stop_serving_stops_and_set_traffic_resumes`); without it,
    /// `Unsupported` (`stop_serving_without_the_capability_is_unsupported`).
    async fn stop_serving(&self) -> Result<ServiceState>;
    /// Checks a change without applying it. The default runs the local checks only.
    ///
    /// # Behavior
    /// Min instances above max is `InvalidInput`
    /// (`min_above_max_is_invalid_before_anything_runs`).
    async fn validate(&self, action: &DeployAction) -> Result<Validation> {
        validate_locally(action)?;
        Ok(Validation::CheckedLocally)
    }
}

/// The checks every deployer runs before sending `action`.
pub fn validate_locally(action: &DeployAction) -> Result<()> {
    match action {
        DeployAction::Deploy(r) => r.validate(),
        DeployAction::SetTraffic(_) | DeployAction::StopServing => Ok(()),
        DeployAction::Scale(s) => s.validate(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(id: &str, state: ReleaseState) -> Release {
        Release {
            id: id.into(),
            version: "v".into(),
            state,
            created_at: None,
            url: None,
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn split_rejects_bad_input() {
        for bad in [
            vec![],
            vec![("a", 50)],
            vec![("a", 101)],
            vec![("", 100)],
            vec![("a", 60), ("a", 40)],
        ] {
            let err = TrafficSplit::new(bad.clone()).unwrap_err();
            assert!(
                matches!(err.kind(), crate::ErrorKind::InvalidInput { .. }),
                "{bad:?}"
            );
        }
        assert!(TrafficSplit::new([("a", 0), ("b", 100)]).is_ok());
    }

    #[test]
    fn split_checks_known_ready_releases() {
        let split = TrafficSplit::new([("a", 10), ("b", 90)]).unwrap();
        let known = vec![
            release("a", ReleaseState::Ready),
            release("b", ReleaseState::Ready),
        ];
        split.check_known(&known).unwrap();
        let err = split.check_known(&known[..1]).unwrap_err();
        assert!(err.to_string().contains("unknown release b"));
        let pending = vec![
            release("a", ReleaseState::Pending),
            release("b", ReleaseState::Ready),
        ];
        assert!(split.check_known(&pending).is_err());
    }

    #[test]
    fn split_deserialization_validates() {
        let ok: TrafficSplit =
            serde_json::from_str(r#"{"allocations":[{"release":"a","percent":100}]}"#).unwrap();
        assert_eq!(ok.percent_of("a"), 100);
        let bad = serde_json::from_str::<TrafficSplit>(
            r#"{"allocations":[{"release":"a","percent":99}]}"#,
        );
        assert!(bad.unwrap_err().to_string().contains("sum to 99"));
    }

    #[test]
    fn scale_validation() {
        assert!(ScaleSpec::default().validate().is_err());
        let s = ScaleSpec {
            min_instances: Some(3),
            max_instances: Some(2),
            ..Default::default()
        };
        assert!(s.validate().is_err());
        let s = ScaleSpec {
            max_instances: Some(0),
            ..Default::default()
        };
        assert!(s.validate().is_err());
        let s = ScaleSpec {
            min_instances: Some(1),
            max_instances: Some(10),
            memory: Some("1Gi".into()),
            ..Default::default()
        };
        s.validate().unwrap();
    }

    #[test]
    fn primary_release_is_largest_share() {
        let state = ServiceState {
            target: "svc".into(),
            serving: true,
            traffic: vec![
                TrafficAllocation {
                    release: "new".into(),
                    percent: 5,
                },
                TrafficAllocation {
                    release: "old".into(),
                    percent: 95,
                },
            ],
            latest_ready: Some("new".into()),
            url: None,
            scale: None,
            etag: None,
        };
        assert_eq!(state.primary_release(), Some("old"));
    }
}
