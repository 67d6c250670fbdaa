//! Leases: the key codec (`10.5.34.0-24`, dual-stack `10.5.34.0-24&fc00:0:0:22::-64`) and the lease
//! value JSON, byte-compatible with upstream flanneld so both can share one etcd.

use anyhow::{bail, Context, Result};
use ipnet::{Ipv4Net, Ipv6Net};
use serde_json::{Map, Value};
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::cni::json::get_ci;

/// The subnet(s) a lease key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseKey {
    pub ipv4: Ipv4Net,
    pub ipv6: Option<Ipv6Net>,
}

impl LeaseKey {
    pub fn new(ipv4: Ipv4Net, ipv6: Option<Ipv6Net>) -> LeaseKey {
        LeaseKey { ipv4, ipv6 }
    }

    /// The last path element of the key: `10.5.34.0-24` or `10.5.34.0-24&fc00:0:0:22::-64`.
    pub fn to_key(&self) -> String {
        let mut s = format!("{}-{}", self.ipv4.network(), self.ipv4.prefix_len());
        if let Some(v6) = self.ipv6 {
            s.push_str(&format!("&{}-{}", v6.network(), v6.prefix_len()));
        }
        s
    }

    /// Parses the tail of an etcd key the way upstream's end-anchored pattern does: anything before
    /// the subnet (the prefix path) is ignored, anything after it is an error.
    pub fn parse(key: &str) -> Option<LeaseKey> {
        let (v4part, v6part) = match key.rsplit_once('&') {
            Some((a, b)) => (a, Some(b)),
            None => (key, None),
        };
        let ipv6 = match v6part {
            None => None,
            Some(p) => Some(parse_v6_part(p)?),
        };
        let ipv4 = parse_v4_part(v4part)?;
        Some(LeaseKey { ipv4, ipv6 })
    }
}

fn parse_v4_part(s: &str) -> Option<Ipv4Net> {
    let (addr, len) = s.rsplit_once('-')?;
    // Upstream's pattern takes the longest run of digits and dots at the end of the path. Found
    // by bytes: the run is ASCII, so the byte after the last other one (of any character, however
    // long its encoding) starts it on a character boundary.
    let start = addr
        .bytes()
        .rposition(|b| !(b.is_ascii_digit() || b == b'.'))
        .map_or(0, |i| i + 1);
    let addr = &addr[start..];
    if addr.split('.').count() != 4 {
        return None;
    }
    let len = parse_len(len, 31)?;
    let ip: Ipv4Addr = addr.parse().ok()?;
    Ipv4Net::new(ip, len).ok().filter(is_subnet_v4)
}

/// A key names a subnet: an address with host bits set is no subnet key (it would name another
/// key than [`LeaseKey::to_key`] writes, and a route the kernel refuses).
fn is_subnet_v4(n: &Ipv4Net) -> bool {
    n.addr() == n.network()
}

fn is_subnet_v6(n: &Ipv6Net) -> bool {
    n.addr() == n.network()
}

fn parse_v6_part(s: &str) -> Option<Ipv6Net> {
    let (addr, len) = s.rsplit_once('-')?;
    if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
        return None;
    }
    if addr.chars().any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    let len = parse_len(len, 127)?;
    let ip: Ipv6Addr = addr.parse().ok()?;
    Ipv6Net::new(ip, len).ok().filter(is_subnet_v6)
}

fn parse_len(s: &str, max: u8) -> Option<u8> {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse::<u8>().ok().filter(|l| *l <= max)
}

/// A lease's value: who holds the subnet and how to reach it.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseAttrs {
    pub public_ip: Ipv4Addr,
    pub public_ipv6: Option<Ipv6Addr>,
    /// Empty for the udp backend, which writes no BackendType.
    pub backend_type: String,
    pub backend_data: Option<Value>,
    pub backend_v6_data: Option<Value>,
}

