//! Cloud SQL right-sizing (seed 000's "if the database is over-provisioned, downgrade the
//! tier"): CPU and memory utilisation from Cloud Monitoring, a suggested custom tier, and —
//! after an approval, inside a maintenance window — the tier patched (the instance restarts:
//! a stated downtime) and the instance verified running on it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::calendar::Window;
use ops_core::config::{RunbookConfig, human_duration};
use ops_core::engine::{Action, Category, Output, RunReport, Runbook, Step};
use ops_core::poll::{Every, Polled, poll_until};
use ops_core::runbooks::Procedure;
use ops_core::{Error, ErrorKind, Result};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::CloudSql;

/// Cloud SQL's CPU utilisation metric (0 to 1).
pub const SQL_CPU: &str = "cloudsql.googleapis.com/database/cpu/utilization";
/// Cloud SQL's memory utilisation metric (0 to 1).
pub const SQL_MEMORY: &str = "cloudsql.googleapis.com/database/memory/utilization";

/// A custom machine tier, `db-custom-{vcpus}-{memory MiB}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomTier {
    /// Virtual CPUs (1, or an even number up to 96).
    pub vcpus: u32,
    /// Memory in MiB (a multiple of 256, 0.9 to 6.5 GiB per vCPU, at least 3840).
    pub memory_mb: u32,
}

impl CustomTier {
    /// Reads `db-custom-2-7680`; `None` for shared-core and other tiers.
    pub fn parse(tier: &str) -> Option<Self> {
        let rest = tier.strip_prefix("db-custom-")?;
        let (cpu, mem) = rest.split_once('-')?;
        let t = Self {
            vcpus: cpu.parse().ok()?,
            memory_mb: mem.parse().ok()?,
        };
        t.valid().then_some(t)
    }

    /// The tier's name.
    pub fn name(&self) -> String {
        format!("db-custom-{}-{}", self.vcpus, self.memory_mb)
    }

    /// Whether Cloud SQL offers it.
    pub fn valid(&self) -> bool {
        let cpu_ok =
            self.vcpus == 1 || (self.vcpus.is_multiple_of(2) && (2..=96).contains(&self.vcpus));
        // MiB per vCPU: 0.9 to 6.5 GiB.
        let per_cpu = u64::from(self.memory_mb) / u64::from(self.vcpus.max(1));
        cpu_ok
            && self.memory_mb.is_multiple_of(256)
            && self.memory_mb >= 3840
            && (922..=6656).contains(&per_cpu)
    }

    /// Half the size (at least one vCPU and 3840 MiB), kept valid.
    pub fn smaller(&self) -> Option<Self> {
        let vcpus = if self.vcpus <= 2 {
            1
        } else {
            (self.vcpus / 2).div_ceil(2) * 2
        };
        let memory_mb = (self.memory_mb / 2 / 256 * 256).max(3840);
        fit(vcpus, memory_mb).filter(|t| t != self)
    }

    /// Twice the size (at most 96 vCPUs), kept valid.
    pub fn larger(&self) -> Option<Self> {
        let vcpus = if self.vcpus == 1 {
            2
        } else {
            (self.vcpus * 2).min(96)
        };
        let memory_mb = self.memory_mb.saturating_mul(2);
        fit(vcpus, memory_mb).filter(|t| t != self)
    }
}

/// The nearest valid tier with `vcpus`, memory moved into the allowed range per vCPU.
fn fit(vcpus: u32, memory_mb: u32) -> Option<CustomTier> {
    let lo = (vcpus * 922).div_ceil(256) * 256;
    let hi = vcpus * 6656 / 256 * 256;
    let memory_mb = memory_mb.clamp(lo.max(3840), hi.max(3840));
    let t = CustomTier { vcpus, memory_mb };
    t.valid().then_some(t)
}

/// What right-sizing judges by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlSizingConfig {
    /// The utilisation looked at (default 7 days).
    #[serde(default = "week", with = "human_duration")]
    pub window: Duration,
    /// Both CPU and memory peaks below this: the instance is over-provisioned (default 0.35).
    #[serde(default = "low")]
    pub shrink_below: f64,
    /// CPU or memory peak above this: under-provisioned (default 0.85).
    #[serde(default = "high")]
    pub grow_above: f64,
    /// How long the instance may take to come back after the tier change (default 15 min).
    #[serde(default = "quarter", with = "human_duration")]
    pub restart_within: Duration,
}

fn week() -> Duration {
    Duration::from_secs(7 * 86_400)
}
fn low() -> f64 {
    0.35
}
fn high() -> f64 {
    0.85
}
fn quarter() -> Duration {
    Duration::from_secs(900)
}

