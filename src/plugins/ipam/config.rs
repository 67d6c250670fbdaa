//! host-local's configuration: the `ipam` section plus the requested-IP sources around it
//! (CNI_ARGS `IP=`, `args.cni.ips`, `runtimeConfig.ips`) and `runtimeConfig.ipRanges`.

use super::range::{parse_ip_maybe_cidr, RangeConf, RangeSet, RANGE_KEYS};
use crate::cni::args::CniArgs;
use crate::cni::error::Error;
use crate::cni::json::{fold_keys, get_ci};
use crate::cni::result::Route;
use crate::cni::NetConf;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::net::IpAddr;
use std::path::PathBuf;

pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";

/// The `ipam` section as written.
#[derive(Debug, Default, Deserialize)]
struct IpamWire {
    #[serde(default)]
    routes: Vec<Value>,
    #[serde(rename = "dataDir", default)]
    data_dir: String,
    #[serde(rename = "resolvConf", default)]
    resolv_conf: String,
    #[serde(default)]
    ranges: Vec<Vec<Value>>,
}

const IPAM_KEYS: [&str; 4] = ["routes", "dataDir", "resolvConf", "ranges"];

/// host-local's validated configuration.
#[derive(Debug, Clone)]
pub struct IpamConfig {
    pub name: String,
    pub data_dir: PathBuf,
    pub resolv_conf: Option<PathBuf>,
    /// One address is allocated from each set, in order.
    pub ranges: Vec<RangeSet>,
    pub routes: Vec<Route>,
    /// Requested addresses in priority order: CNI_ARGS, args.cni.ips, runtimeConfig.ips.
    pub requested: Vec<IpAddr>,
}

fn invalid(msg: impl std::fmt::Display) -> Error {
    Error::invalid_config(msg.to_string())
}

fn range_conf(v: &Value) -> Result<RangeConf, Error> {
    let mut v = v.clone();
    if let Value::Object(m) = &mut v {
        fold_keys(m, &RANGE_KEYS);
    }
    serde_json::from_value(v).map_err(|e| invalid(format!("invalid range: {e}")))
}

fn range_sets(list: &[Vec<Value>]) -> Result<Vec<Vec<RangeConf>>, Error> {
    list.iter()
        .map(|set| set.iter().map(range_conf).collect())
        .collect()
}

/// Reads a list of `ip[/prefix]` strings found at a case-insensitive key path.
fn ip_list(root: &Map<String, Value>, path: &[&str]) -> Result<Vec<IpAddr>, Error> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(Vec::new());
    };
    let mut cur = get_ci(root, first);
    for key in rest {
        cur = cur
            .filter(|v| !v.is_null())
            .and_then(Value::as_object)
            .and_then(|m| get_ci(m, key));
    }
    let Some(cur) = cur.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let items = cur
        .as_array()
        .ok_or_else(|| invalid(format!("{} must be a list of IPs", path.join("."))))?;
    items
        .iter()
        .map(|v| {
            let s = v
                .as_str()
                .ok_or_else(|| invalid(format!("{}: not a string: {v}", path.join("."))))?;
            parse_ip_maybe_cidr(s).map_err(invalid)
        })
        .collect()
}

impl IpamConfig {
    /// Loads the config for `conf` with CNI_ARGS `cni_args`, validating everything host-local does.
    pub fn load(conf: &NetConf, cni_args: &str) -> Result<IpamConfig, Error> {
        let ipam_value = get_ci(&conf.raw, "ipam")
            .filter(|v| !v.is_null())
            .ok_or_else(|| invalid("IPAM config missing 'ipam' key"))?;
        let mut ipam_obj = ipam_value
            .as_object()
            .cloned()
            .ok_or_else(|| invalid("the 'ipam' key must be an object"))?;
        fold_keys(&mut ipam_obj, &IPAM_KEYS);
        // Go leaves a field at its zero value for a JSON null: absent, not a type error.
        ipam_obj.retain(|_, v| !v.is_null());
        let wire: IpamWire = serde_json::from_value(Value::Object(ipam_obj.clone()))
            .map_err(|e| invalid(format!("invalid ipam config: {e}")))?;

        let mut sets: Vec<Vec<RangeConf>> = Vec::new();
        let runtime_ranges = match get_ci(&conf.runtime_config, "ipRanges") {
            Some(Value::Array(list)) => {
                let list: Vec<Vec<Value>> = list
                    .iter()
                    .map(|s| s.as_array().cloned().unwrap_or_default())
                    .collect();
                range_sets(&list)?
            }
            _ => Vec::new(),
        };
        sets.extend(runtime_ranges);
        let legacy = range_conf(&Value::Object(ipam_obj))?;
        if !legacy.subnet.is_empty() {
            sets.push(vec![legacy]);
        }
        sets.extend(range_sets(&wire.ranges)?);
        if sets.is_empty() {
            return Err(invalid("no IP ranges specified"));
        }
        let ranges = sets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                RangeSet::from_conf(s).map_err(|e| invalid(format!("invalid range set {i}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for (i, a) in ranges.iter().enumerate() {
            for (j, b) in ranges.iter().enumerate().skip(i + 1) {
                if a.overlaps(b) {
                    return Err(invalid(format!("range set {i} overlaps with {j}")));
                }
            }
        }
        if !crate::cni::version::at_least(conf.result_version(), "0.3.0")? {
            let v4 = ranges.iter().filter(|s| s.is_ipv4()).count();
            if v4 > 1 || ranges.len() - v4 > 1 {
                return Err(invalid(format!(
                    "CNI version {} does not support more than 1 address per family",
                    conf.result_version()
                )));
            }
        }

        let mut requested = Vec::new();
        let args = CniArgs::parse(cni_args, &["IP"])
            .map_err(|e| Error::new(crate::cni::Code::InvalidEnv, e.to_string()))?;
        if let Some(ips) = args.get("IP") {
            for item in ips.split(',') {
                requested.push(parse_ip_maybe_cidr(item).map_err(invalid)?);
            }
        }
        requested.extend(ip_list(&conf.raw, &["args", "cni", "ips"])?);
        requested.extend(ip_list(&conf.raw, &["runtimeConfig", "ips"])?);
        let mut seen = std::collections::HashSet::new();
        requested.retain(|ip| seen.insert(*ip));

        let routes = wire
            .routes
            .iter()
            .map(|r| {
                let mut r = r.clone();
                if let Value::Object(m) = &mut r {
                    fold_keys(
                        m,
                        &["dst", "gw", "mtu", "advmss", "priority", "table", "scope"],
                    );
                }
                serde_json::from_value::<Route>(r)
                    .map_err(|e| invalid(format!("invalid route: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;

        Ok(IpamConfig {
            name: conf.name.clone(),
            data_dir: if wire.data_dir.is_empty() {
                PathBuf::from(DEFAULT_DATA_DIR)
            } else {
                PathBuf::from(wire.data_dir)
            },
            resolv_conf: (!wire.resolv_conf.is_empty()).then(|| PathBuf::from(wire.resolv_conf)),
            ranges,
            routes,
            requested,
        })
    }

    /// Only where the state lives: enough for GC, which must work even if ranges changed.
    pub fn data_dir_of(conf: &NetConf) -> PathBuf {
        get_ci(&conf.raw, "ipam")
            .and_then(Value::as_object)
            .and_then(|m| get_ci(m, "dataDir"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }
}

#[cfg(test)]
mod tests;
