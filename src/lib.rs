//! weft: flannel and the CNI plugins it needs, as one library behind one multi-call binary.
//!
//! Map:
//! - [`cni`]: the CNI protocol (env, config, results and their version conversion, errors,
//!   delegation, the `run` boundary, how DEL reads a config) and the runtime's side of it
//!   (`runtime`: conflists, the chain, the result cache; what `cnitool` runs).
//! - [`plugins`]: the CNI plugins, each `impl Plugin` next to its mechanics: bridge, ptp,
//!   loopback, ipam (host-local, with the on-disk store shared with Go's host-local),
//!   flannel_cni (the flannel meta-plugin), portmap (host ports, chained), and what bridge and
//!   ptp share (iface, undo).
//! - [`flanneld`]: subnet (config, leases, the etcd registry, the peers' rules, subnet.env),
//!   backend (udp, vxlan, host-gw), daemon, extiface, and docker_opts (mk-docker-opts).
//! - [`sys`]: the system layer: netlink, netns, sysctl, firewall (iptables/ip6tables/nft by
//!   exec), conntrack (deleting entries over ctnetlink), small_file, atomic_file, random, and process_arena (the allocator of every applet
//!   but flanneld).
//!
//! The library prints nothing to stdout and never exits the process: stdout belongs to the
//! protocol, which the applets own.

pub mod cni;
pub mod flanneld;
pub mod plugins;
pub mod sys;
