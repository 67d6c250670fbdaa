//! kube-subnet-mgr's node annotations, as upstream names and reads them: the keys under
//! `-kube-annotation-prefix`, a peer's lease read from its Node (podCIDR(s) and annotations), and
//! the strategic-merge patch that publishes ours.
//!
//! Only what the data plane needs is kept of a Node ([`NodeLease`]), never the object itself,
//! so memory stays small with many nodes. A Node with no `metadata.annotations` at all is just a
//! node flannel does not manage (upstream panics on it).

use anyhow::{bail, Context, Result};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde_json::{Map, Value};
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::flanneld::subnet::lease::{LeaseAttrs, LeaseKey};

/// The annotation keys under one prefix.
#[derive(Debug, Clone, PartialEq)]
pub struct Keys {
    pub kube_managed: String,
    pub backend_data: String,
    pub backend_v6_data: String,
    pub backend_type: String,
    pub public_ip: String,
    pub public_ipv6: String,
    pub public_ip_overwrite: String,
    pub public_ipv6_overwrite: String,
}

impl Keys {
    /// Upstream's rules: at most one slash; none means `prefix/`; a prefix not ending in `/`
    /// or `-` gets a `-`. The result must be a DNS name, a slash and an optional `word-`, in
    /// lower case. Upstream's check is not anchored at the start, so it lets through a prefix
    /// such as `Example.com/` that the API server then refuses on every patch; weft refuses it
    /// at start.
    pub fn new(prefix: &str) -> Result<Keys> {
        let mut p = prefix.to_string();
        match p.matches('/').count() {
            0 => p.push('/'),
            1 => {}
            _ => bail!("-kube-annotation-prefix {prefix:?} may hold at most one slash"),
        }
        if !p.ends_with('/') && !p.ends_with('-') {
            p.push('-');
        }
        if !valid_prefix(&p) {
            bail!(
                "-kube-annotation-prefix {prefix:?} must be a lower-case DNS name, optionally \
                 followed by /word (as flannel.alpha.coreos.com)"
            );
        }
        let k = |name: &str| format!("{p}{name}");
        Ok(Keys {
            kube_managed: k("kube-subnet-manager"),
            backend_data: k("backend-data"),
            backend_v6_data: k("backend-v6-data"),
            backend_type: k("backend-type"),
            public_ip: k("public-ip"),
            public_ipv6: k("public-ipv6"),
            public_ip_overwrite: k("public-ip-overwrite"),
            public_ipv6_overwrite: k("public-ipv6-overwrite"),
        })
    }
}

fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// `name.name[.name...]/` optionally followed by `word-`.
fn valid_prefix(p: &str) -> bool {
    let Some((host, rest)) = p.split_once('/') else {
        return false;
    };
    let labels: Vec<&str> = host.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| is_word(l))
        && (rest.is_empty() || rest.strip_suffix('-').is_some_and(is_word))
}

/// What the data plane needs of one flannel-managed Node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeLease {
    pub name: String,
    pub key: LeaseKey,
    pub attrs: LeaseAttrs,
}

/// Which address families the network config enables.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Families {
    pub ipv4: bool,
    pub ipv6: bool,
}

fn annotation<'a>(node: &'a Value, key: &str) -> Option<&'a str> {
    node.pointer("/metadata/annotations")?.get(key)?.as_str()
}

/// The node's pod CIDRs: `spec.podCIDRs` (one per family, at most two), else `spec.podCIDR`;
/// empty while none is assigned.
pub fn pod_cidrs(node: &Value) -> Result<Vec<IpNet>> {
    let listed: Vec<&str> = match node.pointer("/spec/podCIDRs").and_then(Value::as_array) {
        Some(a) if !a.is_empty() => a.iter().filter_map(Value::as_str).collect(),
        _ => node
            .pointer("/spec/podCIDR")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .into_iter()
            .collect(),
    };
    if listed.len() > 2 {
        bail!("podCIDRs {listed:?}: at most one IPv4 and one IPv6 CIDR");
    }
    listed
        .iter()
        .map(|s| {
            s.parse::<IpNet>()
                .map(|n| n.trunc())
                .with_context(|| format!("podCIDR {s:?} is not a CIDR"))
        })
        .collect()
}

