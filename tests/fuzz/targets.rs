//! The fuzz targets' bodies, shared by the cargo-fuzz binaries (tests/fuzz/fuzz_targets/) and the
//! regression test (tests/it/fuzz_regressions.rs), which replays testdata/fuzz/<target>/ through them.
//!
//! Each takes arbitrary bytes and panics on a broken invariant: besides "no panic", every parser
//! that has a writer must read that writer's output back to the same value, and two readers of
//! one input that must agree are compared.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde_json::{Map, Value};
use weft::cni::args::CniArgs;
use weft::cni::conf::NetConf;
use weft::cni::env::CmdArgs;
use weft::cni::lenient::Teardown;
use weft::cni::result::CniResult;
use weft::cni::runtime::ConfList;
use weft::cni::version::SUPPORTED;

/// `a\0b` → (`a`, `b`); without a NUL, all of it and nothing.
fn split_nul(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// Two results of loading one config the same way, as far as `Debug` shows them.
fn same<T: std::fmt::Debug, E: std::fmt::Debug>(what: &str, a: &Result<T, E>, b: &Result<T, E>) {
    assert_eq!(format!("{a:?}"), format!("{b:?}"), "{what}");
}

/// Equal as JSON, numbers compared as Go's float64 (which is how the flannel plugin writes
/// them).
fn json_same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_same(v, w)))
        }
        _ => a == b,
    }
}

/// A subnet.env a flannel delegate can be built from.
fn fixed_subnet_env() -> weft::plugins::flannel_cni::subnet_env::SubnetEnv {
    weft::plugins::flannel_cni::subnet_env::SubnetEnv::parse(
        "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\n\
         FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00::1/64\n\
         FLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n",
        "fixed",
    )
    .expect("a valid subnet.env")
}

