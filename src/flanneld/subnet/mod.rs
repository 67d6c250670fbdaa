//! The flannel control plane: the network config, leases and their key codec, the subnet choice,
//! subnet.env, and the etcd registry that holds them.

pub mod alloc;
pub mod config;
pub mod env;
pub mod etcd;
pub mod lease;
pub mod peers;
