//! weft: flannel and the CNI plugins it needs, as one library behind one multi-call binary.
//!
//! Map:
//! - The CNI plugins. [`cni`] is the protocol only (env, config, results and their version
//!   conversion, errors, delegation, the `run` boundary, how DEL reads a config). Each plugin's
//!   `impl Plugin` sits next to its mechanics: [`bridge::plugin`], [`ptp::plugin`],
//!   [`ipam::plugin`] (host-local, over ranges, the allocator and the on-disk store shared with
//!   Go's host-local), [`flannel_cni::plugin`] (subnet.env, delegate config, saved configs) and
//!   [`loopback`]. [`iface`] is the container interface plumbing bridge and ptp share (veth
//!   pair, addresses and routes from a result, gateway addresses, CHECK); [`undo`] the rollback
//!   guard of ADD; [`process_arena`] the allocator of every applet but flanneld.
//! - flanneld: [`subnet`] (network config, lease keys and JSON, the etcd registry, the peers'
//!   rules), [`backend`] (udp, vxlan, host-gw), [`daemon`] (start-up, renewal, the data-plane
//!   thread, health), [`extiface`] (the external interface), [`firewall`] (flannel's masquerade
//!   and forward chains, and the plugins' masquerade and MAC spoof check), and [`docker_opts`]
//!   (subnet.env to docker options).
//! - The system layer: [`netlink`] (the only module that speaks rtnetlink), [`netns`]
//!   (namespace fds and the thread rule for entering them), [`sysctl`] (per-namespace
//!   /proc/sys), [`small_file`] (bounded reads of files a config names), [`atomic_file`]
//!   (write-then-rename), [`random`].
//!
//! The library prints nothing to stdout and never exits the process: stdout belongs to the
//! protocol, which the applets own.

pub mod atomic_file;
pub mod backend;
pub mod bridge;
pub mod cni;
pub mod daemon;
pub mod docker_opts;
pub mod extiface;
pub mod firewall;
pub mod flannel_cni;
pub mod iface;
pub mod ipam;
pub mod loopback;
pub mod netlink;
pub mod netns;
pub mod process_arena;
pub mod ptp;
pub mod random;
pub mod small_file;
pub mod subnet;
pub mod sysctl;
pub mod undo;
