//! A runbook: steps, parallel groups and approval gates, in order, for one target.

use std::collections::HashSet;

use crate::engine::{Category, Output, Step};
use crate::{Error, Result};

/// Decides from earlier outputs whether a conditional gate asks at all.
pub type GateCondition =
    std::sync::Arc<dyn Fn(&crate::engine::StepContext) -> Result<bool> + Send + Sync>;

/// A point where the run waits for an [`crate::engine::Approver`].
#[derive(Clone)]
pub struct Gate {
    /// Its name (unique in the runbook).
    pub name: String,
    /// What the approver is asked.
    pub prompt: String,
    /// When set, the gate asks only if this returns true (it is recorded as skipped otherwise).
    pub condition: Option<GateCondition>,
    /// Who must approve; `None`: the runner's policy.
    pub policy: Option<crate::engine::ApprovalPolicy>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("name", &self.name)
            .field("prompt", &self.prompt)
            .field("conditional", &self.condition.is_some())
            .field("policy", &self.policy)
            .finish()
    }
}

/// One entry of a runbook.
#[derive(Debug, Clone)]
pub enum Item {
    /// A step.
    Step(Step),
    /// Steps run at the same time; the group fails if any fails.
    Parallel(Vec<Step>),
    /// An approval gate.
    Gate(Gate),
}

/// Steps to run, in order, against one target.
///
/// ```
/// use ops_core::engine::{Action, Runbook, Step};
/// let rb = Runbook::new("restart", "api")
///     .step(Step::read("check", |_| Ok(Action::new("probe", serde_json::Value::Null, async { Ok(true) }))))
///     .gate("go-ahead", "Restart api now?");
/// assert_eq!(rb.names(), vec!["check", "go-ahead"]);
/// assert!(rb.validate().is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct Runbook {
    pub(crate) name: String,
    pub(crate) target: String,
    pub(crate) items: Vec<Item>,
    pub(crate) category: Category,
    pub(crate) change: crate::engine::change::ChangeRules,
}

