//! Container interface plumbing shared by the bridge and ptp plugins: the veth pair
//! ([`veth`]), applying a result's addresses and routes inside the container ([`configure`]),
//! and gateway addresses on host devices ([`gateway`]).
//!
//! Netlink work is done from the calling thread with handles opened in each namespace; only
//! /proc/sys writes for the container run on a thread inside it (see [`crate::netns`]).

pub mod check;
pub mod configure;
pub mod gateway;
pub mod veth;

pub use configure::configure_iface;
pub use gateway::ensure_addr;
pub use veth::{delete_link_collect_addrs, setup_veth, wait_oper_up, VethPair};
