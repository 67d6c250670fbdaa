//! The network config flanneld reads from `<prefix>/config`, decoded as Go's encoding/json does
//! (keys matched ignoring case, unknown keys ignored) and validated with upstream's defaults.

use anyhow::{bail, Context, Result};
use ipnet::{Ipv4Net, Ipv6Net};
use serde_json::{Map, Value};
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::cni::json::get_ci;

/// A validated network config.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
    pub enable_ipv4: bool,
    pub enable_ipv6: bool,
    pub network: Option<Ipv4Net>,
    pub subnet_len: u8,
    pub subnet_min: Ipv4Addr,
    pub subnet_max: Ipv4Addr,
    pub ipv6_network: Option<Ipv6Net>,
    pub ipv6_subnet_len: u8,
    pub ipv6_subnet_min: Ipv6Addr,
    pub ipv6_subnet_max: Ipv6Addr,
    pub enable_nftables: bool,
    /// `Backend.Type`, lower-cased; "udp" when `Backend` is absent, as upstream's code does.
    pub backend_type: String,
    /// The whole `Backend` object, for the backend to read its own options from.
    pub backend: Map<String, Value>,
}

fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    get_ci(obj, key).filter(|v| !v.is_null())
}

fn get_str(obj: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match field(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => bail!("{key} must be a string, got {v}"),
    }
}

fn get_bool(obj: &Map<String, Value>, key: &str, default: bool) -> Result<bool> {
    match field(obj, key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => bail!("{key} must be true or false, got {v}"),
    }
}

/// An unsigned integer field (Go `uint`/`int`): absent is `None`.
pub fn get_uint(obj: &Map<String, Value>, key: &str) -> Result<Option<u64>> {
    match field(obj, key) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .with_context(|| format!("{key} must be a non-negative integer, got {n}")),
        Some(v) => bail!("{key} must be a number, got {v}"),
    }
}

/// A boolean backend option (missing = false).
pub fn backend_bool(backend: &Map<String, Value>, key: &str) -> Result<bool> {
    get_bool(backend, key, false).with_context(|| format!("invalid Backend.{key}"))
}

/// The subnet length when the config leaves it 0: a /24 in anything up to a /22, else two bits
/// shorter than the network, and /28 is the smallest network that can be split.
fn default_len(prefix: u8, max_len: u8, plenty: u8, fallback: u8) -> Result<u8> {
    if prefix <= plenty {
        Ok(fallback)
    } else if prefix <= max_len - 2 {
        Ok(prefix + 2)
    } else {
        bail!("network is too small (minimum /{})", max_len - 2)
    }
}

/// A Network that covers the default route, loopback or multicast would have flanneld route
/// (and masquerade) host traffic that was never the overlay's; refused before any lease is taken.
fn refuse_host_v4(net: Ipv4Net) -> Result<()> {
    if net.prefix_len() == 0 {
        bail!("Network {net} covers every address (the default route): refused");
    }
    let overlaps =
        |other: Ipv4Net| net.contains(&other.network()) || other.contains(&net.network());
    if overlaps("127.0.0.0/8".parse().expect("literal")) {
        bail!("Network {net} overlaps loopback 127.0.0.0/8: refused");
    }
    if overlaps("224.0.0.0/4".parse().expect("literal")) {
        bail!("Network {net} overlaps multicast 224.0.0.0/4: refused");
    }
    Ok(())
}

/// The IPv6 counterpart of [`refuse_host_v4`]: `::/0`, loopback `::1` and multicast `ff00::/8`.
fn refuse_host_v6(net: Ipv6Net) -> Result<()> {
    if net.prefix_len() == 0 {
        bail!("IPv6Network {net} covers every address (the default route): refused");
    }
    if net.contains(&Ipv6Addr::LOCALHOST) {
        bail!("IPv6Network {net} overlaps loopback ::1: refused");
    }
    let mc: Ipv6Net = "ff00::/8".parse().expect("literal");
    if net.contains(&mc.network()) || mc.contains(&net.network()) {
        bail!("IPv6Network {net} overlaps multicast ff00::/8: refused");
    }
    Ok(())
}

