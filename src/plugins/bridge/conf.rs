//! The bridge plugin's configuration: every key the reference reads, its defaults and its
//! validation, done before anything is touched so a bad config leaves nothing behind.

use crate::cni::args::CniArgs;
use crate::cni::json::pick;
use crate::cni::result::Dns;
use crate::cni::{Code, Error, NetConf};
use crate::sys::firewall::MasqBackend;
use crate::sys::netlink::parse_mac;
use serde::Deserialize;
use serde_json::Value;

/// The bridge plugin's own top-level keys.
pub const KEYS: [&str; 18] = [
    "bridge",
    "isGateway",
    "isDefaultGateway",
    "forceAddress",
    "ipMasq",
    "ipMasqBackend",
    "mtu",
    "hairpinMode",
    "promiscMode",
    "vlan",
    "vlanTrunk",
    "preserveDefaultVlan",
    "macspoofchk",
    "enabledad",
    "disableContainerInterface",
    "portIsolation",
    "args",
    "runtimeConfig",
];

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    #[serde(default)]
    bridge: String,
    #[serde(default)]
    is_gateway: bool,
    #[serde(default)]
    is_default_gateway: bool,
    #[serde(default)]
    force_address: bool,
    #[serde(default)]
    ip_masq: bool,
    #[serde(default)]
    ip_masq_backend: Option<String>,
    #[serde(default)]
    mtu: i64,
    #[serde(default)]
    hairpin_mode: bool,
    #[serde(default)]
    promisc_mode: bool,
    #[serde(default)]
    vlan: i64,
    #[serde(default)]
    vlan_trunk: Option<Vec<TrunkWire>>,
    #[serde(default)]
    preserve_default_vlan: bool,
    #[serde(default)]
    macspoofchk: bool,
    #[serde(default)]
    enabledad: bool,
    #[serde(default)]
    disable_container_interface: bool,
    #[serde(default)]
    port_isolation: bool,
    #[serde(default)]
    args: Option<Value>,
    #[serde(default)]
    runtime_config: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct TrunkWire {
    #[serde(default, rename = "minID")]
    min_id: Option<i64>,
    #[serde(default, rename = "maxID")]
    max_id: Option<i64>,
    #[serde(default)]
    id: Option<i64>,
}

/// A validated bridge configuration.
#[derive(Debug, Clone)]
pub struct BridgeConf {
    pub bridge: String,
    pub is_gateway: bool,
    pub is_default_gateway: bool,
    pub force_address: bool,
    pub ip_masq: bool,
    pub ip_masq_backend: Option<MasqBackend>,
    /// `None`: kernel default.
    pub mtu: Option<u32>,
    pub hairpin_mode: bool,
    pub promisc_mode: bool,
    /// 0: no access VLAN.
    pub vlan: u16,
    /// Sorted, de-duplicated tagged VLANs.
    pub vlan_trunk: Vec<u16>,
    /// `vlanTrunk` was given (even empty): the bridge is created with VLAN filtering.
    pub trunk_given: bool,
    pub preserve_default_vlan: bool,
    pub macspoofchk: bool,
    pub enable_dad: bool,
    pub disable_container_interface: bool,
    pub port_isolation: bool,
    /// The config's `dns` when any field of it is present: it replaces the IPAM DNS.
    pub dns: Option<Dns>,
    /// Container MAC: runtimeConfig, else args.cni.mac, else CNI_ARGS `MAC`.
    pub mac: Option<[u8; 6]>,
    /// L3 mode: `ipam.type` is set.
    pub has_ipam: bool,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(Code::InvalidConfig, msg)
}

