//! Sizes in the platforms' notation (`"500m"`, `"2"` CPUs; `"512Mi"`, `"4Gi"` memory), compared
//! by value so `"1"` and `"1000m"` are the same step, and the decision right-sizing makes.

use serde::{Deserialize, Serialize};

use super::super::config::invalid;
use super::RightSizeConfig;
use crate::Result;
use crate::contracts::ScaleSpec;

/// What one change scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    /// CPU per instance.
    Cpu,
    /// Memory per instance.
    Memory,
    /// Maximum instances.
    MaxInstances,
}

/// One resource from one size to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Which.
    pub resource: Resource,
    /// Before, in the platform's notation.
    pub from: String,
    /// After.
    pub to: String,
}

impl Change {
    fn new(resource: Resource, from: impl ToString, to: impl ToString) -> Self {
        Self {
            resource,
            from: from.to_string(),
            to: to.to_string(),
        }
    }
}

/// The value of a CPU quantity in cores (`"500m"` → 0.5, `"2"` → 2), as
/// [`crate::quantity::cores_of`] reads it; `None` for zero.
pub fn cpu_cores(q: &str) -> Option<f64> {
    crate::quantity::cores_of(q).filter(|v| *v > 0.0)
}

/// The value of a memory quantity in bytes (`"512Mi"`, `"4Gi"`, `"1G"`, `"1048576"`), as
/// [`crate::quantity::bytes_of`] reads it; `None` for zero.
pub fn memory_bytes(q: &str) -> Option<f64> {
    crate::quantity::bytes_of(q)
        .filter(|b| *b > 0)
        .map(|b| b as f64)
}

/// Checks that `steps` parse and strictly increase.
pub(super) fn check_steps(
    field: &str,
    steps: &[String],
    value: fn(&str) -> Option<f64>,
) -> Result<()> {
    let mut last = 0.0;
    for (i, s) in steps.iter().enumerate() {
        let v = value(s)
            .ok_or_else(|| invalid(&format!("{field}[{i}]"), format!("{s:?} is not a size")))?;
        if v <= last {
            return Err(invalid(
                &format!("{field}[{i}]"),
                "steps must grow, smallest first",
            ));
        }
        last = v;
    }
    Ok(())
}

/// The step after (`up`) or before the current size, if the steps have one.
fn neighbour<'a>(
    steps: &'a [String],
    current: &str,
    value: fn(&str) -> Option<f64>,
    up: bool,
) -> Option<&'a String> {
    let now = value(current)?;
    if up {
        steps.iter().find(|s| value(s).is_some_and(|v| v > now))
    } else {
        steps
            .iter()
            .rev()
            .find(|s| value(s).is_some_and(|v| v < now))
    }
}

/// Changes that scale `current` up for hot CPU and/or memory: each hot resource takes its next
/// vertical step; a hot resource without one (none configured, or at the top) adds instances,
/// when `step_instances` allows.
pub(super) fn up(
    c: &RightSizeConfig,
    current: &ScaleSpec,
    cpu_hot: bool,
    memory_hot: bool,
) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut needs_instances = false;
    for (hot, resource, steps, size, value) in [
        (
            cpu_hot,
            Resource::Cpu,
            &c.cpu_steps,
            &current.cpu,
            cpu_cores as fn(&str) -> Option<f64>,
        ),
        (
            memory_hot,
            Resource::Memory,
            &c.memory_steps,
            &current.memory,
            memory_bytes,
        ),
    ] {
        if !hot {
            continue;
        }
        match size
            .as_deref()
            .and_then(|s| neighbour(steps, s, value, true).map(|n| (s, n)))
        {
            Some((from, to)) => changes.push(Change::new(resource, from, to)),
            None => needs_instances = true,
        }
    }
    if needs_instances
        && c.step_instances > 0
        && let Some(max) = current.max_instances
    {
        changes.push(Change::new(
            Resource::MaxInstances,
            max,
            max.saturating_add(c.step_instances),
        ));
    }
    changes
}

/// Changes that scale an idle `current` down: one vertical step of each configured resource,
/// or instances when no vertical step is configured.
pub(super) fn down(c: &RightSizeConfig, current: &ScaleSpec) -> Vec<Change> {
    let mut changes = Vec::new();
    for (resource, steps, size, value) in [
        (
            Resource::Cpu,
            &c.cpu_steps,
            &current.cpu,
            cpu_cores as fn(&str) -> Option<f64>,
        ),
        (
            Resource::Memory,
            &c.memory_steps,
            &current.memory,
            memory_bytes,
        ),
    ] {
        if let Some(from) = size.as_deref()
            && let Some(to) = neighbour(steps, from, value, false)
        {
            changes.push(Change::new(resource, from, to));
        }
    }
    let vertical = !c.cpu_steps.is_empty() || !c.memory_steps.is_empty();
    if !vertical
        && c.step_instances > 0
        && let Some(max) = current.max_instances.filter(|m| *m > 1)
    {
        let to = max.saturating_sub(c.step_instances).max(1);
        changes.push(Change::new(Resource::MaxInstances, max, to));
    }
    changes
}

/// The scale request that makes `changes`.
pub(super) fn spec_of(changes: &[Change]) -> ScaleSpec {
    let mut spec = ScaleSpec::default();
    for ch in changes {
        match ch.resource {
            Resource::Cpu => spec.cpu = Some(ch.to.clone()),
            Resource::Memory => spec.memory = Some(ch.to.clone()),
            Resource::MaxInstances => spec.max_instances = ch.to.parse().ok(),
        }
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_compare_by_value() {
        assert_eq!(cpu_cores("1000m"), cpu_cores("1"));
        assert_eq!(cpu_cores("500m"), Some(0.5));
        assert_eq!(memory_bytes("1Gi"), memory_bytes("1024Mi"));
        assert_eq!(memory_bytes("1G"), Some(1e9));
        for bad in ["", "m", "-1", "0", "NaN", "inf", "1Xi", "Gi"] {
            assert_eq!(memory_bytes(bad), None, "{bad}");
            assert_eq!(cpu_cores(bad), None, "{bad}");
        }
    }
}
