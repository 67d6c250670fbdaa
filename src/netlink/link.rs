//! Links: look up, set up/down.

use super::{Error, Handle, Result};
use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Iff, Ifla, RtAddrFamily, Rtm};
use neli::nl::NlPayload;
use neli::rtnl::{Ifinfomsg, IfinfomsgBuilder, RtattrBuilder};
use neli::types::RtBuffer;

/// What weft needs to know about a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: i32,
    pub name: String,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    pub mtu: u32,
}

impl Link {
    fn from_msg(msg: &Ifinfomsg) -> Link {
        let attrs = msg.rtattrs().get_attr_handle();
        Link {
            index: *msg.ifi_index(),
            name: attrs
                .get_attr_payload_as_with_len::<String>(Ifla::Ifname)
                .unwrap_or_default(),
            up: msg.ifi_flags().contains(Iff::UP),
            mtu: attrs.get_attr_payload_as::<u32>(Ifla::Mtu).unwrap_or(0),
        }
    }
}

impl Handle {
    /// `ip link show dev NAME`
    pub fn link_by_name(&self, name: &str) -> Result<Link> {
        let op = || format!("failed to find link {name:?}");
        let mut attrs = RtBuffer::new();
        attrs.push(
            RtattrBuilder::default()
                .rta_type(Ifla::Ifname)
                .rta_payload(name)
                .build()
                .map_err(|e| Error::new(op(), e.to_string()))?,
        );
        let msg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .rtattrs(attrs)
            .build()
            .map_err(|e| Error::new(op(), e.to_string()))?;
        let recv = self
            .router()
            .send::<_, _, Rtm, Ifinfomsg>(Rtm::Getlink, NlmF::ACK, NlPayload::Payload(msg))
            .map_err(|e| Error::from_router(op(), e))?;
        // Drain the reply and its ack: an unread ack would be handed to the next request.
        let mut found = None;
        for reply in recv {
            let reply = reply.map_err(|e| Error::from_router(op(), e))?;
            if let Some(p) = reply.get_payload() {
                found.get_or_insert_with(|| Link::from_msg(p));
            }
        }
        found.ok_or_else(|| Error {
            op: op(),
            errno: Some(libc::ENODEV),
            detail: "no such device".into(),
        })
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
        self.ack(Rtm::Newlink, NlmF::ACK, msg, op)
    }

    pub(crate) fn ack<P>(&self, ty: Rtm, flags: NlmF, msg: P, op: impl Fn() -> String) -> Result<()>
    where
        P: neli::Size + neli::ToBytes + std::fmt::Debug,
    {
        let recv = self
            .router()
            .send::<_, _, Rtm, neli::types::Buffer>(ty, flags | NlmF::ACK, NlPayload::Payload(msg))
            .map_err(|e| Error::from_router(op(), e))?;
        for reply in recv {
            reply.map_err(|e| Error::from_router(op(), e))?;
        }
        Ok(())
    }
}
