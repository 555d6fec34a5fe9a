//! A stateful simulator of the Google APIs this crate calls (Cloud Run Admin v2, Cloud Logging
//! v2 `entries:list`, Cloud Monitoring v3 `timeSeries.list`, Secret Manager v1, Cloud Storage
//! JSON v1, Cloud SQL Admin v1), served over real HTTP on loopback, with fault injection.
//!
//! - Services have revisions, traffic and ingress; writes return operations that finish
//!   `operation_delay` later on the simulator's clock (share a `ManualClock` with the client
//!   and polling advances it; with the system clock it is real time).
//! - Requests follow the traffic: each revision serves its share of `requests_per_second`, and
//!   an image's [`Behaviour`] decides its 5xx ratio, latency and utilisation. Cloud Monitoring
//!   reports those requests; Cloud Logging has one ERROR entry per failed request.
//! - Objects have generations and CRC32C; resumable sessions can be cut mid-upload
//!   ([`GcpSim::cut_next_upload_after`]) and objects rot ([`GcpSim::corrupt_object`]). Secret
//!   versions have states and etags. Cloud SQL backup runs and restores are operations that
//!   finish `operation_delay` later.
//! - The Cloud Billing export is a BigQuery table of usage lines ([`GcpSim::add_usage`]);
//!   cost queries run as jobs that can stay running ([`GcpSim::hold_next_query`]) or be
//!   throttled; budgets have etags ([`GcpSim::create_budget`]).
//! - [`GcpSim::inject`] makes the next requests matching a path fail (status with
//!   Retry-After, a stall, truncated JSON).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ops_core::Result<()> {
//! use ops_core::contracts::{Deployer, DeployRequest, InitialTraffic};
//! use ops_gcp::sim::GcpSim;
//!
//! let sim = GcpSim::start().await;
//! sim.create_service("api", "registry.example/api:1.0");
//! let run = ops_gcp::CloudRun::new(sim.client()?, "api")?;
//! let release = run
//!     .deploy(&DeployRequest { traffic: InitialTraffic::All, ..DeployRequest::new("registry.example/api:1.1") })
//!     .await?;
//! assert_eq!(run.current().await?.primary_release(), Some(release.id.as_str()));
//! # Ok(()) }
//! ```

mod billing;
mod cloud_run;
mod http;
mod iam;
mod run_revisions;
mod secret_manager;
mod sql;
mod storage;
mod telemetry;
mod traffic;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::Result;
use ops_core::clock::{SharedClock, system_clock};

use crate::auth::TokenProvider;
use crate::client::{Endpoints, GcpClient, GcpConfig};
pub use telemetry::MAX_GENERATED_ENTRIES;

/// How revisions running an image behave.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    /// Share of requests answered with a 5xx (0 to 1).
    pub error_ratio: f64,
    /// Request latency, in milliseconds.
    pub latency_ms: f64,
    /// CPU utilisation (0 to 1).
    pub cpu: f64,
    /// Memory utilisation (0 to 1).
    pub memory: f64,
    /// The container never starts: the deploy operation fails and the revision is failed.
    pub fails_to_start: bool,
    /// Load-dependent failure: from this share of traffic (percent) on, the error ratio is the
    /// second value instead of `error_ratio` — a bug that hides at a 1 % canary and shows at 25 %.
    pub fails_from_share: Option<(u8, f64)>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            error_ratio: 0.001,
            latency_ms: 80.0,
            cpu: 0.35,
            memory: 0.45,
            fails_to_start: false,
            fails_from_share: None,
        }
    }
}

impl Behaviour {
    /// A healthy image.
    pub fn healthy() -> Self {
        Self::default()
    }

    /// An image failing `ratio` of its requests.
    pub fn failing(ratio: f64) -> Self {
        Self {
            error_ratio: ratio,
            ..Self::default()
        }
    }

    /// An image that is healthy below `percent` of the traffic and fails `ratio` of its
    /// requests from there on.
    pub fn failing_from_share(percent: u8, ratio: f64) -> Self {
        Self {
            fails_from_share: Some((percent, ratio)),
            ..Self::default()
        }
    }

