//! The flannel control plane: the network config, leases and their key codec, the subnet choice,
//! subnet.env, the registry seam ([`manager`]) and the etcd registry behind it.

pub mod alloc;
pub mod backoff;
pub mod config;
pub mod env;
pub mod etcd;
pub mod kube;
pub mod lease;
pub mod manager;
pub mod peers;
