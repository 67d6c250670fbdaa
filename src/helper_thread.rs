//! A helper thread for a short-lived applet, started without mapping or unmapping anything.
//!
//! Why: a `std::thread` maps its stack and a signal stack, and its end unmaps both. In a process
//! whose threads have run on two CPUs, each unmap of touched memory is a TLB shoot-down, an
//! inter-processor interrupt, which in a VM traps to the hypervisor (a bridge ADD's cost,
//! measured: README, Benchmarks). Where the
//! process arena is on, [`spawn`] runs the closure on a plain pthread whose stack is carved from
//! the arena (with a guard page) and never given back; elsewhere (flanneld, unit tests) it is a
//! `std::thread`.
//!
//! The closure's panic is caught on the thread and handed to [`Helper::join`], as std does.
//! Such a thread has no signal stack of its own, so a stack overflow there ends the process
//! with SIGSEGV rather than std's message.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::Result as ThreadResult;

/// The stack of a helper on the arena. host-local's ADD, the deepest work run on one, touched
/// four pages of it (16 KiB, TLS included; mincore after the join); only touched pages are
/// backed, so the margin costs nothing.
pub const STACK: usize = 512 << 10;

/// A running helper; joined by [`Helper::join`], or when dropped.
pub struct Helper<T: Send + 'static> {
    inner: Option<Inner<T>>,
}

enum Inner<T: Send + 'static> {
    Std(std::thread::JoinHandle<T>),
    Raw {
        thread: libc::pthread_t,
        packet: *mut Packet<T>,
    },
}

// SAFETY: the packet is reached by the helper only until it ends, and by the handle's owner
// only after pthread_join, which orders the two.
unsafe impl<T: Send + 'static> Send for Inner<T> {}

/// What the thread runs and where it leaves the outcome.
struct Packet<T> {
    work: Option<Box<dyn FnOnce() -> T + Send>>,
    outcome: Option<ThreadResult<T>>,
}

/// Runs `f` on a helper thread: on the arena as above when it is on, else a std thread named
/// `name`.
pub fn spawn<T, F>(name: &str, f: F) -> std::io::Result<Helper<T>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    match crate::process_arena::thread_stack(STACK) {
        Some(stack) => spawn_raw(stack, f),
        None => spawn_std(name, f),
    }
}

fn spawn_std<T, F>(name: &str, f: F) -> std::io::Result<Helper<T>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let h = std::thread::Builder::new().name(name.into()).spawn(f)?;
    Ok(Helper {
        inner: Some(Inner::Std(h)),
    })
}

/// `f` on a pthread running on `stack`, [`STACK`] bytes that stay this thread's until it ends.
fn spawn_raw<T, F>(stack: *mut u8, f: F) -> std::io::Result<Helper<T>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let packet = Box::into_raw(Box::new(Packet::<T> {
        work: Some(Box::new(f)),
        outcome: None,
    }));
    match start_raw(stack, packet) {
        Ok(thread) => Ok(Helper {
            inner: Some(Inner::Raw { thread, packet }),
        }),
        Err(e) => {
            // SAFETY: no thread was started, so the packet is still only ours.
            drop(unsafe { Box::from_raw(packet) });
            Err(e)
        }
    }
}

fn start_raw<T: Send + 'static>(
    stack: *mut u8,
    packet: *mut Packet<T>,
) -> std::io::Result<libc::pthread_t> {
    // SAFETY: plain C structs, initialised by pthread_attr_init before any other use.
    let mut attr: libc::pthread_attr_t = unsafe { std::mem::zeroed() };
    let mut thread: libc::pthread_t = unsafe { std::mem::zeroed() };
    // SAFETY: `attr` is valid for writes; the stack is STACK bytes this process owns for
    // good; `packet` outlives the thread (it is freed only after pthread_join).
    let rc = unsafe {
        libc::pthread_attr_init(&mut attr);
        let mut rc = libc::pthread_attr_setstack(&mut attr, stack.cast(), STACK);
        if rc == 0 {
            rc = libc::pthread_create(&mut thread, &attr, run::<T>, packet.cast());
        }
        libc::pthread_attr_destroy(&mut attr);
        rc
    };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(thread)
}

