//! The result model (spec 1.1.0) and its conversion to and from every older shape.
//!
//! Internally there is one type, [`CniResult`]; [`CniResult::parse`] reads any version's JSON and
//! [`CniResult::to_json`] writes any version, applying the conversion rules of Go's
//! `pkg/types/{020,040,100}` exactly (including what each direction drops).

use super::error::{Code, Error};
use super::version::{self, Family};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::net::IpAddr;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtu: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
    #[serde(
        rename = "socketPath",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub socket_path: String,
    #[serde(rename = "pciID", default, skip_serializing_if = "String::is_empty")]
    pub pci_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    /// Index into `interfaces`; `None` for IPAM results.
    pub interface: Option<usize>,
    /// The address with its prefix (host bits kept).
    pub address: IpNet,
    pub gateway: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    #[serde(with = "cidr")]
    pub dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtu: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub advmss: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<i32>,
}

impl Route {
    pub fn new(dst: IpNet, gw: Option<IpAddr>) -> Route {
        Route {
            dst,
            gw,
            mtu: 0,
            advmss: 0,
            priority: 0,
            table: None,
            scope: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.is_empty()
            && self.search.is_empty()
            && self.options.is_empty()
    }
}

/// A result in the 1.1.0 model, whatever version it was read from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniResult {
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<Route>,
    pub dns: Dns,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

mod cidr {
    use ipnet::IpNet;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(n: &IpNet, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(n)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_cidr(&s).map_err(serde::de::Error::custom)
    }
}

/// Parses `addr/prefix` keeping the host bits, as Go's `types.ParseCIDR` does.
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .map_err(|_| format!("invalid CIDR address: {s}"))
}

fn decode_err(e: impl std::fmt::Display) -> Error {
    Error::new(
        Code::DecodingFailure,
        format!("failed to parse result: {e}"),
    )
}

fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    super::json::get_ci(obj, key).filter(|v| !v.is_null())
}

fn string_field(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, Error> {
    match field(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(decode_err(format!("{key} must be a string, got {other}"))),
    }
}

fn ip_field(obj: &Map<String, Value>, key: &str) -> Result<Option<IpAddr>, Error> {
    match string_field(obj, key)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| decode_err(format!("invalid IP address: {s}"))),
    }
}

fn cidr_field(obj: &Map<String, Value>, key: &str) -> Result<IpNet, Error> {
    let s = string_field(obj, key)?.ok_or_else(|| decode_err(format!("missing {key}")))?;
    parse_cidr(&s).map_err(decode_err)
}

fn list_of<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a [Value], Error> {
    match field(obj, key) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(decode_err(format!("{key} must be a list, got {other}"))),
    }
}

fn as_object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, Error> {
    v.as_object()
        .ok_or_else(|| decode_err(format!("{what} must be an object")))
}

fn parse_routes(list: &[Value]) -> Result<Vec<Route>, Error> {
    list.iter()
        .map(|r| {
            let mut r = as_object(r, "route")?.clone();
            super::json::fold_keys(
                &mut r,
                &["dst", "gw", "mtu", "advmss", "priority", "table", "scope"],
            );
            serde_json::from_value(Value::Object(r)).map_err(decode_err)
        })
        .collect()
}

fn parse_dns(obj: &Map<String, Value>) -> Result<Dns, Error> {
    match field(obj, "dns") {
        None => Ok(Dns::default()),
        Some(v) => {
            let mut d = as_object(v, "dns")?.clone();
            super::json::fold_keys(&mut d, &["nameservers", "domain", "search", "options"]);
            serde_json::from_value(Value::Object(d)).map_err(decode_err)
        }
    }
}

impl CniResult {
    /// Parses a result printed in version `ver` (its own `cniVersion` is checked by the caller).
    pub fn parse_as(value: &Value, ver: &str) -> Result<CniResult, Error> {
        let obj = as_object(value, "result")?;
        let fam = version::family(ver)
            .ok_or_else(|| decode_err(format!("unsupported CNI result version {ver:?}")))?;
        let mut res = CniResult {
            dns: parse_dns(obj)?,
            ..CniResult::default()
        };
        match fam {
            Family::V02 => {
                for key in ["ip4", "ip6"] {
                    if let Some(v) = field(obj, key) {
                        let o = as_object(v, key)?;
                        let address = cidr_field(o, "ip")?;
                        res.ips.push(IpConfig {
                            interface: None,
                            address,
                            gateway: ip_field(o, "gateway")?,
                        });
                        res.routes.extend(parse_routes(list_of(o, "routes")?)?);
                    }
                }
            }
            Family::V04 | Family::V1 => {
                for i in list_of(obj, "interfaces")? {
                    let mut i = as_object(i, "interface")?.clone();
                    super::json::fold_keys(
                        &mut i,
                        &["name", "mac", "mtu", "sandbox", "socketPath", "pciID"],
                    );
                    let mut iface: Interface =
                        serde_json::from_value(Value::Object(i)).map_err(decode_err)?;
                    if fam == Family::V04 {
                        iface.mtu = 0;
                        iface.socket_path.clear();
                        iface.pci_id.clear();
                    }
                    res.interfaces.push(iface);
                }
                for ip in list_of(obj, "ips")? {
                    let o = as_object(ip, "ip")?;
                    let interface =
                        match field(o, "interface") {
                            None => None,
                            Some(v) => {
                                let n = v
                                    .as_i64()
                                    .ok_or_else(|| decode_err("interface must be an integer"))?;
                                Some(usize::try_from(n).map_err(|_| {
                                    decode_err(format!("invalid interface index {n}"))
                                })?)
                            }
                        };
                    res.ips.push(IpConfig {
                        interface,
                        address: cidr_field(o, "address")?,
                        gateway: ip_field(o, "gateway")?,
                    });
                }
                res.routes = parse_routes(list_of(obj, "routes")?)?;
            }
        }
        Ok(res)
    }

