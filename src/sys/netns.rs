//! Network namespaces: an owned fd opened by path, and work run inside one.
//!
//! Threading rule: `setns(2)` changes only the calling thread, and a thread left in another
//! namespace would leak it into whatever runs on it next. [`NetNs::run`] therefore switches the
//! calling thread, runs the closure, and switches back before returning or unwinding; if it
//! cannot switch back, the process aborts rather than go on in the wrong namespace. (It used to
//! run the closure on a fresh thread; start-up, scheduling and join of that thread cost a CNI
//! ADD about a millisecond each time on a busy host.) Sockets opened inside (netlink, for
//! instance) stay bound to that namespace and can be used from any thread afterwards. The
//! closure must not start threads of its own that outlive it, and must not block a tokio worker.

use anyhow::{anyhow, Context, Result};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
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
        // O_PATH first: opening a FIFO for reading blocks until a writer comes, and opening a
        // device node runs its driver's open. The file system is checked on the O_PATH fd,
        // and only a namespace file is then opened for real (setns refuses an O_PATH fd).
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH)
            .open(path)
        {
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
        let file = File::open(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .with_context(|| format!("failed to open netns {path:?}"))?;
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

    /// Runs `f` with the calling thread inside this namespace, then puts the thread back.
    pub fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> Result<T>,
    {
        let home = NetNs::current().context("failed to open own netns")?;
        enter(self.file.as_fd())
            .with_context(|| format!("failed to enter netns {:?}", self.path))?;
        let _back = ReturnHome(home);
        f()
    }
}

/// Puts the thread back into its own namespace when dropped, on return and on unwind alike.
struct ReturnHome(NetNs);

impl Drop for ReturnHome {
    fn drop(&mut self) {
        if let Err(e) = enter(self.0.file.as_fd()) {
            // Going on would run the rest of the process in the container's namespace.
            eprintln!("weft: cannot return to netns {:?}: {e}", self.0.path);
            std::process::abort();
        }
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

/// Switches the calling thread into the namespace `fd`; [`NetNs::run`] switches it back.
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

    /// A FIFO (or a device node) is refused at once: it is never opened for reading, which
    /// for a FIFO would block until a writer came.
    #[test]
    fn fifo_is_refused_without_blocking() {
        let fifo = std::env::temp_dir().join(format!("weft-fifo-netns-{}", std::process::id()));
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        let p = fifo.clone();
        std::thread::spawn(move || tx.send(NetNs::open(&p).map(|_| ()).map_err(|e| e.to_string())));
        let got = rx.recv_timeout(std::time::Duration::from_secs(5));
        if got.is_err() {
            // Let the blocked open finish so the thread ends, then fail.
            let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
        }
        std::fs::remove_file(&fifo).unwrap();
        let e = got.expect("opening a FIFO as a netns blocked").unwrap_err();
        assert!(e.contains("unknown FS magic"), "{e}");
        let e = NetNs::open("/dev/null").unwrap_err().to_string();
        assert!(e.contains("unknown FS magic"), "{e}");
    }

    #[test]
    fn own_namespace_is_current() {
        let ns = NetNs::current().unwrap();
        assert!(ns.is_current().unwrap());
        assert!(ns.run(|| NetNs::current()?.is_current()).unwrap());
    }
}
