//! Routes: add (create or replace), delete, dump.

use super::{attr, ip_bytes, ip_from, Error, Handle, Result};
use ipnet::IpNet;
use neli::consts::nl::NlmF;
use neli::consts::rtnl::{RtAddrFamily, RtScope, RtTable, Rta, Rtm, RtmF, Rtn, Rtprot};
use neli::rtnl::{Rtmsg, RtmsgBuilder};
use neli::types::RtBuffer;
use std::net::IpAddr;

/// `RTNH_F_ONLINK` in rtm_flags: the gateway is reachable on the link even if no prefix says so.
const RTNH_F_ONLINK: u32 = 4;
/// Go's netlink library (and so the reference plugins) add routes as proto boot.
const ADD_PROTOCOL: Rtprot = Rtprot::Boot;
/// As a delete's scope: any scope.
pub const SCOPE_NOWHERE: u8 = 255;
/// The main routing table.
pub const MAIN_TABLE: u32 = 254;

/// A route, as weft adds it and as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<i32>,
    /// Preferred source address (`src`).
    pub src: Option<IpAddr>,
    /// rtnetlink scope: 0 universe, 253 link, 254 host.
    pub scope: u8,
    pub table: u32,
    /// Metric (`metric`/`priority`).
    pub priority: Option<u32>,
    pub onlink: bool,
    /// A `blackhole` route (packets to it are dropped) rather than a unicast one.
    pub blackhole: bool,
}

impl Route {
    /// A universe-scope route in the main table.
    pub fn new(dst: IpNet) -> Route {
        Route {
            dst,
            gw: None,
            oif: None,
            src: None,
            scope: 0,
            table: MAIN_TABLE,
            priority: None,
            onlink: false,
            blackhole: false,
        }
    }
}

fn family_of(ip: IpAddr) -> RtAddrFamily {
    if ip.is_ipv4() {
        RtAddrFamily::Inet
    } else {
        RtAddrFamily::Inet6
    }
}

fn table_byte(table: u32) -> RtTable {
    if table < 256 {
        RtTable::from(table as u8)
    } else {
        RtTable::Unspec
    }
}

fn describe(r: &Route) -> String {
    let mut s = format!("{}", r.dst);
    if let Some(gw) = r.gw {
        s.push_str(&format!(" via {gw}"));
    }
    if let Some(oif) = r.oif {
        s.push_str(&format!(" dev {oif}"));
    }
    s
}

impl Handle {
    fn route_msg(&self, r: &Route, proto: Rtprot, op: &dyn Fn() -> String) -> Result<Rtmsg> {
        let mut attrs = RtBuffer::new();
        // The kernel wants the network address, not a host address with a prefix.
        attrs.push(attr(op, Rta::Dst, ip_bytes(r.dst.network()))?);
        if let Some(gw) = r.gw {
            attrs.push(attr(op, Rta::Gateway, ip_bytes(gw))?);
        }
        if let Some(oif) = r.oif {
            attrs.push(attr(op, Rta::Oif, oif as u32)?);
        }
        if let Some(src) = r.src {
            attrs.push(attr(op, Rta::Prefsrc, ip_bytes(src))?);
        }
        if let Some(p) = r.priority {
            attrs.push(attr(op, Rta::Priority, p)?);
        }
        if r.table >= 256 {
            attrs.push(attr(op, Rta::Table, r.table)?);
        }
        RtmsgBuilder::default()
            .rtm_family(family_of(r.dst.addr()))
            .rtm_dst_len(r.dst.prefix_len())
            .rtm_src_len(0)
            .rtm_tos(0)
            .rtm_table(table_byte(r.table))
            .rtm_protocol(proto)
            .rtm_scope(RtScope::from(r.scope))
            .rtm_type(if r.blackhole {
                Rtn::Blackhole
            } else {
                Rtn::Unicast
            })
            .rtm_flags(if r.onlink {
                RtmF::from_bits_retain(RTNH_F_ONLINK)
            } else {
                RtmF::empty()
            })
            .rtattrs(attrs)
            .build()
            .map_err(|e| Error::new(op(), e.to_string()))
    }

    /// `ip route add ROUTE`: EEXIST (see [`Error::is_exists`]) if the route is already there.
    pub fn add_route(&self, r: &Route) -> Result<()> {
        let op = || format!("failed to add route {}", describe(r));
        let msg = self.route_msg(r, ADD_PROTOCOL, &op)?;
        self.ack(Rtm::Newroute, NlmF::CREATE | NlmF::EXCL, msg, &op)
    }

    /// `ip route add ROUTE` without exclusivity, as Go's `RouteAddEcmp`: a route to the same
    /// prefix through another gateway is added beside the existing one; an identical route is
    /// still EEXIST.
    pub fn add_route_ecmp(&self, r: &Route) -> Result<()> {
        let op = || format!("failed to add route {}", describe(r));
        let msg = self.route_msg(r, ADD_PROTOCOL, &op)?;
        self.ack(Rtm::Newroute, NlmF::CREATE, msg, &op)
    }

