//! Neighbours (`ip neigh`: the ARP and NDP tables) and forwarding database entries (`bridge fdb`),
//! the two tables the vxlan backend fills for each remote subnet: the neighbour entry maps the
//! remote gateway IP to the remote VTEP's MAC, the FDB entry maps that MAC to the remote host's IP.
//! Both are RTM_*NEIGH messages; FDB entries are the AF_BRIDGE family.

use super::{attr, format_mac, ip_bytes, ip_from, Error, Handle, Result};
use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Nda, Ntf, Nud, RtAddrFamily, Rtm, Rtn};
use neli::rtnl::{Ndmsg, NdmsgBuilder};
use neli::types::{Buffer, RtBuffer};
use std::net::IpAddr;

// neli names this attribute only on glibc targets.
const NDA_MASTER: Nda = Nda::UnrecognizedConst(9);

/// Which neighbour table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamily {
    /// ARP (`ip -4 neigh`).
    V4,
    /// NDP (`ip -6 neigh`).
    V6,
    /// Both (`ip neigh`).
    Both,
}

/// A neighbour or FDB entry, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    /// The link the entry belongs to.
    pub index: i32,
    /// `NDA_DST`: the neighbour's address; for an FDB entry of a vxlan device, the remote VTEP.
    /// `None` for FDB entries that have no destination (those of bridges and their ports).
    pub ip: Option<IpAddr>,
    /// `NDA_LLADDR`, empty for an unresolved neighbour.
    pub mac: Vec<u8>,
    /// `NUD_*` bits (`libc::NUD_PERMANENT`, `libc::NUD_REACHABLE`, ...).
    pub state: u16,
    /// `NTF_*` bits (`libc::NTF_SELF`, `libc::NTF_MASTER`, ...).
    pub flags: u8,
    /// `NDA_MASTER`: the bridge an FDB entry of a port belongs to, 0 if none.
    pub master: i32,
    /// `NDA_VLAN`, for FDB entries of VLAN-filtering bridges.
    pub vlan: Option<u16>,
    /// `NDA_VNI`, for vxlan FDB entries that override the device's VNI.
    pub vni: Option<u32>,
}

impl Neighbour {
    fn from_msg(msg: &Ndmsg) -> Neighbour {
        let attrs = msg.rtattrs().get_attr_handle();
        Neighbour {
            index: *msg.ndm_index(),
            ip: attrs
                .get_attribute(Nda::Dst)
                .and_then(|a| ip_from(a.rta_payload().as_ref())),
            mac: attrs
                .get_attribute(Nda::Lladdr)
                .map(|a| a.rta_payload().as_ref().to_vec())
                .unwrap_or_default(),
            state: msg.ndm_state().bits(),
            flags: msg.ndm_flags().bits(),
            master: attrs.get_attr_payload_as::<u32>(NDA_MASTER).unwrap_or(0) as i32,
            vlan: attrs.get_attr_payload_as::<u16>(Nda::Vlan).ok(),
            vni: attrs.get_attr_payload_as::<u32>(Nda::Vni).ok(),
        }
    }

    /// `nud permanent`: the kernel never ages or re-resolves the entry.
    pub fn is_permanent(&self) -> bool {
        self.state & libc::NUD_PERMANENT != 0
    }

    /// The MAC as `aa:bb:cc:dd:ee:ff`.
    pub fn mac_string(&self) -> String {
        format_mac(&self.mac)
    }
}

fn family_of(ip: IpAddr) -> RtAddrFamily {
    if ip.is_ipv4() {
        RtAddrFamily::Inet
    } else {
        RtAddrFamily::Inet6
    }
}

fn af_bridge() -> RtAddrFamily {
    RtAddrFamily::from(libc::AF_BRIDGE as u8)
}