extern "C" fn run<T>(packet: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: `spawn` passes a live packet that nothing else touches until pthread_join.
    let packet = unsafe { &mut *packet.cast::<Packet<T>>() };
    if let Some(work) = packet.work.take() {
        // Unwinding out of an extern "C" function would abort; the panic goes to `join`.
        packet.outcome = Some(catch_unwind(AssertUnwindSafe(work)));
    }
    std::ptr::null_mut()
}

impl<T: Send + 'static> Helper<T> {
    /// Waits for the thread; its value, or the payload of its panic.
    pub fn join(mut self) -> ThreadResult<T> {
        self.wait()
    }

    fn wait(&mut self) -> ThreadResult<T> {
        match self.inner.take() {
            Some(Inner::Std(h)) => h.join(),
            Some(Inner::Raw { thread, packet }) => {
                // SAFETY: a thread started by `spawn` and joined only here, once.
                let rc = unsafe { libc::pthread_join(thread, std::ptr::null_mut()) };
                assert_eq!(rc, 0, "pthread_join of a helper thread failed");
                // SAFETY: the thread has ended, so the packet is ours again.
                let packet = unsafe { Box::from_raw(packet) };
                packet.outcome.unwrap_or_else(|| Err(lost()))
            }
            None => Err(lost()),
        }
    }
}

fn lost() -> Box<dyn Any + Send> {
    Box::new("the helper thread left no outcome")
}

impl<T: Send + 'static> Drop for Helper<T> {
    /// Joins: the thread may still be using what it was given.
    fn drop(&mut self) {
        if self.inner.is_some() {
            let _ = self.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// A stack as `spawn` gets one, from an arena of the tests' own: the process's arena stays
    /// off in unit tests.
    fn arena_stack() -> *mut u8 {
        static ARENA: crate::process_arena::Arena = crate::process_arena::Arena::new();
        static ON: std::sync::Once = std::sync::Once::new();
        ON.call_once(|| assert!(ARENA.map(16 << 20)));
        ARENA.thread_stack(STACK).expect("a stack from the arena")
    }

    #[test]
    fn raw_helper_runs_on_its_arena_stack_and_returns_its_value() {
        let stack = arena_stack();
        let h = spawn_raw(stack, || {
            let local = 0u8;
            std::hint::black_box(&local) as *const u8 as usize
        })
        .unwrap();
        let at = h.join().unwrap();
        let range = stack as usize..stack as usize + STACK;
        assert!(range.contains(&at), "{at:x} not in {range:x?}");
    }

    #[test]
    fn panics_reach_join_on_both_kinds() {
        let raw = spawn_raw(arena_stack(), || -> u8 { panic!("raw boom") }).unwrap();
        let e = raw.join().unwrap_err();
        assert_eq!(e.downcast_ref::<&str>(), Some(&"raw boom"));
        let std = spawn_std("weft-test", || -> u8 { panic!("std boom") }).unwrap();
        let e = std.join().unwrap_err();
        assert_eq!(e.downcast_ref::<&str>(), Some(&"std boom"));
    }

    #[test]
    fn dropping_a_helper_waits_for_it() {
        for raw in [true, false] {
            let done = Arc::new(AtomicBool::new(false));
            let d = done.clone();
            let work = move || {
                std::thread::sleep(Duration::from_millis(50));
                d.store(true, Ordering::SeqCst);
            };
            let h = if raw {
                spawn_raw(arena_stack(), work).unwrap()
            } else {
                spawn_std("weft-test", work).unwrap()
            };
            drop(h);
            assert!(done.load(Ordering::SeqCst), "raw: {raw}");
        }
    }

    #[test]
    fn the_page_below_an_arena_stack_is_a_guard() {
        let guard = arena_stack().wrapping_sub(crate::process_arena::page_size());
        // A forked child touches it; only that child may die of it.
        // SAFETY: the child only writes one byte and exits; it calls nothing that could
        // need a lock another thread of the harness held at the fork.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: deliberately a write to the guard page; reaching _exit means none.
            unsafe {
                std::ptr::write_volatile(guard, 1);
                libc::_exit(0);
            }
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSEGV,
            "status {status:#x}"
        );
    }
}
