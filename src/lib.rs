//! weft: flannel and the CNI plugins it needs, as one library behind one multi-call binary.
//!
//! Map:
//! - [`cni`]: the protocol only (env, config, results and their version conversion, errors,
//!   delegation, the `run` boundary).
//! - [`netlink`]: the only module that speaks rtnetlink.
//! - [`netns`]: namespace fds and the thread rule for entering them.
//! - [`ipam`]: address ranges, the allocator, and the on-disk store shared with Go's host-local.
//!
//! The library prints nothing to stdout and never exits the process: stdout belongs to the
//! protocol, which the applets own.

pub mod cni;
pub mod ipam;
pub mod netlink;
pub mod netns;
