//! flanneld against a real etcd under stress and with its security options: 20 daemons started at
//! once, an etcd outage of 30 s, TLS with client certificates made here with openssl, user and
//! password auth (with short-lived tokens), and the health endpoints. Same testbed as
//! tests/flanneld.rs: an underlay namespace with etcd at 192.168.77.254, hosts as namespaces on it.

use crate::common::overlay::{
    lab, lab_with_etcd, net_of, route_to, wait_for, wait_for_then, Host, Lab, ETCD_IP,
};
use crate::common::TempDir;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SUBNETS: &str = "/coreos.com/network/subnets";

fn lease_key(subnet: &str) -> String {
    format!("{SUBNETS}/{}", net_of(subnet).replace('/', "-"))
}

fn assert_alive(h: &mut Host) {
    assert!(h.alive(), "flanneld in {} died:\n{}", h.ns.name, h.log());
}

/// Pods (one per host, .2) and a ping from every pod to every other.
fn pods_ping(tb: &mut Lab) -> Vec<String> {
    let ips: Vec<String> = (0..tb.hosts.len())
        .map(|i| tb.hosts[i].add_pod(2))
        .collect();
    ping_all(tb, &ips);
    ips
}

fn ping_all(tb: &Lab, ips: &[String]) {
    for (i, h) in tb.hosts.iter().enumerate() {
        for (j, ip) in ips.iter().enumerate() {
            if i != j {
                assert!(
                    h.pods[0].ping(ip),
                    "pod on host {i} cannot reach {ip} on host {j}"
                );
            }
        }
    }
}

/// Waits for `h` to have a route to `dst` (e.g. 10.45.7.0/24) and returns it.
fn wait_route(h: &Host, dst: &str, limit: Duration) -> Value {
    wait_for_then(
        limit,
        || format!("a route to {dst} on {}\n{}", h.ns.name, h.log()),
        || route_to(&h.ns, dst),
    )
}

/// A vxlan lease for a host that does not exist, as another flanneld would write it.
fn put_vxlan_lease(tb: &Lab, key: &str, public_ip: &str, mac: &str) {
    tb.etcd.put(
        &format!("{SUBNETS}/{key}"),
        &format!(
            r#"{{"PublicIP":"{public_ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{{"VNI":1,"VtepMAC":"{mac}"}}}}"#
        ),
    );
}

#[test]
fn twenty_flanneld_started_at_once_get_twenty_distinct_subnets() {
    const N: usize = 20;
    let started = Instant::now();
    let mut tb = lab(N);
    // Exactly 20 subnets for 20 hosts: every choice collides with the others' until the end, so
    // the create-if-absent race is lost and retried many times, and a lease taken twice or a
    // lost race given up on leaves a host without a subnet.
    tb.set_config(
        r#"{"Network":"10.48.0.0/16","SubnetMin":"10.48.101.0","SubnetMax":"10.48.120.0","Backend":{"Type":"host-gw"}}"#,
    );
    let ep = tb.etcd.endpoint.clone();
    for h in &mut tb.hosts {
        h.start_flanneld(&ep, &[]);
    }
    let envs: Vec<String> = tb.hosts.iter().map(Host::wait_env).collect();
    eprintln!("20 subnet.env files after {:?}", started.elapsed());

    let leases = tb.etcd.leases();
    assert_eq!(leases.len(), N, "{leases:?}");
    let keys: BTreeSet<&str> = leases.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys.len(), N, "{leases:?}");
    for (h, env) in tb.hosts.iter().zip(&envs) {
        let subnet = env
            .lines()
            .find_map(|l| l.strip_prefix("FLANNEL_SUBNET="))
            .unwrap_or_else(|| panic!("{env}"));
        assert_eq!(
            env,
            &format!(
                "FLANNEL_NETWORK=10.48.0.0/16\nFLANNEL_SUBNET={subnet}\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n"
            )
        );
        // The lease named in subnet.env is ours, and it is our only one.
        let mine: Vec<&String> = leases
            .iter()
            .filter(|(_, v)| v["PublicIP"] == h.ip.as_str())
            .map(|(k, _)| k)
            .collect();
        assert_eq!(mine, vec![&lease_key(subnet)], "{}", h.log());
    }
    // Every host routes to the 19 others (the watches all work under this load too).
    for h in &tb.hosts {
        for (peer, env) in tb.hosts.iter().zip(&envs) {
            if peer.ip != h.ip {
                let subnet = env.lines().nth(1).unwrap().split_once('=').unwrap().1;
                let r = wait_route(h, &net_of(subnet), Duration::from_secs(15));
                assert_eq!(r["gateway"], peer.ip.as_str());
            }
        }
    }
    for h in &mut tb.hosts {
        assert_alive(h);
    }
    let raced = tb
        .hosts
        .iter()
        .filter(|h| h.log().contains("claimed by another host"))
        .count();
    eprintln!(
        "{raced} of {N} hosts lost at least one race; done after {:?}",
        started.elapsed()
    );
}