    /// The share of requests failing while the revision serves `percent` of the traffic.
    pub fn error_ratio_at(&self, percent: u8) -> f64 {
        match self.fails_from_share {
            Some((from, ratio)) if percent >= from => ratio,
            _ => self.error_ratio,
        }
    }

    /// An image whose container never starts.
    pub fn crashing() -> Self {
        Self {
            fails_to_start: true,
            ..Self::default()
        }
    }
}

pub use ops_core::sim::{Fault, Simulator};
use ops_core::sim::{Ledger, SimServer};

/// The simulator's state, behind the router.
#[derive(Debug)]
struct SimState {
    project: String,
    region: String,
    clock: SharedClock,
    operation_delay: Duration,
    requests_per_second: f64,
    random_traffic: Option<traffic::RandomTraffic>,
    services: BTreeMap<String, cloud_run::SimService>,
    revisions: BTreeMap<String, cloud_run::SimRevision>,
    operations: Vec<cloud_run::SimOperation>,
    traffic_history: Vec<(DateTime<Utc>, BTreeMap<String, u8>)>,
    /// Running instances per service (short name) from each time on.
    instance_history: Vec<(DateTime<Utc>, BTreeMap<String, u32>)>,
    behaviours: BTreeMap<String, Behaviour>,
    /// Service accounts and their user-managed keys, by email.
    service_accounts: BTreeMap<String, Vec<iam::SimKey>>,
    /// Key creation answers 429 (the per-minute quota is spent).
    key_quota_exhausted: bool,
    /// Environment settings a revision cannot start with: (name, value).
    crash_env: Vec<(String, String)>,
    custom_logs: Vec<telemetry::CustomLog>,
    secrets: BTreeMap<String, secret_manager::SimSecret>,
    objects: BTreeMap<(String, String), storage::SimObject>,
    sessions: BTreeMap<String, storage::SimSession>,
    finished_sessions: BTreeMap<String, (String, String)>,
    next_generation: u64,
    cut_upload_after: Option<usize>,
    base_uri: String,
    sql_instances: BTreeMap<String, sql::SimInstance>,
    sql_ops: Vec<sql::SimSqlOp>,
    next_sql_id: u64,
    fail_next_sql_backup: bool,
    billing: billing::Billing,
    ledger: Ledger,
}

impl SimState {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// Builds a [`GcpSim`].
#[derive(Debug)]
pub struct GcpSimBuilder {
    project: String,
    region: String,
    clock: SharedClock,
    operation_delay: Duration,
    requests_per_second: f64,
    random_traffic: Option<u64>,
}

impl GcpSimBuilder {
    /// The simulated project (default `sim-project`).
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.project = project.into();
        self
    }

    /// The simulated region (default `europe-west1`).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// The clock the simulator's time follows (share it with the client).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// How long operations run (default 2 s).
    pub fn operation_delay(mut self, delay: Duration) -> Self {
        self.operation_delay = delay;
        self
    }

    /// Requests per second over all of a service's revisions (default 20).
    pub fn requests_per_second(mut self, rps: f64) -> Self {
        self.requests_per_second = rps;
        self
    }

    /// Serves random traffic drawn from `seed` (Poisson requests per second, binomial
    /// errors) rather than the expected counts: what a rollout sees from real traffic, and
    /// the same for the same seed. Default: the expected counts, no noise.
    pub fn random_traffic(mut self, seed: u64) -> Self {
        self.random_traffic = Some(seed);
        self
    }

