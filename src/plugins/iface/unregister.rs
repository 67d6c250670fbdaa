//! DEL's deletion of a container veth, answered once the kernel has unregistered the pair
//! instead of once the deleting request returns.
//!
//! Why: the kernel unregisters a device under RTNL (closes it, unlists it, flushes its routes
//! and addresses, takes it off its bridge, announces RTM_DELLINK). Then, with RTNL released,
//! it keeps the deleting task in netdev_run_todo waiting for an RCU barrier and the device's
//! last references before freeing it. That wait measured 14-20 ms per veth pair on a busy
//! node, most of a CNI DEL (README, Benchmarks), and nothing a runtime can observe changes
//! during it: the name is free, both ends are gone from every dump, the port is off the bridge.
//!
//! So a forked child sends the request, and the caller returns when the kernel announces the
//! removal of the peer in the caller's namespace. A veth deletion unregisters the named end
//! first and its peer second, in one pass under RTNL, so the peer's RTM_DELLINK means both are
//! done. The child sits out the kernel's wait and exits; once the caller has exited, init (or
//! the runtime, if it is a subreaper) reaps it. Where the announcement cannot be had (the
//! link is no veth whose peer is here and points back, the notification socket overflowed,
//! fork or pidfd_open failed) the caller waits for the child's exit, or deletes in-process.

use crate::sys::netlink::{self, Error, Handle, Link, LinkEvents};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The child's exit status when its failure has no errno.
const EXIT_NO_ERRNO: i32 = 255;

/// `ip link del` of `link`, a link seen through `cont`. `cont` is consumed: after the fork, its
/// socket belongs to the child, and an answer read by the wrong process would be lost.
pub fn delete_link(cont: Handle, link: &Link) -> netlink::Result<()> {
    match watch_peer(link) {
        Some(watch) => delete_watched(cont, link.index, watch),
        None => cont.delete_link(link.index),
    }
}

/// The peer's index in the calling thread's namespace, and a notification socket opened before
/// the deletion so its announcement cannot be missed.
struct PeerWatch {
    peer: i32,
    events: LinkEvents,
}

fn watch_peer(link: &Link) -> Option<PeerWatch> {
    let peer = peer_in_this_namespace(link)?;
    let events = LinkEvents::deletions_of(peer.index).ok()?;
    Some(PeerWatch {
        peer: peer.index,
        events,
    })
}

/// The veth peer of `link` if it is in the calling thread's namespace. IFLA_LINK is an index
/// in the peer's namespace, which need not be this one, so the link found there must be a veth
/// whose own peer has `link`'s index.
pub fn peer_in_this_namespace(link: &Link) -> Option<Link> {
    if link.kind != "veth" || link.parent <= 0 {
        return None;
    }
    let peer = Handle::open().ok()?.link_by_index(link.parent).ok()?;
    (peer.kind == "veth" && peer.parent == link.index).then_some(peer)
}

fn delete_watched(cont: Handle, index: i32, mut watch: PeerWatch) -> netlink::Result<()> {
    // SAFETY: the child only sends one request on a socket it owns and exits with _exit; it
    // never returns into the caller's code. What it allocates comes from the process arena,
    // whose one atomic cursor no other thread can leave locked at the fork (musl's own
    // allocator could be left locked by a thread stopped inside it).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return cont.delete_link(index);
    }
    if pid == 0 {
        child(&cont, index);
    }
    drop(cont);
    let op = || format!("failed to delete link {index}");
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as RawFd;
    if raw < 0 {
        return wait_pid(pid, watch.peer, &op);
    }
    // SAFETY: `raw` is a descriptor pidfd_open just returned, owned by nobody else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut watching = true;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: watch.events.fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        if !watching {
            fds[0].fd = -1;
        }
        // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::new(op(), format!("poll: {e}")));
        }
        if fds[0].revents != 0 {
            match watch.events.saw_deleted(watch.peer) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                // Notifications were lost; the child's exit still tells.
                Err(_) => watching = false,
            }
        }
        if fds[1].revents != 0 {
            return reap(&pidfd, watch.peer, &op);
        }
    }
}

/// The forked child: delete, exit with the errno (0 for success).
fn child(cont: &Handle, index: i32) -> ! {
    // The runtime reads the plugin's stdout and stderr until every holder has closed them,
    // so the child keeps nothing but its netlink socket.
    close_all_but(cont.raw_fd());
    let code =
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cont.delete_link(index))) {
            Ok(Ok(())) => 0,
            Ok(Err(e)) => e
                .errno()
                .filter(|e| (1..EXIT_NO_ERRNO).contains(e))
                .unwrap_or(EXIT_NO_ERRNO),
            Err(_) => EXIT_NO_ERRNO,
        };
    // SAFETY: ends the child without running the caller's destructors or flushing its buffers.
    unsafe { libc::_exit(code) }
}

fn close_all_but(keep: RawFd) {
    let keep = keep as libc::c_uint;
    if keep > 0 {
        close_range(0, keep - 1);
    }
    close_range(keep + 1, libc::c_uint::MAX);
}

fn close_range(first: libc::c_uint, last: libc::c_uint) {
    // SAFETY: close_range only closes descriptors; nothing else in the child uses them.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0 as libc::c_uint) };
    if r < 0 {
        // Kernels before 5.9: the runtime's pipes are what must go.
        for fd in first..=last.min(2) {
            // SAFETY: as above.
            unsafe { libc::close(fd as RawFd) };
        }
    }
}

/// The outcome from the child's exit status, reaped through its pidfd.
fn reap(pidfd: &OwnedFd, peer: i32, op: &dyn Fn() -> String) -> netlink::Result<()> {
    // SAFETY: an all-zero siginfo_t is valid; waitid fills it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid with P_PIDFD on a pidfd we own, writing into `info`.
    let r = unsafe {
        libc::waitid(
            libc::P_PIDFD,
            pidfd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED,
        )
    };
    if r < 0 {
        // ECHILD: SIGCHLD is ignored (inherited through exec), and the kernel reaped the child.
        return outcome_unknown(peer, op);
    }
    // SAFETY: waitid succeeded for an exited child, so si_status is set.
    let status = unsafe { info.si_status() };
    exit_outcome(info.si_code == libc::CLD_EXITED, status, op)
}

/// The same for kernels without pidfd_open (before 5.3).
fn wait_pid(pid: libc::pid_t, peer: i32, op: &dyn Fn() -> String) -> netlink::Result<()> {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child, writing its status into `status`.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            let exited = libc::WIFEXITED(status);
            let code = if exited {
                libc::WEXITSTATUS(status)
            } else {
                libc::WTERMSIG(status)
            };
            return exit_outcome(exited, code, op);
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return outcome_unknown(peer, op);
        }
    }
}

fn exit_outcome(exited: bool, code: i32, op: &dyn Fn() -> String) -> netlink::Result<()> {
    match (exited, code) {
        (true, 0) => Ok(()),
        (true, EXIT_NO_ERRNO) => Err(Error::new(op(), "the deleting process failed")),
        (true, errno) => Err(Error::from_errno(op(), errno)),
        (false, signal) => Err(Error::new(
            op(),
            format!("the deleting process was killed by signal {signal}"),
        )),
    }
}

/// When the child's status is lost, the peer (here, in the caller's namespace) says whether the
/// pair was deleted: veth ends go together.
fn outcome_unknown(peer: i32, op: &dyn Fn() -> String) -> netlink::Result<()> {
    match Handle::open()?.link_by_index(peer) {
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
        Ok(_) => Err(Error::new(
            op(),
            "the link is still there after its deletion",
        )),
    }
}
