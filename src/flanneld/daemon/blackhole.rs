//! `-ip-blackhole-route`: a `blackhole` route for each of our own subnets, so traffic to an
//! address of our lease that no pod holds is dropped here rather than sent back out by the
//! default route (for set-ups without a bridge owning the subnet, such as Canal). As upstream,
//! it is put back every resync period when it is missing, and left in place when flanneld
//! stops: the lease outlives the process, and so does the route.

use crate::sys::netlink::{Handle, Route};
use ipnet::IpNet;
use std::time::Duration;

/// Adds the blackhole route to `subnet` in the main table unless one is there.
fn ensure(h: &Handle, subnet: IpNet) -> anyhow::Result<()> {
    let mut want = Route::new(subnet);
    want.blackhole = true;
    let present = h
        .blackhole_routes()?
        .iter()
        .any(|r| r.dst == subnet && r.table == want.table);
    if !present {
        h.add_route(&want)?;
        log::info!("added the blackhole route {subnet}");
    }
    Ok(())
}

/// Keeps the blackhole routes to `subnets`, now and every `every`, on a thread of its own. A
/// failure (a bridge's connected route to the same subnet, say) is logged once until it clears.
pub fn spawn(subnets: Vec<IpNet>, every: Duration) -> anyhow::Result<()> {
    let h = Handle::open()?;
    std::thread::Builder::new()
        .name("blackhole".into())
        .spawn(move || {
            let mut failing = vec![false; subnets.len()];
            loop {
                for (s, failed) in subnets.iter().zip(failing.iter_mut()) {
                    match ensure(&h, *s) {
                        Ok(()) => *failed = false,
                        Err(e) if !*failed => {
                            log::warn!("failed to set up the blackhole route {s}: {e:#}");
                            *failed = true;
                        }
                        Err(_) => {}
                    }
                }
                std::thread::sleep(every);
            }
        })?;
    Ok(())
}