    /// Starts the HTTP server.
    pub async fn start(self) -> GcpSim {
        let state = SimState {
            project: self.project,
            region: self.region,
            clock: self.clock,
            operation_delay: self.operation_delay,
            requests_per_second: self.requests_per_second,
            random_traffic: self
                .random_traffic
                .map(|seed| traffic::RandomTraffic { seed }),
            services: BTreeMap::new(),
            revisions: BTreeMap::new(),
            operations: Vec::new(),
            traffic_history: Vec::new(),
            instance_history: Vec::new(),
            behaviours: BTreeMap::new(),
            crash_env: Vec::new(),
            service_accounts: BTreeMap::new(),
            key_quota_exhausted: false,
            custom_logs: Vec::new(),
            secrets: BTreeMap::new(),
            objects: BTreeMap::new(),
            sessions: BTreeMap::new(),
            finished_sessions: BTreeMap::new(),
            next_generation: 1_700_000_000_000_000,
            cut_upload_after: None,
            base_uri: String::new(),
            sql_instances: BTreeMap::new(),
            sql_ops: Vec::new(),
            next_sql_id: 1_763_000_000_000,
            fail_next_sql_backup: false,
            billing: billing::Billing::default(),
            ledger: Ledger::default(),
        };
        let sim = SimServer::start(state).await;
        // Resumable-upload sessions are URLs on this server.
        sim.state().base_uri = sim.uri();
        GcpSim { sim }
    }
}

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct GcpSim {
    sim: SimServer<SimState>,
}

impl GcpSim {
    /// A simulator with the defaults, on the system clock.
    pub async fn start() -> GcpSim {
        Self::builder().start().await
    }