impl BridgeConf {
    /// Reads the plugin keys of `conf` (case-insensitively, as Go) and `CNI_ARGS`.
    pub fn load(conf: &NetConf, cni_args: &str) -> Result<BridgeConf, Error> {
        let raw = pick(&conf.raw, &KEYS);
        let w: Wire = serde_json::from_value(Value::Object(raw)).map_err(|e| {
            Error::new(Code::DecodingFailure, "failed to load netconf").with_details(e.to_string())
        })?;
        if !(0..=4094).contains(&w.vlan) {
            return Err(invalid(format!(
                "invalid VLAN ID {} (must be between 0 and 4094)",
                w.vlan
            )));
        }
        let vlan_trunk = collect_vlan_trunk(w.vlan_trunk.as_deref())?;
        let mtu = crate::plugins::iface::mtu_from_config(w.mtu)?;
        let has_ipam = !conf.ipam_type.is_empty();
        if has_ipam && w.disable_container_interface {
            return Err(invalid(
                "cannot use IPAM when DisableContainerInterface flag is set",
            ));
        }
        if w.hairpin_mode && w.promisc_mode {
            return Err(invalid(
                "cannot set hairpin mode and promiscuous mode at the same time",
            ));
        }
        let mac = select_mac(&w, cni_args)?;
        let ip_masq_backend =
            MasqBackend::parse(w.ip_masq_backend.as_deref()).map_err(|e| invalid(e.to_string()))?;
        Ok(BridgeConf {
            bridge: if w.bridge.is_empty() {
                "cni0".into()
            } else {
                w.bridge
            },
            is_gateway: w.is_gateway || w.is_default_gateway,
            is_default_gateway: w.is_default_gateway,
            force_address: w.force_address,
            ip_masq: w.ip_masq,
            ip_masq_backend,
            mtu,
            hairpin_mode: w.hairpin_mode,
            promisc_mode: w.promisc_mode,
            vlan: w.vlan as u16,
            trunk_given: w.vlan_trunk.is_some(),
            vlan_trunk,
            preserve_default_vlan: w.preserve_default_vlan,
            macspoofchk: w.macspoofchk,
            enable_dad: w.enabledad,
            disable_container_interface: w.disable_container_interface,
            port_isolation: w.port_isolation,
            dns: conf.dns_override()?,
            mac,
            has_ipam,
        })
    }

    /// The bridge needs VLAN filtering (only then is it asked for: kernels without
    /// CONFIG_BRIDGE_VLAN_FILTERING refuse it).
    pub fn vlan_filtering(&self) -> bool {
        self.vlan != 0 || self.trunk_given
    }
}

fn select_mac(w: &Wire, cni_args: &str) -> Result<Option<[u8; 6]>, Error> {
    let args = CniArgs::parse(cni_args, &["MAC"])
        .map_err(|e| Error::new(Code::InvalidEnv, e.to_string()))?;
    let from_args = w
        .args
        .as_ref()
        .and_then(|a| a.get("cni"))
        .and_then(|c| c.get("mac"))
        .and_then(Value::as_str);
    let from_runtime = w
        .runtime_config
        .as_ref()
        .and_then(|r| r.get("mac"))
        .and_then(Value::as_str);
    let chosen = [from_runtime, from_args, args.get("MAC")]
        .into_iter()
        .flatten()
        .find(|m| !m.is_empty());
    chosen
        .map(|m| parse_mac(m).ok_or_else(|| invalid(format!("invalid MAC address {m:?}"))))
        .transpose()
}

fn collect_vlan_trunk(trunk: Option<&[TrunkWire]>) -> Result<Vec<u16>, Error> {
    let mut vids = std::collections::BTreeSet::new();
    let valid = |v: i64| (1..=4094).contains(&v);
    for item in trunk.unwrap_or_default() {
        match (item.min_id, item.max_id) {
            (Some(min), Some(max)) => {
                if !valid(min) {
                    return Err(invalid("incorrect trunk minID parameter"));
                }
                if !valid(max) {
                    return Err(invalid("incorrect trunk maxID parameter"));
                }
                if max < min {
                    return Err(invalid("minID is greater than maxID in trunk parameter"));
                }
                vids.extend((min..=max).map(|v| v as u16));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "minID and maxID should be configured simultaneously, minID is missing",
                ))
            }
            (Some(_), None) => {
                return Err(invalid(
                    "minID and maxID should be configured simultaneously, maxID is missing",
                ))
            }
            (None, None) => {}
        }
        if let Some(id) = item.id {
            if !valid(id) {
                return Err(invalid("incorrect trunk id parameter"));
            }
            vids.insert(id as u16);
        }
    }
    Ok(vids.into_iter().collect())
}

#[cfg(test)]
mod tests;
