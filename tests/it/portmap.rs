//! portmap, black-box: the same nat table as the Go plugin after every step, results passed
//! through at every version, the reference's answers to bad input, real traffic through the
//! host ports (from outside, from the host, via localhost, hairpin; TCP and UDP; IPv4 and
//! IPv6), and 200 mappings set up concurrently and removed. The traffic and version tests take
//! the backend as an argument; [`crate::portmap_nft`] runs them over nftables.

use crate::common::*;
use serde_json::{json, Value};
use std::path::Path;

/// The nat tables (IPv4 then IPv6) of `ns` as iptables-save prints them, without the
/// timestamped comment lines.
pub(crate) fn nat(ns: &Netns) -> String {
    let mut out = String::new();
    for prog in ["iptables-save", "ip6tables-save"] {
        let (ok, text) = ns.exec(&[prog, "-t", "nat"]);
        assert!(ok, "{text}");
        out += &text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect::<String>();
    }
    out
}

/// A prevResult as bridge gives it: the host bridge, the host veth, the container's eth0 with
/// `ips` (CIDRs).
pub(crate) fn prev(v: &str, ctr: &Netns, ips: &[&str]) -> Value {
    json!({
        "cniVersion": v,
        "interfaces": [{"name": "cni0"}, {"name": "veth1"}, {"name": "eth0", "sandbox": ctr.path()}],
        "ips": ips.iter().map(|a| json!({"interface": 2, "address": a})).collect::<Vec<_>>(),
    })
}

pub(crate) fn conf(v: &str, extra: Value, mappings: Value, prev_result: Value) -> String {
    let mut c = merged(
        json!({"cniVersion": v, "name": "mynet", "type": "portmap",
               "runtimeConfig": {"portMappings": mappings}}),
        extra,
    );
    c["prevResult"] = prev_result;
    c.to_string()
}

pub(crate) fn standard() -> Value {
    json!([
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 8081, "containerPort": 81, "protocol": "udp"},
        {"hostPort": 9090, "containerPort": 90, "protocol": "tcp", "hostIP": "192.168.1.5"},
        {"hostPort": 9091, "containerPort": 91, "protocol": "tcp", "hostIP": "fd99::5"},
        {"hostPort": 9092, "containerPort": 92, "protocol": "udp", "hostIP": "0.0.0.0"}
    ])
}

/// One plugin's host: its namespace (where the plugin runs and the rules live) and two
/// container namespaces.
pub(crate) struct Side {
    pub(crate) host: Netns,
    pub(crate) ctrs: [Netns; 2],
}

impl Side {
    pub(crate) fn new(tag: &str) -> Side {
        Side {
            host: Netns::new(tag),
            ctrs: [Netns::new(tag), Netns::new(tag)],
        }
    }
    pub(crate) fn run(&self, plugin: &Path, cmd: &str, i: usize, stdin: &str) -> Outcome {
        let env = Env::new(cmd, &format!("ctr{i}"), &self.ctrs[i].path());
        run_in(&self.host, plugin, &env, stdin)
    }
}

