//! The CNI plugins, each `impl Plugin` next to its mechanics: [`bridge`], [`ptp`], [`loopback`],
//! [`ipam`] (host-local), [`flannel_cni`] (the flannel meta-plugin), [`portmap`] (host ports,
//! chained after one of them); with what bridge and ptp
//! share, [`iface`] (the container's interface, its addresses and routes, CHECK), and [`undo`],
//! the rollback guard of ADD.

pub mod bridge;
pub mod flannel_cni;
pub mod iface;
pub mod ipam;
pub mod loopback;
pub mod portmap;
pub mod ptp;
pub mod undo;