/// The node's IPv4 and IPv6 pod CIDRs for the families asked; an error names what is missing.
pub fn node_key(node: &Value, fam: Families) -> Result<LeaseKey> {
    let cidrs = pod_cidrs(node)?;
    let v4 = cidrs.iter().find_map(|n| match n {
        IpNet::V4(n) => Some(*n),
        IpNet::V6(_) => None,
    });
    let v6 = cidrs.iter().find_map(|n| match n {
        IpNet::V6(n) => Some(*n),
        IpNet::V4(_) => None,
    });
    let ipv4: Ipv4Net = match (fam.ipv4, v4) {
        (true, Some(n)) => n,
        (true, None) => bail!("no IPv4 podCIDR among {cidrs:?}"),
        // etcd-style keys always carry IPv4; an IPv6-only network is refused at start.
        (false, _) => bail!("an IPv6-only network is not supported"),
    };
    let ipv6: Option<Ipv6Net> = match (fam.ipv6, v6) {
        (true, Some(n)) => Some(n),
        (true, None) => bail!("no IPv6 podCIDR among {cidrs:?}"),
        (false, _) => None,
    };
    Ok(LeaseKey::new(ipv4, ipv6))
}

/// A peer's lease from its Node, or None when flannel does not manage the node (no
/// `kube-subnet-manager: "true"` annotation). Errors name what is wrong with a managed node.
pub fn node_lease(node: &Value, keys: &Keys, fam: Families) -> Result<Option<NodeLease>> {
    if annotation(node, &keys.kube_managed) != Some("true") {
        return Ok(None);
    }
    let name = node
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .context("a Node without metadata.name")?
        .to_string();
    let key = node_key(node, fam).with_context(|| format!("node {name}"))?;
    let data = |k: &str| -> Result<Option<Value>> {
        match annotation(node, k) {
            None | Some("") => Ok(None),
            Some(s) => serde_json::from_str(s)
                .map(Some)
                .with_context(|| format!("node {name}: annotation {k} is not JSON: {s:?}")),
        }
    };
    let public_ip: Ipv4Addr = match annotation(node, &keys.public_ip) {
        Some(s) if fam.ipv4 => s.parse().with_context(|| {
            format!(
                "node {name}: {} {s:?} is not an IPv4 address",
                keys.public_ip
            )
        })?,
        _ if fam.ipv4 => bail!("node {name}: no {} annotation", keys.public_ip),
        _ => Ipv4Addr::UNSPECIFIED,
    };
    let public_ipv6: Option<Ipv6Addr> = match annotation(node, &keys.public_ipv6) {
        Some(s) if fam.ipv6 => Some(s.parse().with_context(|| {
            format!(
                "node {name}: {} {s:?} is not an IPv6 address",
                keys.public_ipv6
            )
        })?),
        _ if fam.ipv6 => bail!("node {name}: no {} annotation", keys.public_ipv6),
        _ => None,
    };
    let attrs = LeaseAttrs {
        public_ip,
        public_ipv6,
        backend_type: annotation(node, &keys.backend_type)
            .unwrap_or_default()
            .to_string(),
        backend_data: if fam.ipv4 {
            data(&keys.backend_data)?
        } else {
            None
        },
        backend_v6_data: if fam.ipv6 {
            data(&keys.backend_v6_data)?
        } else {
            None
        },
    };
    Ok(Some(NodeLease { name, key, attrs }))
}

