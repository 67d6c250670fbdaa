//! VXLAN links: create with flannel's options, read their options back to decide whether an
//! existing device can be kept.

use super::link::{ifinfo_new_link, linkinfo_with, serialize_attrs};
use super::{attr, ip_bytes, ip_from, Handle, Result};
use neli::consts::rtnl::{Ifla, IflaInfo};
use neli::types::{Buffer, RtBuffer};
use std::net::IpAddr;

const IFLA_VXLAN_ID: u16 = 1;
const IFLA_VXLAN_GROUP: u16 = 2;
const IFLA_VXLAN_LINK: u16 = 3;
const IFLA_VXLAN_LOCAL: u16 = 4;
const IFLA_VXLAN_LEARNING: u16 = 7;
const IFLA_VXLAN_L2MISS: u16 = 13;
const IFLA_VXLAN_PORT: u16 = 15;
const IFLA_VXLAN_GROUP6: u16 = 16;
const IFLA_VXLAN_LOCAL6: u16 = 17;
const IFLA_VXLAN_GBP: u16 = 23;

/// A VXLAN device's options, as flannel sets and compares them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vxlan {
    pub vni: u32,
    /// Underlay device index (`dev`), 0 for none.
    pub link: i32,
    pub local: Option<IpAddr>,
    pub group: Option<IpAddr>,
    /// UDP destination port; 0 leaves the kernel default (8472).
    pub port: u16,
    pub learning: bool,
    pub gbp: bool,
    pub l2miss: bool,
}

/// Walks a buffer of rtattrs: (type without flags, payload).
fn walk(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((ty, &b[4..len]));
        let step = (len + 3) & !3;
        b = &b[step.min(b.len())..];
    }
    out
}

impl Vxlan {
    fn data(&self, op: &dyn Fn() -> String) -> Result<RtBuffer<u16, Buffer>> {
        let mut d = RtBuffer::<u16, Buffer>::new();
        d.push(attr(op, IFLA_VXLAN_ID, self.vni)?);
        if self.link > 0 {
            d.push(attr(op, IFLA_VXLAN_LINK, self.link as u32)?);
        }
        match self.local {
            Some(ip @ IpAddr::V4(_)) => d.push(attr(op, IFLA_VXLAN_LOCAL, ip_bytes(ip))?),
            Some(ip @ IpAddr::V6(_)) => d.push(attr(op, IFLA_VXLAN_LOCAL6, ip_bytes(ip))?),
            None => {}
        }
        match self.group {
            Some(ip @ IpAddr::V4(_)) => d.push(attr(op, IFLA_VXLAN_GROUP, ip_bytes(ip))?),
            Some(ip @ IpAddr::V6(_)) => d.push(attr(op, IFLA_VXLAN_GROUP6, ip_bytes(ip))?),
            None => {}
        }
        d.push(attr(op, IFLA_VXLAN_LEARNING, u8::from(self.learning))?);
        d.push(attr(op, IFLA_VXLAN_L2MISS, u8::from(self.l2miss))?);
        if self.port > 0 {
            d.push(attr(
                op,
                IFLA_VXLAN_PORT,
                Buffer::from(self.port.to_be_bytes().to_vec()),
            )?);
        }
        if self.gbp {
            d.push(attr(op, IFLA_VXLAN_GBP, Buffer::from(Vec::new()))?);
        }
        Ok(d)
    }

    fn parse(data: &[u8]) -> Vxlan {
        let mut v = Vxlan::default();
        for (ty, p) in walk(data) {
            let u32_of = |p: &[u8]| p.try_into().map(u32::from_ne_bytes).unwrap_or(0);
            match ty {
                IFLA_VXLAN_ID => v.vni = u32_of(p),
                IFLA_VXLAN_LINK => v.link = u32_of(p) as i32,
                IFLA_VXLAN_LOCAL | IFLA_VXLAN_LOCAL6 => {
                    v.local = ip_from(p).filter(|ip| !ip.is_unspecified())
                }
                IFLA_VXLAN_GROUP | IFLA_VXLAN_GROUP6 => {
                    v.group = ip_from(p).filter(|ip| !ip.is_unspecified())
                }
                IFLA_VXLAN_LEARNING => v.learning = p.first() == Some(&1),
                IFLA_VXLAN_L2MISS => v.l2miss = p.first() == Some(&1),
                IFLA_VXLAN_PORT => {
                    v.port = p.try_into().map(u16::from_be_bytes).unwrap_or(0);
                }
                IFLA_VXLAN_GBP => v.gbp = true,
                _ => {}
            }
        }
        v
    }
}

impl Handle {
    /// `ip link add NAME [address MAC] [mtu M] type vxlan id VNI [dev LINK] [local IP]
    /// [dstport PORT] [no]learning [gbp]`
    pub fn create_vxlan(
        &self,
        name: &str,
        v: &Vxlan,
        mac: Option<[u8; 6]>,
        mtu: Option<u32>,
    ) -> Result<()> {
        let op = || format!("failed to create vxlan {name:?} (vni {})", v.vni);
        let mut attrs = RtBuffer::new();
        attrs.push(attr(&op, Ifla::Ifname, name)?);
        if let Some(mtu) = mtu {
            attrs.push(attr(&op, Ifla::Mtu, mtu)?);
        }
        if let Some(mac) = mac {
            attrs.push(attr(&op, Ifla::Address, Buffer::from(mac.to_vec()))?);
        }
        let data = serialize_attrs(&op, &v.data(&op)?)?;
        attrs.push(linkinfo_with(&op, "vxlan", Some(data))?);
        self.ack_new_link(ifinfo_new_link(attrs, &op)?, &op)
    }

    /// `ip -d link show dev NAME` for a VXLAN device: `None` if the link is not a VXLAN.
    pub fn vxlan_by_name(&self, name: &str) -> Result<Option<(super::Link, Vxlan)>> {
        let op = || format!("failed to read vxlan {name:?}");
        let mut found = None;
        self.raw_link(name, &op, &mut |link, info| {
            if link.kind == "vxlan" {
                let data = info
                    .get_attribute(IflaInfo::Data)
                    .map(|a| Vxlan::parse(a.rta_payload().as_ref()))
                    .unwrap_or_default();
                found = Some((link, data));
            }
        })?;
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip_through_the_wire_format() {
        let v = Vxlan {
            vni: 4096,
            link: 7,
            local: Some("192.0.2.1".parse().unwrap()),
            group: None,
            port: 4789,
            learning: false,
            gbp: true,
            l2miss: false,
        };
        let op = || "test".to_string();
        let buf = serialize_attrs(&op, &v.data(&op).unwrap()).unwrap();
        assert_eq!(Vxlan::parse(buf.as_ref()), v);
    }

    #[test]
    fn walk_stops_at_truncated_attributes() {
        assert!(walk(&[8, 0, 1, 0, 1, 2]).is_empty());
        assert_eq!(walk(&[5, 0, 7, 0, 1, 0, 0, 0]), vec![(7, &[1u8][..])]);
    }
}
