//! Bridge ports: hairpin, isolation and VLAN entries of a link enslaved to a bridge, the settings
//! `bridge link` and `bridge vlan` manage. The kernel keeps these under family AF_BRIDGE, so every
//! request here speaks AF_BRIDGE: RTM_SETLINK / RTM_DELLINK go to the bridge the port belongs to,
//! and port state is only reported by an AF_BRIDGE dump (a plain RTM_GETLINK leaves it out).

use super::link::ifinfo;
use super::{attr, Error, Handle, Result};
use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Ifla, RtAddrFamily, Rtm};
use neli::rtnl::{Ifinfomsg, Rtattr};
use neli::types::{Buffer, RtBuffer};

/// Set on an attribute whose payload is more attributes. IFLA_PROTINFO without it is read by the
/// kernel as the legacy one-byte STP port state, so it must be there.
const NLA_F_NESTED: u16 = 1 << 15;
/// `NLA_F_NESTED | NLA_F_NET_BYTEORDER`: the flag bits of an attribute type.
const NLA_FLAGS: u16 = NLA_F_NESTED | (1 << 14);

// IFLA_BRPORT_* inside IFLA_PROTINFO (linux/if_link.h); neli does not define them.
const IFLA_BRPORT_STATE: u16 = 1;
const IFLA_BRPORT_PRIORITY: u16 = 2;
const IFLA_BRPORT_COST: u16 = 3;
/// Hairpin mode: frames may leave through the port they came in on.
const IFLA_BRPORT_MODE: u16 = 4;
const IFLA_BRPORT_LEARNING: u16 = 8;
const IFLA_BRPORT_UNICAST_FLOOD: u16 = 9;
const IFLA_BRPORT_ISOLATED: u16 = 33;

/// `IFLA_BRIDGE_VLAN_INFO` inside IFLA_AF_SPEC (linux/if_bridge.h).
const IFLA_BRIDGE_VLAN_INFO: u16 = 2;
const BRIDGE_VLAN_INFO_PVID: u16 = 1 << 1;
const BRIDGE_VLAN_INFO_UNTAGGED: u16 = 1 << 2;

fn af_bridge() -> RtAddrFamily {
    RtAddrFamily::from(libc::AF_BRIDGE as u8)
}

/// `ty` with NLA_F_NESTED set; neli's enums have no such variant, so it travels as an
/// unrecognised constant.
fn nested(ty: Ifla) -> Ifla {
    Ifla::from(u16::from(ty) | NLA_F_NESTED)
}

/// The attribute of type `ty` (flag bits ignored: the kernel sets NLA_F_NESTED on some nests
/// it reports, and neli compares types exactly).
fn find(msg: &Ifinfomsg, ty: Ifla) -> Option<&Rtattr<Ifla, Buffer>> {
    let want = u16::from(ty);
    msg.rtattrs()
        .iter()
        .find(|a| u16::from(*a.rta_type()) & !NLA_FLAGS == want)
}

/// A bridge port's settings, as `bridge -d link show` prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgePort {
    pub index: i32,
    /// The bridge this link is a port of.
    pub master: i32,
    /// STP state: 0 disabled, 1 listening, 2 learning, 3 forwarding, 4 blocking.
    pub state: u8,
    pub priority: u16,
    pub cost: u32,
    /// Frames may be sent back out of the port they arrived on.
    pub hairpin: bool,
    /// Isolated ports cannot talk to each other, only to non-isolated ports.
    pub isolated: bool,
    pub learning: bool,
    /// Unknown unicast is flooded to this port.
    pub flood: bool,
}