/// CNI stdin, then after a NUL: the `CNI_ARGS` line and further `CNI_*=value` lines of the
/// environment. Covers NetConf (whole and per plugin), CNI_ARGS, the environment, the config
/// loaders of bridge, ptp, host-local and flannel, DEL's lenient reader, `prevResult`, conflists.
pub fn cni_stdin(data: &[u8]) {
    let (stdin, tail) = split_nul(data);
    let tail = String::from_utf8_lossy(tail);
    let mut lines = tail.split('\n');
    let cni_args = lines.next().unwrap_or("");

    let mut env: HashMap<String, String> = lines
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.insert("CNI_ARGS".into(), cni_args.to_string());
    if let Ok(Some(cmd)) = CmdArgs::from_env(&env, stdin.to_vec()) {
        assert_eq!(cmd.args, cni_args);
        let _ = cmd.validate();
        let _ = cmd.env_for(cmd.command);
    }
    for known in [&["IP"][..], &["MAC"], &[]] {
        if let Ok(a) = CniArgs::parse(cni_args, known) {
            // The last pair for a key wins.
            for item in cni_args.split(';').filter(|s| !s.is_empty()) {
                let (k, _) = item.split_once('=').expect("a parsed pair has one '='");
                let last = cni_args
                    .split(';')
                    .filter_map(|i| i.split_once('='))
                    .filter(|(kk, _)| *kk == k)
                    .map(|(_, v)| v)
                    .next_back();
                assert_eq!(a.get(k), last, "CNI_ARGS {cni_args:?} key {k:?}");
            }
        }
    }

    if let Ok(list) = ConfList::parse(stdin) {
        for i in 0..list.plugins.len() {
            let _ = list.plugin_stdin(i, None, &Map::new());
        }
    }
    let _ = weft::plugins::flannel_cni::delegate_conf::SavedConf::parse(stdin);

    let full = NetConf::parse(stdin);
    let bridge_keys = &weft::plugins::bridge::conf::KEYS[..];
    let flannel_keys = &weft::plugins::flannel_cni::conf::KEYS[..];
    let per_plugin = [
        bridge_keys,
        &weft::plugins::ptp::KEYS[..],
        flannel_keys,
        &[],
    ]
    .map(|own| (own, NetConf::parse_for(stdin, own)));
    for (own, kept) in &per_plugin {
        match (&full, kept) {
            (Ok(a), Ok(b)) => {
                // The shared fields cannot depend on which other keys were kept.
                assert_eq!(a.cni_version, b.cni_version);
                assert_eq!(a.name, b.name);
                assert_eq!(a.plugin_type, b.plugin_type);
                assert_eq!(a.ipam_type, b.ipam_type);
                assert_eq!(a.prev_result, b.prev_result);
                assert_eq!(a.runtime_config, b.runtime_config);
                assert_eq!(a.valid_attachments, b.valid_attachments);
                for (k, v) in &b.raw {
                    assert_eq!(a.raw.get(k), Some(v), "kept key {k:?}");
                }
            }
            (Ok(_), Err(e)) => panic!("parse accepts what parse_for({own:?}) refuses: {e:?}"),
            _ => {}
        }
    }
    let Ok(conf) = full else { return };
    assert!(weft::cni::conf::is_valid_name(&conf.name));
    let [(_, bridge), (_, ptp), (_, flannel), (_, shared)] = &per_plugin;
    let (bridge, ptp, flannel, shared) = (
        bridge.as_ref().expect("checked above"),
        ptp.as_ref().expect("checked above"),
        flannel.as_ref().expect("checked above"),
        shared.as_ref().expect("checked above"),
    );

    // Each loader must see the same config through its plugin's kept keys as through all keys.
    let b = weft::plugins::bridge::conf::BridgeConf::load(bridge, cni_args);
    same(
        "bridge",
        &b,
        &weft::plugins::bridge::conf::BridgeConf::load(&conf, cni_args),
    );
    if let Ok(b) = &b {
        assert!(b.vlan <= 4094);
        assert!(b.vlan_trunk.windows(2).all(|w| w[0] < w[1]));
        assert!(b.vlan_trunk.iter().all(|v| (1..=4094).contains(v)));
        assert!(b.mtu.is_none_or(|m| (68..=65535).contains(&m)));
        let _ = b.vlan_filtering();
    }
    assert_eq!(Teardown::read(bridge), Teardown::read(&conf));
    let _ = Teardown::read(ptp);
    same(
        "ptp",
        &weft::plugins::ptp::PtpConf::load(ptp),
        &weft::plugins::ptp::PtpConf::load(&conf),
    );

    let ipam = weft::plugins::ipam::config::IpamConfig::load(shared, cni_args);
    same(
        "host-local",
        &ipam,
        &weft::plugins::ipam::config::IpamConfig::load(&conf, cni_args),
    );
    if let Ok(c) = &ipam {
        assert!(!c.ranges.is_empty());
        for (i, a) in c.ranges.iter().enumerate() {
            assert!(!a.0.is_empty());
            for b in &c.ranges[i + 1..] {
                assert!(!a.overlaps(b));
            }
        }
        for (i, ip) in c.requested.iter().enumerate() {
            assert!(!c.requested[i + 1..].contains(ip), "requested twice: {ip}");
        }
    }
    let _ = weft::plugins::ipam::config::IpamConfig::data_dir_of(&conf);

    let fc = weft::plugins::flannel_cni::conf::FlannelConf::load(flannel);
    same(
        "flannel",
        &fc,
        &weft::plugins::flannel_cni::conf::FlannelConf::load(&conf),
    );
    let _ = weft::plugins::flannel_cni::conf::FlannelConf::data_dir_for_del(&conf);
    if let Ok(fc) = &fc {
        if let Ok(d) = weft::plugins::flannel_cni::delegate_conf::build(fc, &fixed_subnet_env()) {
            // What ADD saves, DEL reads back.
            let saved = weft::plugins::flannel_cni::delegate_conf::SavedConf::parse(&d.bytes)
                .expect("a built delegate config reads back");
            assert_eq!(saved.plugin, d.plugin);
            assert!(
                json_same(&Value::Object(saved.conf), &Value::Object(d.conf.clone())),
                "saved delegate config differs"
            );
        }
    }

    let _ = conf.dns_override();
    let _ = conf.section::<Value>("dns", &["nameservers"]);
    if let Some(prev) = &conf.prev_result {
        if let Ok(r) = CniResult::parse_prev(prev, &conf.cni_version) {
            check_conversions(&r);
        }
    }
}

