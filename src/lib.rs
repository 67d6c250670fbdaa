//! weft: flannel and the CNI plugins it needs, as one library behind one multi-call binary.
//!
//! Map:
//! - [`cni`]: the protocol only (env, config, results and their version conversion, errors,
//!   delegation, the `run` boundary).
//! - [`netlink`]: the only module that speaks rtnetlink.
//! - [`netns`]: namespace fds and the thread rule for entering them.
//! - [`ipam`]: address ranges, the allocator, and the on-disk store shared with Go's host-local.
//! - [`iface`]: container interface plumbing shared by bridge and ptp (veth pair, addresses and
//!   routes from a result, gateway addresses).
//! - [`bridge`], [`ptp`]: the library side of those plugins (config, host-side plumbing).
//! - [`flannel_cni`]: the flannel CNI meta-plugin (subnet.env, delegate config, saved configs).
//! - [`small_file`]: bounded reads of files a config names or another program writes.
//! - [`sysctl`]: per-namespace /proc/sys; [`undo`]: the rollback guard of ADD; [`durable`]:
//!   reservation flushes made before an ADD answers.
//! - [`process_arena`]: the allocator of every applet but flanneld; [`helper_thread`]: threads
//!   such an applet starts without mapping a stack.
//!
//! The library prints nothing to stdout and never exits the process: stdout belongs to the
//! protocol, which the applets own.

pub mod atomic_file;
pub mod backend;
pub mod bridge;
pub mod cni;
pub mod daemon;
pub mod docker_opts;
pub mod durable;
pub mod extiface;
pub mod firewall;
pub mod flannel_cni;
pub mod helper_thread;
pub mod iface;
pub mod ipam;
pub mod netlink;
pub mod netns;
pub mod process_arena;
pub mod ptp;
pub mod random;
pub mod small_file;
pub mod subnet;
pub mod sysctl;
pub mod undo;