    /// Parses a result whose version may be given inside it; a missing `cniVersion` is taken to
    /// be `default_ver` (libcni's fixup for plugins that omit it).
    pub fn parse(value: &Value, default_ver: &str) -> Result<(CniResult, String), Error> {
        let obj = as_object(value, "result")?;
        let ver = match string_field(obj, "cniVersion")? {
            Some(v) if !v.is_empty() => v,
            _ => default_ver.to_string(),
        };
        if !version::is_supported(&ver) && !ver.is_empty() {
            return Err(decode_err(format!(
                "unsupported CNI result version {ver:?}"
            )));
        }
        Ok((CniResult::parse_as(value, &ver)?, ver))
    }

    /// Parses a `prevResult` as Go's `ParsePrevResult` does: a missing `cniVersion` takes the
    /// config's, and the result must belong to the config version's shape family.
    pub fn parse_prev(value: &Value, conf_ver: &str) -> Result<CniResult, Error> {
        let (res, ver) = CniResult::parse(value, conf_ver)?;
        if version::family(&ver) != version::family(conf_ver) {
            let fam: Vec<&str> = version::SUPPORTED
                .iter()
                .copied()
                .filter(|v| version::family(v) == version::family(conf_ver))
                .collect();
            return Err(decode_err(format!(
                "result type supports [{}] but unmarshalled CNIVersion is {ver:?}",
                fam.join(" ")
            )));
        }
        Ok(res)
    }

    /// The result in version `ver`'s shape. Fails only where Go's conversion fails: an old
    /// (0.1/0.2) result needs at least one IP.
    pub fn to_value(&self, ver: &str) -> Result<Value, Error> {
        let fam = version::family(ver).ok_or_else(|| {
            Error::new(
                Code::IncompatibleVersion,
                format!("unsupported CNI result version {ver:?}"),
            )
        })?;
        let mut out = Map::new();
        out.insert("cniVersion".into(), json!(ver));
        match fam {
            Family::V02 => {
                let v4 = self.ips.iter().find(|i| i.address.addr().is_ipv4());
                let v6 = self.ips.iter().find(|i| i.address.addr().is_ipv6());
                if v4.is_none() && v6.is_none() {
                    return Err(Error::new(
                        Code::Internal,
                        "cannot convert: no valid IP addresses",
                    ));
                }
                for (key, ip, want_v4) in [("ip4", v4, true), ("ip6", v6, false)] {
                    let Some(ip) = ip else { continue };
                    let mut o = Map::new();
                    o.insert("ip".into(), json!(ip.address.to_string()));
                    if let Some(gw) = ip.gateway {
                        o.insert("gateway".into(), json!(gw.to_string()));
                    }
                    let routes: Vec<Value> = self
                        .routes
                        .iter()
                        .filter(|r| r.dst.addr().is_ipv4() == want_v4)
                        .map(|r| {
                            let mut m = Map::new();
                            m.insert("dst".into(), json!(r.dst.to_string()));
                            if let Some(gw) = r.gw {
                                m.insert("gw".into(), json!(gw.to_string()));
                            }
                            Value::Object(m)
                        })
                        .collect();
                    if !routes.is_empty() {
                        o.insert("routes".into(), Value::Array(routes));
                    }
                    out.insert(key.into(), Value::Object(o));
                }
                out.insert("dns".into(), dns_value(&self.dns));
            }
            Family::V04 | Family::V1 => {
                if !self.interfaces.is_empty() {
                    let ifaces: Vec<Value> = self
                        .interfaces
                        .iter()
                        .map(|i| {
                            let mut i = i.clone();
                            if fam == Family::V04 {
                                i.mtu = 0;
                                i.socket_path.clear();
                                i.pci_id.clear();
                            }
                            serde_json::to_value(i).unwrap_or(Value::Null)
                        })
                        .collect();
                    out.insert("interfaces".into(), Value::Array(ifaces));
                }
                if !self.ips.is_empty() {
                    let ips: Vec<Value> = self
                        .ips
                        .iter()
                        .map(|ip| {
                            let mut m = Map::new();
                            if fam == Family::V04 {
                                let v = if ip.address.addr().is_ipv4() {
                                    "4"
                                } else {
                                    "6"
                                };
                                m.insert("version".into(), json!(v));
                            }
                            if let Some(idx) = ip.interface {
                                m.insert("interface".into(), json!(idx));
                            }
                            m.insert("address".into(), json!(ip.address.to_string()));
                            if let Some(gw) = ip.gateway {
                                m.insert("gateway".into(), json!(gw.to_string()));
                            }
                            Value::Object(m)
                        })
                        .collect();
                    out.insert("ips".into(), Value::Array(ips));
                }
                if !self.routes.is_empty() {
                    out.insert(
                        "routes".into(),
                        serde_json::to_value(&self.routes).unwrap_or(Value::Null),
                    );
                }
                if fam == Family::V04 || !self.dns.is_empty() {
                    out.insert("dns".into(), dns_value(&self.dns));
                }
            }
        }
        Ok(Value::Object(out))
    }

    /// The result as a plugin prints it: version `ver`, Go's indentation.
    pub fn to_json(&self, ver: &str) -> Result<String, Error> {
        Ok(super::json::to_pretty(&self.to_value(ver)?))
    }
}

fn dns_value(d: &Dns) -> Value {
    serde_json::to_value(d).unwrap_or_else(|_| json!({}))
}

#[cfg(test)]
mod tests;
