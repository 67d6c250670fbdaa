//! Links: look up, dump, create (veth, bridge), set up/down, MTU, MAC, master, delete.

use super::{attr, raw_attrs, Error, Handle, Result};
use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Iff, Ifla, IflaInfo, RtAddrFamily, Rtm};
use neli::rtnl::{Ifinfomsg, IfinfomsgBuilder, Rtattr};
use neli::types::{Buffer, RtBuffer};
use std::os::fd::{AsRawFd, BorrowedFd};

/// `VETH_INFO_PEER`: the peer's ifinfomsg inside IFLA_INFO_DATA (not defined by neli).
const VETH_INFO_PEER: u16 = 1;
/// `IFLA_BR_VLAN_FILTERING` inside a bridge's IFLA_INFO_DATA.
const IFLA_BR_VLAN_FILTERING: u16 = 7;
/// `IF_OPER_UP` from RFC 2863 as the kernel reports it in IFLA_OPERSTATE.
const IF_OPER_UP: u8 = 6;
/// `IFLA_INET_CONF`: IPv4 settings inside IFLA_AF_SPEC's AF_INET nest, one attribute per
/// IPV4_DEVCONF_* (1-based).
const IFLA_INET_CONF: u16 = 1;
/// `IFLA_INET6_CONF`: IPv6 settings inside IFLA_AF_SPEC's AF_INET6 nest, an array of s32
/// indexed by DEVCONF_* (0-based).
const IFLA_INET6_CONF: u16 = 2;
const DEVCONF_ACCEPT_RA: usize = 3;
/// `IPV4_DEVCONF_ARP_NOTIFY`, for [`Handle::set_ipv4_conf`].
pub const IPV4_DEVCONF_ARP_NOTIFY: u16 = 22;

/// What weft needs to know about a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: i32,
    pub name: String,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Operationally up (`IF_OPER_UP`).
    pub oper_up: bool,
    /// `IFLA_OPERSTATE` as the kernel reports it (RFC 2863 numbering).
    pub operstate: u8,
    pub promisc: bool,
    pub mtu: u32,
    /// Hardware address, empty for links without one.
    pub mac: Vec<u8>,
    /// `IFLA_MASTER`: the bridge this link is a port of, 0 if none.
    pub master: i32,
    /// `IFLA_LINK`: for a veth, the peer's index (in the peer's namespace); 0 if none.
    pub parent: i32,
    /// `IFLA_INFO_KIND` ("veth", "bridge", ...), empty for plain devices like lo.
    pub kind: String,
    /// `net.ipv6.conf.NAME.accept_ra` as the kernel reports it with the link; `None` when the
    /// link has no IPv6.
    pub ipv6_accept_ra: Option<i32>,
}

impl Link {
    /// A link from the body (after the netlink header) of an RTM_NEWLINK message.
    pub(super) fn from_body(body: &[u8]) -> Option<Link> {
        use neli::FromBytesWithInput;
        let msg =
            Ifinfomsg::from_bytes_with_input(&mut std::io::Cursor::new(body), body.len()).ok()?;
        Some(Link::from_msg(&msg))
    }

    fn from_msg(msg: &Ifinfomsg) -> Link {
        let attrs = msg.rtattrs().get_attr_handle();
        let kind = attrs
            .get_nested_attributes::<IflaInfo>(Ifla::Linkinfo)
            .ok()
            .and_then(|info| {
                info.get_attr_payload_as_with_len::<String>(IflaInfo::Kind)
                    .ok()
            })
            .map(|k| k.trim_end_matches('\0').to_string())
            .unwrap_or_default();
        Link {
            index: *msg.ifi_index(),
            name: attrs
                .get_attr_payload_as_with_len::<String>(Ifla::Ifname)
                .unwrap_or_default(),
            up: msg.ifi_flags().contains(Iff::UP),
            oper_up: attrs.get_attr_payload_as::<u8>(Ifla::Operstate).ok() == Some(IF_OPER_UP),
            operstate: attrs
                .get_attr_payload_as::<u8>(Ifla::Operstate)
                .unwrap_or(0),
            promisc: msg.ifi_flags().contains(Iff::PROMISC),
            mtu: attrs.get_attr_payload_as::<u32>(Ifla::Mtu).unwrap_or(0),
            mac: attrs
                .get_attribute(Ifla::Address)
                .map(|a| a.rta_payload().as_ref().to_vec())
                .unwrap_or_default(),
            master: attrs.get_attr_payload_as::<u32>(Ifla::Master).unwrap_or(0) as i32,
            parent: attrs.get_attr_payload_as::<u32>(Ifla::Link).unwrap_or(0) as i32,
            kind,
            ipv6_accept_ra: attrs
                .get_attribute(Ifla::AfSpec)
                .and_then(|a| ipv6_conf(a.rta_payload().as_ref(), DEVCONF_ACCEPT_RA)),
        }
    }

