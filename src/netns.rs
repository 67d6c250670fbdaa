//! Network namespaces: an owned fd opened by path, and work run inside one.
//!
//! Threading rule: `setns(2)` changes only the calling thread, and a thread that has switched
//! would leak the namespace into whatever runs on it next. So weft never switches a thread it
//! keeps: [`NetNs::run`] starts a short-lived thread, switches it, runs the closure and lets the
//! thread end. Sockets opened there (netlink, for instance) stay bound to that namespace and can be
//! used from any thread afterwards. Never call setns on the daemon's main thread or a tokio worker.

use anyhow::{anyhow, Context, Result};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const NSFS_MAGIC: i64 = 0x6e73_6673;
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// The namespace path does not exist (DEL treats this as already cleaned up).
#[derive(Debug)]
pub struct NotFound(pub PathBuf);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "failed to Statfs {:?}: no such file or directory",
            self.0
        )
    }
}

impl std::error::Error for NotFound {}

/// True if `err` says the namespace path is gone.
pub fn is_not_found(err: &anyhow::Error) -> bool {
    err.chain().any(|c| c.downcast_ref::<NotFound>().is_some())
}

/// [`NetNs::open`] with the context the reference plugins give (`failed to open netns "PATH":
/// ...`); [`is_not_found`] still recognises a missing path through it.
pub fn open_container(path: &str) -> Result<NetNs> {
    NetNs::open(path).with_context(|| format!("failed to open netns {path:?}"))
}

/// An open network namespace.
#[derive(Debug)]
pub struct NetNs {
    file: File,
    path: PathBuf,
}

impl NetNs {
    /// Opens the namespace at `path`, which must live on nsfs or procfs (as Go's `ns.GetNS`
    /// requires): a path that is missing gives [`NotFound`], any other file is an error.
    pub fn open(path: impl AsRef<Path>) -> Result<NetNs> {
        let path = path.as_ref();
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(NotFound(path.to_path_buf()).into())
            }
            Err(e) => return Err(e).with_context(|| format!("failed to open netns {path:?}")),
        };
        let mut st: libc::statfs = unsafe_zeroed_statfs();
        // SAFETY: `file` is an open fd and `st` is a properly sized, writable statfs.
        let rc = unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("failed to Statfs {path:?}"));
        }
        #[allow(clippy::unnecessary_cast)]
        let magic = st.f_type as i64;
        if magic != NSFS_MAGIC && magic != PROC_SUPER_MAGIC {
            return Err(anyhow!("unknown FS magic on {path:?}: {magic:x}"));
        }
        Ok(NetNs {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The namespace the calling thread is in.
    pub fn current() -> Result<NetNs> {
        NetNs::open("/proc/thread-self/ns/net")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True if this is the namespace the calling thread is in.
    pub fn is_current(&self) -> Result<bool> {
        let here =
            std::fs::metadata("/proc/thread-self/ns/net").context("failed to stat own netns")?;
        let there = self.file.metadata().context("failed to stat netns")?;
        Ok(here.dev() == there.dev() && here.ino() == there.ino())
    }

    /// Runs `f` on a fresh thread that has entered this namespace, and returns its result.
    pub fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> Result<T> + Send,
        T: Send,
    {
        let fd = self.file.as_fd();
        std::thread::scope(|s| {
            s.spawn(move || -> Result<T> {
                enter(fd).with_context(|| format!("failed to enter netns {:?}", self.path))?;
                f()
            })
            .join()
            .map_err(|_| anyhow!("thread inside netns {:?} panicked", self.path))?
        })
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

fn unsafe_zeroed_statfs() -> libc::statfs {
    // SAFETY: statfs is a plain C struct for which all-zero bytes is a valid value.
    unsafe { std::mem::zeroed() }
}

/// Switches the calling thread into the namespace `fd`. Only for threads that end afterwards.
fn enter(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    // SAFETY: setns takes a valid namespace fd and a flag; it affects only this thread.
    let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_path_is_not_found_and_plain_file_is_rejected() {
        let e = NetNs::open("/nonexistent/weft-netns").unwrap_err();
        assert!(is_not_found(&e));
        let plain = std::env::temp_dir().join(format!("weft-not-a-netns-{}", std::process::id()));
        std::fs::write(&plain, b"x").unwrap();
        let e = NetNs::open(&plain).unwrap_err();
        std::fs::remove_file(&plain).unwrap();
        assert!(!is_not_found(&e));
        assert!(e.to_string().contains("unknown FS magic"), "{e}");
    }

    #[test]
    fn own_namespace_is_current() {
        let ns = NetNs::current().unwrap();
        assert!(ns.is_current().unwrap());
        assert!(ns.run(|| NetNs::current()?.is_current()).unwrap());
    }
}
