//! Micro-benchmark of the udp backend's per-packet work (no I/O): what one packet costs the
//! sending side (header check, forwarding-table lookup, TTL) and the receiving side (header
//! check, TTL), and the ICMP error path. `cargo bench --bench encap`; `make bench` runs it.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;
use weft::flanneld::backend::udp::encap;
use weft::flanneld::backend::udp::table::Table;

fn packet(len: usize, dst: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&[10, 46, 1, 2]);
    p[16..20].copy_from_slice(&dst.octets());
    let c = encap::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p
}

/// Runs `f` `n` times per round, 5 rounds; prints the best round's ns per call.
fn bench(name: &str, n: u64, mut f: impl FnMut()) {
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / n as f64);
    }
    println!("| {name} | {best:.1} ns | {:.1} M/s |", 1e3 / best);
}

fn main() {
    let mut table = Table::default();
    for i in 0..1000u32 {
        let net = ipnet::Ipv4Net::new(Ipv4Addr::from(0x0a2e_0000 | ((i + 1) << 8)), 24).unwrap();
        table.insert(
            net,
            SocketAddrV4::new(Ipv4Addr::from(0xc0a8_0000 | (i + 1)), 8285),
        );
    }
    let dst = Ipv4Addr::new(10, 46, 200, 7);
    println!("| per packet (1000 hosts in the table) | time | rate |\n|---|---|---|");
    for len in [64usize, 1472] {
        let mut p = packet(len, dst);
        bench(
            &format!("send side, {len} B: check + lookup + TTL"),
            2_000_000,
            || {
                let pkt = black_box(&mut p[..]);
                let l = encap::ipv4_len(pkt).unwrap();
                let to = table.lookup(encap::dst(&pkt[..l]));
                pkt[8] = 64; // keep the TTL from running out
                black_box(encap::decrement_ttl(&mut pkt[..l]));
                black_box(to);
            },
        );
        bench(
            &format!("receive side, {len} B: check + TTL"),
            2_000_000,
            || {
                let pkt = black_box(&mut p[..]);
                let l = encap::ipv4_len(pkt).unwrap();
                pkt[8] = 64;
                black_box(encap::decrement_ttl(&mut pkt[..l]));
            },
        );
    }
    let p = packet(1472, dst);
    let mut out = [0u8; encap::ICMP_UNREACHABLE_MAX];
    bench("ICMP net-unreachable built", 2_000_000, || {
        black_box(encap::net_unreachable(
            black_box(&p),
            Ipv4Addr::new(10, 46, 1, 0),
            &mut out,
        ));
    });
    bench("lookup miss (no such subnet)", 2_000_000, || {
        black_box(table.lookup(black_box(Ipv4Addr::new(10, 47, 0, 1))));
    });
}
