//! Rollback for ADD: each step that changes the system records how to take it back; if the ADD
//! fails (an early return, a `?`, a panic unwinding) the guard runs the undo steps in reverse
//! order when it is dropped. A successful ADD calls [`Undo::commit`] last.
//!
//! Undo steps are best effort: a failure is logged, and the remaining steps still run, because
//! leaving less behind is better than stopping at the first problem.

/// One recorded step: what it undoes, and how.
type Step<'a> = (String, Box<dyn FnOnce() -> anyhow::Result<()> + 'a>);

/// The guard. Steps may borrow from the caller's scope (`'a`).
#[derive(Default)]
pub struct Undo<'a> {
    steps: Vec<Step<'a>>,
}

impl<'a> Undo<'a> {
    pub fn new() -> Undo<'a> {
        Undo { steps: Vec::new() }
    }

    /// Records how to take back the step just done.
    pub fn push(&mut self, what: impl Into<String>, f: impl FnOnce() -> anyhow::Result<()> + 'a) {
        self.steps.push((what.into(), Box::new(f)));
    }

    /// The ADD succeeded: keep everything.
    pub fn commit(mut self) {
        self.steps.clear();
    }

    /// Runs the undo steps now, newest first.
    pub fn rollback(&mut self) {
        while let Some((what, f)) = self.steps.pop() {
            if let Err(e) = f() {
                log::warn!("rollback: {what}: {e:#}");
            }
        }
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        self.rollback();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn runs_in_reverse_unless_committed() {
        let log = RefCell::new(Vec::new());
        {
            let mut u = Undo::new();
            u.push("a", || {
                log.borrow_mut().push("a");
                Ok(())
            });
            u.push("b", || {
                log.borrow_mut().push("b");
                anyhow::bail!("b failed")
            });
            u.push("c", || {
                log.borrow_mut().push("c");
                Ok(())
            });
        }
        assert_eq!(*log.borrow(), ["c", "b", "a"]);
        log.borrow_mut().clear();
        let mut u = Undo::new();
        u.push("a", || {
            log.borrow_mut().push("a");
            Ok(())
        });
        u.commit();
        assert!(log.borrow().is_empty());
    }
}