/// Every conversion of `r` re-parses as its version, and converting that again changes nothing.
fn check_conversions(r: &CniResult) {
    for to in SUPPORTED {
        let Ok(v) = r.to_value(to) else {
            // Only an old-shape result without addresses cannot be written.
            assert!(
                weft::cni::version::family(to) == Some(weft::cni::version::Family::V02)
                    && r.ips.is_empty(),
                "to {to} failed"
            );
            continue;
        };
        let text = r.to_json(to).expect("to_value succeeded");
        let reread: Value = serde_json::from_str(&text).expect("to_json writes JSON");
        assert_eq!(reread, v, "to_json and to_value agree for {to}");
        let (back, ver) = CniResult::parse(&reread, "1.1.0")
            .unwrap_or_else(|e| panic!("{to} output does not re-parse: {e:?}\n{text}"));
        assert_eq!(ver, to);
        let again = back.to_value(to).expect("a re-parsed result converts");
        assert_eq!(again, v, "converting to {to} is not stable");
        CniResult::parse_prev(&reread, to).expect("as prevResult of its own version");
    }
}

/// A result in any version's JSON: read with each version as the default, then written in
/// every version and read back.
pub fn cni_result(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for ver in SUPPORTED.iter().copied().chain([""]) {
        let _ = CniResult::parse_prev(&value, ver);
        let _ = CniResult::parse_as(&value, ver);
        if let Ok((r, _)) = CniResult::parse(&value, ver) {
            check_conversions(&r);
        }
    }
}

/// A scratch directory for this thread, emptied on each call. `WEFT_FUZZ_TMPDIR` places it (on
/// tmpfs, `make fuzz` runs many times faster: every reservation is flushed to disk).
fn scratch() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEQ: AtomicU32 = AtomicU32::new(0);
    thread_local! {
        static DIR: PathBuf = {
            let base = std::env::var_os("WEFT_FUZZ_TMPDIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir);
            base.join(format!(
                "weft-fuzz-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ))
        };
    }
    let dir = DIR.with(|d| d.clone());
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{dir:?}: {e}"),
        _ => {}
    }
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Removes the scratch directory when a call ends, however it ends.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// host-local's store directory written from the input: `last_reserved_ip.0`'s content, then
/// NUL-separated entries, each `name\ncontent`: a file, or a directory when the name ends in
/// `/`, or a symlink to `content` (within the store) when it starts with `@`. Read through the store (reservations, lookups by
/// owner, the round-robin pointer), one allocation per range set on top, then both releases.
/// Also resolv.conf, the other file host-local reads.
pub fn host_local_files(data: &[u8]) {
    use weft::plugins::ipam::allocator::{allocate, AddressStore};
    use weft::plugins::ipam::store::DiskStore;

    let _ = weft::plugins::ipam::resolvconf::parse(&String::from_utf8_lossy(data));

    let root = scratch();
    let _cleanup = Cleanup(root.clone());
    let dir = root.join("net");
    std::fs::create_dir(&dir).expect("store directory");
    let mut parts = data.split(|b| *b == 0);
    let last_text = parts.next().unwrap_or_default();
    std::fs::write(dir.join("last_reserved_ip.0"), last_text).expect("write pointer");
    for part in parts.take(16) {
        let (name, content) = match part.iter().position(|b| *b == b'\n') {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &[][..]),
        };
        let is_dir = name.ends_with(b"/");
        let is_link = name.starts_with(b"@");
        let name = String::from_utf8_lossy(name).replace('/', "_");
        let name = name.trim_start_matches('@').trim_end_matches('_');
        if name.is_empty() || name == "." || name == ".." || name.len() > 200 {
            continue;
        }
        let path = dir.join(name);
        if path.symlink_metadata().is_ok() {
            continue;
        }
        if is_dir {
            std::fs::create_dir(&path).expect("store subdirectory");
        } else if is_link {
            let to = String::from_utf8_lossy(content).replace('/', "_");
            let to = if to.is_empty() { "_".to_string() } else { to };
            std::os::unix::fs::symlink(to, &path).expect("store symlink");
        } else {
            std::fs::write(&path, content).expect("write store file");
        }
    }

    // An entry may have taken the lock file's name (a directory there cannot be locked).
    let Ok(mut store) = DiskStore::open(&root, "net") else {
        return;
    };
    let expected_last: Option<IpAddr> = std::str::from_utf8(last_text)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    assert_eq!(store.last_reserved_ip(0), expected_last);

    let found = store.reservations().expect("reservations");
    for r in &found {
        // The owner line a reservation is written with: an id without surrounding blanks.
        if r.container_id.trim() != r.container_id {
            continue;
        }
        let ifname = r.ifname.as_deref().unwrap_or("eth0");
        assert!(store.has_id(&r.container_id, ifname).expect("has_id"));
        let held = store.get_by_id(&r.container_id, ifname).expect("get_by_id");
        assert!(held.contains(&r.ip), "{r:?} not found by its owner");
    }

    let conf = NetConf::parse(
        br#"{"cniVersion":"1.0.0","name":"net","type":"bridge","ipam":{"type":"host-local",
            "ranges":[[{"subnet":"10.1.2.0/29"},{"subnet":"10.1.3.0/30"}],
                      [{"subnet":"fd00::/125"}]]}}"#,
    )
    .expect("fixed config");
    let cfg = weft::plugins::ipam::config::IpamConfig::load(&conf, "").expect("fixed config");
    let (id, ifname) = ("fuzz", "eth9");
    for (i, set) in cfg.ranges.iter().enumerate() {
        let names: Vec<String> = std::fs::read_dir(&dir)
            .expect("list store")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let held = store.get_by_id(id, ifname).expect("get_by_id");
        let mut locked = store.lock().expect("lock");
        let got = allocate(&mut *locked, set, i, id, ifname, None);
        drop(locked);
        if let Ok(a) = got {
            let ip = a.address.addr();
            assert!(set.contains(ip), "{ip} outside {set}");
            assert!(
                !held.iter().any(|h| set.contains(*h)),
                "second address in {set}"
            );
            assert!(!names.contains(&ip.to_string()), "{ip} was taken");
            let owner = std::fs::read(dir.join(ip.to_string())).expect("reservation file");
            assert_eq!(owner, b"fuzz\r\neth9");
            assert_eq!(store.last_reserved_ip(i), Some(ip));
        }
    }
    store.sync().expect("flush");
    store.release_by_id(id, ifname).expect("release");
    store.release_by_id(id, ifname).expect("release legacy");
    assert!(!store.has_id(id, ifname).expect("has_id"));
    let _ = store.sweep_orphans();
}

