//! The on-disk reservation store, interchangeable with Go's host-local (`backend/disk`):
//!
//! ```text
//! <dataDir>/<network>/lock                 flock(LOCK_EX) on this file is the mutex
//! <dataDir>/<network>/<ip>                 "<containerID>\r\n<ifname>", one file per address
//! <dataDir>/<network>/last_reserved_ip.<i> the last address reserved in range set i
//! ```
//!
//! Both implementations take the same flock, so weft and Go can share one directory.
//! A reservation is written to a temporary file, then `link(2)`ed to its final name, which
//! fails if the name exists: readers never see a half-written reservation. Crash safety
//! (beyond Go's): the store keeps the files it linked and flushes them before the ADD answers
//! ([`DiskStore::sync`]), so a crash after a successful ADD never leaves an empty
//! reservation that the runtime's DEL would not match. (A crash during an ADD can, as with Go;
//! that ADD never answered.) `last_reserved_ip.<i>` is only a hint and is rewritten in place.
//! The temporary file holds only the owner, not the address, so [`DiskStore::prepare`] writes
//! it before the lock is taken: concurrent ADDs then wait for each other's link only.

use super::allocator::AddressStore;
use super::scan::{self, Entry, Visit};
use crate::sys::small_file;
use anyhow::{Context, Result};
use std::ffi::{CStr, OsStr};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

const LAST_IP_PREFIX: &str = "last_reserved_ip.";
const TMP_PREFIX: &str = ".weft-tmp.";

/// One reservation found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub ip: IpAddr,
    pub container_id: String,
    /// `None` for legacy files that hold only the container ID.
    pub ifname: Option<String>,
}

/// The reservations of one network, and its lock.
#[derive(Debug)]
pub struct DiskStore {
    dir: PathBuf,
    lock: File,
    /// A temporary file holding an owner line, ready to be linked by `reserve`.
    prepared: Option<Prepared>,
    /// The reservations made through this store whose data [`DiskStore::sync`] has yet to
    /// flush.
    unsynced: Vec<File>,
}

#[derive(Debug)]
struct Prepared {
    owner: String,
    path: PathBuf,
    /// Kept open to flush once linked.
    file: File,
}

impl Drop for DiskStore {
    fn drop(&mut self) {
        if let Some(p) = self.prepared.take() {
            let _ = fs::remove_file(p.path);
        }
    }
}

/// Holds the network's flock until dropped.
#[must_use]
pub struct Locked<'a> {
    store: &'a mut DiskStore,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // SAFETY: flock on an fd we own; unlocking cannot corrupt memory.
        unsafe { libc::flock(self.store.lock.as_raw_fd(), libc::LOCK_UN) };
    }
}

impl std::ops::Deref for Locked<'_> {
    type Target = DiskStore;
    fn deref(&self) -> &DiskStore {
        self.store
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut DiskStore {
        self.store
    }
}

fn owner_line(id: &str, ifname: &str) -> String {
    format!("{}\r\n{}", id.trim(), ifname)
}

/// True if a reservation holding `data` (trimmed) belongs to the attachment whose owner line is
/// `want`: that line, or a legacy file holding the container id alone.
fn owned_by(data: &str, want: &str, id: &str) -> bool {
    data == want || data == id.trim()
}

/// The address a reservation file is named after, if its name is one.
fn ip_named(name: &CStr) -> Option<IpAddr> {
    name.to_str().ok()?.parse().ok()
}