#[test]
fn same_nat_table_and_results_as_go_after_every_step() {
    let many: Vec<Value> = (0..17)
        .map(|i| json!({"hostPort": 7000 + i, "containerPort": 80, "protocol": "tcp"}))
        .collect();
    let cases = [
        ("defaults", json!({}), standard()),
        ("no snat", json!({"snat": false}), standard()),
        ("mark bit 5", json!({"markMasqBit": 5}), standard()),
        (
            "conditions",
            json!({"conditionsV4": ["-s", "192.168.0.0/16"], "conditionsV6": ["!", "-d", "fd99::7"]}),
            standard(),
        ),
        (
            "external mark chain",
            json!({"externalSetMarkChain": "KUBE-MARK-MASQ"}),
            standard(),
        ),
        ("17 ports", json!({}), Value::Array(many)),
    ];
    let go = go_plugin("portmap");
    let ours = bin_dir().join("portmap");
    for (what, extra, mappings) in cases {
        let (w, g) = (Side::new("pmw"), Side::new("pmg"));
        if extra.get("externalSetMarkChain").is_some() {
            for s in [&w, &g] {
                for prog in ["iptables", "ip6tables"] {
                    let (ok, out) = s.host.exec(&[prog, "-t", "nat", "-N", "KUBE-MARK-MASQ"]);
                    assert!(ok, "{out}");
                }
            }
        }
        let addrs = [["10.1.2.3/24", "fd00::3/64"], ["10.1.2.4/24", "fd00::4/64"]];
        let c = |s: &Side, i: usize| {
            conf(
                "1.0.0",
                extra.clone(),
                mappings.clone(),
                prev("1.0.0", &s.ctrs[i], &addrs[i]),
            )
        };
        for i in 0..2 {
            let a = w.run(&ours, "ADD", i, &c(&w, i)).ok();
            let b = g.run(&go, "ADD", i, &c(&g, i)).ok();
            let strip = |mut r: Value| {
                r["interfaces"][2]
                    .as_object_mut()
                    .unwrap()
                    .remove("sandbox");
                normalise(r)
            };
            assert_eq!(strip(a), strip(b), "{what}: result of ADD {i}");
            assert_eq!(nat(&w.host), nat(&g.host), "{what}: after ADD {i}");
        }
        // A second ADD of the same container changes nothing.
        w.run(&ours, "ADD", 0, &c(&w, 0)).ok();
        g.run(&go, "ADD", 0, &c(&g, 0)).ok();
        assert_eq!(nat(&w.host), nat(&g.host), "{what}: after a repeated ADD");
        // Go 1.1.1 checks IPv6 against the IPv4 rules and fails a dual-stack CHECK; weft's passes.
        w.run(&ours, "CHECK", 0, &c(&w, 0)).ok();
        w.run(&ours, "DEL", 0, &c(&w, 0)).ok();
        g.run(&go, "DEL", 0, &c(&g, 0)).ok();
        assert_eq!(nat(&w.host), nat(&g.host), "{what}: after DEL 0");
        let msg = w.run(&ours, "CHECK", 0, &c(&w, 0)).err(999);
        assert!(msg.contains("not found"), "{what}: {msg}");
        // The other implementation's DEL removes what this one made.
        w.run(&go, "DEL", 1, &c(&w, 1)).ok();
        g.run(&ours, "DEL", 1, &c(&g, 1)).ok();
        assert_eq!(nat(&w.host), nat(&g.host), "{what}: after DEL 1");
        assert!(
            !nat(&w.host).contains("CNI-DN-"),
            "{what}: {}",
            nat(&w.host)
        );
        // A DEL with nothing to remove succeeds.
        w.run(&ours, "DEL", 1, &c(&w, 1)).ok();
    }
}

#[test]
fn every_version_passes_the_result_through() {
    every_version_passes_the_result_through_with("iptables");
}

/// `backend`'s rules as the test checks them: the nat tables, or the nftables ruleset.
pub(crate) fn rules_of(backend: &str, ns: &Netns) -> String {
    if backend == "nftables" {
        let (ok, text) = ns.exec(&["nft", "list", "ruleset"]);
        assert!(ok, "{text}");
        text
    } else {
        nat(ns)
    }
}

/// What `backend`'s rules say for a DNAT to 10.1.2.3:80.
fn dnat_to_pod(backend: &str) -> &'static str {
    if backend == "nftables" {
        "dnat to 10.1.2.3:80"
    } else {
        "--to-destination 10.1.2.3:80"
    }
}

