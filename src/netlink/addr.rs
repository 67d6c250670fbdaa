//! Addresses: list.

use super::{Error, Handle, Result};
use ipnet::IpNet;
use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Ifa, RtAddrFamily, RtScope, Rtm};
use neli::nl::NlPayload;
use neli::rtnl::{Ifaddrmsg, IfaddrmsgBuilder};
use std::net::IpAddr;

/// An address on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    pub addr: IpNet,
    /// rtnetlink scope: 0 universe, 253 link, 254 host.
    pub scope: u8,
}

fn ip_from(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

impl Handle {
    /// `ip addr show [dev INDEX]`, both families.
    pub fn addresses(&self, index: Option<u32>) -> Result<Vec<Address>> {
        let op = || "failed to list addresses".to_string();
        let msg = IfaddrmsgBuilder::default()
            .ifa_family(RtAddrFamily::Unspecified)
            .ifa_prefixlen(0)
            .ifa_scope(RtScope::Universe)
            .ifa_index(0)
            .build()
            .map_err(|e| Error::new(op(), e.to_string()))?;
        let recv = self
            .router()
            .send::<_, _, Rtm, Ifaddrmsg>(Rtm::Getaddr, NlmF::DUMP, NlPayload::Payload(msg))
            .map_err(|e| Error::from_router(op(), e))?;
        let mut out = Vec::new();
        for reply in recv {
            let reply = reply.map_err(|e| Error::from_router(op(), e))?;
            let Some(p) = reply.get_payload() else {
                continue;
            };
            if index.is_some_and(|i| i != *p.ifa_index()) {
                continue;
            }
            let attrs = p.rtattrs().get_attr_handle();
            // IFA_LOCAL is the address of this host on point-to-point links; IFA_ADDRESS otherwise.
            let raw = attrs
                .get_attribute(Ifa::Local)
                .or_else(|| attrs.get_attribute(Ifa::Address));
            let Some(ip) = raw.and_then(|a| ip_from(a.rta_payload().as_ref())) else {
                continue;
            };
            let Ok(addr) = IpNet::new(ip, *p.ifa_prefixlen()) else {
                continue;
            };
            out.push(Address {
                index: *p.ifa_index(),
                addr,
                scope: u8::from(*p.ifa_scope()),
            });
        }
        Ok(out)
    }
}
