//! Typed handles to step outputs: a later step names the earlier one by a value of the type it
//! produces, not by a string and a type repeated at every read.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// The output of the step named [`Output::step`], of type `T`.
///
/// Made by [`Runbook::add_step`](crate::engine::Runbook::add_step) (or [`Output::of`] for a
/// step added another way) and read with [`StepContext::get`](crate::engine::StepContext::get).
/// Within a run the value is handed over as it was produced, without a JSON round trip; after
/// a resume it is decoded from the journal. A handle whose `T` is not what the step produces is
/// an `InvalidInput` error naming the step, which a dry run reports for reads.
///
/// ```
/// use ops_core::engine::{Action, Output, Runbook, Step};
/// let mut rb = Runbook::new("demo", "api");
/// let version: Output<String> = rb.add_step(Step::read("version", |_| {
///     Ok(Action::new("read", serde_json::json!({}), async { Ok(String::from("1.2")) }))
/// }));
/// rb = rb.step(Step::read("use-it", move |ctx| {
///     let v = ctx.get(&version)?;
///     Ok(Action::new("print", serde_json::json!({ "version": v }), async { Ok(()) }))
/// }));
/// assert_eq!(rb.names(), ["version", "use-it"]);
/// ```
pub struct Output<T> {
    step: Arc<str>,
    _type: PhantomData<fn() -> T>,
}

impl<T> Output<T> {
    /// The output of the step named `step`.
    pub fn of(step: impl AsRef<str>) -> Self {
        Self {
            step: Arc::from(step.as_ref()),
            _type: PhantomData,
        }
    }

    /// The step's name.
    pub fn step(&self) -> &str {
        &self.step
    }
}

impl<T> Clone for Output<T> {
    fn clone(&self) -> Self {
        Self {
            step: self.step.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Output<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Output<{}>({})", std::any::type_name::<T>(), self.step)
    }
}
