//! Addresses: list, add, delete.

use super::{attr, ip_bytes, ip_from, Error, Handle, Result};
use ipnet::IpNet;
use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Ifa, RtAddrFamily, RtScope, Rtm};
use neli::rtnl::{Ifaddrmsg, IfaddrmsgBuilder};
use neli::types::RtBuffer;
use std::net::IpAddr;

/// An address on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    pub addr: IpNet,
    /// rtnetlink scope: 0 universe, 253 link, 254 host.
    pub scope: u8,
    /// `IFA_F_*` bits (IFA_FLAGS when present, which carries the bits above 8).
    pub flags: u32,
}

/// `IFA_F_DADFAILED`: duplicate address detection found the address in use.
pub const IFA_F_DADFAILED: u32 = 0x08;
/// `IFA_F_TENTATIVE`: duplicate address detection has not finished.
pub const IFA_F_TENTATIVE: u32 = 0x40;

impl Handle {
    fn addr_msg(&self, index: i32, addr: IpNet, op: &dyn Fn() -> String) -> Result<Ifaddrmsg> {
        let build = |ty: Ifa, ip: IpAddr| attr(op, ty, ip_bytes(ip));
        let mut attrs = RtBuffer::new();
        attrs.push(build(Ifa::Local, addr.addr())?);
        attrs.push(build(Ifa::Address, addr.addr())?);
        // Go's netlink library fills in the IPv4 broadcast address, so the reference plugins'
        // addresses carry one; do the same so the kernel state matches.
        if let IpNet::V4(n) = addr {
            if n.prefix_len() < 31 {
                attrs.push(build(Ifa::Broadcast, IpAddr::V4(n.broadcast()))?);
            }
        }
        IfaddrmsgBuilder::default()
            .ifa_family(if addr.addr().is_ipv4() {
                RtAddrFamily::Inet
            } else {
                RtAddrFamily::Inet6
            })
            .ifa_prefixlen(addr.prefix_len())
            .ifa_scope(RtScope::Universe)
            .ifa_index(index as u32)
            .rtattrs(attrs)
            .build()
            .map_err(|e| Error::new(op(), e.to_string()))
    }

    /// `ip addr add ADDR/PREFIX dev INDEX` (EEXIST if already there)
    pub fn add_address(&self, index: i32, addr: IpNet) -> Result<()> {
        let op = || format!("failed to add address {addr} to link {index}");
        let msg = self.addr_msg(index, addr, &op)?;
        self.ack(Rtm::Newaddr, NlmF::CREATE | NlmF::EXCL, msg, &op)
    }

    /// `ip addr del ADDR/PREFIX dev INDEX`
    pub fn delete_address(&self, index: i32, addr: IpNet) -> Result<()> {
        let op = || format!("failed to delete address {addr} from link {index}");
        let msg = self.addr_msg(index, addr, &op)?;
        self.ack(Rtm::Deladdr, NlmF::empty(), msg, &op)
    }

    /// `ip addr show [dev INDEX]`, both families: IPv4 first, then IPv6.
    ///
    /// Two dumps, one per family, rather than one AF_UNSPEC dump: since Linux 6.9 each
    /// family's dump runs under RCU, while the kernel's AF_UNSPEC dump still takes RTNL. Right
    /// after a link comes up, the kernel's own link-watch and IPv6 address work hold RTNL, and
    /// a locked dump then waits for them.
    pub fn addresses(&self, index: Option<u32>) -> Result<Vec<Address>> {
        let mut all = self.addresses_of(index, false)?;
        all.extend(self.addresses_of(index, true)?);
        Ok(all)
    }

    /// `ip -4 addr show [dev INDEX]`, or `ip -6 ...` when `v6`.
    pub fn addresses_of(&self, index: Option<u32>, v6: bool) -> Result<Vec<Address>> {
        let op = || "failed to list addresses".to_string();
        let family = if v6 {
            RtAddrFamily::Inet6
        } else {
            RtAddrFamily::Inet
        };
        let msg = IfaddrmsgBuilder::default()
            .ifa_family(family)
            .ifa_prefixlen(0)
            .ifa_scope(RtScope::Universe)
            .ifa_index(index.unwrap_or(0))
            .build()
            .map_err(|e| Error::new(op(), e.to_string()))?;
        self.request(Rtm::Getaddr, NlmF::DUMP, msg, &op, |p: &Ifaddrmsg| {
            // A kernel without the family (IPv6 disabled at boot) answers with every family's.
            if *p.ifa_family() != family || index.is_some_and(|i| i != *p.ifa_index()) {
                return None;
            }
            let attrs = p.rtattrs().get_attr_handle();
            // IFA_LOCAL is the address of this host on point-to-point links; IFA_ADDRESS otherwise.
            let raw = attrs
                .get_attribute(Ifa::Local)
                .or_else(|| attrs.get_attribute(Ifa::Address));
            let ip = raw.and_then(|a| ip_from(a.rta_payload().as_ref()))?;
            Some(Address {
                index: *p.ifa_index(),
                addr: IpNet::new(ip, *p.ifa_prefixlen()).ok()?,
                scope: u8::from(*p.ifa_scope()),
                flags: attrs
                    .get_attr_payload_as::<u32>(Ifa::Flags)
                    .unwrap_or(p.ifa_flags().bits() as u32),
            })
        })
    }
}