fn neigh_msg(
    family: RtAddrFamily,
    index: i32,
    state: Nud,
    flags: Ntf,
    attrs: RtBuffer<Nda, Buffer>,
    op: &dyn Fn() -> String,
) -> Result<Ndmsg> {
    NdmsgBuilder::default()
        .ndm_family(family)
        .ndm_index(index)
        .ndm_state(state)
        .ndm_flags(flags)
        // Go's netlink library (and so flannel) leaves the type unset; the kernel ignores it here.
        .ndm_type(Rtn::Unspec)
        .rtattrs(attrs)
        .build()
        .map_err(|e| Error::new(op(), e.to_string()))
}

/// The attributes of an FDB entry of a vxlan device: which MAC lives behind which remote host.
fn fdb_attrs(mac: [u8; 6], dst: IpAddr, op: &dyn Fn() -> String) -> Result<RtBuffer<Nda, Buffer>> {
    let mut attrs = RtBuffer::new();
    attrs.push(attr(op, Nda::Lladdr, Buffer::from(mac.to_vec()))?);
    attrs.push(attr(op, Nda::Dst, ip_bytes(dst))?);
    Ok(attrs)
}

impl Handle {
    fn neighbour_change(
        &self,
        flags: NlmF,
        index: i32,
        ip: IpAddr,
        mac: [u8; 6],
        permanent: bool,
        op: &dyn Fn() -> String,
    ) -> Result<()> {
        let mut attrs = RtBuffer::new();
        attrs.push(attr(op, Nda::Dst, ip_bytes(ip))?);
        attrs.push(attr(op, Nda::Lladdr, Buffer::from(mac.to_vec()))?);
        let state = if permanent {
            Nud::PERMANENT
        } else {
            Nud::REACHABLE
        };
        let msg = neigh_msg(family_of(ip), index, state, Ntf::empty(), attrs, op)?;
        self.ack(Rtm::Newneigh, flags, msg, op)
    }

    /// `ip neigh add IP lladdr MAC dev INDEX nud permanent|reachable` (EEXIST if IP is there)
    pub fn add_neighbour(
        &self,
        index: i32,
        ip: IpAddr,
        mac: [u8; 6],
        permanent: bool,
    ) -> Result<()> {
        let op = || format!("failed to add neighbour {ip} on link {index}");
        self.neighbour_change(NlmF::CREATE | NlmF::EXCL, index, ip, mac, permanent, &op)
    }

    /// `ip neigh replace IP lladdr MAC dev INDEX nud permanent|reachable`
    pub fn replace_neighbour(
        &self,
        index: i32,
        ip: IpAddr,
        mac: [u8; 6],
        permanent: bool,
    ) -> Result<()> {
        let op = || format!("failed to replace neighbour {ip} on link {index}");
        self.neighbour_change(NlmF::CREATE | NlmF::REPLACE, index, ip, mac, permanent, &op)
    }

    /// `ip neigh del IP dev INDEX` (ENOENT if it is not there)
    pub fn delete_neighbour(&self, index: i32, ip: IpAddr) -> Result<()> {
        let op = || format!("failed to delete neighbour {ip} on link {index}");
        let mut attrs = RtBuffer::new();
        attrs.push(attr(&op, Nda::Dst, ip_bytes(ip))?);
        let msg = neigh_msg(family_of(ip), index, Nud::NONE, Ntf::empty(), attrs, &op)?;
        self.ack(Rtm::Delneigh, NlmF::empty(), msg, &op)
    }

    /// `ip [-4|-6] neigh show [dev INDEX]`
    pub fn neighbours(&self, index: Option<i32>, family: IpFamily) -> Result<Vec<Neighbour>> {
        let op = || "failed to list neighbours".to_string();
        let family = match family {
            IpFamily::V4 => RtAddrFamily::Inet,
            IpFamily::V6 => RtAddrFamily::Inet6,
            IpFamily::Both => RtAddrFamily::Unspecified,
        };
        let msg = neigh_msg(family, 0, Nud::NONE, Ntf::empty(), RtBuffer::new(), &op)?;
        self.request(Rtm::Getneigh, NlmF::DUMP, msg, &op, |m: &Ndmsg| {
            if index.is_some_and(|i| i != *m.ndm_index()) {
                return None;
            }
            Some(Neighbour::from_msg(m))
        })
    }