    /// The operational state as Go's netlink library names it (the reference's messages use it).
    pub fn oper_state_name(&self) -> &'static str {
        match self.operstate {
            1 => "not-present",
            2 => "down",
            3 => "lower-layer-down",
            4 => "testing",
            5 => "dormant",
            6 => "up",
            _ => "unknown",
        }
    }

    /// The MAC as `aa:bb:cc:dd:ee:ff`.
    pub fn mac_string(&self) -> String {
        format_mac(&self.mac)
    }
}

/// One IPv6 setting (DEVCONF_* index) from the bytes of an IFLA_AF_SPEC attribute.
fn ipv6_conf(af_spec: &[u8], devconf: usize) -> Option<i32> {
    let (_, inet6) = raw_attrs(af_spec).find(|&(ty, _)| ty == libc::AF_INET6 as u16)?;
    let (_, conf) = raw_attrs(inet6).find(|&(ty, _)| ty == IFLA_INET6_CONF)?;
    let at = devconf * 4;
    Some(i32::from_ne_bytes(conf.get(at..at + 4)?.try_into().ok()?))
}

/// Formats a hardware address the way `ip` and the CNI results do.
pub fn format_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        if p.len() != 2 {
            return None;
        }
        *m = u8::from_str_radix(p, 16).ok()?;
    }
    Some(mac)
}

/// Options of a new veth pair.
#[derive(Debug, Default, Clone, Copy)]
pub struct VethOptions<'a> {
    /// MTU of both ends (kernel default when `None`).
    pub mtu: Option<u32>,
    /// MAC of the end named `name` (random when `None`).
    pub mac: Option<[u8; 6]>,
    /// MAC of the peer (random when `None`).
    pub peer_mac: Option<[u8; 6]>,
    /// Create the peer straight inside this namespace.
    pub peer_netns: Option<BorrowedFd<'a>>,
    /// Bring the end named `name` up as it is made (`ip link add ... up`).
    pub up: bool,
    /// Make the end named `name` a port of this bridge as it is made (`ip link add ... master`).
    pub master: Option<i32>,
}

pub(super) fn linkinfo_with(
    op: &dyn Fn() -> String,
    kind: &str,
    data: Option<Buffer>,
) -> Result<Rtattr<Ifla, Buffer>> {
    let mut info = RtBuffer::<IflaInfo, Buffer>::new();
    info.push(attr(op, IflaInfo::Kind, kind)?);
    if let Some(data) = data {
        info.push(attr(op, IflaInfo::Data, data)?);
    }
    attr(op, Ifla::Linkinfo, info)
}

/// An ifinfomsg for link `index` (0: none) of `family` carrying `attrs`.
pub(super) fn ifinfo(
    family: RtAddrFamily,
    index: i32,
    attrs: RtBuffer<Ifla, Buffer>,
    op: &dyn Fn() -> String,
) -> Result<Ifinfomsg> {
    IfinfomsgBuilder::default()
        .ifi_family(family)
        .ifi_index(index)
        .rtattrs(attrs)
        .build()
        .map_err(|e| Error::new(op(), e.to_string()))
}

/// A create request (`RTM_NEWLINK` with no index) carrying `attrs`.
pub(super) fn ifinfo_new_link(
    attrs: RtBuffer<Ifla, Buffer>,
    op: &dyn Fn() -> String,
) -> Result<Ifinfomsg> {
    ifinfo(RtAddrFamily::Unspecified, 0, attrs, op)
}