pub(crate) fn every_version_passes_the_result_through_with(backend: &str) {
    for v in VERSIONS {
        let w = Side::new("pmv");
        let p = if v < "0.3.0" {
            json!({"cniVersion": v, "ip4": {"ip": "10.1.2.3/24", "gateway": "10.1.2.1"}})
        } else {
            let mut p = prev(v, &w.ctrs[0], &["10.1.2.3/24"]);
            if v < "1.0.0" {
                p["ips"][0]["version"] = json!("4");
            }
            p
        };
        let c = conf(v, json!({"backend": backend}), standard(), p.clone());
        let out = w.run(&bin_dir().join("portmap"), "ADD", 0, &c).ok();
        assert_eq!(out["cniVersion"], v);
        assert_eq!(
            out.get("ips").or(out.get("ip4")),
            p.get("ips").or(p.get("ip4")),
            "{v}: {out}"
        );
        let rules = rules_of(backend, &w.host);
        assert!(rules.contains(dnat_to_pod(backend)), "{v}: {rules}");
        // Debian's Go portmap (1.1.1) has no nftables backend to compare with.
        if GO_VERSIONS.contains(&v) && backend == "iptables" {
            let g = Side::new("pmv");
            let theirs = g.run(&go_plugin("portmap"), "ADD", 0, &c).ok();
            let strip = |mut r: Value| {
                if let Some(i) = r["interfaces"].as_array_mut() {
                    i[2].as_object_mut().unwrap().remove("sandbox");
                }
                normalise(r)
            };
            assert_eq!(strip(out), strip(theirs), "{v}");
            assert_eq!(nat(&w.host), nat(&g.host), "{v}");
        }
        w.run(&bin_dir().join("portmap"), "DEL", 0, &c).ok();
        let rules = rules_of(backend, &w.host);
        assert!(
            !rules.contains("CNI-DN-") && !rules.contains(dnat_to_pod(backend)),
            "{v}: {rules}"
        );
    }
}

#[test]
fn bad_input_gets_the_references_answer_and_leaves_nothing() {
    let w = Side::new("pmb");
    let g = Side::new("pmb");
    let p = |s: &Side| prev("1.0.0", &s.ctrs[0], &["10.1.2.3/24"]);
    let pm = json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]);
    // (what, extra keys, mappings, with a prevResult)
    let cases = [
        ("no prevResult", json!({}), pm.clone(), false),
        ("mark bit 40", json!({"markMasqBit": 40}), pm.clone(), true),
        (
            "mark bit and external chain",
            json!({"markMasqBit": 4, "externalSetMarkChain": "X"}),
            pm.clone(),
            true,
        ),
        (
            "host port 0",
            json!({}),
            json!([{"hostPort": 0, "containerPort": 80, "protocol": "tcp"}]),
            true,
        ),
        (
            "container port -1",
            json!({}),
            json!([{"hostPort": 80, "containerPort": -1, "protocol": "tcp"}]),
            true,
        ),
        (
            "no such mark chain",
            json!({"externalSetMarkChain": "NOPE"}),
            pm.clone(),
            true,
        ),
    ];
    let before = nat(&w.host);
    for (what, extra, mappings, with_prev) in cases {
        let c = |s: &Side| {
            let mut c: Value =
                serde_json::from_str(&conf("1.0.0", extra.clone(), mappings.clone(), p(s)))
                    .unwrap();
            if !with_prev {
                c.as_object_mut().unwrap().remove("prevResult");
            }
            c.to_string()
        };
        let ours = w.run(&bin_dir().join("portmap"), "ADD", 0, &c(&w));
        let theirs = g.run(&go_plugin("portmap"), "ADD", 0, &c(&g));
        let (a, b) = (ours.err(999), theirs.err(999));
        // Where Go quotes its iptables command line the words differ; the meaning must not.
        if what == "no such mark chain" {
            assert!(
                a.starts_with("unable to setup DNAT") && a.contains("Chain 'NOPE' does not exist"),
                "{a}"
            );
            assert!(b.starts_with("unable to setup DNAT"), "{b}");
        } else {
            assert_eq!(a, b, "{what}");
        }
        assert_eq!(nat(&w.host), before, "{what}: something was left");
    }
    // IPv4 set up, then IPv6 fails (its mark chain is missing): the IPv4 rules go again.
    let (ok, out) = w.host.exec(&["iptables", "-t", "nat", "-N", "KUBE-X"]);
    assert!(ok, "{out}");
    let dual = prev("1.0.0", &w.ctrs[0], &["10.1.2.3/24", "fd00::3/64"]);
    let c = conf(
        "1.0.0",
        json!({"externalSetMarkChain": "KUBE-X"}),
        pm.clone(),
        dual,
    );
    let msg = w.run(&bin_dir().join("portmap"), "ADD", 0, &c).err(999);
    assert!(msg.contains("Chain 'KUBE-X' does not exist"), "{msg}");
    // The shared chain and its jumps stay, as they stay after a DEL.
    let after = nat(&w.host);
    assert!(
        !after.contains("CNI-DN-") && !after.contains("-A CNI-HOSTPORT-DNAT"),
        "{after}"
    );
    let c = conf(
        "1.0.0",
        json!({}),
        json!([{"hostPort": "x", "containerPort": 80}]),
        p(&w),
    );
    let msg = w.run(&bin_dir().join("portmap"), "ADD", 0, &c).err(999);
    assert!(
        msg.starts_with("failed to parse config: failed to parse network configuration"),
        "{msg}"
    );
    // nftables conditions with the iptables backend (named, or chosen because iptables is
    // usable here): the message of the current reference, whose 1.1.1 build had no check.
    for extra in [
        json!({"conditionsV4": ["ip", "saddr", "1.2.3.4"]}),
        json!({"backend": "iptables", "conditionsV4": ["ip", "saddr", "1.2.3.4"]}),
    ] {
        let c = conf("1.0.0", extra, pm.clone(), p(&w));
        let msg = w.run(&bin_dir().join("portmap"), "ADD", 0, &c).err(999);
        assert_eq!(
            msg,
            "failed to parse config: iptables backend was requested but configuration \
             contains nftables-specific options [conditionsV4]"
        );
    }
    let c = conf("1.0.0", json!({"backend": "pf"}), pm.clone(), p(&w));
    let msg = w.run(&bin_dir().join("portmap"), "ADD", 0, &c).err(999);
    assert_eq!(msg, "failed to parse config: unrecognized backend \"pf\"");
    assert!(!nat(&w.host).contains("CNI-DN-"));
    let (ok, ruleset) = w.host.exec(&["nft", "list", "ruleset"]);
    assert!(ok && !ruleset.contains("cni_hostport"), "{ruleset}");
}

