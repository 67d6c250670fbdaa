//! 200 bridge ADDs into one network at once, then 200 DELs at once: distinct addresses, every
//! container wired, and nothing left behind (links, reservations, masquerade chains).

use crate::common::*;
use serde_json::json;
use std::collections::HashSet;

const PODS: usize = 200;

#[test]
fn two_hundred_parallel_adds_then_dels() {
    let site = Site::new("cc");
    let ctrs: Vec<Netns> = (0..PODS).map(|_| Netns::new("ccp")).collect();
    let conf = site.conf(
        "bridge",
        "1.0.0",
        json!({"bridge": "br0", "isGateway": true, "ipMasq": true,
               "ipam": {"type": "host-local", "subnet": "10.20.0.0/16"}}),
    );
    let envs: Vec<Env> = ctrs
        .iter()
        .enumerate()
        .map(|(i, c)| site.env("ADD", &format!("pod-{i}"), c))
        .collect();
    let children: Vec<_> = envs
        .iter()
        .map(|e| spawn_in(&site.host, &bin_dir().join("bridge"), e, &conf))
        .collect();
    let results: Vec<Outcome> = children.into_iter().map(finish).collect();
    let mut ips = HashSet::new();
    for (i, out) in results.iter().enumerate() {
        let res = out.ok();
        let ip = res["ips"][0]["address"].as_str().unwrap().to_string();
        let got = ctrs[i].ipj(&["-4", "addr", "show", "dev", "eth0"]);
        let local = format!(
            "{}/{}",
            got[0]["addr_info"][0]["local"].as_str().unwrap(),
            got[0]["addr_info"][0]["prefixlen"]
        );
        assert_eq!(local, ip, "pod {i} is wired with its address");
        assert!(ips.insert(ip), "pod {i}: duplicate address");
    }
    assert_eq!(site.reserved().len(), PODS);
    let chains = site
        .host
        .nat_rules(false)
        .iter()
        .filter(|r| r.starts_with("-N CNI-"))
        .count();
    assert_eq!(chains, PODS);
    // A sample of pods reach the gateway and each other.
    assert!(ctrs[0].ping("10.20.0.1"));
    let last_ip = results[PODS - 1].json()["ips"][0]["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert!(ctrs[0].ping(&last_ip));

    let children: Vec<_> = envs
        .iter()
        .map(|e| spawn_in(&site.host, &bin_dir().join("bridge"), &e.cmd("DEL"), &conf))
        .collect();
    for out in children.into_iter().map(finish) {
        out.ok();
    }
    assert!(site.reserved().is_empty());
    assert_eq!(site.host.link_names(), ["br0", "lo"]);
    assert!(ctrs.iter().all(|c| c.link_names() == ["lo"]));
    assert!(site.host.nat_rules(false).is_empty());
}
