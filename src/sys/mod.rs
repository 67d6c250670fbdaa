//! The system layer both parts stand on: [`netlink`] (the only module that speaks rtnetlink),
//! [`netns`] (namespace fds and the thread rule for entering them), [`sysctl`] (per-namespace
//! /proc/sys), [`firewall`] (rules by exec'ing iptables, ip6tables and nft: the plugins'
//! masquerade and MAC spoof check, flanneld's chains), [`conntrack`] (deleting conntrack entries
//! over ctnetlink, for portmap), [`small_file`] (bounded reads of files a
//! config names), [`atomic_file`] (replace a file so readers see old or new), [`random`], and
//! [`process_arena`], the allocator of every applet but flanneld.

pub mod atomic_file;
pub mod conntrack;
pub mod firewall;
pub mod netlink;
pub mod netns;
pub mod process_arena;
pub mod random;
pub mod small_file;
pub mod sysctl;