/// Starts a server in `ns` that answers every TCP connection (port `tcp`) and UDP datagram
/// (port `udp`, both families) with `reply`, and waits until it listens.
pub(crate) fn serve(ns: &Netns, tcp: u16, udp: u16, reply: &str) -> Server {
    let script = format!(
        r#"
import socket, threading
def tcp():
    s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); s.bind(("::", {tcp})); s.listen(16)
    while True:
        c, a = s.accept(); c.sendall(b"{reply} " + a[0].encode()); c.close()
def udp():
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); s.bind(("::", {udp}))
    while True:
        d, a = s.recvfrom(100); s.sendto(b"{reply} " + d, a)
threading.Thread(target=udp, daemon=True).start()
print("up", flush=True)
tcp()
"#
    );
    let mut child = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name, "python3", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "up");
    Server(child)
}

/// A server process, stopped on drop (also when an assertion fails).
pub(crate) struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What `ip:port` answers over TCP (or UDP) from inside `ns`, or the error.
pub(crate) fn ask(ns: &Netns, addr: &str, port: u16, udp: bool) -> String {
    ask_from(ns, 0, addr, port, udp)
}

/// [`ask`] from source port `sport` (0: any).
pub(crate) fn ask_from(ns: &Netns, sport: u16, addr: &str, port: u16, udp: bool) -> String {
    let script = format!(
        r#"
import socket, sys
fam = socket.AF_INET6 if ":" in "{addr}" else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM if {udp} else socket.SOCK_STREAM); s.settimeout(3)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("", {sport}))
try:
    if {udp}:
        s.sendto(b"ping", ("{addr}", {port})); print(s.recv(200).decode())
    else:
        s.connect(("{addr}", {port})); print(s.recv(200).decode())
except Exception as e:
    print("ERROR", e)
"#,
        udp = if udp { "True" } else { "False" }
    );
    ns.exec(&["python3", "-c", &script]).1.trim().to_string()
}

/// A host (`site`) with a "LAN" to `outside` (a veth: 192.168.99.1 and fd99::1 on the host,
/// .2 and ::2 outside) and `pod` behind its cni0 through weft's bridge (dual stack, hairpin).
pub(crate) struct Lan {
    pub(crate) site: Site,
    pub(crate) pod: Netns,
    pub(crate) outside: Netns,
    pub(crate) env: Env,
    pub(crate) bridge: String,
    pub(crate) res: Value,
}

