//! The lab: a flannel testbed in network namespaces, written once for the integration tests
//! (which use this library), `make demo` and `make bench` (which drive the `weft-lab` command,
//! src/main.rs, from their scripts).
//!
//! - the underlay, namespace `PREFIXul`: bridge `ul0` at 192.168.77.254/24 and a real etcd
//!   listening there ([`etcd`]);
//! - hosts, namespaces `PREFIXNAME`, each plugged into ul0 by a veth (`eth0`, 192.168.77.N/24,
//!   default route via .254, forwarding on) and given a directory for its subnet.env and logs
//!   ([`host`]);
//! - pods, namespaces `PREFIXHOST-pN`, behind a host's `cni0` bridge, made by hand with address
//!   .N of the host's subnet ([`host::Host::add_pod_at`]); pods made through the CNI plugins are
//!   the caller's.
//!
//! Everything the lab makes is written to its ledger ([`ledger`]) before it is made, and one
//! teardown removes it all, processes first: from [`Lab`]'s `Drop` in the tests, or from
//! `weft-lab down STATE` when the demo or a benchmark ends, however it ends. Nothing is made
//! in the machine's own namespace, and no packet leaves the namespaces made here.

pub mod etcd;
pub mod host;
pub mod lab;
pub mod ledger;
pub mod netns;
pub mod proc;
pub mod temp_dir;
pub mod wait;

pub use etcd::{Etcd, EtcdOptions};
pub use host::Host;
pub use lab::{Lab, LabOptions, ETCD_IP, UNDERLAY};
pub use ledger::Ledger;
pub use netns::{require_root, unique, Netns};
pub use temp_dir::TempDir;
pub use wait::{wait_for, wait_for_then};