    /// A builder.
    pub fn builder() -> GcpSimBuilder {
        GcpSimBuilder {
            project: "sim-project".into(),
            region: "europe-west1".into(),
            clock: system_clock(),
            operation_delay: Duration::from_secs(2),
            requests_per_second: 20.0,
            random_traffic: None,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.sim.state()
    }

    /// The server's base URL.
    pub fn uri(&self) -> String {
        self.sim.uri()
    }

    /// A config pointing every API at the simulator.
    pub fn config(&self) -> Result<GcpConfig> {
        let state = self.state();
        let mut config = GcpConfig::new(state.project.clone(), state.region.clone());
        config.endpoints = Endpoints::all_at(&self.sim.uri())?;
        Ok(config)
    }

    /// A client for the simulator (a static token, the simulator's clock).
    pub fn client(&self) -> Result<GcpClient> {
        let clock = self.state().clock.clone();
        let auth = TokenProvider::static_token("sim-token").with_clock(clock.clone());
        Ok(GcpClient::new(self.config()?, Arc::new(auth))?.with_clock(clock))
    }

    /// Creates a ready service serving `image` with all traffic; returns its full name.
    pub fn create_service(&self, service: &str, image: &str) -> String {
        self.state().create_service(service, image)
    }

    /// The requests and failed requests revision `revision` (its short or full name) has
    /// served so far, as the simulated traffic history gives them.
    pub fn served_by(&self, revision: &str) -> (f64, f64) {
        self.state().served_by(revision)
    }

    /// How revisions running `image` behave from now on.
    pub fn set_behaviour(&self, image: &str, behaviour: Behaviour) {
        self.state().behaviours.insert(image.to_string(), behaviour);
    }

    /// Creates a service account `email` with one user-managed key made `age` ago; returns the
    /// key's id.
    pub fn create_service_account(&self, email: &str, age: std::time::Duration) -> String {
        let mut s = self.state();
        let created = s.now() - chrono::Duration::from_std(age).unwrap_or_default();
        let id = format!("{:040x}", fastrand::u128(..));
        s.service_accounts.insert(
            email.to_string(),
            vec![iam::SimKey {
                id: id.clone(),
                created,
                disabled: false,
            }],
        );
        id
    }

    /// The account's keys: (id, disabled).
    pub fn service_account_keys(&self, email: &str) -> Vec<(String, bool)> {
        self.state()
            .service_accounts
            .get(email)
            .map(|keys| keys.iter().map(|k| (k.id.clone(), k.disabled)).collect())
            .unwrap_or_default()
    }

    /// Key creation answers 429 RESOURCE_EXHAUSTED from now on (`false` lifts it).
    pub fn exhaust_key_quota(&self, exhausted: bool) {
        self.state().key_quota_exhausted = exhausted;
    }

    /// Deletes a revision behind the client's back (someone else pruning at the same time).
    pub fn delete_revision_now(&self, service: &str, revision: &str) {
        let mut s = self.state();
        let name = format!(
            "projects/{}/locations/{}/services/{service}/revisions/{revision}",
            s.project, s.region
        );
        s.revisions.remove(&name);
    }

    /// A revision whose environment sets `name` to `value` fails to start (a broken setting:
    /// the deploy fails, traffic stays where it was).
    pub fn crash_when_env(&self, name: &str, value: &str) {
        self.state()
            .crash_env
            .push((name.to_string(), value.to_string()));
    }

    /// Adds a log entry (`severity` is a Cloud Logging level name such as `ERROR`).
    pub fn push_log(
        &self,
        timestamp: DateTime<Utc>,
        severity: &str,
        text: &str,
        revision: Option<&str>,
    ) {
        self.state().custom_logs.push(telemetry::CustomLog {
            timestamp,
            severity: severity.to_string(),
            text: text.to_string(),
            revision: revision.map(str::to_owned),
        });
    }

    /// Stores a new enabled version of `secret` (creating the secret); returns its number.
    pub fn put_secret(&self, secret: &str, value: &[u8]) -> u32 {
        self.state().put_secret(secret, value)
    }

    /// Stores an object (as if uploaded); returns its generation.
    pub fn put_object(&self, bucket: &str, name: &str, data: &[u8]) -> u64 {
        self.state()
            .put_object(bucket, name, data.to_vec(), serde_json::json!({}))
    }

    /// The bytes of an object, if it exists.
    pub fn object_data(&self, bucket: &str, name: &str) -> Option<Vec<u8>> {
        self.state()
            .objects
            .get(&(bucket.to_string(), name.to_string()))
            .map(|o| o.data.clone())
    }

    /// Names of the objects in `bucket`.
    pub fn object_names(&self, bucket: &str) -> Vec<String> {
        self.state()
            .objects
            .keys()
            .filter(|(b, _)| b == bucket)
            .map(|(_, n)| n.clone())
            .collect()
    }

    /// Flips one byte of a stored object without changing its recorded CRC32C (bit rot).
    pub fn corrupt_object(&self, bucket: &str, name: &str) {
        if let Some(o) = self
            .state()
            .objects
            .get_mut(&(bucket.to_string(), name.to_string()))
            && let Some(b) = o.data.get_mut(0)
        {
            *b ^= 0xff;
        }
    }

    /// The next resumable upload loses its connection once it has sent `bytes` bytes: the
    /// session keeps whole 256 KiB units up to there and the chunk fails with a 503.
    pub fn cut_next_upload_after(&self, bytes: usize) {
        self.state().cut_upload_after = Some(bytes);
    }

    /// Creates a Cloud SQL instance (daily backups at 03:00, PITR, 7 kept) with `runs`
    /// successful automated backups, one a day.
    pub fn create_sql_instance(&self, instance: &str, runs: u32) {
        self.state().create_sql_instance(instance, runs)
    }

    /// The next on-demand Cloud SQL backup fails.
    pub fn fail_next_sql_backup(&self) {
        self.state().fail_next_sql_backup = true;
    }

    /// The source instance and point in time a clone was made from.
    pub fn sql_cloned_from(&self, instance: &str) -> Option<(String, DateTime<Utc>)> {
        self.state()
            .sql_instances
            .get(instance)
            .and_then(|i| i.cloned_from.clone())
    }

    /// The Cloud SQL instances there are, by name.
    pub fn sql_instances(&self) -> Vec<String> {
        self.state().sql_instances.keys().cloned().collect()
    }

    /// Changes an instance's backup configuration (a field of `settings.backupConfiguration`),
    /// as someone in the console would.
    pub fn set_sql_backup_setting(&self, instance: &str, field: &str, value: serde_json::Value) {
        if let Some(i) = self.state().sql_instances.get_mut(instance) {
            i.backup_config[field] = value;
        }
    }

    /// The CPU and memory utilisation (0 to 1) a Cloud SQL instance's metrics report.
    pub fn set_sql_usage(&self, instance: &str, cpu: f64, memory: f64) {
        if let Some(i) = self.state().sql_instances.get_mut(instance) {
            i.usage = Some((cpu, memory));
        }
    }

    /// A Cloud SQL instance's tier and state.
    pub fn sql_tier(&self, instance: &str) -> Option<(String, String)> {
        self.state()
            .sql_instances
            .get(instance)
            .map(|i| (i.tier.clone(), i.state.to_string()))
    }

    /// The `(instance, backup run)` an instance was last restored from.
    pub fn sql_restored_from(&self, instance: &str) -> Option<(String, u64)> {
        self.state()
            .sql_instances
            .get(instance)
            .and_then(|i| i.restored_from.clone())
    }
}

/// A usage line of the billing export, as [`GcpSim::add_usage`] takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage<'a> {
    /// The project it was used in.
    pub project: &'a str,
    /// The day (UTC) its usage started.
    pub day: chrono::NaiveDate,
    /// `service.description` (`Cloud Run`).
    pub service: &'a str,
    /// The currency code.
    pub currency: &'a str,
    /// The cost, as the export's `FLOAT64` prints it (`0.001234`, `1.5E-7`).
    pub cost: &'a str,
    /// The credits' amounts (negative).
    pub credits: &'a [&'a str],
}