impl Lan {
    pub(crate) fn new() -> Lan {
        let site = Site::new("pmt");
        let pod = Netns::new("pmt");
        let outside = Netns::new("pmt");
        // The host's "LAN": a veth to the outside namespace, 192.168.99.1 and fd99::1 on the host.
        site.host.ip(&[
            "link",
            "add",
            "lan0",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &outside.name,
        ]);
        site.host
            .ip(&["addr", "add", "192.168.99.1/24", "dev", "lan0"]);
        site.host
            .ip(&["addr", "add", "fd99::1/64", "dev", "lan0", "nodad"]);
        site.host.ip(&["link", "set", "lan0", "up"]);
        site.host.ip(&["link", "set", "lo", "up"]);
        outside.ip(&["addr", "add", "192.168.99.2/24", "dev", "eth0"]);
        outside.ip(&["addr", "add", "fd99::2/64", "dev", "eth0", "nodad"]);
        outside.ip(&["link", "set", "eth0", "up"]);
        let bridge = site.conf(
            "bridge",
            "1.0.0",
            json!({"bridge": "cni0", "isGateway": true, "hairpinMode": true,
                   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.1.2.0/24"}], [{"subnet": "fd00:1::/64"}]],
                            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}}),
        );
        let env = site.env("ADD", "pod1", &pod);
        let res = site.run("bridge", &env, &bridge).ok();
        Lan {
            site,
            pod,
            outside,
            env,
            bridge,
            res,
        }
    }
}

#[test]
fn traffic_reaches_the_pod_through_its_host_ports() {
    traffic_reaches_the_pod_through_its_host_ports_with("iptables");
}

pub(crate) fn traffic_reaches_the_pod_through_its_host_ports_with(backend: &str) {
    let Lan {
        site,
        pod,
        outside,
        env,
        bridge,
        res,
    } = Lan::new();
    let mappings = json!([
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 8081, "containerPort": 81, "protocol": "udp"}
    ]);
    let pm = conf("1.0.0", json!({"backend": backend}), mappings, res.clone());
    site.run("portmap", &env, &pm).ok();
    let server = serve(&pod, 80, 81, "pod");
    // IPv6 DAD on the pod's address may still be running.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut answers = Vec::new();
    let asks: [(&str, &Netns, &str, u16, bool); 10] = [
        ("tcp from outside", &outside, "192.168.99.1", 8080, false),
        ("udp from outside", &outside, "192.168.99.1", 8081, true),
        (
            "tcp from outside over IPv6",
            &outside,
            "fd99::1",
            8080,
            false,
        ),
        (
            "udp from outside over IPv6",
            &outside,
            "fd99::1",
            8081,
            true,
        ),
        (
            "tcp from the host itself",
            &site.host,
            "192.168.99.1",
            8080,
            false,
        ),
        (
            "tcp from the host via localhost",
            &site.host,
            "127.0.0.1",
            8080,
            false,
        ),
        (
            "tcp from the pod to its own host port (hairpin)",
            &pod,
            "192.168.99.1",
            8080,
            false,
        ),
        (
            "udp from the host via localhost",
            &site.host,
            "127.0.0.1",
            8081,
            true,
        ),
        (
            "tcp from the host itself over IPv6",
            &site.host,
            "fd99::1",
            8080,
            false,
        ),
        ("tcp hairpin over IPv6", &pod, "fd99::1", 8080, false),
    ];
    for (what, ns, addr, port, udp) in asks {
        let mut a = ask(ns, addr, port, udp);
        while a.starts_with("ERROR") && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(200));
            a = ask(ns, addr, port, udp);
        }
        assert!(
            a.starts_with("pod"),
            "{what}: {a}\n{}",
            rules_of(backend, &site.host)
        );
        answers.push((what, a));
    }
    // The hairpin and localhost connections reach the pod masqueraded (from the bridge's
    // address), so its replies come back through the host.
    let hairpin = &answers[6].1;
    assert!(hairpin.contains("10.1.2.1"), "{hairpin}");
    let local = &answers[5].1;
    assert!(local.contains("10.1.2.1"), "{local}");
    // From outside, the pod sees the real client.
    assert!(answers[0].1.contains("192.168.99.2"), "{}", answers[0].1);
    drop(server);
    site.run("portmap", &env.cmd("DEL"), &pm).ok();
    assert!(ask(&outside, "192.168.99.1", 8080, false).starts_with("ERROR"));
    site.run("bridge", &env.cmd("DEL"), &bridge).ok();
}