    fn fdb_change(
        &self,
        ty: Rtm,
        flags: NlmF,
        index: i32,
        mac: [u8; 6],
        dst: IpAddr,
        op: &dyn Fn() -> String,
    ) -> Result<()> {
        // NTF_SELF: the entry goes to the device itself (the vxlan driver), not to a bridge it
        // might be a port of. Go's netlink library sends NUD_PERMANENT alone where `bridge` adds
        // NUD_NOARP; the kernel treats both as permanent, and flannel's way is the one to match.
        let msg = neigh_msg(
            af_bridge(),
            index,
            Nud::PERMANENT,
            Ntf::SELF,
            fdb_attrs(mac, dst, op)?,
            op,
        )?;
        self.ack(ty, flags, msg, op)
    }

    /// `bridge fdb add MAC dev INDEX dst IP self permanent` (EEXIST if MAC is there)
    pub fn add_fdb(&self, index: i32, mac: [u8; 6], dst: IpAddr) -> Result<()> {
        let op = || {
            format!(
                "failed to add fdb {} dst {dst} on link {index}",
                format_mac(&mac)
            )
        };
        let flags = NlmF::CREATE | NlmF::EXCL;
        self.fdb_change(Rtm::Newneigh, flags, index, mac, dst, &op)
    }

    /// `bridge fdb append MAC dev INDEX dst IP self permanent`. For the all-zeros MAC (flooding)
    /// each call adds one more destination; for a unicast MAC already there it changes nothing.
    pub fn append_fdb(&self, index: i32, mac: [u8; 6], dst: IpAddr) -> Result<()> {
        let op = || {
            let mac = format_mac(&mac);
            format!("failed to append fdb {mac} dst {dst} on link {index}")
        };
        let flags = NlmF::CREATE | NlmF::APPEND;
        self.fdb_change(Rtm::Newneigh, flags, index, mac, dst, &op)
    }

    /// `bridge fdb replace MAC dev INDEX dst IP self permanent`
    pub fn replace_fdb(&self, index: i32, mac: [u8; 6], dst: IpAddr) -> Result<()> {
        let op = || {
            let mac = format_mac(&mac);
            format!("failed to replace fdb {mac} dst {dst} on link {index}")
        };
        let flags = NlmF::CREATE | NlmF::REPLACE;
        self.fdb_change(Rtm::Newneigh, flags, index, mac, dst, &op)
    }

    /// `bridge fdb del MAC dev INDEX dst IP self`. ENOENT if MAC is not there; if MAC is there
    /// without that destination the vxlan driver answers success and removes nothing, as it
    /// does for `bridge`.
    pub fn delete_fdb(&self, index: i32, mac: [u8; 6], dst: IpAddr) -> Result<()> {
        let op = || {
            format!(
                "failed to delete fdb {} dst {dst} on link {index}",
                format_mac(&mac)
            )
        };
        self.fdb_change(Rtm::Delneigh, NlmF::empty(), index, mac, dst, &op)
    }

    /// `bridge fdb show dev INDEX`
    pub fn fdb_entries(&self, index: i32) -> Result<Vec<Neighbour>> {
        let op = || format!("failed to list fdb of link {index}");
        // The kernel filters an FDB dump by device only under strict checking
        // (NETLINK_GET_STRICT_CHK), which this socket does not enable, so filter here.
        let msg = neigh_msg(
            af_bridge(),
            0,
            Nud::NONE,
            Ntf::empty(),
            RtBuffer::new(),
            &op,
        )?;
        self.request(Rtm::Getneigh, NlmF::DUMP, msg, &op, |m: &Ndmsg| {
            (*m.ndm_index() == index).then(|| Neighbour::from_msg(m))
        })
    }
}