const VXLAN: &str = r#"{"Network":"10.45.0.0/16","Backend":{"Type":"vxlan"}}"#;

#[test]
fn etcd_down_for_30s_traffic_flows_and_the_watch_resumes() {
    let mut tb = lab(2);
    tb.set_config(VXLAN);
    tb.start_all(&[]);
    let ips = pods_ping(&mut tb);

    tb.etcd.stop();
    let down = Instant::now();
    // Pods keep talking and both daemons stay up for the whole outage.
    while down.elapsed() < Duration::from_secs(30) {
        ping_all(&tb, &ips);
        for h in &mut tb.hosts {
            assert_alive(h);
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    for h in &tb.hosts {
        assert!(
            h.log().contains("lease watch broke"),
            "no word of the outage in the log of {}:\n{}",
            h.ns.name,
            h.log()
        );
    }
    // etcd comes back while the hosts still cannot reach it, and a lease is added meanwhile: only a
    // watch resumed from the revision it had reached (or a fresh listing) delivers it.
    let block = |h: &Host, op: &str| {
        let (ok, out) = h.ns.exec(&[
            "iptables",
            "-w",
            op,
            "OUTPUT",
            "-p",
            "tcp",
            "-d",
            ETCD_IP,
            "--dport",
            "2379",
            "-j",
            "REJECT",
            "--reject-with",
            "tcp-reset",
        ]);
        assert!(ok, "{out}");
    };
    for h in &tb.hosts {
        block(h, "-I");
    }
    tb.etcd.launch();
    let mac = "0a:11:22:33:44:55";
    put_vxlan_lease(&tb, "10.45.200.0-24", "192.168.77.50", mac);
    std::thread::sleep(Duration::from_secs(1));
    for h in &tb.hosts {
        assert!(route_to(&h.ns, "10.45.200.0/24").is_none());
        block(h, "-D");
    }
    for h in &tb.hosts {
        let r = wait_route(h, "10.45.200.0/24", Duration::from_secs(20));
        assert_eq!(r["gateway"], "10.45.200.0");
        assert_eq!(r["dev"], "flannel.1");
        let fdb = h.ns.bridgej(&["fdb", "show", "dev", "flannel.1"]);
        assert!(
            fdb.as_array()
                .unwrap()
                .iter()
                .any(|f| f["mac"] == mac && f["dst"] == "192.168.77.50"),
            "{fdb}"
        );
    }

    // A third host started after the outage joins; everyone reaches everyone.
    let i = tb.add_host();
    let ep = tb.etcd.endpoint.clone();
    tb.hosts[i].start_flanneld(&ep, &[]);
    let third = net_of(&tb.hosts[i].subnet());
    for h in &tb.hosts[..2] {
        wait_route(h, &third, Duration::from_secs(20));
    }
    let mut ips = ips;
    ips.push(tb.hosts[i].add_pod(2));
    ping_all(&tb, &ips);
    for h in &mut tb.hosts {
        assert_alive(h);
    }
}

/// A CA, a server certificate for etcd and client certificates, made with openssl: EC P-256;
/// client keys as `openssl ecparam` writes them (SEC1, "EC PRIVATE KEY", also what cfssl writes)
/// and as PKCS#8 ("PRIVATE KEY", what `openssl genpkey` writes).
struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new() -> Pki {
        let pki = Pki {
            dir: TempDir::new("pki"),
        };
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=weft test CA",
        ]);
        pki.leaf(
            "server",
            "subjectAltName=IP:192.168.77.254,IP:127.0.0.1\nextendedKeyUsage=serverAuth",
        );
        pki.leaf("client", "extendedKeyUsage=clientAuth");
        pki.openssl(&[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "client.key",
            "-out",
            "client-pkcs8.key",
        ]);
        let sec1 = std::fs::read_to_string(pki.path("client.key")).unwrap();
        assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{sec1}");
        pki
    }

    fn leaf(&self, name: &str, ext: &str) {
        std::fs::write(self.path(&format!("{name}.ext")), ext).unwrap();
        self.openssl(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &format!("{name}.key"),
        ]);
        self.openssl(&[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            &format!("/CN={name}"),
            "-out",
            &format!("{name}.csr"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("openssl must be installed");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn flag(&self, flag: &str, name: &str) -> String {
        format!("-{flag}={}", self.path(name).display())
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn etcd_with_tls_and_client_certificates() {
    let pki = Pki::new();
    let extra = vec![
        "--cert-file".into(),
        s(&pki.path("server.pem")),
        "--key-file".into(),
        s(&pki.path("server.key")),
        "--client-cert-auth".into(),
        "--trusted-ca-file".into(),
        s(&pki.path("ca.pem")),
    ];
    let ctl = vec![
        "--cacert".into(),
        s(&pki.path("ca.pem")),
        "--cert".into(),
        s(&pki.path("client.pem")),
        "--key".into(),
        s(&pki.path("client.key")),
    ];
    let mut tb = lab_with_etcd(3, "https", extra, ctl);
    assert_eq!(tb.etcd.endpoint, format!("https://{ETCD_IP}:2379"));
    tb.set_config(VXLAN);
    let ep = tb.etcd.endpoint.clone();
    let ca = pki.flag("etcd-cafile", "ca.pem");
    let cert = pki.flag("etcd-certfile", "client.pem");
    // Host 0 with the SEC1 key, host 1 with the same key as PKCS#8.
    for (i, key) in ["client.key", "client-pkcs8.key"].into_iter().enumerate() {
        let key = pki.flag("etcd-keyfile", key);
        tb.hosts[i].start_flanneld(&ep, &[&ca, &cert, &key]);
    }
    // Host 2 trusts the CA but has no client certificate: etcd refuses it.
    tb.hosts[2].start_flanneld(&ep, &[&ca]);

    for h in &tb.hosts[..2] {
        h.wait_env();
    }
    let leases = tb.etcd.leases();
    assert_eq!(leases.len(), 2, "{leases:?}");
    for h in &tb.hosts[..2] {
        assert!(
            leases
                .iter()
                .any(|(k, v)| *k == lease_key(&h.subnet()) && v["PublicIP"] == h.ip.as_str()),
            "{leases:?}"
        );
    }
    let ips: Vec<String> = (0..2).map(|i| tb.hosts[i].add_pod(2)).collect();
    for (i, j) in [(0, 1), (1, 0)] {
        assert!(tb.hosts[i].pods[0].ping(&ips[j]), "host {i} -> {}", ips[j]);
    }

    // The host without a client certificate says why, keeps trying, and gets nowhere.
    let h2 = &mut tb.hosts[2];
    let log = wait_for(
        Duration::from_secs(15),
        "two failed attempts in the log",
        || {
            let l = h2.log();
            (l.matches("retrying").count() >= 2).then_some(l)
        },
    );
    for line in log.lines().filter(|l| l.contains("retrying")) {
        assert!(
            line.contains("requires a client certificate"),
            "the error does not say a client certificate is needed:\n{log}"
        );
    }
    assert_alive(h2);
    assert!(h2.env().is_none());
    assert_eq!(tb.etcd.leases().len(), 2);
}

#[test]
fn etcd_with_user_and_password_and_short_lived_tokens() {
    // Simple tokens (the default) live 2 s here instead of 300 s.
    let mut tb = lab_with_etcd(
        3,
        "http",
        vec!["--auth-token-ttl".into(), "2".into()],
        vec![],
    );
    tb.set_config(VXLAN);
    // The operator's setup: root, and a flannel user allowed under the prefix only.
    for args in [
        &["user", "add", "root:rootpw"][..],
        &["role", "add", "flannel"],
        &[
            "role",
            "grant-permission",
            "flannel",
            "--prefix=true",
            "readwrite",
            "/coreos.com/network/",
        ],
        &["user", "add", "flannel:s3cret"],
        &["user", "grant-role", "flannel", "flannel"],
        &["auth", "enable"],
    ] {
        tb.etcd.ctl(args);
    }
    tb.etcd.ctl_extra = vec!["--user".into(), "root:rootpw".into()];

    let ep = tb.etcd.endpoint.clone();
    for h in &mut tb.hosts[..2] {
        h.start_flanneld(&ep, &["-etcd-username=flannel", "-etcd-password=s3cret"]);
    }
    tb.hosts[2].start_flanneld(&ep, &["-etcd-username=flannel", "-etcd-password=wrong"]);
    let ips = {
        for h in &tb.hosts[..2] {
            h.wait_env();
        }
        let ips: Vec<String> = (0..2).map(|i| tb.hosts[i].add_pod(2)).collect();
        for (i, j) in [(0, 1), (1, 0)] {
            assert!(tb.hosts[i].pods[0].ping(&ips[j]), "host {i} -> {}", ips[j]);
        }
        ips
    };
    assert_eq!(tb.etcd.leases().len(), 2);

    // A wrong password: a clear error, retried.
    let h2 = &mut tb.hosts[2];
    let log = wait_for(
        Duration::from_secs(15),
        "two failed attempts in the log",
        || {
            let l = h2.log();
            (l.matches("authentication failed").count() >= 2).then_some(l)
        },
    );
    assert!(log.contains("retrying"), "{log}");
    assert_alive(h2);
    assert!(h2.env().is_none());

    // Tokens expire while the daemons idle, then their connections to etcd break: the watches
    // come back, not with the stale token etcd refuses but with a fresh one, and deliver a new
    // lease.
    std::thread::sleep(Duration::from_secs(3));
    for h in &tb.hosts[..2] {
        let (ok, out) =
            h.ns.exec(&["ss", "-K", "dst", ETCD_IP, "dport", "=", "2379"]);
        assert!(ok && out.contains("2379"), "ss -K: {out}");
    }
    put_vxlan_lease(&tb, "10.45.201.0-24", "192.168.77.51", "0a:11:22:33:44:66");
    for h in &tb.hosts[..2] {
        wait_route(h, "10.45.201.0/24", Duration::from_secs(20));
        assert!(h.log().contains("authenticating again"), "{}", h.log());
    }
    // etcd restarts, which forgets every simple token: the same again.
    tb.etcd.stop();
    tb.etcd.launch();
    put_vxlan_lease(&tb, "10.45.202.0-24", "192.168.77.52", "0a:11:22:33:44:77");
    for h in &tb.hosts[..2] {
        wait_route(h, "10.45.202.0/24", Duration::from_secs(20));
    }
    for (i, j) in [(0, 1), (1, 0)] {
        assert!(tb.hosts[i].pods[0].ping(&ips[j]), "host {i} -> {}", ips[j]);
    }
    for h in &mut tb.hosts {
        assert_alive(h);
    }
}

#[test]
fn healthz_and_readyz() {
    const PORT: u16 = 8471;
    let mut tb = lab(1);
    let ep = tb.etcd.endpoint.clone();
    // No config yet: alive but not ready.
    tb.hosts[0].start_flanneld(&ep, &["-healthz-port=8471"]);
    let h = &tb.hosts[0];
    let got = wait_for(Duration::from_secs(10), "/healthz to answer", || {
        h.http_get(PORT, "/healthz")
    });
    assert_eq!(got, (200, "flanneld is running".to_string()));
    wait_for(Duration::from_secs(10), "a missing-config error", || {
        h.log().contains("flannel config not found").then_some(())
    });
    assert_eq!(
        h.http_get(PORT, "/readyz"),
        Some((503, "flanneld is not ready yet".to_string()))
    );
    assert_eq!(h.http_get(PORT, "/metrics").map(|r| r.0), Some(404));

    tb.set_config(VXLAN);
    tb.hosts[0].wait_env();
    let h = &tb.hosts[0];
    // Ready is flagged right after the file is in place.
    let got = wait_for(Duration::from_secs(5), "/readyz to turn 200", || {
        h.http_get(PORT, "/readyz").filter(|r| r.0 == 200)
    });
    assert_eq!(got.1, "flanneld is ready");
    assert_eq!(
        h.http_get(PORT, "/healthz"),
        Some((200, "flanneld is running".to_string()))
    );
}

#[test]
fn tls_files_with_http_endpoints_mean_plaintext_as_upstream() {
    // Upstream decides by the endpoint's scheme: http:// is plaintext even with TLS files given
    // (a unit that sets FLANNELD_ETCD_CAFILE & co. while etcd still speaks http keeps working).
    let pki = Pki::new();
    let mut tb = lab(1);
    tb.set_config(VXLAN);
    let ep = tb.etcd.endpoint.clone();
    let flags = [
        pki.flag("etcd-cafile", "ca.pem"),
        pki.flag("etcd-certfile", "client.pem"),
        pki.flag("etcd-keyfile", "client.key"),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    tb.hosts[0].start_flanneld(&ep, &flags);
    tb.hosts[0].wait_env();
    let log = tb.hosts[0].log();
    assert!(log.contains("TLS files are not used"), "{log}");
    assert_eq!(tb.etcd.leases().len(), 1);
}

/// Hostile leases: keys for the hosts' LAN (whole or a part of it) and for 0.0.0.0/0 neither
/// replace the hosts' own routes while they exist nor delete them when they go, and a peer that
/// cannot be programmed (a broadcast VtepMAC) does not stop reconciliation from restoring a good
/// peer's route.
#[test]
fn hostile_leases_never_touch_the_hosts_routes() {
    hostile_leases_are_refused("vxlan");
}

#[test]
fn hostile_leases_never_touch_the_hosts_routes_host_gw() {
    hostile_leases_are_refused("host-gw");
}

/// Leases that would route the hosts' LAN or the default route into the overlay, and one that
/// cannot be programmed (a broadcast VtepMAC, a loopback PublicIP): refused, and deleting them
/// removes nothing of the host's; a good peer beside them is still healed.
fn hostile_leases_are_refused(backend: &str) {
    let mut tb = lab(2);
    tb.set_config(&format!(
        r#"{{"Network":"10.48.0.0/16","Backend":{{"Type":"{backend}"}}}}"#
    ));
    tb.start_all(&[]);
    let peer = net_of(&tb.hosts[1].subnet());
    let h = &tb.hosts[0];
    wait_route(h, &peer, Duration::from_secs(20));
    let own_routes = || {
        (
            route_to(&h.ns, "192.168.77.0/24"),
            route_to(&h.ns, "default"),
        )
    };
    let before = own_routes();
    assert!(before.0.is_some() && before.1.is_some(), "{before:?}");
    let lease = |ip: &str, mac: &str| {
        format!(
            r#"{{"PublicIP":"{ip}","PublicIPv6":null,"BackendType":"{backend}","BackendData":{{"VNI":1,"VtepMAC":"{mac}"}}}}"#
        )
    };
    let (bad_ip, bad_mac) = if backend == "vxlan" {
        ("192.168.77.9", "ff:ff:ff:ff:ff:ff")
    } else {
        ("127.0.0.1", "0a:11:22:33:44:04")
    };
    let hostile = [
        ("192.168.77.0-24", "192.168.77.9", "0a:11:22:33:44:01"),
        ("192.168.77.128-25", "192.168.77.9", "0a:11:22:33:44:02"),
        ("0.0.0.0-0", "192.168.77.9", "0a:11:22:33:44:03"),
        ("10.48.200.0-24", bad_ip, bad_mac),
    ];
    for (key, ip, mac) in hostile {
        tb.etcd.put(&format!("{SUBNETS}/{key}"), &lease(ip, mac));
    }
    wait_for(
        Duration::from_secs(10),
        "the hostile leases refused",
        || {
            let log = h.log();
            (log.contains("ignoring lease 192.168.77.0-24")
                && log.contains("ignoring lease 0.0.0.0-0")
                && log.contains("10.48.200.0-24"))
            .then_some(())
        },
    );
    // A good peer's route deleted by hand comes back at the next pass, the bad peer beside it.
    h.ns.ip(&["route", "del", &peer]);
    wait_route(h, &peer, Duration::from_secs(30));
    assert_eq!(own_routes(), before, "{}", h.log());
    assert!(route_to(&h.ns, "192.168.77.128/25").is_none());
    assert!(route_to(&h.ns, "10.48.200.0/24").is_none());
    for (key, _, _) in hostile {
        tb.etcd.ctl(&["del", &format!("{SUBNETS}/{key}")]);
    }
    // Deleting them removes nothing of the host's, now or at the next pass.
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(own_routes(), before, "{}", h.log());
    assert!(route_to(&h.ns, &peer).is_some());
    for h in &mut tb.hosts {
        assert_alive(h);
    }
}

/// etcd wiped (or restored from an older backup) under running daemons: its revision goes back,
/// and a watch resumed from the old revision would wait for changes that never come.
#[test]
fn etcd_wiped_under_running_daemons_gets_their_leases_back() {
    let mut tb = lab(2);
    tb.set_config(VXLAN);
    tb.start_all(&[]);
    let ips = pods_ping(&mut tb);
    // Revisions well past what the new etcd will reach by the time the daemons resume.
    for i in 0..40 {
        tb.etcd.put(&format!("/weft-test/churn/{i}"), "x");
    }
    let subnets: Vec<String> = tb.hosts.iter().map(|h| h.subnet()).collect();
    tb.etcd.stop();
    std::fs::remove_dir_all(tb.etcd.dir.join("data")).unwrap();
    tb.etcd.launch();
    tb.set_config(VXLAN);
    for s in &subnets {
        let key = lease_key(s);
        wait_for_then(
            Duration::from_secs(30),
            || {
                format!(
                    "{key} written again\n{}\n{}",
                    tb.hosts[0].log(),
                    tb.hosts[1].log()
                )
            },
            || {
                tb.etcd
                    .leases()
                    .iter()
                    .any(|(k, _)| *k == key)
                    .then_some(())
            },
        );
    }
    for h in &mut tb.hosts {
        assert_alive(h);
        assert!(
            h.log().contains("etcd was wiped or restored"),
            "{}",
            h.log()
        );
    }
    // The daemons see new leases again, and a new host is not handed a subnet in use.
    let i = tb.add_host();
    let ep = tb.etcd.endpoint.clone();
    tb.hosts[i].start_flanneld(&ep, &[]);
    let third = tb.hosts[i].subnet();
    assert!(!subnets.contains(&third), "{third} handed out twice");
    for h in &tb.hosts[..2] {
        wait_route(h, &net_of(&third), Duration::from_secs(20));
    }
    let mut ips = ips;
    ips.push(tb.hosts[i].add_pod(2));
    ping_all(&tb, &ips);
}

/// The one lease in etcd, by key: its value.
fn only_lease(tb: &Lab) -> (String, Value) {
    let leases = tb.etcd.leases();
    assert_eq!(leases.len(), 1, "{leases:?}");
    leases.into_iter().next().unwrap()
}

/// Two hosts (two machines: their own /etc/machine-id) started with the same -public-ip: the
/// second finds the lease of that address naming the first one's VTEP, refuses to take it and
/// exits non-zero, saying what to fix; it leaves no device behind, and the first runs on with
/// its lease untouched.
#[test]
fn a_second_host_with_our_public_ip_refuses_its_lease() {
    let mut tb = lab(2);
    tb.set_config(VXLAN);
    let ep = tb.etcd.endpoint.clone();
    tb.hosts[0].start_flanneld(&ep, &[]);
    tb.hosts[0].wait_env();
    let before = only_lease(&tb);
    let first_ip = tb.hosts[0].ip.clone();
    tb.hosts[1].start_flanneld(&ep, &[&format!("-public-ip={first_ip}"), "-iface=eth0"]);
    let code = wait_for(
        Duration::from_secs(20),
        "the second flanneld to exit",
        || tb.hosts[1].flanneld.as_mut().unwrap().try_wait().unwrap(),
    )
    .code();
    let log = tb.hosts[1].log();
    assert_eq!(code, Some(1), "{log}");
    let mac = before.1["BackendData"]["VtepMAC"].as_str().unwrap();
    assert!(
        log.contains(&format!("names VTEP {mac}"))
            && log.contains(&format!("-public-ip {first_ip}"))
            && log.contains("-adopt-lease"),
        "{log}"
    );
    assert!(!tb.hosts[1]
        .ns
        .link_names()
        .contains(&"flannel.1".to_string()));
    assert_eq!(only_lease(&tb), before);
    std::thread::sleep(Duration::from_secs(1));
    assert_alive(&mut tb.hosts[0]);
}

/// A host whose flannel.1 is gone (a reboot) makes the same VTEP again from its machine id and
/// takes its own lease back: same subnet, same VtepMAC, so peers' entries stay valid.
#[test]
fn after_a_reboot_a_host_makes_the_same_vtep_and_keeps_its_lease() {
    let mut tb = lab(2);
    tb.set_config(VXLAN);
    tb.start_all(&[]);
    let ips = pods_ping(&mut tb);
    let before = tb.etcd.leases();
    let dev = tb.hosts[0].ns.ipj(&["link", "show", "flannel.1"])[0]["address"].clone();
    assert_eq!(tb.hosts[0].stop_flanneld(), Some(0));
    tb.hosts[0].ns.ip(&["link", "del", "flannel.1"]);
    let ep = tb.etcd.endpoint.clone();
    tb.hosts[0].start_flanneld(&ep, &[]);
    wait_for(Duration::from_secs(20), "flannel.1 again", || {
        tb.hosts[0]
            .ns
            .link_names()
            .contains(&"flannel.1".to_string())
            .then_some(())
    });
    let again = tb.hosts[0].ns.ipj(&["link", "show", "flannel.1"])[0]["address"].clone();
    assert_eq!(again, dev, "{}", tb.hosts[0].log());
    std::thread::sleep(Duration::from_secs(1));
    assert_alive(&mut tb.hosts[0]);
    assert_eq!(tb.etcd.leases(), before);
    ping_all(&tb, &ips);
}

/// Two hosts with the same -public-ip, the second told to take the lease (-adopt-lease): it
/// writes its own VTEP into the first one's lease; the first must notice rather than lose its
/// pods' traffic.
#[test]
fn a_second_host_with_our_public_ip_is_noticed_and_named() {
    let mut tb = lab(2);
    tb.set_config(VXLAN);
    let ep = tb.etcd.endpoint.clone();
    tb.hosts[0].start_flanneld(&ep, &[]);
    tb.hosts[0].wait_env();
    let first_ip = tb.hosts[0].ip.clone();
    tb.hosts[1].start_flanneld(
        &ep,
        &[
            &format!("-public-ip={first_ip}"),
            "-iface=eth0",
            "-adopt-lease",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(st) = tb.hosts[0].flanneld.as_mut().unwrap().try_wait().unwrap() {
            break st.code();
        }
        assert!(
            Instant::now() < deadline,
            "the first flanneld is still running:\n{}\nthe second:\n{}",
            tb.hosts[0].log(),
            tb.hosts[1].log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_ne!(
        code,
        Some(0),
        "a lost lease is a failure: {}",
        tb.hosts[0].log()
    );
    let log = tb.hosts[0].log();
    assert!(
        log.contains("overwritten by another flanneld")
            && log.contains(&format!("-public-ip {first_ip}")),
        "{log}"
    );
}