/// subnet.env text: the CNI plugin's reader, flanneld's writer read back by it, and
/// mk-docker-opts' reader with its output read back.
pub fn subnet_env(data: &[u8]) {
    use weft::flanneld::docker_opts::{self, Render};
    use weft::plugins::flannel_cni::subnet_env::SubnetEnv;

    let text = String::from_utf8_lossy(data);
    if let Ok(env) = SubnetEnv::parse(&text, "fuzz") {
        assert!(env
            .networks
            .iter()
            .all(|n| n.addr().is_ipv4() && *n == n.trunc()));
        assert!(env.ipv6_networks.iter().all(|n| n.addr().is_ipv6()));
        // What flanneld would write for this lease reads back the same.
        let v4 = |n: &ipnet::IpNet| match n {
            ipnet::IpNet::V4(n) => Some(*n),
            ipnet::IpNet::V6(_) => None,
        };
        let v6 = |n: &ipnet::IpNet| match n {
            ipnet::IpNet::V6(n) => Some(*n),
            ipnet::IpNet::V4(_) => None,
        };
        let one = |l: &[ipnet::IpNet]| (l.len() == 1).then(|| l[0]);
        // Only a subnet flanneld can lease (SubnetLen at most 30, IPv6 126) written as it
        // writes one, its first address.
        use weft::flanneld::subnet::lease::{gateway_v4, gateway_v6};
        let leasable4 = |n: &ipnet::Ipv4Net| n.prefix_len() <= 30 && gateway_v4(n.trunc()) == *n;
        let leasable6 = |n: &ipnet::Ipv6Net| n.prefix_len() <= 126 && gateway_v6(n.trunc()) == *n;
        let written = weft::flanneld::subnet::env::SubnetFile {
            network: one(&env.networks).and_then(|n| v4(&n)),
            subnet: env.subnet.as_ref().and_then(v4).filter(leasable4),
            ipv6_network: one(&env.ipv6_networks).and_then(|n| v6(&n)),
            ipv6_subnet: env.ipv6_subnet.as_ref().and_then(v6).filter(leasable6),
            mtu: env.mtu,
            ip_masq: env.ipmasq,
        };
        let rendered = written.render();
        let has_v4 = written.network.is_some() && written.subnet.is_some();
        let has_v6 = written.ipv6_network.is_some() && written.ipv6_subnet.is_some();
        if has_v4 || has_v6 {
            let back = SubnetEnv::parse(&rendered, "rendered")
                .unwrap_or_else(|e| panic!("flanneld's subnet.env does not read back: {e}"));
            assert_eq!(back.mtu, env.mtu);
            assert_eq!(back.ipmasq, env.ipmasq);
            if has_v4 {
                assert_eq!(back.networks, env.networks);
                assert_eq!(back.subnet, env.subnet);
            }
            if has_v6 {
                assert_eq!(back.ipv6_networks, env.ipv6_networks);
                assert_eq!(back.ipv6_subnet, env.ipv6_subnet);
            }
        }
        let pairs = docker_opts::parse_env_file(&rendered)
            .unwrap_or_else(|e| panic!("mk-docker-opts refuses flanneld's file: {e:#}"));
        assert!(!pairs.is_empty());
    }

    let Ok(pairs) = docker_opts::parse_env_file(&text) else {
        return;
    };
    for (name, _) in &pairs {
        assert!(docker_opts::is_shell_name(name), "{name:?}");
    }
    let vars: docker_opts::Vars = pairs.into_iter().collect();
    let _ = docker_opts::clash_subnet(&vars);
    for ip_masq in [true, false] {
        let r = Render {
            ip_masq,
            ..Render::default()
        };
        let Ok(out) = docker_opts::render(&vars, &r) else {
            continue;
        };
        // The written file reads back: each option's value, then the combined line that
        // starts from the inherited value and adds each option after a space.
        let back = docker_opts::parse_env_file(&out)
            .unwrap_or_else(|e| panic!("mk-docker-opts' own output does not parse: {e:#}\n{out}"));
        let (combined, opts) = back.split_last().expect("the combined line");
        assert_eq!(combined.0, r.combined_key);
        let mut want = match vars.get(&r.combined_key).filter(|v| !v.is_empty()) {
            Some(prefix) => format!("{prefix} "),
            None => String::new(),
        };
        for (name, value) in opts {
            assert!(name.contains("DOCKER_OPT_"), "{name}");
            want.push(' ');
            want.push_str(value);
        }
        assert_eq!(combined.1, want);
    }
}

