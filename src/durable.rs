//! Disk flushes made where they overlap a plugin's other work, and waited for before it answers.
//!
//! Why: host-local's reservation files are synced so that a crash after a successful ADD can
//! neither lose nor blank them (the runtime's DEL after a reboot must still find its address).
//! A flush took 0.43 ms on the development VM's disk. The guarantee is about ADDs that
//! *answered*, so a flush is only recorded when the reservation is made ([`defer_sync`]) and
//! carried out later: by the thread that ran host-local beside the bridge's own work, once it
//! has handed its result over ([`adopt`], see `cni::delegate::EarlyAdd`), or else at [`wait`],
//! which every ADD passes before it answers. By the time an ADD reports success, everything it
//! reserved is on disk.
//!
//! No thread of its own: a std thread's start and end cost a bridge ADD about as much as the
//! flush itself (on the development VM each mprotect and munmap of its stack is a TLB
//! shoot-down to the other CPU, which traps to the hypervisor), measured in README, Benchmarks,
//! before the IPAM thread became a [`crate::helper_thread`], which maps nothing.

use crate::helper_thread::Helper;
use anyhow::{anyhow, Result};
use std::fs::File;
use std::sync::Mutex;

/// Files whose data must reach the disk before the ADD answers.
static DEFERRED: Mutex<Vec<File>> = Mutex::new(Vec::new());
/// Threads that flush [`DEFERRED`] once they have handed their result over.
static FLUSHERS: Mutex<Vec<Helper<std::io::Result<()>>>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Records that `f`'s data (fdatasync) must be on disk before the ADD answers.
pub fn defer_sync(f: File) {
    lock(&DEFERRED).push(f);
}

/// Flushes every file recorded so far, here; the first failure is returned, after all have
/// been tried.
pub fn flush_deferred() -> std::io::Result<()> {
    let files = std::mem::take(&mut *lock(&DEFERRED));
    let mut first = Ok(());
    for f in files {
        if let Err(e) = f.sync_data() {
            if first.is_ok() {
                first = Err(e);
            }
        }
    }
    first
}

/// Makes [`wait`] join `h`, a thread that calls [`flush_deferred`] after its other work.
pub fn adopt(h: Helper<std::io::Result<()>>) {
    lock(&FLUSHERS).push(h);
}

/// Joins the adopted flushing threads, then flushes whatever is still recorded; the first
/// failure is returned.
pub fn wait() -> Result<()> {
    let flushers = std::mem::take(&mut *lock(&FLUSHERS));
    let mut first = None;
    for h in flushers {
        let outcome = match h.join() {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => anyhow!(e).context("failed to sync a reservation to disk"),
            Err(_) => anyhow!("the thread syncing a reservation to disk panicked"),
        };
        first.get_or_insert(outcome);
    }
    if let Err(e) = flush_deferred() {
        first.get_or_insert(anyhow!(e).context("failed to sync a reservation to disk"));
    }
    first.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::FromRawFd;

    // One test, as the lists are process-wide. Store tests running alongside record flushes
    // of their own, which succeed, so they cannot change what is asserted here.
    #[test]
    fn flushes_are_made_once_and_failures_reported() {
        let path = std::env::temp_dir().join(format!("weft-durable-{}", std::process::id()));
        let mut f = File::create(&path).unwrap();
        f.write_all(b"x").unwrap();
        defer_sync(f);
        wait().unwrap();
        std::fs::remove_file(&path).unwrap();

        // fdatasync on a pipe fails (EINVAL): the failure comes out of wait, once.
        let pipe = || {
            let mut fds = [0; 2];
            // SAFETY: pipe writes two new descriptors into `fds`.
            assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
            // SAFETY: both descriptors were just created and are owned by nothing else.
            unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
        };
        let (r, w) = pipe();
        defer_sync(w);
        let e = wait().unwrap_err();
        assert!(format!("{e:#}").contains("failed to sync"), "{e:#}");
        wait().unwrap();

        // A failure met by an adopted thread comes out of wait too, and that thread took the
        // recorded file, so wait does not flush it again.
        let (r2, w2) = pipe();
        defer_sync(w2);
        adopt(crate::helper_thread::spawn("weft-test", flush_deferred).unwrap());
        let e = wait().unwrap_err();
        assert!(format!("{e:#}").contains("failed to sync"), "{e:#}");
        wait().unwrap();
        drop((r, r2));
    }
}