/// A nested attribute list as the bytes of one attribute payload.
pub(super) fn serialize_attrs(
    op: &dyn Fn() -> String,
    attrs: &RtBuffer<u16, Buffer>,
) -> Result<Buffer> {
    serialize(op, attrs)
}

fn serialize<P: neli::ToBytes + neli::Size>(op: &dyn Fn() -> String, p: &P) -> Result<Buffer> {
    let mut c = std::io::Cursor::new(Vec::with_capacity(p.padded_size()));
    p.to_bytes(&mut c)
        .map_err(|e| Error::new(op(), e.to_string()))?;
    Ok(Buffer::from(c.into_inner()))
}

/// The attributes inside a link's IFLA_LINKINFO.
pub(super) type LinkInfo<'a> =
    neli::attr::AttrHandle<'a, RtBuffer<IflaInfo, Buffer>, Rtattr<IflaInfo, Buffer>>;

impl Handle {
    fn get_links(&self, msg: Ifinfomsg, flags: NlmF, op: &dyn Fn() -> String) -> Result<Vec<Link>> {
        self.request(Rtm::Getlink, flags, msg, op, |p: &Ifinfomsg| {
            Some(Link::from_msg(p))
        })
    }

    fn get_one_link(
        &self,
        index: i32,
        name: Option<&str>,
        op: &dyn Fn() -> String,
    ) -> Result<Link> {
        let mut attrs = RtBuffer::new();
        if let Some(name) = name {
            attrs.push(attr(op, Ifla::Ifname, name)?);
        }
        let msg = ifinfo(RtAddrFamily::Unspecified, index, attrs, op)?;
        self.get_links(msg, NlmF::ACK, op)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found(op()))
    }

    /// `ip link show dev NAME`
    pub fn link_by_name(&self, name: &str) -> Result<Link> {
        self.get_one_link(0, Some(name), &|| format!("failed to find link {name:?}"))
    }

    /// `ip link show` with the index as the key.
    pub fn link_by_index(&self, index: i32) -> Result<Link> {
        self.get_one_link(index, None, &|| format!("failed to find link {index}"))
    }

    /// `ip link show` (every link in the namespace)
    pub fn links(&self) -> Result<Vec<Link>> {
        let op = || "failed to list links".to_string();
        let msg = ifinfo(RtAddrFamily::Unspecified, 0, RtBuffer::new(), &op)?;
        self.get_links(msg, NlmF::DUMP, &op)
    }

    /// `ip link add NAME [mtu M] [address MAC] [master BR] [up] type veth peer name PEER [mtu M]
    /// [address MAC] [netns NS]`. Returns the new `NAME` link as the kernel echoes it (kernels
    /// before 6.1 do not; then `None`, and the caller looks it up).
    pub fn create_veth(
        &self,
        name: &str,
        peer: &str,
        opts: VethOptions<'_>,
    ) -> Result<Option<Link>> {
        let op = || format!("failed to create veth {name:?} (peer {peer:?})");
        let mut peer_attrs = RtBuffer::new();
        peer_attrs.push(attr(&op, Ifla::Ifname, peer)?);
        if let Some(mtu) = opts.mtu {
            peer_attrs.push(attr(&op, Ifla::Mtu, mtu)?);
        }
        if let Some(mac) = opts.peer_mac {
            peer_attrs.push(attr(&op, Ifla::Address, Buffer::from(mac.to_vec()))?);
        }
        if let Some(fd) = opts.peer_netns {
            peer_attrs.push(attr(&op, Ifla::NetNsFd, fd.as_raw_fd() as u32)?);
        }
        let peer_msg = ifinfo(RtAddrFamily::Unspecified, 0, peer_attrs, &op)?;
        let mut data = RtBuffer::<u16, Buffer>::new();
        data.push(attr(&op, VETH_INFO_PEER, serialize(&op, &peer_msg)?)?);
        let mut attrs = RtBuffer::new();
        attrs.push(attr(&op, Ifla::Ifname, name)?);
        if let Some(mtu) = opts.mtu {
            attrs.push(attr(&op, Ifla::Mtu, mtu)?);
        }
        if let Some(mac) = opts.mac {
            attrs.push(attr(&op, Ifla::Address, Buffer::from(mac.to_vec()))?);
        }
        if let Some(master) = opts.master {
            attrs.push(attr(&op, Ifla::Master, master as u32)?);
        }
        attrs.push(linkinfo_with(&op, "veth", Some(serialize(&op, &data)?))?);
        let mut msg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .ifi_index(0)
            .rtattrs(attrs);
        if opts.up {
            msg = msg.up();
        }
        let msg = msg.build().map_err(|e| Error::new(op(), e.to_string()))?;
        // NLM_F_ECHO: the kernel sends the new link back, which saves a lookup.
        let flags = NlmF::CREATE | NlmF::EXCL | NlmF::ACK | NlmF::ECHO;
        let echoed = self.request(Rtm::Newlink, flags, msg, &op, |p: &Ifinfomsg| {
            Some(Link::from_msg(p))
        })?;
        Ok(echoed.into_iter().find(|l| l.name == name))
    }

    /// `ip link add NAME [mtu M] type bridge [vlan_filtering 1]`
    pub fn create_bridge(&self, name: &str, mtu: Option<u32>, vlan_filtering: bool) -> Result<()> {
        let op = || format!("failed to create bridge {name:?}");
        let mut attrs = RtBuffer::new();
        attrs.push(attr(&op, Ifla::Ifname, name)?);
        if let Some(mtu) = mtu {
            attrs.push(attr(&op, Ifla::Mtu, mtu)?);
        }
        let data = if vlan_filtering {
            let mut d = RtBuffer::<u16, Buffer>::new();
            d.push(attr(&op, IFLA_BR_VLAN_FILTERING, 1u8)?);
            Some(serialize(&op, &d)?)
        } else {
            None
        };
        attrs.push(linkinfo_with(&op, "bridge", data)?);
        self.new_link(attrs, &op)
    }

    fn new_link(&self, attrs: RtBuffer<Ifla, Buffer>, op: &dyn Fn() -> String) -> Result<()> {
        self.ack_new_link(ifinfo_new_link(attrs, op)?, op)
    }

    pub(super) fn ack_new_link(&self, msg: Ifinfomsg, op: &dyn Fn() -> String) -> Result<()> {
        self.ack(Rtm::Newlink, NlmF::CREATE | NlmF::EXCL, msg, op)
    }

    /// Looks a link up by name and hands its parsed form and its IFLA_LINKINFO attributes to
    /// `each` (for kinds whose IFLA_INFO_DATA a caller wants to read).
    pub(super) fn raw_link(
        &self,
        name: &str,
        op: &dyn Fn() -> String,
        each: &mut dyn FnMut(Link, &LinkInfo<'_>),
    ) -> Result<()> {
        let mut attrs = RtBuffer::new();
        attrs.push(attr(op, Ifla::Ifname, name)?);
        let msg = ifinfo(RtAddrFamily::Unspecified, 0, attrs, op)?;
        self.request(Rtm::Getlink, NlmF::ACK, msg, op, |p: &Ifinfomsg| {
            let link = Link::from_msg(p);
            if let Ok(info) = p
                .rtattrs()
                .get_attr_handle()
                .get_nested_attributes::<IflaInfo>(Ifla::Linkinfo)
            {
                each(link, &info);
            }
            Some(())
        })
        .map(|_| ())
    }

    fn set_link(
        &self,
        index: i32,
        attrs: RtBuffer<Ifla, Buffer>,
        op: &dyn Fn() -> String,
    ) -> Result<()> {
        let msg = ifinfo(RtAddrFamily::Unspecified, index, attrs, op)?;
        self.ack(Rtm::Newlink, NlmF::empty(), msg, op)
    }

    /// `sysctl -w net.ipv4.conf.DEV.SETTING=VALUE` through netlink, for the link `index`;
    /// `conf` is an IPV4_DEVCONF_* number. The kernel stores it as a /proc/sys write would. Why
    /// not /proc/sys: opening a path under /proc/sys/net walks one dentry per network namespace
    /// on the machine, hundreds of microseconds on a node with a few hundred pods.
    pub fn set_ipv4_conf(&self, index: i32, conf: u16, value: u32) -> Result<()> {
        let op = || format!("failed to set IPv4 setting {conf} of link {index} to {value}");
        let mut settings = RtBuffer::<u16, Buffer>::new();
        settings.push(attr(&op, conf, value)?);
        let mut inet = RtBuffer::<u16, Buffer>::new();
        inet.push(attr(&op, IFLA_INET_CONF, settings)?);
        let mut af = RtBuffer::<u16, Buffer>::new();
        af.push(attr(&op, libc::AF_INET as u16, inet)?);
        let mut attrs = RtBuffer::new();
        attrs.push(attr(&op, Ifla::AfSpec, af)?);
        let msg = ifinfo(RtAddrFamily::Unspecified, index, attrs, &op)?;
        self.ack(Rtm::Setlink, NlmF::empty(), msg, &op)
    }

    /// `ip link set dev INDEX up` / `down`
    pub fn set_link_up(&self, index: i32, up: bool) -> Result<()> {
        let op = || {
            format!(
                "failed to set link {index} {}",
                if up { "up" } else { "down" }
            )
        };
        let b = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .ifi_index(index);
        let msg = if up { b.up() } else { b.down() }
            .build()
            .map_err(|e| Error::new(op(), e.to_string()))?;
        self.ack(Rtm::Newlink, NlmF::empty(), msg, &op)
    }

    /// `ip link set dev INDEX mtu MTU`
    pub fn set_link_mtu(&self, index: i32, mtu: u32) -> Result<()> {
        let op = || format!("failed to set mtu {mtu} on link {index}");
        let mut attrs = RtBuffer::new();
        attrs.push(attr(&op, Ifla::Mtu, mtu)?);
        self.set_link(index, attrs, &op)
    }

    /// `ip link set dev INDEX address MAC`
    pub fn set_link_mac(&self, index: i32, mac: [u8; 6]) -> Result<()> {
        let op = || format!("failed to set address {} on link {index}", format_mac(&mac));
        let mut attrs = RtBuffer::new();
        attrs.push(attr(&op, Ifla::Address, Buffer::from(mac.to_vec()))?);
        self.set_link(index, attrs, &op)
    }

    /// `ip link set dev INDEX master MASTER` (`nomaster` when `master` is 0)
    pub fn set_link_master(&self, index: i32, master: i32) -> Result<()> {
        let op = || format!("failed to set master {master} on link {index}");
        let mut attrs = RtBuffer::new();
        attrs.push(attr(&op, Ifla::Master, master as u32)?);
        self.set_link(index, attrs, &op)
    }

    /// `ip link set dev INDEX promisc on|off`
    pub fn set_link_promisc(&self, index: i32, on: bool) -> Result<()> {
        let op = || format!("failed to set promisc on link {index}");
        let msg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .ifi_index(index)
            .ifi_flags(if on { Iff::PROMISC } else { Iff::empty() })
            .ifi_change(Iff::PROMISC)
            .build()
            .map_err(|e| Error::new(op(), e.to_string()))?;
        self.ack(Rtm::Newlink, NlmF::empty(), msg, &op)
    }

    /// `ip link del dev INDEX`
    pub fn delete_link(&self, index: i32) -> Result<()> {
        let op = || format!("failed to delete link {index}");
        let msg = ifinfo(RtAddrFamily::Unspecified, index, RtBuffer::new(), &op)?;
        self.ack(Rtm::Dellink, NlmF::empty(), msg, &op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_text() {
        let m = parse_mac("0a:58:0A:01:00:ff").unwrap();
        assert_eq!(format_mac(&m), "0a:58:0a:01:00:ff");
        for bad in [
            "",
            "0a:58",
            "0a:58:0a:01:00:fff",
            "zz:58:0a:01:00:ff",
            "0a-58-0a-01-00-ff",
        ] {
            assert!(parse_mac(bad).is_none(), "{bad}");
        }
    }
}