impl DiskStore {
    /// Opens (creating if needed) `<data_dir>/<network>` and its lock file. `network` must already
    /// be a validated network name, so it cannot climb out of `data_dir`.
    pub fn open(data_dir: &Path, network: &str) -> Result<DiskStore> {
        let dir = data_dir.join(network);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)
            .with_context(|| format!("failed to create IPAM directory {dir:?}"))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .read(true)
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&lock_path)
            .with_context(|| format!("failed to open lock file {lock_path:?}"))?;
        Ok(DiskStore {
            dir,
            lock,
            prepared: None,
            unsynced: Vec::new(),
        })
    }

    /// Flushes the data of every reservation this store made, so that one an ADD reported
    /// survives a crash whole: the runtime's DEL after a reboot must still find its address.
    /// Called before the ADD answers.
    pub fn sync(&mut self) -> Result<()> {
        for f in std::mem::take(&mut self.unsynced) {
            f.sync_data()
                .context("failed to sync a reservation to disk")?;
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the network's exclusive lock (shared with Go's host-local).
    pub fn lock(&mut self) -> Result<Locked<'_>> {
        loop {
            // SAFETY: flock on an fd we own.
            let rc = unsafe { libc::flock(self.lock.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(Locked { store: self });
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e).context("failed to lock IPAM store");
            }
        }
    }

    /// One pass over the store: `owner(name, content)` for every file that may be a
    /// reservation (content trimmed; files that are not UTF-8 are no reservation), `tmp(name)`
    /// for every temporary file.
    fn scan(&self, mut owner: impl FnMut(&CStr, &str), mut tmp: impl FnMut(&CStr)) -> Result<()> {
        let dir =
            File::open(&self.dir).with_context(|| format!("failed to open {:?}", self.dir))?;
        let visit = |name: &CStr| {
            let b = name.to_bytes();
            if b == b"lock" || b.starts_with(LAST_IP_PREFIX.as_bytes()) {
                Visit::Skip
            } else if b.starts_with(TMP_PREFIX.as_bytes()) {
                Visit::Name
            } else {
                Visit::Read
            }
        };
        scan::scan(dir.as_fd(), visit, |e| match e {
            Entry::File(name, data) => {
                if let Ok(data) = std::str::from_utf8(data) {
                    owner(name, data.trim());
                }
            }
            Entry::Name(name) => tmp(name),
        })
        .with_context(|| format!("failed to read {:?}", self.dir))
    }

    /// Every reservation whose file name is an address.
    pub fn reservations(&self) -> Result<Vec<Reservation>> {
        let mut out = Vec::new();
        self.scan(
            |name, data| {
                let Some(ip) = ip_named(name) else {
                    return;
                };
                let (id, ifname) = match data.split_once("\r\n") {
                    Some((id, ifname)) => (id.to_string(), Some(ifname.to_string())),
                    None => (data.to_string(), None),
                };
                out.push(Reservation {
                    ip,
                    container_id: id,
                    ifname,
                });
            },
            |_| {},
        )?;
        Ok(out)
    }

    /// Writes the owner file for (id, ifname) ahead of [`AddressStore::reserve`]; call it
    /// before taking the lock so the file's creation is not made under it.
    pub fn prepare(&mut self, id: &str, ifname: &str) -> Result<()> {
        let owner = owner_line(id, ifname);
        self.prepared = Some(self.owner_file(owner, false)?);
        Ok(())
    }

    /// Removes temporary files left by a writer that died mid-reservation: those named after a
    /// process that no longer exists. (A live ADD's prepared file is written outside the lock,
    /// so holding the lock does not make every temporary file an orphan.)
    pub fn sweep_orphans(&mut self) -> Result<usize> {
        let rd =
            fs::read_dir(&self.dir).with_context(|| format!("failed to read {:?}", self.dir))?;
        Ok(rd
            .flatten()
            .filter(|e| self.sweep_if_orphan(&e.file_name()))
            .count())
    }

    /// Removes the temporary file `name` if its writer is gone; true if it did.
    fn sweep_if_orphan(&self, name: &OsStr) -> bool {
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TMP_PREFIX)) else {
            return false;
        };
        let writer = rest.split('.').next().and_then(|p| p.parse::<i32>().ok());
        !writer.is_some_and(process_alive) && fs::remove_file(self.dir.join(name)).is_ok()
    }

    /// Releases everything held by (id, ifname); if nothing matched, releases legacy id-only
    /// reservations. Returns how many were released. Takes the lock itself, and only for the
    /// removal: reading every reservation file is done before, as only this attachment's own
    /// ADD (which the spec forbids to run alongside its DEL) could give it another address
    /// meanwhile. Under the lock each file is read again, since its address may have been
    /// released and taken by another container since.
    pub fn release_by_id(&mut self, id: &str, ifname: &str) -> Result<usize> {
        let want = owner_line(id, ifname);
        let legacy = id.trim();
        let (mut owned, mut owned_legacy, mut temporaries) = (Vec::new(), Vec::new(), Vec::new());
        self.scan(
            |name, data| {
                if data == want {
                    owned.push(self.dir.join(os_name(name)));
                } else if data == legacy {
                    owned_legacy.push(self.dir.join(os_name(name)));
                }
            },
            |name| temporaries.push(os_name(name).to_os_string()),
        )?;
        for t in &temporaries {
            self.sweep_if_orphan(t);
        }
        let owner = if owned.is_empty() {
            owned = owned_legacy;
            legacy
        } else {
            want.as_str()
        };
        if owned.is_empty() {
            return Ok(0);
        }
        let _locked = self.lock()?;
        let mut released = 0;
        for path in owned {
            if !small_file::read_to_string(&path).is_ok_and(|d| d.trim() == owner) {
                continue;
            }
            match fs::remove_file(&path) {
                Ok(()) => released += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("failed to remove {path:?}")),
            }
        }
        Ok(released)
    }

    /// Releases `ip` if (id, ifname) holds it: the undo of one reservation.
    pub fn release_ip(&mut self, ip: IpAddr, id: &str, ifname: &str) -> Result<()> {
        let path = self.dir.join(ip.to_string());
        match small_file::read_to_string(&path) {
            Ok(data) if data.trim() == owner_line(id, ifname) => {
                fs::remove_file(&path).with_context(|| format!("failed to release {ip}"))
            }
            _ => Ok(()),
        }
    }

    /// True if (id, ifname), or a legacy reservation of `id`, holds any address.
    pub fn has_id(&self, id: &str, ifname: &str) -> Result<bool> {
        let want = owner_line(id, ifname);
        let mut found = false;
        self.scan(|_, d| found |= owned_by(d, &want, id), |_| {})?;
        Ok(found)
    }

    /// Removes a reservation found by [`DiskStore::reservations`].
    pub fn remove(&mut self, ip: IpAddr) -> Result<()> {
        let path = self.dir.join(ip.to_string());
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("failed to release {ip}"))
            }
            _ => Ok(()),
        }
    }

    fn tmp_path(&self) -> PathBuf {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join(format!("{TMP_PREFIX}{}.{n}", std::process::id()))
    }

    /// The owner file for `owner`: the prepared one unless `fresh`, else a new one.
    fn owner_file(&mut self, owner: String, fresh: bool) -> Result<Prepared> {
        match self.prepared.take() {
            Some(p) if p.owner == owner && !fresh => return Ok(p),
            Some(p) => {
                let _ = fs::remove_file(p.path);
            }
            None => {}
        }
        let (path, file) = self.write_tmp(owner.as_bytes())?;
        Ok(Prepared { owner, path, file })
    }

    /// Writes `data` to a fresh temporary file in the store, returning it still open.
    fn write_tmp(&self, data: &[u8]) -> Result<(PathBuf, File)> {
        let tmp = self.tmp_path();
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("failed to create {tmp:?}"))?;
        if let Err(e) = f.write_all(data) {
            let _ = fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("failed to write {tmp:?}"));
        }
        Ok((tmp, f))
    }
}