/// A UDP client that sent to the host port before it was mapped has a conntrack entry without
/// the DNAT; portmap's ADD deletes it, so the same client (same source port) reaches the pod at
/// once rather than after the entry's 30 s timeout.
#[test]
fn a_udp_client_that_sent_before_the_mapping_reaches_the_pod_at_once() {
    a_udp_client_that_sent_before_the_mapping_reaches_the_pod_at_once_with("iptables");
}

pub(crate) fn a_udp_client_that_sent_before_the_mapping_reaches_the_pod_at_once_with(
    backend: &str,
) {
    let lan = Lan::new();
    // Connection tracking runs in a namespace once a NAT table is in use, as on any node.
    let (ok, out) = lan.site.host.exec(&[
        "iptables",
        "-t",
        "nat",
        "-A",
        "POSTROUTING",
        "-s",
        "10.99.0.0/16",
        "-j",
        "MASQUERADE",
    ]);
    assert!(ok, "{out}");
    let server = serve(&lan.pod, 80, 81, "pod");
    let before = ask_from(&lan.outside, 40081, "192.168.99.1", 8081, true);
    assert!(before.starts_with("ERROR"), "{before}");
    let mappings = json!([{"hostPort": 8081, "containerPort": 81, "protocol": "udp"}]);
    let pm = conf(
        "1.0.0",
        json!({"backend": backend}),
        mappings,
        lan.res.clone(),
    );
    lan.site.run("portmap", &lan.env, &pm).ok();
    let after = ask_from(&lan.outside, 40081, "192.168.99.1", 8081, true);
    assert!(after.starts_with("pod ping"), "{after}");
    drop(server);
    lan.site.run("portmap", &lan.env.cmd("DEL"), &pm).ok();
    lan.site
        .run("bridge", &lan.env.cmd("DEL"), &lan.bridge)
        .ok();
}

#[test]
fn two_hundred_mappings_set_up_at_once_then_none_left() {
    let w = Side::new("pmc");
    let ours = bin_dir().join("portmap");
    let confs: Vec<String> = (0..200)
        .map(|i| {
            let p = json!({"cniVersion": "1.0.0",
                "interfaces": [{"name": "eth0", "sandbox": "/run/netns/x"}],
                "ips": [{"interface": 0, "address": format!("10.1.{}.{}/16", i / 200, i % 200 + 2)}]});
            conf("1.0.0", json!({}), json!([{"hostPort": 10000 + i, "containerPort": 80, "protocol": "tcp"}]), p)
        })
        .collect();
    // Every pod's `cmd`, 20 in flight at a time; each must succeed.
    let run_all = |cmd: &str| {
        for batch in (0..200).collect::<Vec<_>>().chunks(20) {
            let children: Vec<_> = batch
                .iter()
                .map(|&i| {
                    let env = Env::new(cmd, &format!("c{i}"), &w.ctrs[0].path());
                    spawn_in(&w.host, &ours, &env, &confs[i])
                })
                .collect();
            for c in children {
                finish(c).ok();
            }
        }
    };
    run_all("ADD");
    let table = nat(&w.host);
    assert_eq!(table.matches(":CNI-DN-").count(), 200, "one chain per pod");
    for shared in [
        "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
        "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
        "-j CNI-HOSTPORT-MASQ",
        "-j MARK --set-xmark 0x2000/0x2000",
    ] {
        // Once, however many ADDs raced for it.
        assert_eq!(table.matches(shared).count(), 1, "{shared}\n{table}");
    }
    run_all("DEL");
    let table = nat(&w.host);
    assert!(!table.contains("CNI-DN-"), "{table}");
    assert!(!table.contains("-A CNI-HOSTPORT-DNAT"), "{table}");
}
