//! The udp backend's packet work, as pure functions over buffers the caller owns (no allocation,
//! no errors that allocate, no panics on any input).
//!
//! Wire format, shared with upstream flannel: the UDP payload (port 8285 by default) is the inner
//! IPv4 packet, byte for byte, and nothing else: no header, no VNI, no length field. A receiver
//! therefore has only the inner header to trust, and checks it before anything else.
//!
//! Per packet, as upstream: the TTL is decremented on both sides (a packet whose TTL would reach
//! zero is dropped), and a packet for a subnet no host holds is answered with an ICMP
//! net-unreachable that appears to come from the TUN device's address.

use std::net::Ipv4Addr;

/// Smallest IPv4 header.
pub const IPV4_HEADER: usize = 20;
/// Largest IPv4 header (15 words).
const IPV4_MAX_HEADER: usize = 60;
const PROTO_ICMP: u8 = 1;
/// TTL of the ICMP errors we originate, as upstream.
const ICMP_TTL: u8 = 8;
/// ICMP header (type, code, checksum, unused).
const ICMP_HEADER: usize = 8;
/// Room an ICMP net-unreachable can need: our header, ICMP header, the offender's largest header
/// and the 8 payload bytes RFC 792 quotes.
pub const ICMP_UNREACHABLE_MAX: usize = IPV4_HEADER + ICMP_HEADER + IPV4_MAX_HEADER + 8;

/// Why a packet was dropped; each has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    /// Shorter than an IPv4 header.
    Runt,
    /// Version nibble is not 4.
    NotIpv4,
    /// Header length below 20 bytes or beyond the packet.
    BadHeader,
    /// Total length field larger than what arrived (or smaller than the header).
    BadLength,
    /// TTL would reach zero.
    TtlExpired,
    /// No host holds the destination's subnet.
    NoRoute,
}

impl Discard {
    pub const ALL: [Discard; 6] = [
        Discard::Runt,
        Discard::NotIpv4,
        Discard::BadHeader,
        Discard::BadLength,
        Discard::TtlExpired,
        Discard::NoRoute,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Discard::Runt => "runt",
            Discard::NotIpv4 => "not IPv4",
            Discard::BadHeader => "bad header length",
            Discard::BadLength => "bad total length",
            Discard::TtlExpired => "TTL expired",
            Discard::NoRoute => "no route (ICMP sent)",
        }
    }
}

/// Checks that `pkt` holds one whole IPv4 packet and returns its length by the header, which
/// may be less than `pkt.len()` (trailing bytes are padding, not data).
pub fn ipv4_len(pkt: &[u8]) -> Result<usize, Discard> {
    if pkt.len() < IPV4_HEADER {
        return Err(Discard::Runt);
    }
    if pkt[0] >> 4 != 4 {
        return Err(Discard::NotIpv4);
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    if ihl < IPV4_HEADER || ihl > pkt.len() {
        return Err(Discard::BadHeader);
    }
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if total < ihl || total > pkt.len() {
        return Err(Discard::BadLength);
    }
    Ok(total)
}

/// Destination address of a packet [`ipv4_len`] accepted.
pub fn dst(pkt: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19])
}

/// Source address of a packet [`ipv4_len`] accepted.
pub fn src(pkt: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15])
}

/// Decrements the TTL of a packet [`ipv4_len`] accepted and patches the header checksum
/// incrementally (RFC 1624, eqn. 3). Returns false, leaving the packet as it was, when the TTL
/// would reach zero: the packet must be dropped.
pub fn decrement_ttl(pkt: &mut [u8]) -> bool {
    let ttl = pkt[8];
    if ttl <= 1 {
        return false;
    }
    let old = u16::from_be_bytes([ttl, pkt[9]]);
    let new = old - 0x0100;
    pkt[8] = ttl - 1;
    let hc = u16::from_be_bytes([pkt[10], pkt[11]]);
    // HC' = ~(~HC + ~m + m'), in one's-complement arithmetic.
    let mut sum = u32::from(!hc) + u32::from(!old) + u32::from(new);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    pkt[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    true
}

/// The Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Writes into `out` the ICMP "destination net unreachable" (type 3, code 0) that answers
/// `offender`, from `from` (the TUN address) back to the offender's source, quoting its header
/// and first 8 payload bytes. Returns the length written, or None where RFC 792 forbids an
/// answer (the offender is ICMP itself, or a non-first fragment) or `offender` is malformed.
/// `out` must hold [`ICMP_UNREACHABLE_MAX`] bytes.
pub fn net_unreachable(offender: &[u8], from: Ipv4Addr, out: &mut [u8]) -> Option<usize> {
    let len = ipv4_len(offender).ok()?;
    let offender = &offender[..len];
    if offender[9] == PROTO_ICMP {
        return None;
    }
    let frag_offset = u16::from_be_bytes([offender[6], offender[7]]) & 0x1fff;
    if frag_offset != 0 {
        return None;
    }
    let ihl = usize::from(offender[0] & 0x0f) * 4;
    let quote = &offender[..(ihl + 8).min(len)];
    let total = IPV4_HEADER + ICMP_HEADER + quote.len();
    let out = out.get_mut(..total)?;
    out.fill(0);
    let ip = &mut out[..IPV4_HEADER];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[8] = ICMP_TTL;
    ip[9] = PROTO_ICMP;
    ip[12..16].copy_from_slice(&from.octets());
    ip[16..20].copy_from_slice(&offender[12..16]);
    let c = checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let icmp = &mut out[IPV4_HEADER..];
    icmp[0] = 3; // destination unreachable
    icmp[1] = 0; // net unreachable
    icmp[ICMP_HEADER..].copy_from_slice(quote);
    let c = checksum(icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    Some(total)
}

#[cfg(test)]
mod tests;
