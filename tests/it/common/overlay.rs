//! The flannel testbed of the flanneld tests: the lab (tests/lab) with this build of weft, and
//! what the tests read from it.

use super::{weft, Netns};
use serde_json::Value;
pub use weft_lab::{
    wait_for, wait_for_then, EtcdOptions, Host, Lab, LabOptions, ETCD_IP, UNDERLAY,
};

/// `n` hosts at 192.168.77.1..n, etcd at .254 (plain http).
pub fn lab(n: usize) -> Lab {
    Lab::new(weft(), n)
}

/// [`lab`] with etcd started with `extra` flags and etcdctl given `ctl_extra` (TLS, auth).
pub fn lab_with_etcd(n: usize, scheme: &str, extra: Vec<String>, ctl_extra: Vec<String>) -> Lab {
    let mut o = LabOptions::for_test(weft());
    o.etcd = EtcdOptions {
        scheme: scheme.into(),
        extra,
        ctl_extra,
        ..EtcdOptions::default()
    };
    Lab::with(o, n)
}

/// `10.45.7.1/24` -> `10.45.7.0/24`.
pub fn net_of(subnet: &str) -> String {
    let (ip, len) = subnet.split_once('/').unwrap();
    format!("{}.0/{len}", ip.rsplit_once('.').unwrap().0)
}

/// The main routing table of `ns` as `ip -j route show` objects.
pub fn routes(ns: &Netns) -> Vec<Value> {
    ns.ipj(&["route", "show"]).as_array().unwrap().clone()
}

/// The route to `dst` (e.g. `10.45.7.0/24`) in `ns`, if any.
pub fn route_to(ns: &Netns, dst: &str) -> Option<Value> {
    routes(ns).into_iter().find(|r| r["dst"] == dst)
}
