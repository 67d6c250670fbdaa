//! The udp backend against a real etcd in throwaway namespaces: three "hosts" on an underlay
//! bridge, pods behind each host's cni0, traffic tunnelled through flannel0 over UDP 8285.
//! A fourth "host" that is only a UDP socket plays an upstream flanneld on the wire.

use crate::common::overlay::{lab, net_of, route_to, wait_for, wait_for_then, UNDERLAY};
use crate::common::Netns;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;
use weft::flanneld::backend::udp::encap;

/// No Backend: upstream's default is udp.
const NET: &str = r#"{"Network":"10.46.0.0/16"}"#;

/// Runs `f` inside `ns` (sockets made there stay there).
fn in_ns<T: Send>(ns: &Netns, f: impl FnOnce() -> std::io::Result<T> + Send) -> T {
    let n = weft::sys::netns::NetNs::open(ns.path()).unwrap();
    n.run(|| Ok(f()?)).unwrap()
}

/// Deterministic pseudo-random bytes (xorshift), so the data is not compressible or periodic.
fn fill(buf: &mut [u8], state: &mut u64) {
    for b in buf.chunks_mut(8) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        b.copy_from_slice(&state.to_le_bytes()[..b.len()]);
    }
}

#[test]
fn udp_is_the_default_and_carries_small_full_sized_and_bulk_traffic() {
    let mut tb = lab(3);
    tb.set_config(NET);
    tb.start_all(&[]);

    let env = tb.hosts[0].wait_env();
    let lines: Vec<&str> = env.lines().collect();
    assert_eq!(lines[0], "FLANNEL_NETWORK=10.46.0.0/16", "{env}");
    assert_eq!(lines[2], "FLANNEL_MTU=1472", "{env}");

    // Leases: upstream's udp value has no BackendType at all.
    let leases = tb.etcd.dump("/coreos.com/network/subnets/");
    assert_eq!(leases.len(), 3, "{leases:?}");
    for h in &tb.hosts {
        let key = format!(
            "/coreos.com/network/subnets/{}",
            net_of(&h.subnet()).replace('/', "-")
        );
        let (_, v) = leases.iter().find(|(k, _)| *k == key).unwrap();
        assert_eq!(
            v,
            &format!(r#"{{"PublicIP":"{}","PublicIPv6":null}}"#, h.ip)
        );

        // flannel0: a TUN device with the subnet's network address alone, MTU 1472, up, and
        // the whole network routed into it.
        let dev = &h.ns.ipj(&["-d", "link", "show", "flannel0"])[0];
        assert_eq!(dev["mtu"], 1472, "{dev}");
        assert_eq!(dev["linkinfo"]["info_kind"], "tun", "{dev}");
        assert!(dev["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
        let a = &h.ns.ipj(&["-4", "addr", "show", "flannel0"])[0]["addr_info"][0];
        assert_eq!(
            format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]),
            net_of(&h.subnet()).replace("/24", "/32")
        );
        let r = route_to(&h.ns, "10.46.0.0/16").expect("network route");
        assert_eq!(r["dev"], "flannel0", "{r}");
        // The socket: bound to the interface address, port 8285.
        let (_, ss) = h.ns.exec(&["ss", "-Hunl"]);
        assert!(ss.contains(&format!("{}:8285", h.ip)), "{ss}");
    }

    let ips = tb.add_pods();
    tb.ping_all(&ips, &[]);
    // The smallest packet (a 28-byte echo) and the largest that fits flannel0 unfragmented.
    tb.ping_all(&ips, &["-s", "0"]);
    tb.ping_all(&ips, &["-s", "1444", "-M", "do"]);
    let (ok, out) =
        tb.hosts[0].pods[0].exec(&["ping", "-c", "1", "-s", "1445", "-M", "do", &ips[1].1]);
    assert!(!ok, "a packet above the pod MTU went out: {out}");

    // 100 MB of TCP from a pod on host 0 to a pod on host 2, checked at the receiver.
    const TOTAL: usize = 100 << 20;
    let listener = in_ns(&tb.hosts[2].pods[0], || {
        TcpListener::bind((ips[2].1.as_str(), 5001))
    });
    let receiver = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0;
        loop {
            let k = s.read(&mut buf).unwrap();
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            n += k;
        }
        (n, h.finalize())
    });
    let dst = ips[2].1.clone();
    let mut tx = in_ns(&tb.hosts[0].pods[0], move || {
        TcpStream::connect((dst.as_str(), 5001))
    });
    let mut h = Sha256::new();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut chunk = vec![0u8; 1 << 16];
    for _ in 0..TOTAL / chunk.len() {
        fill(&mut chunk, &mut state);
        h.update(&chunk);
        tx.write_all(&chunk).unwrap();
    }
    drop(tx);
    let (n, got) = receiver.join().unwrap();
    assert_eq!(n, TOTAL);
    assert_eq!(got, h.finalize(), "the data arrived changed");
}