fn v4_step(len: u8) -> u32 {
    1u32 << (32 - len as u32)
}

fn v6_step(len: u8) -> u128 {
    1u128 << (128 - len as u32)
}

impl NetworkConfig {
    /// Decodes and validates the JSON stored at `<prefix>/config`.
    pub fn parse(text: &str) -> Result<NetworkConfig> {
        let v: Value =
            serde_json::from_str(text).context("the network config is not valid JSON")?;
        let Value::Object(obj) = v else {
            bail!("the network config must be a JSON object");
        };
        let enable_ipv4 = get_bool(&obj, "EnableIPv4", true)?;
        let enable_ipv6 = get_bool(&obj, "EnableIPv6", false)?;
        if !enable_ipv4 && !enable_ipv6 {
            bail!("EnableIPv4 and EnableIPv6 are both false: nothing to do");
        }
        if !enable_ipv4 {
            bail!("etcd mode needs IPv4: lease keys have no IPv6-only form (set EnableIPv4 true)");
        }
        let backend = match field(&obj, "Backend") {
            None => Map::new(),
            Some(Value::Object(b)) => b.clone(),
            Some(v) => bail!("Backend must be an object, got {v}"),
        };
        let backend_type = match get_str(&backend, "Type")? {
            Some(t) => t.to_ascii_lowercase(),
            None if field(&obj, "Backend").is_none() => "udp".to_string(),
            None => bail!("Backend.Type is missing"),
        };
        let mut cfg = NetworkConfig {
            enable_ipv4,
            enable_ipv6,
            network: None,
            subnet_len: 0,
            subnet_min: Ipv4Addr::UNSPECIFIED,
            subnet_max: Ipv4Addr::UNSPECIFIED,
            ipv6_network: None,
            ipv6_subnet_len: 0,
            ipv6_subnet_min: Ipv6Addr::UNSPECIFIED,
            ipv6_subnet_max: Ipv6Addr::UNSPECIFIED,
            enable_nftables: get_bool(&obj, "EnableNFTables", false)?,
            backend_type,
            backend,
        };
        if cfg.backend_type == "vxlan" {
            // Go's json decoding refuses a string for a bool field; checked here so that a bad
            // option is refused before a lease is taken, not after.
            for key in ["GBP", "Learning", "DirectRouting"] {
                backend_bool(&cfg.backend, key)?;
            }
        }
        cfg.fill_ipv4(&obj)?;
        if enable_ipv6 {
            cfg.fill_ipv6(&obj)?;
        }
        Ok(cfg)
    }

    fn fill_ipv4(&mut self, obj: &Map<String, Value>) -> Result<()> {
        let text =
            get_str(obj, "Network")?.context("Network is missing from the network config")?;
        let net: Ipv4Net = text
            .parse()
            .with_context(|| format!("Network {text:?} is not an IPv4 CIDR"))?;
        let net = net.trunc();
        refuse_host_v4(net)?;
        let len = match get_uint(obj, "SubnetLen")? {
            None | Some(0) => default_len(net.prefix_len(), 30, 22, 24)?,
            Some(l) if l > 30 => bail!("SubnetLen {l} is too long: at most 30"),
            Some(l) if (l as u8) < net.prefix_len() + 2 => bail!(
                "SubnetLen {l} must be at least 2 bits longer than the network's /{}",
                net.prefix_len()
            ),
            Some(l) => l as u8,
        };
        let step = v4_step(len);
        let base = u32::from(net.network());
        let last = u32::from(net.broadcast()) & !(step - 1);
        let min = parse_v4(obj, "SubnetMin")?.unwrap_or(Ipv4Addr::from(base + step));
        let max = parse_v4(obj, "SubnetMax")?.unwrap_or(Ipv4Addr::from(last));
        for (name, a) in [("SubnetMin", min), ("SubnetMax", max)] {
            if !net.contains(&a) {
                bail!("{name} {a} is not inside Network {net}");
            }
            if u32::from(a) % step != 0 {
                bail!("{name} {a} is not on a /{len} boundary");
            }
        }
        if u32::from(min) > u32::from(max) {
            bail!("SubnetMin {min} is above SubnetMax {max}");
        }
        self.network = Some(net);
        self.subnet_len = len;
        self.subnet_min = min;
        self.subnet_max = max;
        Ok(())
    }

