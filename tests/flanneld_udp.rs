//! The udp backend against a real etcd in throwaway namespaces: three "hosts" on an underlay
//! bridge, pods behind each host's cni0, traffic tunnelled through flannel0 over UDP 8285.

mod common;

use common::overlay::{net_of, route_to, wait_for, Testbed};
use serde_json::Value;
use std::time::Duration;

/// No Backend: upstream's default is udp.
const NET: &str = r#"{"Network":"10.46.0.0/16"}"#;

fn pods(tb: &mut Testbed) -> Vec<(usize, String)> {
    (0..tb.hosts.len())
        .map(|i| (i, tb.hosts[i].add_pod(2)))
        .collect()
}

fn ping_all(tb: &Testbed, ips: &[(usize, String)]) {
    for (i, _) in ips {
        for (j, ip) in ips {
            if i != j {
                let pod = &tb.hosts[*i].pods[0];
                assert!(
                    pod.ping(ip),
                    "pod on host {i} cannot reach {ip} on host {j}\n{}",
                    tb.hosts[*i].log()
                );
            }
        }
    }
}

#[test]
fn udp_is_the_default_and_pods_reach_each_other() {
    let mut tb = Testbed::new(3);
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

    let ips = pods(&mut tb);
    ping_all(&tb, &ips);
    wait_for(Duration::from_secs(1), "nothing", || Some(()));
    let _: Value = Value::Null;
}
