//! The data-plane thread: applies lease changes to the backend as they arrive and reconciles the
//! kernel against the known peers every period. It owns the backend, so backend calls never
//! overlap, and blocking netlink calls never stall the etcd tasks.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::flanneld::backend::{accepts, Backend};
use crate::flanneld::subnet::manager::LeaseEvent;
use crate::flanneld::subnet::peers::{PeerChange, PeerSet};

/// Why the daemon must stop.
pub type Fatal = tokio::sync::mpsc::UnboundedSender<String>;

pub fn run(
    mut backend: Box<dyn Backend>,
    mut peers: PeerSet,
    events: Receiver<LeaseEvent>,
    fatal: Fatal,
    every: Duration,
) {
    let ty = backend.lease_type();
    let forwards = backend.forwards();
    let mut synced = false;
    let mut next = Instant::now() + every;
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        let ev = match events.recv_timeout(wait) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Timeout) => {
                if synced {
                    reconcile(backend.as_mut(), &peers, ty);
                }
                next = Instant::now() + every;
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let snapshot = matches!(ev, LeaseEvent::Snapshot(_));
        for change in peers.apply(ev) {
            match change {
                // alloc: the leases are followed (our own one's removal still matters), never
                // programmed.
                PeerChange::Add(_) | PeerChange::Remove(_) if !forwards => {}
                PeerChange::Add(l) if accepts(ty, &l) => {
                    log::info!("peer {} at {}: adding", l.key.to_key(), l.attrs.public_ip);
                    if let Err(e) = backend.add_peer(&l) {
                        log::error!("{e:#} (retried at the next reconciliation)");
                    }
                }
                PeerChange::Add(l) => log::warn!(
                    "ignoring lease {} of backend type {:?}: this network runs {ty:?}",
                    l.key.to_key(),
                    l.attrs.backend_type
                ),
                PeerChange::Remove(l) => {
                    log::info!("peer {} at {}: removing", l.key.to_key(), l.attrs.public_ip);
                    if accepts(ty, &l) {
                        if let Err(e) = backend.remove_peer(&l) {
                            log::error!("{e:#}");
                        }
                    }
                }
                PeerChange::OwnRemoved => {
                    let _ =
                        fatal.send("our lease was removed from etcd (revoked or expired)".into());
                }
                PeerChange::OwnTaken(a) => {
                    let _ = fatal.send(own_taken(&a));
                }
            }
        }
        if snapshot {
            // Only a full listing says which kernel entries no longer have a lease.
            synced = true;
            reconcile(backend.as_mut(), &peers, ty);
            next = Instant::now() + every;
        }
    }
}

fn reconcile(backend: &mut dyn Backend, peers: &PeerSet, ty: &str) {
    let wanted: Vec<_> = peers.peers().filter(|l| accepts(ty, l)).collect();
    match backend.reconcile(&wanted) {
        Ok(0) => {}
        Ok(n) => log::info!("reconciliation fixed {n} kernel entries"),
        Err(e) => log::error!("reconciliation failed: {e:#}"),
    }
}

/// Why our lease is no longer ours, in words that point at the likely mistake.
fn own_taken(found: &crate::flanneld::subnet::lease::LeaseAttrs) -> String {
    let data = |d: &Option<serde_json::Value>| d.as_ref().map_or("none".into(), |v| v.to_string());
    format!(
        "our lease was overwritten by another flanneld: it now names PublicIP {} with backend \
         data {} (is a second host running with -public-ip {}?)",
        found.public_ip,
        data(&found.backend_data),
        found.public_ip
    )
}
