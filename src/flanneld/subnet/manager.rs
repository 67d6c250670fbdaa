//! The seam between flanneld and the registry that hands out subnets: the network config, our
//! own lease and the others' leases. The etcd registry ([`super::etcd`]) is one; the daemon, the
//! backends and subnet.env see only this.

use anyhow::Result;
use std::future::Future;
use std::sync::mpsc::Sender;
use std::time::Instant;

use super::config::NetworkConfig;
use super::env::PreviousEnv;
use super::lease::{Lease, LeaseAttrs, LeaseKey};

/// A lease this host holds.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnLease {
    pub key: LeaseKey,
    pub attrs: LeaseAttrs,
    /// The registry's handle for renewing it (etcd's lease ID); 0 when it is never renewed
    /// (an etcd reservation without a TTL).
    pub lease_id: i64,
    /// When the registry drops it unless renewed (`None`: never).
    pub expires: Option<Instant>,
}

/// An event from the lease watch.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseEvent {
    /// Every lease there is, after the first listing or a fresh start of the watch.
    Snapshot(Vec<Lease>),
    Added(Lease),
    Removed(LeaseKey),
}

/// A failure no retry fixes (every subnet leased, say): flanneld stops with it.
#[derive(Debug)]
pub struct Permanent(pub String);

impl std::fmt::Display for Permanent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Permanent {}

/// What flanneld needs from its registry. Every method may fail for a while (the registry is
/// unreachable); the daemon retries, except for a [`Permanent`] error.
pub trait SubnetManager: Clone + Send + Sync + 'static {
    /// The network config.
    fn network_config(&self) -> impl Future<Output = Result<NetworkConfig>> + Send;

    /// Our lease, advertising `attrs`: the one we held, else the subnet of the previous
    /// subnet.env when it is free, else a new one. `may_take` vets a lease of ours that the
    /// registry still has before it is taken over.
    fn acquire(
        &self,
        cfg: &NetworkConfig,
        attrs: &LeaseAttrs,
        prev: &PreviousEnv,
        may_take: &(dyn Fn(&Lease) -> Result<()> + Sync),
    ) -> impl Future<Output = Result<OwnLease>> + Send;

    /// Extends `own` before it expires.
    fn renew(&self, own: &mut OwnLease) -> impl Future<Output = Result<()>> + Send;

    /// Sends every lease there is, then each change, to `tx`, forever: a broken watch is
    /// resumed or started afresh. Returns only when `tx` is closed.
    fn follow_leases(
        &self,
        tx: Sender<LeaseEvent>,
        own: &OwnLease,
    ) -> impl Future<Output = ()> + Send;
}
