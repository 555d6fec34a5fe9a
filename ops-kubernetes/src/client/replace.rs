//! Read, change, write back with the `resourceVersion` read: the optimistic concurrency of
//! every write this crate makes.

use ops_core::{Error, ErrorKind, Result};

use super::PROVIDER;

/// Applies `change` to what `read` returns and writes it with `write` (which sends the
/// `resourceVersion` read). On `Conflict` the object is read again:
/// - it already shows the change (our own write, retried after a lost reply): done;
/// - only what `same` ignores moved (the status a controller writes all through a rollout):
///   the change is applied to the fresh object and written again, at most three times;
/// - what `same` compares moved (someone else's edit): `Conflict`, and nothing is
///   overwritten.
pub(crate) async fn replace<T, R, RF, W, WF>(
    operation: &'static str,
    target: &str,
    read: R,
    write: W,
    change: impl Fn(&mut T) -> Result<()>,
    same: impl Fn(&T, &T) -> bool,
) -> Result<T>
where
    T: Clone,
    R: Fn() -> RF,
    RF: Future<Output = Result<T>>,
    W: Fn(T) -> WF,
    WF: Future<Output = Result<T>>,
{
    let mut base = read().await?;
    for _ in 0..3 {
        let mut changed = base.clone();
        change(&mut changed)?;
        let err = match write(changed).await {
            Err(e) if matches!(e.kind(), ErrorKind::Conflict { .. }) => e,
            other => return other,
        };
        let fresh = read().await?;
        let mut again = fresh.clone();
        change(&mut again)?;
        if same(&again, &fresh) {
            return Ok(fresh);
        }
        if !same(&fresh, &base) {
            return Err(Error::new(
                PROVIDER,
                operation,
                ErrorKind::Conflict {
                    detail: format!(
                        "{target} was changed by someone else meanwhile ({err}); nothing was written"
                    ),
                },
            ));
        }
        base = fresh;
    }
    Err(Error::new(
        PROVIDER,
        operation,
        ErrorKind::Conflict {
            detail: format!("{target} kept changing: three writes refused"),
        },
    ))
}
