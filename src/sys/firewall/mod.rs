//! Packet filter rules: the CNI plugins' masquerade and MAC spoof check, and flanneld's
//! masquerade and forward chains ([`flannel`], and [`flannel_nft`] in nftables mode).
//!
//! Everything here runs the `iptables`, `ip6tables` and `nft` programs with an argv, never
//! through a shell, exactly as the reference Go plugins do: the rules must look the same in
//! `iptables -S` and `nft list ruleset` whichever implementation installed them, so that one can
//! tear down what the other set up.
//!
//! Namespaces: these programs act on the network namespace of the thread that spawns them.
//! To work inside a container or test namespace, call these functions inside
//! [`crate::sys::netns::NetNs::run`]; the child process inherits the thread's namespace.

mod exec;
pub mod flannel;
pub mod flannel_nft;
pub mod iptables;
pub mod masq;
pub mod nft;
pub mod spoofcheck;

pub use exec::CommandError;
pub use iptables::Iptables;
pub use masq::{setup_ip_masq, teardown_ip_masq, MasqBackend};
pub use nft::Nft;
