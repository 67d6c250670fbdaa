use super::*;

/// A valid IPv4 packet: `proto`, `ttl`, 10.5.1.2 -> `dst`, `payload` bytes of 0xab.
fn packet(proto: u8, ttl: u8, dst: [u8; 4], payload: usize) -> Vec<u8> {
    let total = IPV4_HEADER + payload;
    let mut p = vec![0xab; total];
    p[..IPV4_HEADER].fill(0);
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    p[8] = ttl;
    p[9] = proto;
    p[12..16].copy_from_slice(&[10, 5, 1, 2]);
    p[16..20].copy_from_slice(&dst);
    let c = checksum(&p[..IPV4_HEADER]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p
}

fn header_ok(p: &[u8]) -> bool {
    let ihl = usize::from(p[0] & 0x0f) * 4;
    checksum(&p[..ihl]) == 0
}

#[test]
fn accepts_whole_packets_and_reports_their_length() {
    let p = packet(17, 64, [10, 5, 2, 3], 100);
    assert_eq!(ipv4_len(&p), Ok(120));
    assert_eq!(dst(&p), Ipv4Addr::new(10, 5, 2, 3));
    assert_eq!(src(&p), Ipv4Addr::new(10, 5, 1, 2));
    // Trailing bytes beyond the total length are padding.
    let mut padded = p.clone();
    padded.extend_from_slice(&[0; 7]);
    assert_eq!(ipv4_len(&padded), Ok(120));
}

#[test]
fn rejects_bad_input_with_a_reason() {
    let p = packet(6, 64, [10, 5, 2, 3], 40);
    assert_eq!(ipv4_len(&[]), Err(Discard::Runt));
    assert_eq!(ipv4_len(&p[..19]), Err(Discard::Runt));
    let mut v6 = p.clone();
    v6[0] = 0x60;
    assert_eq!(ipv4_len(&v6), Err(Discard::NotIpv4));
    let mut short_ihl = p.clone();
    short_ihl[0] = 0x44;
    assert_eq!(ipv4_len(&short_ihl), Err(Discard::BadHeader));
    let mut long_ihl = p[..24].to_vec();
    long_ihl[0] = 0x4f;
    assert_eq!(ipv4_len(&long_ihl), Err(Discard::BadHeader));
    // Claims more than arrived.
    assert_eq!(ipv4_len(&p[..50]), Err(Discard::BadLength));
    let mut tiny_total = p.clone();
    tiny_total[2..4].copy_from_slice(&19u16.to_be_bytes());
    assert_eq!(ipv4_len(&tiny_total), Err(Discard::BadLength));
}

#[test]
fn no_input_panics() {
    // Every prefix of a packet and every value of the first byte and length field.
    let p = packet(6, 64, [10, 5, 2, 3], 40);
    let mut out = [0u8; ICMP_UNREACHABLE_MAX];
    for cut in 0..=p.len() {
        let _ = ipv4_len(&p[..cut]);
        let _ = net_unreachable(&p[..cut], Ipv4Addr::new(10, 5, 1, 0), &mut out);
    }
    for b0 in 0..=255u8 {
        for len in [0u16, 1, 19, 20, 21, 59, 60, 61, 0xffff] {
            let mut q = p.clone();
            q[0] = b0;
            q[2..4].copy_from_slice(&len.to_be_bytes());
            if ipv4_len(&q).is_ok() {
                assert!(decrement_ttl(&mut q));
            }
            let _ = net_unreachable(&q, Ipv4Addr::new(10, 5, 1, 0), &mut out);
        }
    }
}

#[test]
fn ttl_decrement_keeps_the_checksum_valid() {
    // Every TTL and a spread of header contents, including checksums near 0x0000 and 0xffff.
    for ttl in 2..=255u8 {
        for id in [0u16, 1, 0x00ff, 0x1234, 0xfeff, 0xffff] {
            let mut p = packet(6, ttl, [10, 5, 2, 3], 8);
            p[4..6].copy_from_slice(&id.to_be_bytes());
            p[10..12].fill(0);
            let c = checksum(&p[..IPV4_HEADER]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
            assert!(decrement_ttl(&mut p));
            assert_eq!(p[8], ttl - 1);
            assert!(header_ok(&p), "ttl {ttl} id {id:#x}");
        }
    }
}

#[test]
fn ttl_of_one_or_zero_is_dropped_untouched() {
    for ttl in [0u8, 1] {
        let mut p = packet(6, ttl, [10, 5, 2, 3], 8);
        let before = p.clone();
        assert!(!decrement_ttl(&mut p));
        assert_eq!(p, before);
    }
}

#[test]
fn checksum_matches_rfc1071_example() {
    // RFC 1071 section 3's example words sum to 0xddf2; the checksum is its complement.
    let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
    assert_eq!(checksum(&data), !0xddf2);
    // Odd length pads with a zero byte.
    assert_eq!(checksum(&[0x12]), !0x1200);
}

#[test]
fn net_unreachable_answers_the_sender_from_the_tun_address() {
    let p = packet(17, 63, [10, 5, 9, 9], 100);
    let mut out = [0u8; ICMP_UNREACHABLE_MAX];
    let n = net_unreachable(&p, Ipv4Addr::new(10, 5, 1, 0), &mut out).expect("an answer");
    let icmp = &out[..n];
    assert_eq!(n, 20 + 8 + 20 + 8);
    assert_eq!(ipv4_len(icmp), Ok(n));
    assert!(header_ok(icmp));
    assert_eq!(icmp[8], 8, "TTL as upstream");
    assert_eq!(icmp[9], 1, "protocol ICMP");
    assert_eq!(src(icmp), Ipv4Addr::new(10, 5, 1, 0));
    assert_eq!(dst(icmp), Ipv4Addr::new(10, 5, 1, 2));
    assert_eq!(&icmp[20..22], &[3, 0], "type 3 code 0");
    assert_eq!(checksum(&icmp[20..]), 0, "ICMP checksum");
    assert_eq!(
        &icmp[28..],
        &p[..28],
        "quotes the header and 8 payload bytes"
    );
}

#[test]
fn net_unreachable_quotes_options_and_short_payloads() {
    // A 24-byte header (one option word) and a 3-byte payload.
    let mut p = packet(17, 63, [10, 5, 9, 9], 7);
    p[0] = 0x46;
    p[10..12].fill(0);
    let c = checksum(&p[..24]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    let mut out = [0u8; ICMP_UNREACHABLE_MAX];
    let n = net_unreachable(&p, Ipv4Addr::new(10, 5, 1, 0), &mut out).unwrap();
    assert_eq!(n, 20 + 8 + 27);
    assert_eq!(&out[28..n], &p[..]);
    assert_eq!(checksum(&out[20..n]), 0);
}

#[test]
fn no_icmp_about_icmp_or_later_fragments() {
    let mut out = [0u8; ICMP_UNREACHABLE_MAX];
    let from = Ipv4Addr::new(10, 5, 1, 0);
    assert_eq!(
        net_unreachable(&packet(1, 64, [10, 5, 9, 9], 8), from, &mut out),
        None
    );
    let mut frag = packet(17, 64, [10, 5, 9, 9], 8);
    frag[6..8].copy_from_slice(&0x0010u16.to_be_bytes());
    assert_eq!(net_unreachable(&frag, from, &mut out), None);
    // The first fragment (more-fragments set, offset 0) is answered.
    let mut first = packet(17, 64, [10, 5, 9, 9], 8);
    first[6..8].copy_from_slice(&0x2000u16.to_be_bytes());
    assert!(net_unreachable(&first, from, &mut out).is_some());
    // Too small an output buffer is no answer, not a panic.
    let mut small = [0u8; 30];
    assert_eq!(
        net_unreachable(&packet(17, 64, [10, 5, 9, 9], 8), from, &mut small),
        None
    );
}