impl Default for SqlSizingConfig {
    fn default() -> Self {
        Self {
            window: week(),
            shrink_below: low(),
            grow_above: high(),
            restart_within: quarter(),
        }
    }
}

impl RunbookConfig for SqlSizingConfig {
    fn validate(&self) -> Result<()> {
        let invalid = |f: &str, r: &str| Error::invalid_input("runbook-config", "load", f, r);
        if !(0.0 < self.shrink_below
            && self.shrink_below < self.grow_above
            && self.grow_above <= 1.0)
        {
            return Err(invalid(
                "shrink_below",
                "need 0 < shrink_below < grow_above <= 1",
            ));
        }
        if self.window.is_zero() || self.window > Duration::from_secs(42 * 86_400) {
            return Err(invalid(
                "window",
                "must be positive and at most 6 weeks (Monitoring keeps 6)",
            ));
        }
        if self.restart_within.is_zero() {
            return Err(invalid("restart_within", "must be positive"));
        }
        Ok(())
    }
}

/// Utilisation over the window: means and peaks of the aligned points.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SqlUtilisation {
    /// Mean CPU.
    pub cpu_mean: Option<f64>,
    /// Peak CPU.
    pub cpu_peak: Option<f64>,
    /// Mean memory.
    pub memory_mean: Option<f64>,
    /// Peak memory.
    pub memory_peak: Option<f64>,
    /// Points behind the figures.
    pub samples: u64,
}

/// What right-sizing suggests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierSuggestion {
    /// The tier now.
    pub current: String,
    /// The tier suggested; `None`: keep.
    pub suggested: Option<String>,
    /// Why.
    pub reason: String,
    /// The utilisation judged.
    pub utilisation: SqlUtilisation,
}

/// Judges `u` for `current` by `config`.
pub fn suggest(current: &str, u: &SqlUtilisation, config: &SqlSizingConfig) -> TierSuggestion {
    let keep = |reason: String| TierSuggestion {
        current: current.to_string(),
        suggested: None,
        reason,
        utilisation: u.clone(),
    };
    let (Some(cpu), Some(mem)) = (u.cpu_peak, u.memory_peak) else {
        return keep("no utilisation data: nothing to judge".into());
    };
    let Some(tier) = CustomTier::parse(current) else {
        return keep(format!("{current} is not a custom tier: resize it by hand"));
    };
    let pct = |x: f64| format!("{:.0} %", x * 100.0);
    let change = |to: Option<CustomTier>, why: String| match to {
        Some(t) => TierSuggestion {
            current: current.to_string(),
            suggested: Some(t.name()),
            reason: why,
            utilisation: u.clone(),
        },
        None => keep(format!("{why}, but no tier in that direction")),
    };
    if cpu > config.grow_above || mem > config.grow_above {
        change(
            tier.larger(),
            format!(
                "peaks CPU {} and memory {} exceed {}",
                pct(cpu),
                pct(mem),
                pct(config.grow_above)
            ),
        )
    } else if cpu < config.shrink_below && mem < config.shrink_below {
        change(
            tier.smaller(),
            format!(
                "peaks CPU {} and memory {} stay under {}",
                pct(cpu),
                pct(mem),
                pct(config.shrink_below)
            ),
        )
    } else {
        keep(format!(
            "peaks CPU {} and memory {}: the tier fits",
            pct(cpu),
            pct(mem)
        ))
    }
}

impl CloudSql {
    /// CPU and memory utilisation of this instance over the `window` ending `end`.
    pub async fn utilisation(
        &self,
        window: Duration,
        end: DateTime<Utc>,
    ) -> Result<SqlUtilisation> {
        let start = end - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        let (cpu, n1) = self.series(SQL_CPU, start, end).await?;
        let (mem, n2) = self.series(SQL_MEMORY, start, end).await?;
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let peak = |v: &[f64]| {
            v.iter()
                .copied()
                .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
        };
        Ok(SqlUtilisation {
            cpu_mean: mean(&cpu),
            cpu_peak: peak(&cpu),
            memory_mean: mean(&mem),
            memory_peak: peak(&mem),
            samples: n1.min(n2),
        })
    }