    fn fill_ipv6(&mut self, obj: &Map<String, Value>) -> Result<()> {
        let text = get_str(obj, "IPv6Network")?
            .context("IPv6Network is missing although EnableIPv6 is true")?;
        let net: Ipv6Net = text
            .parse()
            .with_context(|| format!("IPv6Network {text:?} is not an IPv6 CIDR"))?;
        let net = net.trunc();
        refuse_host_v6(net)?;
        let len = match get_uint(obj, "IPv6SubnetLen")? {
            None | Some(0) => default_len(net.prefix_len(), 126, 62, 64)?,
            Some(l) if l > 126 => bail!("IPv6SubnetLen {l} is too long: at most 126"),
            Some(l) if (l as u8) < net.prefix_len() + 2 => bail!(
                "IPv6SubnetLen {l} must be at least 2 bits longer than the network's /{}",
                net.prefix_len()
            ),
            Some(l) => l as u8,
        };
        let step = v6_step(len);
        let base = u128::from(net.network());
        let last = u128::from(net.broadcast()) & !(step - 1);
        let min = parse_v6(obj, "IPv6SubnetMin")?.unwrap_or(Ipv6Addr::from(base + step));
        let max = parse_v6(obj, "IPv6SubnetMax")?.unwrap_or(Ipv6Addr::from(last));
        for (name, a) in [("IPv6SubnetMin", min), ("IPv6SubnetMax", max)] {
            if !net.contains(&a) {
                bail!("{name} {a} is not inside IPv6Network {net}");
            }
            if u128::from(a) % step != 0 {
                bail!("{name} {a} is not on a /{len} boundary");
            }
        }
        if u128::from(min) > u128::from(max) {
            bail!("IPv6SubnetMin {min} is above IPv6SubnetMax {max}");
        }
        self.ipv6_network = Some(net);
        self.ipv6_subnet_len = len;
        self.ipv6_subnet_min = min;
        self.ipv6_subnet_max = max;
        Ok(())
    }

    /// The IPv4 network (always present: etcd mode requires IPv4).
    pub fn network(&self) -> Ipv4Net {
        self.network
            .unwrap_or_else(|| Ipv4Net::new(Ipv4Addr::UNSPECIFIED, 0).unwrap_or_default())
    }

    /// Whether a lease's IPv4 subnet is one this config could have handed out.
    pub fn fits_v4(&self, s: Ipv4Net) -> bool {
        s.prefix_len() == self.subnet_len
            && u32::from(s.network()) >= u32::from(self.subnet_min)
            && u32::from(s.network()) <= u32::from(self.subnet_max)
    }

    /// The same for the IPv6 part; `None` fits only when IPv6 is off.
    pub fn fits_v6(&self, s: Option<Ipv6Net>) -> bool {
        match (self.enable_ipv6, s) {
            (false, None) => true,
            (false, Some(_)) | (true, None) => false,
            (true, Some(s)) => {
                s.prefix_len() == self.ipv6_subnet_len
                    && u128::from(s.network()) >= u128::from(self.ipv6_subnet_min)
                    && u128::from(s.network()) <= u128::from(self.ipv6_subnet_max)
            }
        }
    }
}

fn parse_v4(obj: &Map<String, Value>, key: &str) -> Result<Option<Ipv4Addr>> {
    get_str(obj, key)?
        .map(|s| {
            s.parse()
                .with_context(|| format!("{key} {s:?} is not an IPv4 address"))
        })
        .transpose()
}

fn parse_v6(obj: &Map<String, Value>, key: &str) -> Result<Option<Ipv6Addr>> {
    get_str(obj, key)?
        .map(|s| {
            s.parse()
                .with_context(|| format!("{key} {s:?} is not an IPv6 address"))
        })
        .transpose()
}

#[cfg(test)]
mod tests;