fn os_name(name: &CStr) -> &OsStr {
    OsStr::from_bytes(name.to_bytes())
}

/// True if a process with this pid exists (EPERM: it exists, owned by someone else).
fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

impl AddressStore for DiskStore {
    fn reserve(&mut self, id: &str, ifname: &str, ip: IpAddr, range_id: usize) -> Result<bool> {
        let owner = owner_line(id, ifname);
        let target = self.dir.join(ip.to_string());
        let mut fresh = false;
        loop {
            let tmp = self.owner_file(owner.clone(), fresh)?;
            match fs::hard_link(&tmp.path, &target) {
                Ok(()) => {
                    let _ = fs::remove_file(&tmp.path);
                    // Flushed by `sync`, after the lock is released: on a filesystem whose
                    // fsync takes the inode lock (ext4 without a journal), the next link and
                    // unlink would otherwise wait for it.
                    self.unsynced.push(tmp.file);
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // Taken: keep the owner file for the next candidate.
                    self.prepared = Some(tmp);
                    return Ok(false);
                }
                // The prepared file was swept as an orphan (by a writer in another pid
                // namespace, which cannot see this process): write it again, once.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !fresh => fresh = true,
                Err(e) => {
                    let _ = fs::remove_file(&tmp.path);
                    return Err(e).with_context(|| format!("failed to reserve {ip}"));
                }
            }
        }
        // The round-robin pointer is only a hint (an unreadable one restarts from the range
        // start), so it is rewritten in place, as Go does, rather than replaced: no reader sees
        // it half-written under the lock, and a fresh inode per ADD is what the store's
        // filesystem pays most for under concurrent ADDs. Overwritten, then cut to length,
        // rather than opened with O_TRUNC: emptying the file frees its block (with a discard,
        // on a filesystem mounted with one) and the write allocates a new one, all under the
        // lock.
        let dst = self.dir.join(format!("{LAST_IP_PREFIX}{range_id}"));
        let text = ip.to_string();
        let last = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&dst)
            .and_then(|f| {
                f.write_all_at(text.as_bytes(), 0)?;
                f.set_len(text.len() as u64)
            })
            .with_context(|| format!("failed to write {dst:?}"));
        if let Err(e) = last {
            // Keep the store as it was: without the pointer the reservation is still valid, but
            // the caller sees an error and must not be left holding an address it won't use.
            let _ = fs::remove_file(&target);
            return Err(e);
        }
        Ok(true)
    }

    fn last_reserved_ip(&self, range_id: usize) -> Option<IpAddr> {
        let path = self.dir.join(format!("{LAST_IP_PREFIX}{range_id}"));
        small_file::read_to_string(&path).ok()?.trim().parse().ok()
    }

    fn get_by_id(&self, id: &str, ifname: &str) -> Result<Vec<IpAddr>> {
        let want = owner_line(id, ifname);
        let mut ips = Vec::new();
        self.scan(
            |name, d| {
                if owned_by(d, &want, id) {
                    ips.extend(ip_named(name));
                }
            },
            |_| {},
        )?;
        Ok(ips)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("weft-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn every_reservation_is_flushed_and_a_failed_flush_is_an_error() {
        let root = tempdir("sync");
        let mut s = DiskStore::open(&root, "mynet").unwrap();
        for ip in ["10.1.2.2", "10.1.2.3"] {
            assert!(s.reserve("c", "eth0", ip.parse().unwrap(), 0).unwrap());
        }
        assert_eq!(s.unsynced.len(), 2);
        s.sync().unwrap();
        assert!(s.unsynced.is_empty());
        // fdatasync on a pipe fails (EINVAL): the error reaches the caller.
        let mut fds = [0; 2];
        // SAFETY: pipe fills the two descriptors it creates.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: descriptors just created and owned by nobody else.
        let (r, w) = unsafe {
            use std::os::fd::FromRawFd;
            (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1]))
        };
        s.unsynced.extend([r, w]);
        let e = s.sync().unwrap_err();
        assert!(
            format!("{e:#}").contains("failed to sync a reservation"),
            "{e:#}"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn layout_matches_go() {
        let root = tempdir("layout");
        let mut s = DiskStore::open(&root, "mynet").unwrap();
        let ip: IpAddr = "10.1.2.2".parse().unwrap();
        assert!(s.reserve("  dummy\n ", "eth0", ip, 0).unwrap());
        assert!(!s.reserve("other", "eth0", ip, 0).unwrap());
        let dir = root.join("mynet");
        assert_eq!(
            fs::read_to_string(dir.join("10.1.2.2")).unwrap(),
            "dummy\r\neth0"
        );
        assert_eq!(
            fs::read_to_string(dir.join("last_reserved_ip.0")).unwrap(),
            "10.1.2.2"
        );
        assert!(dir.join("lock").exists());
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        // The losing reservation keeps its owner file for its next candidate, until
        // the store is dropped.
        let held = s.prepared.as_ref().map(|p| p.path.clone()).unwrap();
        assert_eq!(names.len(), 4, "{names:?}");
        assert!(held.exists());
        let v6: IpAddr = "2001:db8:1::2".parse().unwrap();
        assert!(s.reserve("dummy", "eth0", v6, 1).unwrap());
        assert!(dir.join("2001:db8:1::2").exists());
        assert_eq!(s.get_by_id("dummy", "eth0").unwrap().len(), 2);
        assert!(s.has_id("dummy", "eth0").unwrap());
        assert_eq!(s.release_by_id("dummy", "eth0").unwrap(), 2);
        assert!(!s.has_id("dummy", "eth0").unwrap());
        drop(s);
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.starts_with(TMP_PREFIX)),
            "no temporary files left: {names:?}"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn orphaned_temporaries_are_swept_by_release() {
        let root = tempdir("orphan");
        let mut s = DiskStore::open(&root, "n").unwrap();
        // What a writer killed between writing and linking leaves behind.
        // (pid_max is at most 2^22, so no process has this pid.)
        let orphan = s.dir().join(format!("{TMP_PREFIX}999999999.0"));
        fs::write(&orphan, "dead\r\neth0").unwrap();
        // A live writer's prepared file is not an orphan, lock or no lock.
        let mut live = DiskStore::open(&root, "n").unwrap();
        live.prepare("alive", "eth0").unwrap();
        let prepared = live.prepared.as_ref().unwrap().path.clone();
        assert!(
            s.reservations().unwrap().is_empty(),
            "an orphan is no reservation"
        );
        assert!(s.get_by_id("dead", "eth0").unwrap().is_empty());
        s.release_by_id("someone", "eth0").unwrap();
        assert!(!orphan.exists());
        assert!(prepared.exists());
        // Removed under it anyway (a sweeper in another pid namespace): written again.
        fs::remove_file(&prepared).unwrap();
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        assert!(live.reserve("alive", "eth0", ip, 0).unwrap());
        assert_eq!(live.get_by_id("alive", "eth0").unwrap(), [ip]);
        drop(live);
        let left: Vec<_> = fs::read_dir(s.dir())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(TMP_PREFIX))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn round_robin_pointer_is_rewritten_to_its_new_length() {
        let root = tempdir("pointer");
        let mut s = DiskStore::open(&root, "n").unwrap();
        let last = s.dir().join("last_reserved_ip.0");
        for (id, ip) in [("a", "10.0.0.100"), ("b", "10.0.0.7"), ("c", "10.0.0.8")] {
            assert!(s.reserve(id, "eth0", ip.parse().unwrap(), 0).unwrap());
            assert_eq!(fs::read_to_string(&last).unwrap(), ip);
            assert_eq!(s.last_reserved_ip(0), Some(ip.parse().unwrap()));
        }
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn legacy_and_undo() {
        let root = tempdir("legacy");
        let mut s = DiskStore::open(&root, "n").unwrap();
        fs::write(s.dir().join("10.0.0.9"), "dummy").unwrap();
        assert!(s.has_id("dummy", "eth0").unwrap());
        let r = s.reservations().unwrap();
        assert_eq!(r[0].ifname, None);
        assert_eq!(s.release_by_id("dummy", "eth0").unwrap(), 1);
        let ip: IpAddr = "10.0.0.3".parse().unwrap();
        assert!(s.reserve("a", "eth0", ip, 0).unwrap());
        s.release_ip(ip, "b", "eth0").unwrap();
        assert!(s.dir().join("10.0.0.3").exists(), "not b's to release");
        s.release_ip(ip, "a", "eth0").unwrap();
        assert!(!s.dir().join("10.0.0.3").exists());
        fs::remove_dir_all(&root).unwrap();
    }
}
