//! Namespace-wide IP settings as the kernel reports them over netlink (`ip netconf`).

use super::{raw_attrs, Error, Handle, Result};
use neli::consts::nl::NlmF;
use neli::consts::rtnl::Rtm;
use neli::types::Buffer;

const NETCONFA_IFINDEX: u16 = 1;
const NETCONFA_FORWARDING: u16 = 2;
const NETCONFA_IFINDEX_ALL: i32 = -1;

impl Handle {
    /// `ip [-6] netconf show` for "all": whether forwarding is on in this namespace
    /// (`net.ipv4.ip_forward`, `net.ipv6.conf.all.forwarding`). Read here rather than from
    /// /proc/sys, where each lookup walks a dentry per network namespace on the machine.
    pub fn forwarding(&self, ipv6: bool) -> Result<bool> {
        let op = || {
            format!(
                "failed to read {} forwarding",
                if ipv6 { "IPv6" } else { "IPv4" }
            )
        };
        let family = if ipv6 { libc::AF_INET6 } else { libc::AF_INET } as u8;
        // struct netconfmsg (the family, padded to 4), then NETCONFA_IFINDEX.
        let mut msg = vec![family, 0, 0, 0];
        msg.extend_from_slice(&8u16.to_ne_bytes());
        msg.extend_from_slice(&NETCONFA_IFINDEX.to_ne_bytes());
        msg.extend_from_slice(&NETCONFA_IFINDEX_ALL.to_ne_bytes());
        let found = self.request(
            Rtm::Getnetconf,
            NlmF::empty(),
            Buffer::from(msg),
            &op,
            |reply: &Buffer| {
                let (_, v) = raw_attrs(reply.as_ref().get(4..)?)
                    .find(|&(ty, _)| ty == NETCONFA_FORWARDING)?;
                Some(i32::from_ne_bytes(v.get(0..4)?.try_into().ok()?))
            },
        )?;
        match found.first() {
            Some(v) => Ok(*v != 0),
            None => Err(Error::new(
                op(),
                "no forwarding setting in the kernel's answer",
            )),
        }
    }
}
