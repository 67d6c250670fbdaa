//! Container interface plumbing shared by the bridge and ptp plugins: the veth pair
//! ([`veth`]) and its deletion ([`unregister`]), applying a result's addresses and routes inside
//! the container ([`configure`]), and gateway addresses on host devices ([`gateway`]).
//!
//! Netlink work is done from the calling thread with handles opened in each namespace; /proc/sys
//! writes for the container switch the calling thread into it and back (see [`crate::sys::netns`]).

pub mod check;
pub mod configure;
pub mod gateway;
pub mod unregister;
pub mod veth;

pub use configure::configure_iface;
pub use gateway::ensure_addr;
pub use veth::{
    delete_container_link, delete_link_collect_addrs, setup_veth, wait_oper_up,
    wait_oper_up_notified, VethPair,
};

/// `ipMasq`: masquerades traffic from the result's addresses leaving for outside the network,
/// and records in `undo` how to remove the rules again.
pub fn masquerade<'a>(
    undo: &mut crate::plugins::undo::Undo<'a>,
    backend: Option<crate::sys::firewall::masq::MasqBackend>,
    result: &crate::cni::result::CniResult,
    net_name: &'a str,
    args: &'a crate::cni::CmdArgs,
) -> anyhow::Result<()> {
    use crate::sys::firewall::masq;
    use anyhow::Context;
    let nets: Vec<_> = result.ips.iter().map(|i| i.address).collect();
    masq::setup_ip_masq(backend, &nets, net_name, &args.ifname, &args.container_id)
        .context("failed to setup IP masquerade")?;
    undo.push("remove the masquerade rules", move || {
        masq::teardown_ip_masq(&nets, net_name, &args.ifname, &args.container_id)
    });
    Ok(())
}

/// A config's `mtu`: 0 is the kernel's default; otherwise what a link can take (68..65535).
pub fn mtu_from_config(mtu: i64) -> Result<Option<u32>, crate::cni::Error> {
    match mtu {
        0 => Ok(None),
        m if (68..=65535).contains(&m) => Ok(Some(m as u32)),
        m => Err(crate::cni::Error::invalid_config(format!(
            "invalid MTU {m} (must be 0 for the default, or between 68 and 65535)"
        ))),
    }
}
