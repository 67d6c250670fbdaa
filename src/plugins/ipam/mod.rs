//! Address management for host-local: ranges (pure), the allocator (pure, over a store trait),
//! the on-disk store shared with Go's host-local (and its allocation-free directory scan), the
//! IPAM config, and resolv.conf parsing.

pub mod allocator;
pub mod config;
pub mod plugin;
pub mod range;
pub mod resolvconf;
mod scan;
pub mod store;