    async fn series(
        &self,
        metric: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<(Vec<f64>, u64)> {
        let project = &self.client.config().project;
        let root = &self.client.config().endpoints.monitoring;
        let mut url = self
            .client
            .url(root, &format!("v3/projects/{project}/timeSeries"))?;
        let filter = format!(
            "metric.type=\"{metric}\" AND resource.labels.database_id=\"{project}:{}\"",
            self.instance
        );
        url.query_pairs_mut()
            .append_pair("filter", &filter)
            .append_pair(
                "interval.startTime",
                &start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            )
            .append_pair(
                "interval.endTime",
                &end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            )
            .append_pair("aggregation.alignmentPeriod", "3600s")
            .append_pair("aggregation.perSeriesAligner", "ALIGN_MEAN");
        let page: Value = self.client.get("list_time_series", url, metric).await?;
        let mut values = Vec::new();
        for series in page["timeSeries"].as_array().into_iter().flatten() {
            for p in series["points"].as_array().into_iter().flatten() {
                let v = &p["value"]["doubleValue"];
                // A finite share only: a server's NaN or junk is no reading.
                if let Some(x) = v
                    .as_f64()
                    .filter(|x| x.is_finite() && (0.0..=1.0).contains(x))
                {
                    values.push(x);
                }
            }
        }
        let n = values.len() as u64;
        Ok((values, n))
    }

    /// Patches the tier (the instance restarts) and waits for the operation.
    pub async fn set_tier(&self, tier: &str) -> Result<()> {
        if CustomTier::parse(tier).is_none() && !tier.starts_with("db-") {
            return Err(Error::invalid_input(
                "gcp",
                "set_tier",
                "tier",
                format!("{tier:?} is not a tier"),
            ));
        }
        let url = self.url(&format!("instances/{}", self.instance))?;
        self.write(
            "patch_instance",
            Method::PATCH,
            url,
            Some(json!({"settings": {"tier": tier}})),
        )
        .await?;
        Ok(())
    }
}

/// Right-sizing of a Cloud SQL instance as a runbook: `utilisation` and `suggest` (a dry run
/// stops there), then — when a change is suggested — an approval gate, a check that a
/// maintenance window is open, the tier patched, and the instance verified running on it.
pub struct RightSizeSql {
    sql: CloudSql,
    config: SqlSizingConfig,
    windows: Vec<Window>,
}

impl RightSizeSql {
    /// Right-sizes `sql`'s instance; tier changes only inside one of `windows` (none: any time).
    pub fn new(sql: CloudSql, config: SqlSizingConfig, windows: Vec<Window>) -> Self {
        Self {
            sql,
            config,
            windows,
        }
    }