impl LeaseAttrs {
    /// A lease that names only `public_ip`, as the udp and alloc backends write it.
    pub fn public_ip_only(public_ip: Ipv4Addr) -> LeaseAttrs {
        LeaseAttrs {
            public_ip,
            public_ipv6: None,
            backend_type: String::new(),
            backend_data: None,
            backend_v6_data: None,
        }
    }

    /// The compact JSON upstream writes: Go field order, `PublicIPv6` always present (`null` when
    /// unset), the backend fields left out when empty.
    pub fn to_json(&self) -> String {
        let mut m = Map::new();
        m.insert("PublicIP".into(), Value::String(self.public_ip.to_string()));
        m.insert(
            "PublicIPv6".into(),
            self.public_ipv6
                .map_or(Value::Null, |a| Value::String(a.to_string())),
        );
        if !self.backend_type.is_empty() {
            m.insert(
                "BackendType".into(),
                Value::String(self.backend_type.clone()),
            );
        }
        if let Some(d) = &self.backend_data {
            m.insert("BackendData".into(), d.clone());
        }
        if let Some(d) = &self.backend_v6_data {
            m.insert("BackendV6Data".into(), d.clone());
        }
        Value::Object(m).to_string()
    }

    /// Reads a lease value written by weft or upstream: keys in any case, fields optional.
    pub fn parse(text: &str) -> Result<LeaseAttrs> {
        let v: Value = serde_json::from_str(text).context("lease value is not valid JSON")?;
        let Value::Object(obj) = v else {
            bail!("lease value is not a JSON object");
        };
        let ip = |key: &str| -> Result<Option<String>> {
            match get_ci(&obj, key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => bail!("{key} is not a string: {other}"),
            }
        };
        let public_ip = match ip("PublicIP")? {
            None => Ipv4Addr::UNSPECIFIED,
            Some(s) => s
                .parse()
                .with_context(|| format!("PublicIP {s:?} is not an IPv4 address"))?,
        };
        let public_ipv6 = ip("PublicIPv6")?
            .map(|s| {
                s.parse()
                    .with_context(|| format!("PublicIPv6 {s:?} is not an IPv6 address"))
            })
            .transpose()?;
        let backend_type = match get_ci(&obj, "BackendType") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => String::new(),
            Some(other) => bail!("BackendType is not a string: {other}"),
        };
        let data = |key: &str| get_ci(&obj, key).filter(|v| !v.is_null()).cloned();
        Ok(LeaseAttrs {
            public_ip,
            public_ipv6,
            backend_type,
            backend_data: data("BackendData"),
            backend_v6_data: data("BackendV6Data"),
        })
    }
}

/// A lease as read from etcd.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub key: LeaseKey,
    pub attrs: LeaseAttrs,
    /// The etcd lease the key is attached to; 0 for a reservation (a key with no TTL).
    pub etcd_lease: i64,
}

impl Lease {
    pub fn is_reservation(&self) -> bool {
        self.etcd_lease == 0
    }
}

/// The first address of a subnet plus one: what subnet.env's FLANNEL_SUBNET carries.
pub fn gateway_v4(s: Ipv4Net) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from(u32::from(s.network()) + 1), s.prefix_len()).unwrap_or(s)
}

