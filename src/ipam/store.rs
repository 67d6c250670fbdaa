//! The on-disk reservation store, interchangeable with Go's host-local (`backend/disk`):
//!
//! ```text
//! <dataDir>/<network>/lock                 flock(LOCK_EX) on this file is the mutex
//! <dataDir>/<network>/<ip>                 "<containerID>\r\n<ifname>", one file per address
//! <dataDir>/<network>/last_reserved_ip.<i> the last address reserved in range set i
//! ```
//!
//! Both implementations take the same flock, so weft and Go can share one directory.
//! Crash safety (beyond Go's): a reservation is written to a temporary file, synced, then
//! `link(2)`ed to its final name, which fails if the name exists. The name therefore appears
//! atomically with its full content: a crash never leaves an empty or half-written reservation
//! that no DEL would match. `last_reserved_ip.<i>` is replaced by rename for the same reason.

use super::allocator::Store;
use anyhow::{Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
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
        Ok(DiskStore { dir, lock })
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

    /// Every file that may be a reservation, with its trimmed content.
    fn entries(&self) -> Result<Vec<(PathBuf, String, String)>> {
        let mut out = Vec::new();
        let rd =
            fs::read_dir(&self.dir).with_context(|| format!("failed to read {:?}", self.dir))?;
        for entry in rd {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "lock" || name.starts_with(LAST_IP_PREFIX) || name.starts_with(TMP_PREFIX) {
                continue;
            }
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let Ok(data) = fs::read_to_string(entry.path()) else {
                continue;
            };
            out.push((entry.path(), name, data.trim().to_string()));
        }
        Ok(out)
    }

    /// Every reservation whose file name is an address.
    pub fn reservations(&self) -> Result<Vec<Reservation>> {
        Ok(self
            .entries()?
            .into_iter()
            .filter_map(|(_, name, data)| {
                let ip: IpAddr = name.parse().ok()?;
                let (id, ifname) = match data.split_once("\r\n") {
                    Some((id, ifname)) => (id.to_string(), Some(ifname.to_string())),
                    None => (data, None),
                };
                Some(Reservation {
                    ip,
                    container_id: id,
                    ifname,
                })
            })
            .collect())
    }

    /// Removes temporary files left by a writer that died mid-reservation. Reservations are only
    /// written under the lock, so with the lock held every temporary file is an orphan.
    pub fn sweep_orphans(&mut self) -> Result<usize> {
        let mut n = 0;
        let rd =
            fs::read_dir(&self.dir).with_context(|| format!("failed to read {:?}", self.dir))?;
        for entry in rd.flatten() {
            if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX)
                && fs::remove_file(entry.path()).is_ok()
            {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Releases everything held by (id, ifname); if nothing matched, releases legacy id-only
    /// reservations. Returns how many were released. Call with the lock held.
    pub fn release_by_id(&mut self, id: &str, ifname: &str) -> Result<usize> {
        self.sweep_orphans()?;
        let entries = self.entries()?;
        let want = owner_line(id, ifname);
        let mut released = remove_matching(&entries, &want)?;
        if released == 0 {
            released = remove_matching(&entries, id.trim())?;
        }
        Ok(released)
    }

    /// Releases `ip` if (id, ifname) holds it: the undo of one reservation.
    pub fn release_ip(&mut self, ip: IpAddr, id: &str, ifname: &str) -> Result<()> {
        let path = self.dir.join(ip.to_string());
        match fs::read_to_string(&path) {
            Ok(data) if data.trim() == owner_line(id, ifname) => {
                fs::remove_file(&path).with_context(|| format!("failed to release {ip}"))
            }
            _ => Ok(()),
        }
    }

    /// True if (id, ifname), or a legacy reservation of `id`, holds any address.
    pub fn has_id(&self, id: &str, ifname: &str) -> Result<bool> {
        let want = owner_line(id, ifname);
        Ok(self
            .entries()?
            .iter()
            .any(|(_, _, d)| *d == want || d == id.trim()))
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

    /// Writes `data` to a fresh temporary file in the store, synced to disk if `durable`.
    fn write_tmp(&self, data: &[u8], durable: bool) -> Result<PathBuf> {
        let tmp = self.tmp_path();
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("failed to create {tmp:?}"))?;
        let res = f
            .write_all(data)
            .and_then(|_| if durable { f.sync_data() } else { Ok(()) });
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("failed to write {tmp:?}"));
        }
        Ok(tmp)
    }
}

fn remove_matching(entries: &[(PathBuf, String, String)], want: &str) -> Result<usize> {
    let mut n = 0;
    for (path, _, data) in entries {
        if data == want {
            match fs::remove_file(path) {
                Ok(()) => n += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("failed to remove {path:?}")),
            }
        }
    }
    Ok(n)
}

impl Store for DiskStore {
    fn reserve(&mut self, id: &str, ifname: &str, ip: IpAddr, range_id: usize) -> Result<bool> {
        let tmp = self.write_tmp(owner_line(id, ifname).as_bytes(), true)?;
        let target = self.dir.join(ip.to_string());
        let linked = fs::hard_link(&tmp, &target);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(e).with_context(|| format!("failed to reserve {ip}")),
        }
        // The round-robin pointer is only a hint (an unreadable one restarts from the range
        // start), so it is replaced atomically but not synced.
        let last = self.write_tmp(ip.to_string().as_bytes(), false);
        let last = last.and_then(|tmp| {
            let dst = self.dir.join(format!("{LAST_IP_PREFIX}{range_id}"));
            fs::rename(&tmp, &dst).map_err(|e| {
                let _ = fs::remove_file(&tmp);
                anyhow::Error::new(e).context(format!("failed to write {dst:?}"))
            })
        });
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
        fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    fn get_by_id(&self, id: &str, ifname: &str) -> Result<Vec<IpAddr>> {
        let want = owner_line(id, ifname);
        Ok(self
            .entries()?
            .into_iter()
            .filter(|(_, _, d)| *d == want || d == id.trim())
            .filter_map(|(_, name, _)| name.parse().ok())
            .collect())
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
        assert_eq!(names.len(), 3, "no temporary files left: {names:?}");
        let v6: IpAddr = "2001:db8:1::2".parse().unwrap();
        assert!(s.reserve("dummy", "eth0", v6, 1).unwrap());
        assert!(dir.join("2001:db8:1::2").exists());
        assert_eq!(s.get_by_id("dummy", "eth0").unwrap().len(), 2);
        assert!(s.has_id("dummy", "eth0").unwrap());
        assert_eq!(s.release_by_id("dummy", "eth0").unwrap(), 2);
        assert!(!s.has_id("dummy", "eth0").unwrap());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn orphaned_temporaries_are_swept_by_release() {
        let root = tempdir("orphan");
        let mut s = DiskStore::open(&root, "n").unwrap();
        // What a writer killed between writing and linking leaves behind.
        let orphan = s.dir().join(format!("{TMP_PREFIX}4242.0"));
        fs::write(&orphan, "dead\r\neth0").unwrap();
        assert!(
            s.reservations().unwrap().is_empty(),
            "an orphan is no reservation"
        );
        assert!(s.get_by_id("dead", "eth0").unwrap().is_empty());
        s.release_by_id("someone", "eth0").unwrap();
        assert!(!orphan.exists());
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
