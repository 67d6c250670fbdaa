//! The integration tests: one binary, one module per area, so the shared helpers compile once.
//! Most need root: they make their own network namespaces (see docs/testing.md).

mod common;
mod dist_support;

mod bridge;
mod bridge_concurrency;
mod bridge_go;
mod cnitool;
mod delegate;
mod demo;
mod dispatch;
mod dist;
mod dist_root;
mod dockerd;
mod firewall;
mod flannel_cni;
mod flanneld;
mod flanneld_etcd;
mod flanneld_nft;
mod flanneld_udp;
mod fuzz_regressions;
mod host_local;
mod host_local_go;
mod iface;
mod image;
mod kube_manifest;
mod loopback;
mod mk_docker_opts;
mod netlink;
mod netlink_bridge;
mod netlink_neigh;
mod podman;
mod portmap;
mod portmap_nft;
mod ptp;