/// The same for IPv6.
pub fn gateway_v6(s: Ipv6Net) -> Ipv6Net {
    Ipv6Net::new(Ipv6Addr::from(u128::from(s.network()) + 1), s.prefix_len()).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_round_trip() {
        for k in [
            "10.5.34.0-24",
            "10.12.13.0-24&fd00:12:13::-56",
            "10.12.13.0-24&fc00:0:0:1::-64",
        ] {
            assert_eq!(LeaseKey::parse(k).unwrap().to_key(), k);
        }
        let full = LeaseKey::parse("/coreos.com/network/subnets/10.5.52.0-24").unwrap();
        assert_eq!(full.ipv4, "10.5.52.0/24".parse::<Ipv4Net>().unwrap());
        assert_eq!(full.ipv6, None);
    }

    #[test]
    fn invalid_keys_from_upstream_tests() {
        for k in [
            "10",
            "10.12.13.0",
            "10.12.13-24",
            "10.12.13.300-24",
            "10.12.13.0-24hi",
            "&2001::-56",
            "10.12.13.0-24&:12:13:-56",
            "10.12.13.0-24&20011::-56",
            "10.12.13.0-24&2001-56",
            "10.12.13.0-24&2001::",
            "10.12.13.0-24&2001::-56hi",
            "10.12.13.0-32",
            "10.12.13.0-24&2001::-128",
        ] {
            assert_eq!(LeaseKey::parse(k), None, "{k}");
        }
    }

    #[test]
    fn keys_with_host_bits_name_no_subnet() {
        for k in ["10.12.13.5-24", "10.12.13.0-24&fc00::1-64", "10.0.0.1-31"] {
            assert_eq!(LeaseKey::parse(k), None, "{k}");
        }
        assert!(LeaseKey::parse("10.0.0.2-31").is_some());
    }

    #[test]
    fn any_text_before_the_subnet_is_skipped() {
        let k = LeaseKey::parse("/prefix/\u{fffd}10.5.34.0-24").unwrap();
        assert_eq!(k.to_key(), "10.5.34.0-24");
        assert_eq!(LeaseKey::parse("10\u{e9}4.0-24"), None);
    }

    #[test]
    fn attrs_json_is_byte_compatible_with_upstream() {
        let vxlan = r#"{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}"#;
        let udp = r#"{"PublicIP":"10.0.0.5","PublicIPv6":null}"#;
        let hostgw_ds = r#"{"PublicIP":"10.0.0.5","PublicIPv6":"fd00::5","BackendType":"host-gw"}"#;
        let vxlan_ds = r#"{"PublicIP":"10.0.0.5","PublicIPv6":"fd00::5","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:01"},"BackendV6Data":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:02"}}"#;
        for golden in [vxlan, udp, hostgw_ds, vxlan_ds] {
            assert_eq!(LeaseAttrs::parse(golden).unwrap().to_json(), golden);
        }
        let a = LeaseAttrs::parse(vxlan).unwrap();
        assert_eq!(a.public_ip, Ipv4Addr::new(192, 168, 64, 3));
        assert_eq!(a.backend_type, "vxlan");
    }

    #[test]
    fn numbers_in_backend_data_survive_a_rewrite() {
        // Go parses every number to the nearest float64; a rewrite must not move it.
        let a = LeaseAttrs::parse(r#"{"BackendData":{"x":990999e99,"y":0.1}}"#).unwrap();
        assert_eq!(LeaseAttrs::parse(&a.to_json()).unwrap(), a);
        assert_eq!(a.backend_data.unwrap()["x"].as_f64(), Some(9.90999e104));
    }

    #[test]
    fn attrs_reader_is_lenient_like_go() {
        let a =
            LeaseAttrs::parse(r#"{"publicip":"10.1.1.1","backendtype":"host-gw","x":1}"#).unwrap();
        assert_eq!(a.public_ip, Ipv4Addr::new(10, 1, 1, 1));
        assert_eq!(a.backend_type, "host-gw");
        assert_eq!(a.public_ipv6, None);
        for bad in [r#"{"PublicIP":"nope"}"#, "[1]", "{", r#"{"PublicIP":5}"#] {
            assert!(LeaseAttrs::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gateways() {
        assert_eq!(
            gateway_v4("10.5.72.0/24".parse().unwrap()).to_string(),
            "10.5.72.1/24"
        );
        assert_eq!(
            gateway_v6("fc00:0:0:5::/64".parse().unwrap()).to_string(),
            "fc00:0:0:5::1/64"
        );
    }
}