    /// `ip route replace ROUTE`
    pub fn replace_route(&self, r: &Route) -> Result<()> {
        let op = || format!("failed to replace route {}", describe(r));
        let msg = self.route_msg(r, ADD_PROTOCOL, &op)?;
        self.ack(Rtm::Newroute, NlmF::CREATE | NlmF::REPLACE, msg, &op)
    }

    /// `ip route del ROUTE`. The kernel matches any protocol; it matches the scope given,
    /// except [`SCOPE_NOWHERE`] which matches any scope.
    pub fn delete_route(&self, r: &Route) -> Result<()> {
        let op = || format!("failed to delete route {}", describe(r));
        let msg = self.route_msg(r, Rtprot::Unspec, &op)?;
        self.ack(Rtm::Delroute, NlmF::empty(), msg, &op)
    }

    /// `ip [-6] route show table all`: unicast routes of both families, every table.
    pub fn routes(&self) -> Result<Vec<Route>> {
        self.routes_of_type(Rtn::Unicast, "routes")
    }

    /// `ip [-6] route show type blackhole table all`.
    pub fn blackhole_routes(&self) -> Result<Vec<Route>> {
        self.routes_of_type(Rtn::Blackhole, "blackhole routes")
    }

    /// The routes of type `ty`, both families, every table (`what` names them in errors).
    fn routes_of_type(&self, ty: Rtn, what: &str) -> Result<Vec<Route>> {
        let op = || format!("failed to list {what}");
        let msg = query_msg(RtAddrFamily::Unspecified, 0, RtBuffer::new(), &op)?;
        self.request(Rtm::Getroute, NlmF::DUMP, msg, &op, |p: &Rtmsg| {
            if *p.rtm_type() != ty {
                return None;
            }
            parse_route(p)
        })
    }

    /// `ip route get DST`: the route the kernel would use, with the output device and the
    /// preferred source address filled in.
    pub fn route_get(&self, dst: IpAddr) -> Result<Route> {
        let op = || format!("failed to look up the route to {dst}");
        let mut attrs = RtBuffer::new();
        attrs.push(attr(&op, Rta::Dst, ip_bytes(dst))?);
        let len = if dst.is_ipv4() { 32 } else { 128 };
        let msg = query_msg(family_of(dst), len, attrs, &op)?;
        self.request(Rtm::Getroute, NlmF::empty(), msg, &op, |p: &Rtmsg| {
            parse_route(p)
        })?
        .into_iter()
        .next()
        .ok_or_else(|| Error::not_found(op()))
    }
}

/// An RTM_GETROUTE request: a dump (no attributes) or a lookup of one destination.
fn query_msg(
    family: RtAddrFamily,
    dst_len: u8,
    attrs: RtBuffer<Rta, neli::types::Buffer>,
    op: &dyn Fn() -> String,
) -> Result<Rtmsg> {
    RtmsgBuilder::default()
        .rtm_family(family)
        .rtm_dst_len(dst_len)
        .rtm_src_len(0)
        .rtm_tos(0)
        .rtm_table(RtTable::Unspec)
        .rtm_protocol(Rtprot::Unspec)
        .rtm_scope(RtScope::Universe)
        .rtm_type(Rtn::Unspec)
        .rtattrs(attrs)
        .build()
        .map_err(|e| Error::new(op(), e.to_string()))
}

fn parse_route(p: &Rtmsg) -> Option<Route> {
    let attrs = p.rtattrs().get_attr_handle();
    let get_ip = |ty: Rta| {
        attrs
            .get_attribute(ty)
            .and_then(|a| ip_from(a.rta_payload().as_ref()))
    };
    let unspecified = if *p.rtm_family() == RtAddrFamily::Inet {
        IpAddr::from([0u8; 4])
    } else {
        IpAddr::from([0u8; 16])
    };
    let dst = IpNet::new(get_ip(Rta::Dst).unwrap_or(unspecified), *p.rtm_dst_len()).ok()?;
    Some(Route {
        dst,
        gw: get_ip(Rta::Gateway),
        oif: attrs
            .get_attr_payload_as::<u32>(Rta::Oif)
            .ok()
            .map(|i| i as i32),
        src: get_ip(Rta::Prefsrc),
        scope: u8::from(*p.rtm_scope()),
        table: attrs
            .get_attr_payload_as::<u32>(Rta::Table)
            .unwrap_or(u8::from(*p.rtm_table()) as u32),
        priority: attrs.get_attr_payload_as::<u32>(Rta::Priority).ok(),
        onlink: p.rtm_flags().bits() & RTNH_F_ONLINK != 0,
        blackhole: *p.rtm_type() == Rtn::Blackhole,
    })
}