    fn build(&self) -> Result<Runbook> {
        self.config.validate()?;
        let mut rb =
            Runbook::new("right-size-sql", &self.sql.instance).with_category(Category::Maintenance);
        let (sql, config) = (self.sql.clone(), self.config.clone());
        let suggestion: Output<TierSuggestion> = rb.add_step(Step::read("suggest", move |ctx| {
            let (sql, config, now) = (sql.clone(), config.clone(), ctx.clock().now());
            Ok(Action::new(
                "GET timeSeries, instances/{instance}",
                json!({"window": human_duration::format(config.window)}),
                async move {
                    let u = sql.utilisation(config.window, now).await?;
                    let current = sql
                        .instance_info(None)
                        .await?
                        .settings
                        .tier
                        .unwrap_or_default();
                    Ok(suggest(&current, &u, &config))
                },
            ))
        }));
        let s_gate = suggestion.clone();
        rb = rb.gate_if(
            "approve-tier-change",
            "Change the instance's tier? It restarts: a few minutes of downtime.",
            move |ctx| Ok(ctx.get(&s_gate)?.suggested.is_some()),
        );
        let (sql, windows, s_patch) = (self.sql.clone(), self.windows.clone(), suggestion.clone());
        let restart = self.config.restart_within;
        rb = rb.step(
            Step::mutate("change-tier", move |ctx| {
                let s = ctx.get(&s_patch)?;
                let (sql, now) = (sql.clone(), ctx.clock().now());
                let open = windows.is_empty()
                    || windows.iter().any(|w| w.open_at(now).ok().flatten().is_some());
                let windows_text: Vec<String> = windows.iter().map(Window::describe).collect();
                Ok(Action::new(
                    "PATCH instances/{instance} settings.tier",
                    json!({"from": s.current, "to": s.suggested, "downtime": format!("up to {}", human_duration::format(restart))}),
                    async move {
                        let Some(to) = s.suggested else {
                            return Ok("the tier fits: nothing changed".to_string());
                        };
                        if !open {
                            return Err(Error::new("gcp", "right_size_sql", ErrorKind::Conflict {
                                detail: format!("no maintenance window is open ({})", windows_text.join("; ")),
                            }));
                        }
                        sql.set_tier(&to).await?;
                        Ok(format!("{} → {to}", s.current))
                    },
                ))
            }),
        );
        let (sql, s_verify) = (self.sql.clone(), suggestion);
        rb = rb.step(Step::read("verify", move |ctx| {
            let s = ctx.get(&s_verify)?;
            let (sql, clock, dry) = (sql.clone(), ctx.clock().clone(), ctx.is_dry_run());
            Ok(Action::new(
                "GET instances/{instance}",
                json!({"expect": s.suggested}),
                async move {
                    if dry {
                        // Nothing was changed to wait for.
                        return Ok("(dry run) nothing to wait for".to_string());
                    }
                    let want = s.suggested.unwrap_or(s.current);
                    let polled = poll_until(
                        clock.as_ref(),
                        restart,
                        Every::fixed(Duration::from_secs(15)),
                        sql.instance_info(None).await?,
                        |i| {
                            Ok((i.state.as_deref() == Some("RUNNABLE")
                                && i.settings.tier.as_deref() == Some(want.as_str()))
                            .then(|| i.clone()))
                        },
                        |_| sql.instance_info(None),
                    )
                    .await?;
                    match polled {
                        Polled::Done(i) => Ok(format!(
                            "running on {}",
                            i.settings.tier.unwrap_or_default()
                        )),
                        Polled::TimedOut(i) => Err(Error::new(
                            "gcp",
                            "right_size_sql",
                            ErrorKind::VerificationFailed {
                                check: "instance_back".into(),
                                detail: format!(
                                    "after {} the instance is {} on {}",
                                    human_duration::format(restart),
                                    i.state.unwrap_or_default(),
                                    i.settings.tier.unwrap_or_default()
                                ),
                            },
                        )),
                    }
                },
            ))
        }));
        Ok(rb)
    }
}

impl Procedure for RightSizeSql {
    type Summary = TierSuggestion;

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    fn summary(&self, report: &RunReport) -> Option<TierSuggestion> {
        report.output("suggest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A tier name from the server: any text reads without a panic, and a tier it accepts
        /// is valid, names itself back, and resizes only into valid tiers.
        #[test]
        fn tier_names_read_safely(name in "(db-custom-)?[0-9]{0,3}-?[0-9]{0,7}|.{0,30}") {
            if let Some(t) = CustomTier::parse(&name) {
                prop_assert!(t.valid());
                prop_assert_eq!(CustomTier::parse(&t.name()), Some(t));
                for next in [t.smaller(), t.larger()].into_iter().flatten() {
                    prop_assert!(next.valid(), "{:?} → {:?}", t, next);
                }
            }
        }
    }

    #[test]
    fn custom_tiers_parse_and_move_within_the_rules() {
        let t = CustomTier::parse("db-custom-4-15360").unwrap();
        assert_eq!(t.smaller().unwrap().name(), "db-custom-2-7680");
        assert_eq!(t.larger().unwrap().name(), "db-custom-8-30720");
        assert_eq!(
            CustomTier::parse("db-custom-2-7680")
                .unwrap()
                .smaller()
                .unwrap()
                .name(),
            "db-custom-1-3840"
        );
        assert_eq!(
            CustomTier::parse("db-custom-1-3840").unwrap().smaller(),
            None
        );
        for bad in [
            "db-f1-micro",
            "db-custom-3-7680",
            "db-custom-2-7000",
            "db-custom-x-1",
            "db-custom-2-100000",
        ] {
            assert_eq!(CustomTier::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn suggestions_follow_the_peaks() {
        let c = SqlSizingConfig::default();
        let u = |cpu, mem| SqlUtilisation {
            cpu_peak: Some(cpu),
            memory_peak: Some(mem),
            ..SqlUtilisation::default()
        };
        assert_eq!(
            suggest("db-custom-4-15360", &u(0.2, 0.3), &c)
                .suggested
                .as_deref(),
            Some("db-custom-2-7680")
        );
        assert_eq!(
            suggest("db-custom-4-15360", &u(0.9, 0.3), &c)
                .suggested
                .as_deref(),
            Some("db-custom-8-30720")
        );
        assert_eq!(
            suggest("db-custom-4-15360", &u(0.5, 0.3), &c).suggested,
            None
        );
        assert_eq!(suggest("db-f1-micro", &u(0.1, 0.1), &c).suggested, None);
        assert!(
            suggest("db-custom-4-15360", &SqlUtilisation::default(), &c)
                .reason
                .contains("no utilisation")
        );
    }
}