impl GcpSim {
    /// Creates the export table `table` (`project.dataset.table`), empty.
    pub fn create_billing_export(&self, table: &str) {
        self.state()
            .billing
            .tables
            .entry(table.to_string())
            .or_default();
    }

    /// Adds a usage line to the export table `table` (creating it).
    pub fn add_usage(&self, table: &str, usage: Usage<'_>) {
        self.state()
            .billing
            .tables
            .entry(table.to_string())
            .or_default()
            .push(billing::UsageLine {
                project: usage.project.to_string(),
                day: usage.day,
                service: usage.service.to_string(),
                currency: usage.currency.to_string(),
                cost: usage.cost.to_string(),
                credits: usage.credits.iter().map(|c| c.to_string()).collect(),
            });
    }

    /// The next query's job is still running for `looks` reads of its results
    /// (`jobComplete: false`), then finishes.
    pub fn hold_next_query(&self, looks: u32) {
        self.state().billing.pending_looks = looks;
    }

    /// The next `queries` queries answer 403 `rateLimitExceeded`, as BigQuery throttles.
    pub fn throttle_queries(&self, queries: u32) {
        self.state().billing.throttled = queries;
    }

    /// Every query answers 403 `quotaExceeded` from now on (`false` lifts it).
    pub fn spend_query_quota(&self, spent: bool) {
        self.state().billing.quota_spent = spent;
    }

    /// Creates a monthly budget of `amount` (`"700"`, `"99.5"`) in `currency` on billing
    /// account `account`; returns its name (`billingAccounts/{account}/budgets/{id}`).
    pub fn create_budget(
        &self,
        account: &str,
        display_name: &str,
        amount: &str,
        currency: &str,
    ) -> String {
        let mut s = self.state();
        s.billing.next_id += 1;
        let name = format!(
            "billingAccounts/{account}/budgets/{:08x}-sim",
            s.billing.next_id
        );
        let (units, nanos) = ops_core::money::Currency::parse(currency)
            .and_then(|c| ops_core::money::Money::parse(c, amount))
            .and_then(|m| m.to_units_nanos())
            .unwrap_or((0, 0));
        s.billing.budgets.insert(
            name.clone(),
            billing::SimBudget {
                display_name: display_name.to_string(),
                currency: currency.to_string(),
                units,
                nanos,
                etag: 1,
            },
        );
        name
    }

    /// A budget's amount as `(units, nanos)`.
    pub fn budget_amount(&self, name: &str) -> Option<(i64, i32)> {
        self.state()
            .billing
            .budgets
            .get(name)
            .map(|b| (b.units, b.nanos))
    }

    /// Someone changes the budget in the console: a new amount and etag.
    pub fn change_budget_now(&self, name: &str, units: i64) {
        if let Some(b) = self.state().billing.budgets.get_mut(name) {
            b.units = units;
            b.nanos = 0;
            b.etag += 1;
        }
    }
}

impl Simulator for GcpSim {
    fn with_ledger<R>(&self, f: impl FnOnce(&mut Ledger) -> R) -> R {
        self.sim.with_ledger(f)
    }
}