/// An etcd lease key (the first line) and a lease value (the rest): each read, written and
/// read back.
pub fn lease(data: &[u8]) {
    use weft::flanneld::subnet::lease::{LeaseAttrs, LeaseKey};

    let text = String::from_utf8_lossy(data);
    let (key, value) = text.split_once('\n').unwrap_or((&text, ""));
    for k in [key, &*text] {
        if let Some(parsed) = LeaseKey::parse(k) {
            let written = parsed.to_key();
            assert_eq!(
                LeaseKey::parse(&written),
                Some(parsed),
                "{k:?} -> {written:?}"
            );
            let path = format!("/coreos.com/network/subnets/{written}");
            assert_eq!(LeaseKey::parse(&path), Some(parsed));
        }
    }
    for v in [value, &*text] {
        if let Ok(attrs) = LeaseAttrs::parse(v) {
            let json = attrs.to_json();
            let back = LeaseAttrs::parse(&json)
                .unwrap_or_else(|e| panic!("{json} does not read back: {e:#}"));
            assert_eq!(back, attrs);
            assert_eq!(back.to_json(), json);
        }
    }
}

/// flanneld's network config: if accepted, its subnet range is consistent and a subnet can be
/// chosen from it that the config itself accepts.
pub fn net_conf(data: &[u8]) {
    use weft::flanneld::subnet::alloc::{choose_v4, choose_v6};
    use weft::flanneld::subnet::config::NetworkConfig;

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = NetworkConfig::parse(text) else {
        return;
    };
    let net = cfg.network();
    assert!(cfg.enable_ipv4);
    assert!(cfg.subnet_len <= 30 && cfg.subnet_len >= net.prefix_len() + 2);
    assert!(net.contains(&cfg.subnet_min) && net.contains(&cfg.subnet_max));
    assert!(cfg.subnet_min <= cfg.subnet_max);
    for pick in [0usize, 1, usize::MAX] {
        let s = choose_v4(&cfg, &[], &mut |n| pick.min(n.saturating_sub(1)))
            .expect("an empty network has a free subnet");
        assert!(cfg.fits_v4(s), "{s} does not fit");
        assert!(net.contains(&s));
        // The one subnet taken: another one is free unless the range holds only that one.
        let other = choose_v4(&cfg, &[s], &mut |_| 0);
        assert_eq!(other.is_none(), cfg.subnet_min == cfg.subnet_max, "{s}");
        if cfg.enable_ipv6 {
            let s6 = choose_v6(&cfg, &[], &mut |n| pick.min(n.saturating_sub(1)))
                .expect("an empty IPv6 network has a free subnet");
            assert!(cfg.fits_v6(Some(s6)), "{s6} does not fit");
        } else {
            assert!(cfg.fits_v6(None));
        }
    }
    let _ = weft::flanneld::subnet::config::get_uint(&cfg.backend, "Port");
    let _ = weft::flanneld::subnet::config::backend_bool(&cfg.backend, "DirectRouting");
}