impl BridgePort {
    fn from_msg(msg: &Ifinfomsg) -> Option<BridgePort> {
        let info = find(msg, Ifla::Protinfo)?.get_attr_handle::<u16>().ok()?;
        let flag = |ty: u16| info.get_attr_payload_as::<u8>(ty).ok() == Some(1);
        Some(BridgePort {
            index: *msg.ifi_index(),
            master: msg
                .rtattrs()
                .get_attr_handle()
                .get_attr_payload_as::<u32>(Ifla::Master)
                .unwrap_or(0) as i32,
            state: info.get_attr_payload_as::<u8>(IFLA_BRPORT_STATE).ok()?,
            priority: info
                .get_attr_payload_as::<u16>(IFLA_BRPORT_PRIORITY)
                .unwrap_or(0),
            cost: info
                .get_attr_payload_as::<u32>(IFLA_BRPORT_COST)
                .unwrap_or(0),
            hairpin: flag(IFLA_BRPORT_MODE),
            isolated: flag(IFLA_BRPORT_ISOLATED),
            learning: flag(IFLA_BRPORT_LEARNING),
            flood: flag(IFLA_BRPORT_UNICAST_FLOOD),
        })
    }
}

/// One VLAN on a bridge port, as `bridge vlan show` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortVlan {
    pub vid: u16,
    /// Untagged frames arriving on the port are put in this VLAN.
    pub pvid: bool,
    /// Frames of this VLAN leave the port untagged.
    pub untagged: bool,
}

impl Handle {
    /// The AF_BRIDGE view of every bridge port (and, with RTEXT_FILTER_BRVLAN, of every bridge),
    /// mapped through `each`. The kernel answers this only as a dump, hence no per-index get.
    fn bridge_dump<T>(
        &self,
        ext_mask: u32,
        op: &dyn Fn() -> String,
        each: impl FnMut(&Ifinfomsg) -> Option<T>,
    ) -> Result<Vec<T>> {
        let mut attrs = RtBuffer::new();
        if ext_mask != 0 {
            attrs.push(attr(op, Ifla::ExtMask, ext_mask)?);
        }
        let msg = ifinfo(af_bridge(), 0, attrs, op)?;
        self.request(Rtm::Getlink, NlmF::DUMP, msg, op, each)
    }

    /// Sets IFLA_BRPORT_* flags of port `index` in one request.
    fn set_port_flag_list(
        &self,
        index: i32,
        flags: &[(u16, bool)],
        op: &dyn Fn() -> String,
    ) -> Result<()> {
        let mut info = RtBuffer::<u16, Buffer>::new();
        for &(ty, on) in flags {
            info.push(attr(op, ty, u8::from(on))?);
        }
        let mut attrs = RtBuffer::new();
        attrs.push(attr(op, nested(Ifla::Protinfo), info)?);
        let msg = ifinfo(af_bridge(), index, attrs, op)?;
        self.ack(Rtm::Setlink, NlmF::empty(), msg, op)
    }

    /// `bridge link set dev INDEX hairpin on|off isolated on|off` in one request (EOPNOTSUPP if
    /// the link is not a bridge port)
    pub fn set_port_flags(&self, index: i32, hairpin: bool, isolated: bool) -> Result<()> {
        let op = || {
            format!("failed to set hairpin {hairpin} isolated {isolated} on bridge port {index}")
        };
        let flags = [
            (IFLA_BRPORT_MODE, hairpin),
            (IFLA_BRPORT_ISOLATED, isolated),
        ];
        self.set_port_flag_list(index, &flags, &op)
    }

    /// `bridge link set dev INDEX hairpin on|off` (EOPNOTSUPP if the link is not a bridge port)
    pub fn set_port_hairpin(&self, index: i32, on: bool) -> Result<()> {
        let op = || format!("failed to set hairpin {on} on bridge port {index}");
        self.set_port_flag_list(index, &[(IFLA_BRPORT_MODE, on)], &op)
    }

    /// `bridge link set dev INDEX isolated on|off` (EOPNOTSUPP if the link is not a bridge port)
    pub fn set_port_isolated(&self, index: i32, on: bool) -> Result<()> {
        let op = || format!("failed to set isolated {on} on bridge port {index}");
        self.set_port_flag_list(index, &[(IFLA_BRPORT_ISOLATED, on)], &op)
    }