/// The annotations that publish `attrs` on `node`, and the public addresses peers will use: an
/// operator's `public-ip-overwrite` (or `public-ipv6-overwrite`) wins over ours, as upstream.
/// Returns None when the node already says all of it (upstream then sends no patch).
pub fn publish(
    node: &Value,
    keys: &Keys,
    attrs: &LeaseAttrs,
    fam: Families,
) -> Result<(Option<String>, LeaseAttrs)> {
    let mut want: Vec<(&str, String)> = vec![
        (&keys.backend_type, attrs.backend_type.clone()),
        (&keys.kube_managed, "true".into()),
    ];
    let mut published = attrs.clone();
    let json = |v: &Option<Value>| v.as_ref().map_or("null".to_string(), Value::to_string);
    if fam.ipv4 {
        let ip = match annotation(node, &keys.public_ip_overwrite).filter(|s| !s.is_empty()) {
            Some(s) => s.parse().with_context(|| {
                format!("{} {s:?} is not an IPv4 address", keys.public_ip_overwrite)
            })?,
            None => attrs.public_ip,
        };
        published.public_ip = ip;
        want.push((&keys.backend_data, json(&attrs.backend_data)));
        want.push((&keys.public_ip, ip.to_string()));
    }
    if fam.ipv6 {
        let ours = attrs
            .public_ipv6
            .context("an IPv6 network needs this host's public IPv6 address")?;
        let ip: Ipv6Addr =
            match annotation(node, &keys.public_ipv6_overwrite).filter(|s| !s.is_empty()) {
                Some(s) => s.parse().with_context(|| {
                    format!(
                        "{} {s:?} is not an IPv6 address",
                        keys.public_ipv6_overwrite
                    )
                })?,
                None => ours,
            };
        published.public_ipv6 = Some(ip);
        want.push((&keys.backend_v6_data, json(&attrs.backend_v6_data)));
        want.push((&keys.public_ipv6, ip.to_string()));
    }
    // Only what differs, in Go's map order (sorted), as the two-way merge patch upstream sends.
    want.retain(|(k, v)| annotation(node, k) != Some(v.as_str()));
    if want.is_empty() {
        return Ok((None, published));
    }
    want.sort();
    let mut m = Map::new();
    for (k, v) in want {
        m.insert(k.to_string(), Value::String(v));
    }
    let patch = serde_json::json!({ "metadata": { "annotations": m } });
    Ok((Some(patch.to_string()), published))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const V4: Families = Families {
        ipv4: true,
        ipv6: false,
    };
    const DUAL: Families = Families {
        ipv4: true,
        ipv6: true,
    };

    fn keys() -> Keys {
        Keys::new("flannel.alpha.coreos.com").unwrap()
    }

    fn vxlan_attrs() -> LeaseAttrs {
        LeaseAttrs {
            public_ip: "10.220.0.1".parse().unwrap(),
            public_ipv6: None,
            backend_type: "vxlan".into(),
            backend_data: Some(json!({"VNI": 1, "VtepMAC": "1e:f1:f0:31:d5:f2"})),
            backend_v6_data: None,
        }
    }

    #[test]
    fn prefixes_follow_upstreams_rules() {
        assert_eq!(keys().backend_data, "flannel.alpha.coreos.com/backend-data");
        assert_eq!(
            Keys::new("example.com/flannel").unwrap().public_ip,
            "example.com/flannel-public-ip"
        );
        assert_eq!(
            Keys::new("example.com/fl-").unwrap().backend_type,
            "example.com/fl-backend-type"
        );
        for bad in [
            "a/b/c",
            "nodots",
            "Example.com",
            "example.com/A",
            "x.y/a b",
            ".x/",
        ] {
            assert!(Keys::new(bad).is_err(), "{bad}");
        }
    }

    /// The bytes upstream v0.24.0 sends on a cold start against a real kube-apiserver.
    #[test]
    fn the_first_patch_is_upstreams_bytes() {
        let node = json!({"metadata": {"name": "n1"}, "spec": {"podCIDR": "10.244.1.0/24"}});
        let (patch, published) = publish(&node, &keys(), &vxlan_attrs(), V4).unwrap();
        assert_eq!(
            patch.unwrap(),
            r#"{"metadata":{"annotations":{"flannel.alpha.coreos.com/backend-data":"{\"VNI\":1,\"VtepMAC\":\"1e:f1:f0:31:d5:f2\"}","flannel.alpha.coreos.com/backend-type":"vxlan","flannel.alpha.coreos.com/kube-subnet-manager":"true","flannel.alpha.coreos.com/public-ip":"10.220.0.1"}}}"#
        );
        assert_eq!(published, vxlan_attrs());
    }

    #[test]
    fn only_what_differs_is_patched_and_an_overwrite_wins() {
        let k = keys();
        let mut node = json!({"metadata": {"name": "n1", "annotations": {
            k.backend_data.clone(): r#"{"VNI":1,"VtepMAC":"1e:f1:f0:31:d5:f2"}"#,
            k.backend_type.clone(): "vxlan",
            k.kube_managed.clone(): "true",
            k.public_ip.clone(): "10.220.0.1",
        }}});
        assert_eq!(publish(&node, &k, &vxlan_attrs(), V4).unwrap().0, None);
        node["metadata"]["annotations"][&k.public_ip_overwrite] = json!("192.0.2.9");
        let (patch, published) = publish(&node, &k, &vxlan_attrs(), V4).unwrap();
        assert_eq!(
            patch.unwrap(),
            r#"{"metadata":{"annotations":{"flannel.alpha.coreos.com/public-ip":"192.0.2.9"}}}"#
        );
        assert_eq!(published.public_ip.to_string(), "192.0.2.9");
    }

    #[test]
    fn a_peer_lease_comes_from_pod_cidrs_and_annotations() {
        let k = keys();
        let node = json!({
            "metadata": {"name": "n2", "annotations": {
                k.backend_data.clone(): r#"{"VNI":1,"VtepMAC":"1e:f1:f0:31:d5:f2"}"#,
                k.backend_v6_data.clone(): r#"{"VNI":1,"VtepMAC":"1e:f1:f0:31:d5:f3"}"#,
                k.backend_type.clone(): "vxlan",
                k.kube_managed.clone(): "true",
                k.public_ip.clone(): "10.220.0.2",
                k.public_ipv6.clone(): "fd00::2",
            }},
            "spec": {"podCIDR": "10.244.2.0/24", "podCIDRs": ["10.244.2.0/24", "fd10:0:0:2::/64"]}
        });
        let l = node_lease(&node, &k, DUAL).unwrap().unwrap();
        assert_eq!(l.name, "n2");
        assert_eq!(l.key.to_key(), "10.244.2.0-24&fd10:0:0:2::-64");
        assert_eq!(l.attrs.public_ipv6, Some("fd00::2".parse().unwrap()));
        assert_eq!(
            l.attrs.backend_v6_data.unwrap()["VtepMAC"],
            "1e:f1:f0:31:d5:f3"
        );
        let v4 = node_lease(&node, &k, V4).unwrap().unwrap();
        assert_eq!(v4.key.to_key(), "10.244.2.0-24");
        assert_eq!(v4.attrs.backend_v6_data, None);
    }

    #[test]
    fn unmanaged_bare_and_broken_nodes() {
        let k = keys();
        // No annotations at all (upstream panics), or not flannel's: not a peer.
        assert_eq!(
            node_lease(&json!({"metadata": {"name": "bare"}}), &k, V4).unwrap(),
            None
        );
        assert_eq!(node_lease(&json!({}), &k, V4).unwrap(), None);
        let managed = |spec: Value, ip: &str| {
            json!({"metadata": {"name": "n3", "annotations": {
                k.kube_managed.clone(): "true", k.public_ip.clone(): ip}}, "spec": spec})
        };
        let err = |n: Value| format!("{:#}", node_lease(&n, &k, V4).unwrap_err());
        assert!(err(managed(json!({}), "10.0.0.3")).contains("no IPv4 podCIDR"));
        assert!(err(managed(json!({"podCIDR": "x"}), "10.0.0.3")).contains("not a CIDR"));
        assert!(err(managed(json!({"podCIDR": "10.1.0.0/24"}), "nope")).contains("not an IPv4"));
        let three = json!({"podCIDRs": ["10.1.0.0/24", "fd::/64", "10.2.0.0/24"]});
        assert!(err(managed(three, "10.0.0.3")).contains("at most one"));
        let l = node_lease(
            &managed(json!({"podCIDR": "10.1.0.7/24"}), "10.0.0.3"),
            &k,
            V4,
        )
        .unwrap()
        .unwrap();
        assert_eq!(l.key.to_key(), "10.1.0.0-24");
        assert_eq!(l.attrs.backend_data, None);
    }
}