/// The udp backend's packet core on one packet (a datagram's payload or a TUN read): the header
/// checks, the TTL decrement's checksum, the ICMP error; and the forwarding table driven by the
/// same bytes against a plain longest-prefix search.
pub fn udp_encap(data: &[u8]) {
    use weft::flanneld::backend::udp::encap::{self, ICMP_UNREACHABLE_MAX, IPV4_HEADER};
    use weft::flanneld::backend::udp::table::Table;

    let from = Ipv4Addr::new(10, 5, 1, 0);
    let mut out = [0u8; ICMP_UNREACHABLE_MAX];
    let _ = encap::checksum(data);
    match encap::ipv4_len(data) {
        Err(_) => assert_eq!(encap::net_unreachable(data, from, &mut out), None),
        Ok(len) => {
            assert!((IPV4_HEADER..=data.len()).contains(&len));
            let ihl = usize::from(data[0] & 0x0f) * 4;
            assert!(ihl <= len);
            let _ = (encap::src(data), encap::dst(data));
            let mut pkt = data[..len].to_vec();
            let valid = encap::checksum(&pkt[..ihl]) == 0;
            let ttl = pkt[8];
            if encap::decrement_ttl(&mut pkt) {
                assert_eq!(pkt[8], ttl - 1);
                assert_eq!(pkt[..8], data[..8]);
                assert_eq!(pkt[12..], data[12..len]);
                if valid {
                    assert_eq!(encap::checksum(&pkt[..ihl]), 0, "checksum broken by TTL");
                }
            } else {
                assert!(ttl <= 1);
                assert_eq!(pkt, data[..len]);
            }
            if let Some(n) = encap::net_unreachable(data, from, &mut out) {
                let icmp = &out[..n];
                assert_eq!(encap::ipv4_len(icmp), Ok(n));
                assert_eq!(encap::checksum(&icmp[..IPV4_HEADER]), 0);
                assert_eq!(encap::checksum(&icmp[IPV4_HEADER..]), 0);
                assert_eq!(encap::src(icmp), from);
                assert_eq!(encap::dst(icmp), encap::src(data));
                let quoted = &icmp[IPV4_HEADER + 8..];
                assert_eq!(quoted, &data[..(ihl + 8).min(len)]);
                // An ICMP error is never answered with another.
                assert_eq!(encap::net_unreachable(icmp, from, &mut out.clone()), None);
            }
        }
    }

    // Table: 6-byte records (address, prefix length with the top bit meaning "remove", port
    // byte), checked after each against a list searched in full.
    let mut table = Table::default();
    let mut model: Vec<(Ipv4Net, SocketAddrV4)> = Vec::new();
    for rec in data.chunks_exact(6) {
        let addr = Ipv4Addr::new(rec[0], rec[1], rec[2], rec[3]);
        let Ok(net) = Ipv4Net::new(addr, rec[4] & 0x3f) else {
            continue;
        };
        let net = net.trunc();
        if rec[4] & 0x80 != 0 {
            let had = model.iter().position(|(n, _)| *n == net);
            assert_eq!(table.remove(net), had.is_some());
            if let Some(i) = had {
                model.remove(i);
            }
        } else {
            let peer = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, rec[5]), 8285);
            table.insert(net, peer);
            match model.iter_mut().find(|(n, _)| *n == net) {
                Some(e) => e.1 = peer,
                None => model.push((net, peer)),
            }
        }
        assert_eq!(table.len(), model.len());
        assert_eq!(table.is_empty(), model.is_empty());
        let want = model
            .iter()
            .filter(|(n, _)| n.contains(&addr))
            .max_by_key(|(n, _)| n.prefix_len())
            .map(|(_, p)| *p);
        assert_eq!(table.lookup(addr), want, "lookup {addr}");
    }
}