    /// `bridge -d link show dev INDEX`: not found (ENODEV) if the link is not a bridge port.
    pub fn bridge_port(&self, index: i32) -> Result<BridgePort> {
        let op = || format!("failed to read bridge port {index}");
        self.bridge_dump(0, &op, |m| {
            (*m.ifi_index() == index)
                .then(|| BridgePort::from_msg(m))
                .flatten()
        })?
        .into_iter()
        .next()
        .ok_or_else(|| Error::not_found(op()))
    }

    fn port_vlan(
        &self,
        ty: Rtm,
        index: i32,
        vid: u16,
        flags: u16,
        op: &dyn Fn() -> String,
    ) -> Result<()> {
        // struct bridge_vlan_info { __u16 flags; __u16 vid; }, host order.
        let mut info = flags.to_ne_bytes().to_vec();
        info.extend_from_slice(&vid.to_ne_bytes());
        let mut spec = RtBuffer::<u16, Buffer>::new();
        spec.push(attr(op, IFLA_BRIDGE_VLAN_INFO, Buffer::from(info))?);
        let mut attrs = RtBuffer::new();
        attrs.push(attr(op, nested(Ifla::AfSpec), spec)?);
        let msg = ifinfo(af_bridge(), index, attrs, op)?;
        self.ack(ty, NlmF::empty(), msg, op)
    }

    /// `bridge vlan add dev INDEX vid VID [pvid] [untagged]`. Adding a VLAN the port already has
    /// updates its flags (no EEXIST); EOPNOTSUPP without CONFIG_BRIDGE_VLAN_FILTERING or when
    /// the link is not a bridge port; EINVAL for VID 0 or 4095 and up.
    pub fn add_port_vlan(&self, index: i32, vid: u16, pvid: bool, untagged: bool) -> Result<()> {
        let op = || format!("failed to add vlan {vid} to bridge port {index}");
        let mut flags = 0;
        if pvid {
            flags |= BRIDGE_VLAN_INFO_PVID;
        }
        if untagged {
            flags |= BRIDGE_VLAN_INFO_UNTAGGED;
        }
        self.port_vlan(Rtm::Setlink, index, vid, flags, &op)
    }

    /// `bridge vlan del dev INDEX vid VID`. The kernel ignores whether the VLAN was there, so
    /// deleting a missing one succeeds, as it does for `bridge`.
    pub fn delete_port_vlan(&self, index: i32, vid: u16) -> Result<()> {
        let op = || format!("failed to delete vlan {vid} from bridge port {index}");
        self.port_vlan(Rtm::Dellink, index, vid, 0, &op)
    }

    /// `bridge vlan show dev INDEX`: empty when the link is not a bridge port or has no VLANs
    /// (always, without CONFIG_BRIDGE_VLAN_FILTERING).
    pub fn port_vlans(&self, index: i32) -> Result<Vec<PortVlan>> {
        let op = || format!("failed to list vlans of bridge port {index}");
        let lists = self.bridge_dump(libc::RTEXT_FILTER_BRVLAN as u32, &op, |m| {
            if *m.ifi_index() != index {
                return None;
            }
            let spec = find(m, Ifla::AfSpec)?.get_attr_handle::<u16>().ok()?;
            let vlans = spec
                .get_attrs()
                .iter()
                .filter(|a| *a.rta_type() & !NLA_FLAGS == IFLA_BRIDGE_VLAN_INFO)
                .filter_map(|a| {
                    let b: [u8; 4] = a.rta_payload().as_ref().try_into().ok()?;
                    let flags = u16::from_ne_bytes([b[0], b[1]]);
                    Some(PortVlan {
                        vid: u16::from_ne_bytes([b[2], b[3]]),
                        pvid: flags & BRIDGE_VLAN_INFO_PVID != 0,
                        untagged: flags & BRIDGE_VLAN_INFO_UNTAGGED != 0,
                    })
                })
                .collect::<Vec<_>>();
            Some(vlans)
        })?;
        Ok(lists.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_flag_survives_the_enum() {
        let t = nested(Ifla::Protinfo);
        assert_eq!(u16::from(t), libc::IFLA_PROTINFO | NLA_F_NESTED);
        assert_eq!(u16::from(t) & !NLA_FLAGS, libc::IFLA_PROTINFO);
    }
}