/// An upstream-format packet: `payload` is the inner IPv4 packet, alone.
fn icmp_echo(src: Ipv4Addr, dst: Ipv4Addr, id: u16, ttl: u8) -> Vec<u8> {
    let mut p = vec![0u8; 20 + 8 + 16];
    p[0] = 0x45;
    let len = p.len() as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    p[8] = ttl;
    p[9] = 1;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = encap::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20] = 8; // echo request
    p[24..26].copy_from_slice(&id.to_be_bytes());
    p[26..28].copy_from_slice(&1u16.to_be_bytes());
    p[28..].copy_from_slice(b"weft wire test!!");
    let c = encap::checksum(&p[20..]);
    p[22..24].copy_from_slice(&c.to_be_bytes());
    p
}

#[test]
fn a_bare_udp_peer_in_upstream_format_talks_to_a_pod_and_bad_input_is_counted() {
    let mut tb = lab(2);
    tb.set_config(NET);
    tb.start_all(&[]);
    let ips = tb.add_pods();
    // Host 3 runs no flanneld: a UDP socket on 8285 and a reservation for 10.46.200.0/24.
    let peer = tb.add_host();
    let peer_ip = format!("{UNDERLAY}.{}", peer + 1);
    let sock = in_ns(&tb.hosts[peer].ns, || {
        UdpSocket::bind((peer_ip.as_str(), 8285))
    });
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    tb.etcd.put(
        "/coreos.com/network/subnets/10.46.200.0-24",
        &format!(r#"{{"PublicIP":"{peer_ip}","PublicIPv6":null}}"#),
    );
    let host0 = format!("{}:8285", tb.hosts[0].ip);
    let pod: Ipv4Addr = ips[0].1.parse().unwrap();
    let far = Ipv4Addr::new(10, 46, 200, 5);

    // An echo request from "10.46.200.5" arrives as upstream sends it; the pod's reply comes back
    // to the peer in exactly that format. (Repeated until host 0 has learned the reservation.)
    let reply = wait_for(
        Duration::from_secs(10),
        "an echo reply from the pod",
        || {
            sock.send_to(&icmp_echo(far, pod, 0x4242, 64), &host0)
                .unwrap();
            let mut buf = [0u8; 2048];
            let (n, from) = sock.recv_from(&mut buf).ok()?;
            assert_eq!(
                from.to_string(),
                host0,
                "replies come from the socket's bound address"
            );
            Some(buf[..n].to_vec())
        },
    );
    assert_eq!(
        encap::ipv4_len(&reply),
        Ok(reply.len()),
        "the payload is one IPv4 packet, nothing more"
    );
    assert_eq!(encap::checksum(&reply[..20]), 0, "IPv4 header checksum");
    assert_eq!(encap::src(&reply), pod);
    assert_eq!(encap::dst(&reply), far);
    assert_eq!(reply[9], 1, "ICMP");
    assert_eq!(reply[20], 0, "echo reply");
    assert_eq!(&reply[24..26], &0x4242u16.to_be_bytes());
    assert_eq!(&reply[28..], b"weft wire test!!");
    assert_eq!(encap::checksum(&reply[20..]), 0, "ICMP checksum");
    // The pod sent it with TTL 64; host 0 forwarded it (63) and weft decremented it (62).
    assert_eq!(reply[8], 62, "TTL");

    // A packet with TTL 1 is not forwarded into the pod.
    sock.send_to(&icmp_echo(far, pod, 0x4343, 1), &host0)
        .unwrap();
    let mut buf = [0u8; 2048];
    assert!(sock.recv_from(&mut buf).is_err(), "TTL 1 was forwarded");

    // Bad input: counted and dropped, never a crash.
    let good = icmp_echo(far, pod, 0x4444, 64);
    let mut v6 = good.clone();
    v6[0] = 0x60;
    let mut long = good.clone();
    long[2..4].copy_from_slice(&1400u16.to_be_bytes());
    let mut bad_ihl = good.clone();
    bad_ihl[0] = 0x43;
    for junk in [
        &b""[..],
        &b"x"[..],
        &good[..19],
        &v6[..],
        &long[..],
        &bad_ihl[..],
        &[0xffu8; 1500][..],
    ] {
        sock.send_to(junk, &host0).unwrap();
    }
    let log = wait_for_then(
        Duration::from_secs(15),
        || format!("a drop report in the log\n{}", tb.hosts[0].log()),
        || {
            let l = tb.hosts[0].log();
            l.contains("dropped packets since the last report")
                .then_some(l)
        },
    );
    for what in [
        "3 runt",
        "2 not IPv4",
        "1 bad header length",
        "1 bad total length",
        "1 TTL expired",
    ] {
        assert!(log.contains(what), "no {what:?} in the report:\n{log}");
    }
    assert!(tb.hosts[0].alive(), "{log}");
    tb.ping_all(&ips, &[]);

    // A subnet no host holds: ICMP net unreachable (from flannel0's address), so a TCP connect
    // fails at once instead of timing out. (No ICMP error answers ICMP, so ping would not do.)
    let unreachable = |ip: &str| {
        let (ok, out) = tb.hosts[0].pods[0].exec(&[
            "timeout",
            "5",
            "bash",
            "-c",
            &format!("echo > /dev/tcp/{ip}/80"),
        ]);
        !ok && out.contains("Network is unreachable")
    };
    assert!(unreachable("10.46.250.9"), "{}", tb.hosts[0].log());

    // The other host's lease removed: its pods become unreachable the same way.
    let key = format!(
        "/coreos.com/network/subnets/{}",
        net_of(&tb.hosts[1].subnet()).replace('/', "-")
    );
    tb.etcd.ctl(&["del", &key]);
    let far_pod = ips[1].1.clone();
    wait_for(
        Duration::from_secs(10),
        "net unreachable for the removed subnet",
        || unreachable(&far_pod).then_some(()),
    );
}

#[test]
fn a_restart_and_a_deleted_device_bring_the_data_path_back() {
    let mut tb = lab(2);
    tb.set_config(NET);
    tb.start_all(&[]);
    let ips = tb.add_pods();
    tb.ping_all(&ips, &[]);
    let subnet = tb.hosts[0].subnet();

    // The TUN device dies with the daemon (as upstream) and comes back with it.
    assert_eq!(tb.hosts[0].stop_flanneld(), Some(0));
    assert!(!tb.hosts[0].ns.ip(&["link", "show"]).contains("flannel0"));
    let ep = tb.etcd.endpoint.clone();
    tb.hosts[0].start_flanneld(&ep, &[]);
    wait_for(Duration::from_secs(10), "flannel0 up again", || {
        route_to(&tb.hosts[0].ns, "10.46.0.0/16").map(|_| ())
    });
    assert_eq!(
        tb.hosts[0].subnet(),
        subnet,
        "the subnet changed over a restart"
    );
    wait_for(Duration::from_secs(10), "traffic after the restart", || {
        tb.hosts[0].pods[0].ping(&ips[1].1).then_some(())
    });
    tb.ping_all(&ips, &[]);

    // Someone deletes flannel0: the next reconciliation re-creates it and traffic resumes.
    tb.hosts[1].ns.ip(&["link", "del", "flannel0"]);
    wait_for_then(
        Duration::from_secs(25),
        || format!("traffic after flannel0 was deleted\n{}", tb.hosts[1].log()),
        || tb.hosts[1].pods[0].ping(&ips[0].1).then_some(()),
    );
    tb.ping_all(&ips, &[]);
    assert!(tb.hosts[1]
        .log()
        .contains("flannel0 is gone; re-creating it"));
}