impl Runbook {
    /// An empty runbook `name` acting on `target`.
    pub fn new(name: impl Into<String>, target: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            target: target.into(),
            items: Vec::new(),
            category: Category::Other,
            change: crate::engine::change::ChangeRules::default(),
        }
    }

    /// The same runbook marked as a procedure of `category` (journaled with each run).
    pub fn with_category(mut self, category: Category) -> Self {
        self.category = category;
        self
    }

    /// What kind of procedure it is.
    pub fn category(&self) -> Category {
        self.category
    }

    /// Marks it as an emergency (runs while the line is stopped or a freeze is on) or not.
    /// Unmarked, rollbacks and incident procedures are emergencies and the rest are not.
    pub fn emergency(mut self, emergency: bool) -> Self {
        self.change.emergency = Some(emergency);
        self
    }

    /// Lets it run only inside the change-control window `window`; outside, it waits for the
    /// window or is refused, as `outside` says.
    pub fn window_only(
        mut self,
        window: &str,
        outside: crate::engine::change::OutsideWindow,
    ) -> Self {
        self.change.window = Some(super::change::WindowRule {
            window: window.into(),
            outside,
        });
        self
    }

    /// What it says about change control.
    pub fn change_rules(&self) -> &crate::engine::change::ChangeRules {
        &self.change
    }

    /// Whether any of its steps changes something (change control holds only these).
    pub fn is_mutating(&self) -> bool {
        self.items.iter().any(|item| match item {
            Item::Step(s) => s.kind.mutates(),
            Item::Parallel(steps) => steps.iter().any(|s| s.kind.mutates()),
            Item::Gate(_) => false,
        })
    }

    /// Appends a step.
    pub fn step(mut self, step: Step) -> Self {
        self.items.push(Item::Step(step));
        self
    }

    /// Appends a step and returns the typed handle later steps read its output by
    /// ([`StepContext::get`](crate::engine::StepContext::get)); `T` is what its action produces.
    pub fn add_step<T>(&mut self, step: Step) -> Output<T> {
        let output = Output::of(&step.name);
        self.items.push(Item::Step(step));
        output
    }

    /// Appends steps that run at the same time.
    pub fn parallel(mut self, steps: Vec<Step>) -> Self {
        self.items.push(Item::Parallel(steps));
        self
    }

    /// Appends an approval gate.
    pub fn gate(mut self, name: impl Into<String>, prompt: impl Into<String>) -> Self {
        self.items.push(Item::Gate(Gate {
            name: name.into(),
            prompt: prompt.into(),
            condition: None,
            policy: None,
        }));
        self
    }

    /// Appends an approval gate with its own [`ApprovalPolicy`](crate::engine::ApprovalPolicy)
    /// (several approvers, four eyes, a timeout and its default).
    pub fn gate_with(
        mut self,
        name: impl Into<String>,
        prompt: impl Into<String>,
        policy: crate::engine::ApprovalPolicy,
    ) -> Self {
        self.items.push(Item::Gate(Gate {
            name: name.into(),
            prompt: prompt.into(),
            condition: None,
            policy: Some(policy),
        }));
        self
    }

    /// Appends a gate that asks only when `condition` holds, judged from earlier outputs when the
    /// run reaches it (in dry runs too, since reads run there).
    pub fn gate_if<F>(
        mut self,
        name: impl Into<String>,
        prompt: impl Into<String>,
        condition: F,
    ) -> Self
    where
        F: Fn(&crate::engine::StepContext) -> Result<bool> + Send + Sync + 'static,
    {
        let condition: GateCondition = std::sync::Arc::new(condition);
        self.items.push(Item::Gate(Gate {
            name: name.into(),
            prompt: prompt.into(),
            condition: Some(condition),
            policy: None,
        }));
        self
    }

    /// Appends a step when `step` is `Some` (for optional parts of a runbook).
    pub fn maybe_step(self, step: Option<Step>) -> Self {
        match step {
            Some(s) => self.step(s),
            None => self,
        }
    }

    /// The runbook's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The target it acts on.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The entries.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Every step and gate name, in order (parallel steps in their group's order).
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for item in &self.items {
            match item {
                Item::Step(s) => out.push(s.name.clone()),
                Item::Parallel(steps) => out.extend(steps.iter().map(|s| s.name.clone())),
                Item::Gate(g) => out.push(g.name.clone()),
            }
        }
        out
    }

    /// Rejects an empty name or target, no steps, an empty parallel group, and names used
    /// twice (the journal keys everything by name).
    pub fn validate(&self) -> Result<()> {
        let invalid =
            |field: &str, reason: String| Error::invalid_input("engine", "runbook", field, reason);
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty".into()));
        }
        if self.target.trim().is_empty() {
            return Err(invalid("target", "must not be empty".into()));
        }
        if self.items.is_empty() {
            return Err(invalid("steps", "a runbook needs at least one step".into()));
        }
        if self
            .items
            .iter()
            .any(|i| matches!(i, Item::Parallel(s) if s.is_empty()))
        {
            return Err(invalid(
                "steps",
                "a parallel group needs at least one step".into(),
            ));
        }
        let mut seen = HashSet::new();
        for name in self.names() {
            if name.trim().is_empty() {
                return Err(invalid("steps", "a step or gate has an empty name".into()));
            }
            if !seen.insert(name.clone()) {
                return Err(invalid("steps", format!("{name} is used twice")));
            }
        }
        for item in &self.items {
            if let Item::Gate(Gate {
                name,
                policy: Some(p),
                ..
            }) = item
            {
                use crate::config::RunbookConfig;
                p.validate().map_err(|e| match e.kind() {
                    crate::ErrorKind::InvalidInput { field, reason } => {
                        invalid(&format!("gate {name}: {field}"), reason.clone())
                    }
                    _ => e,
                })?;
            }
        }
        Ok(())
    }
}
