//! The plugin's reader of flanneld's `subnet.env` (`/run/flannel/subnet.env`): the lease's
//! subnet(s), the cluster network(s), the MTU and whether flanneld masquerades.
//!
//! Read the way the Go plugin reads it: one `KEY=value` per line split at the first `=`, no
//! quoting, no `export`, unknown keys ignored, a later line for the same key replaces an earlier
//! one. Unlike Go, a known key on a line without `=` is skipped (Go indexes past the end and
//! panics), a trailing `\r` is dropped (as Go's line scanner does), and a network of the wrong
//! family (`FLANNEL_SUBNET=fc00::/64`) is refused instead of being passed on.

use crate::cni::{Code, Error};
use ipnet::IpNet;
use std::path::Path;

/// What flanneld told this node. At least one network, one subnet, the MTU and the masquerade
/// flag are present, or [`SubnetEnv::parse`] fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetEnv {
    /// `FLANNEL_NETWORK`: the IPv4 cluster networks, host bits cleared, duplicates dropped.
    pub networks: Vec<IpNet>,
    /// `FLANNEL_SUBNET`: this node's IPv4 lease as a network (`10.1.17.1/24` → `10.1.17.0/24`).
    pub subnet: Option<IpNet>,
    /// `FLANNEL_IPV6_NETWORK`.
    pub ipv6_networks: Vec<IpNet>,
    /// `FLANNEL_IPV6_SUBNET`, as a network.
    pub ipv6_subnet: Option<IpNet>,
    /// `FLANNEL_MTU`.
    pub mtu: u32,
    /// `FLANNEL_IPMASQ`: true only for the exact text `true`.
    pub ipmasq: bool,
}

/// Why the file could not be used; [`LoadError::into_cni`] gives each its spec code.
#[derive(Debug)]
pub enum LoadError {
    /// The file does not exist: flanneld is not running or has not written it yet.
    Missing(String),
    /// The file exists but cannot be read.
    Unreadable(String),
    /// A value does not parse or a required key is absent.
    Malformed(String),
}

impl LoadError {
    pub fn message(&self) -> &str {
        match self {
            LoadError::Missing(m) | LoadError::Unreadable(m) | LoadError::Malformed(m) => m,
        }
    }

    /// The error an ADD reports, worded as upstream's so the message people search for still
    /// matches. A missing file is transient (flanneld writes it once it has a lease): code 11.
    pub fn into_cni(self) -> Error {
        let code = match self {
            LoadError::Missing(_) => Code::TryAgainLater,
            LoadError::Unreadable(_) => Code::IoFailure,
            LoadError::Malformed(_) => Code::DecodingFailure,
        };
        Error::new(
            code,
            format!(
                "failed to load flannel 'subnet.env' file: {}. Check the flannel pod log for this node.",
                self.message()
            ),
        )
    }
}

/// Parses one CIDR of `family` (4 or 6) into network form, as Go's `net.ParseCIDR` returns it.
fn parse_network(key: &str, text: &str, v6: bool) -> Result<IpNet, String> {
    let net: IpNet = text
        .parse()
        .map_err(|_| format!("{key}: invalid CIDR address: {text:?}"))?;
    if net.addr().is_ipv6() != v6 {
        let want = if v6 { "IPv6" } else { "IPv4" };
        return Err(format!("{key}: {text:?} is not an {want} network"));
    }
    Ok(net.trunc())
}

/// A comma list of networks; duplicates (after masking) are dropped, order kept.
fn parse_networks(key: &str, text: &str, v6: bool) -> Result<Vec<IpNet>, String> {
    let mut out: Vec<IpNet> = Vec::new();
    for part in text.split(',') {
        let net = parse_network(key, part, v6)?;
        if !out.contains(&net) {
            out.push(net);
        }
    }
    Ok(out)
}

/// Go's `strconv.ParseUint(s, 10, 32)`: digits only (no sign, no spaces), fits in 32 bits.
fn parse_mtu(text: &str) -> Result<u32, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("FLANNEL_MTU: invalid number {text:?}"));
    }
    text.parse()
        .map_err(|_| format!("FLANNEL_MTU: {text:?} is out of range"))
}

impl SubnetEnv {
    /// Parses the text of a subnet.env; `origin` names the file in messages.
    pub fn parse(text: &str, origin: &str) -> Result<SubnetEnv, String> {
        let mut networks = Vec::new();
        let mut subnet = None;
        let mut ipv6_networks = Vec::new();
        let mut ipv6_subnet = None;
        let mut mtu = None;
        let mut ipmasq = None;
        let bad = |e: String| format!("{origin}: {e}");
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                "FLANNEL_NETWORK" => networks = parse_networks(key, value, false).map_err(bad)?,
                "FLANNEL_SUBNET" => subnet = Some(parse_network(key, value, false).map_err(bad)?),
                "FLANNEL_IPV6_NETWORK" => {
                    ipv6_networks = parse_networks(key, value, true).map_err(bad)?
                }
                "FLANNEL_IPV6_SUBNET" => {
                    ipv6_subnet = Some(parse_network(key, value, true).map_err(bad)?)
                }
                "FLANNEL_MTU" => mtu = Some(parse_mtu(value).map_err(bad)?),
                "FLANNEL_IPMASQ" => ipmasq = Some(value == "true"),
                _ => {}
            }
        }
        // Upstream's fixed order and wording; its tests match on this text.
        let mut missing: Vec<&str> = Vec::new();
        if networks.is_empty() && ipv6_networks.is_empty() {
            missing.extend(["FLANNEL_NETWORK", "FLANNEL_IPV6_NETWORK"]);
        }
        if subnet.is_none() && ipv6_subnet.is_none() {
            missing.extend(["FLANNEL_SUBNET", "FLANNEL_IPV6_SUBNET"]);
        }
        if mtu.is_none() {
            missing.push("FLANNEL_MTU");
        }
        if ipmasq.is_none() {
            missing.push("FLANNEL_IPMASQ");
        }
        match (mtu, ipmasq) {
            (Some(mtu), Some(ipmasq)) if missing.is_empty() => Ok(SubnetEnv {
                networks,
                subnet,
                ipv6_networks,
                ipv6_subnet,
                mtu,
                ipmasq,
            }),
            _ => Err(format!("{origin} is missing {}", missing.join(", "))),
        }
    }

    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<SubnetEnv, LoadError> {
        let shown = path.display().to_string();
        let text = match crate::sys::small_file::read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LoadError::Missing(format!(
                    "open {shown}: no such file or directory (flanneld is not running on this \
                     node, or has not written it yet)"
                )))
            }
            Err(e) => return Err(LoadError::Unreadable(format!("open {shown}: {e}"))),
        };
        SubnetEnv::parse(&text, &shown).map_err(LoadError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/flannel-cni")
            .join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"))
    }

    fn nets(list: &[IpNet]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    // Upstream loadFlannelSubnetEnv, ipv4 stack.
    #[test]
    fn loads_ipv4_subnet_env() {
        let se = SubnetEnv::parse(&fixture("subnet-v4.env"), "v4").unwrap();
        assert_eq!(nets(&se.networks), ["10.1.0.0/16"]);
        assert_eq!(se.subnet.unwrap().to_string(), "10.1.17.0/24");
        assert!(se.ipv6_networks.is_empty() && se.ipv6_subnet.is_none());
        assert_eq!(se.mtu, 1472);
        assert!(se.ipmasq);
    }

    // Upstream loadFlannelSubnetEnv, ipv6 stack.
    #[test]
    fn loads_ipv6_subnet_env() {
        let se = SubnetEnv::parse(&fixture("subnet-v6.env"), "v6").unwrap();
        assert_eq!(nets(&se.ipv6_networks), ["fc00::/48"]);
        assert_eq!(se.ipv6_subnet.unwrap().to_string(), "fc00::/64");
        assert!(se.networks.is_empty() && se.subnet.is_none());
        assert_eq!(se.mtu, 1472);
        assert!(se.ipmasq);
    }

    // Upstream loadFlannelSubnetEnv, dual stack.
    #[test]
    fn loads_dual_stack_subnet_env() {
        let se = SubnetEnv::parse(&fixture("subnet-dual.env"), "dual").unwrap();
        assert_eq!(nets(&se.networks), ["10.1.0.0/16"]);
        assert_eq!(se.subnet.unwrap().to_string(), "10.1.17.0/24");
        assert_eq!(nets(&se.ipv6_networks), ["fc00::/48"]);
        assert_eq!(se.ipv6_subnet.unwrap().to_string(), "fc00::/64");
        assert_eq!(se.mtu, 1472);
        assert!(se.ipmasq);
    }

    // Upstream: the three "invalid subnet env" cases (the same file, `foo=bar`).
    #[test]
    fn reports_every_missing_key_in_upstream_order() {
        let e = SubnetEnv::parse("foo=bar", "/x/subnet.env").unwrap_err();
        assert_eq!(
            e,
            "/x/subnet.env is missing FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_SUBNET, \
             FLANNEL_IPV6_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ"
        );
        let e = SubnetEnv::parse("FLANNEL_IPV6_SUBNET=fc00::1/64\nFLANNEL_MTU=1", "f").unwrap_err();
        assert_eq!(
            e,
            "f is missing FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_IPMASQ"
        );
    }

    #[test]
    fn multiple_networks_masked_and_deduplicated() {
        let se = SubnetEnv::parse(&fixture("subnet-v4-multi.env"), "m").unwrap();
        assert_eq!(nets(&se.networks), ["10.1.0.0/16", "192.168.0.0/16"]);
        let se = SubnetEnv::parse(
            "FLANNEL_NETWORK=10.1.2.3/16,10.1.0.0/16,10.2.0.0/16\nFLANNEL_SUBNET=10.1.17.9/24\n\
             FLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
            "m",
        )
        .unwrap();
        assert_eq!(nets(&se.networks), ["10.1.0.0/16", "10.2.0.0/16"]);
        assert_eq!(se.subnet.unwrap().to_string(), "10.1.17.0/24");
        assert!(!se.ipmasq);
    }

    #[test]
    fn line_rules_match_go_scanner() {
        // CRLF endings, a later line wins, a value with '=' in it, a known key without '=',
        // unknown keys and a blank line; IPMASQ is true only for the exact text.
        let text = "FLANNEL_NETWORK=10.9.0.0/16\r\nFLANNEL_NETWORK=10.1.0.0/16\r\nFLANNEL_MTU\r\n\
                    FLANNEL_SUBNET=10.1.5.1/24\r\nX=a=b\r\n\r\nFLANNEL_MTU=9000\r\n\
                    FLANNEL_IPMASQ=True\r\n";
        let se = SubnetEnv::parse(text, "crlf").unwrap();
        assert_eq!(nets(&se.networks), ["10.1.0.0/16"]);
        assert_eq!(se.mtu, 9000);
        assert!(!se.ipmasq);
    }

    #[test]
    fn malformed_values_name_the_key_and_the_file() {
        let base = "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\n\
                    FLANNEL_IPMASQ=true\n";
        for (line, want) in [
            (
                "FLANNEL_SUBNET=10.1.17.1",
                "FLANNEL_SUBNET: invalid CIDR address: \"10.1.17.1\"",
            ),
            ("FLANNEL_SUBNET=10.1.17.1/24 ", "invalid CIDR address"),
            (
                "FLANNEL_NETWORK=10.1.0.0/16,",
                "FLANNEL_NETWORK: invalid CIDR address: \"\"",
            ),
            ("FLANNEL_NETWORK=", "FLANNEL_NETWORK: invalid CIDR"),
            ("FLANNEL_SUBNET=fc00::1/64", "is not an IPv4 network"),
            ("FLANNEL_IPV6_NETWORK=10.0.0.0/8", "is not an IPv6 network"),
            ("FLANNEL_MTU=+1472", "FLANNEL_MTU: invalid number \"+1472\""),
            ("FLANNEL_MTU=", "FLANNEL_MTU: invalid number"),
            ("FLANNEL_MTU=4294967296", "out of range"),
        ] {
            let e = SubnetEnv::parse(&format!("{base}{line}\n"), "/r/s.env").unwrap_err();
            assert!(e.starts_with("/r/s.env: "), "{e}");
            assert!(e.contains(want), "{line}: {e}");
        }
        assert_eq!(
            SubnetEnv::parse(&format!("{base}FLANNEL_MTU=4294967295\n"), "x")
                .unwrap()
                .mtu,
            u32::MAX
        );
    }

    #[test]
    fn load_errors_and_their_codes() {
        let e = SubnetEnv::load(Path::new("/nonexistent/weft/subnet.env")).unwrap_err();
        assert!(matches!(e, LoadError::Missing(_)));
        let cni = e.into_cni();
        assert_eq!(cni.code, Code::TryAgainLater);
        assert_eq!(
            cni.msg,
            "failed to load flannel 'subnet.env' file: open /nonexistent/weft/subnet.env: no such \
             file or directory (flanneld is not running on this node, or has not written it \
             yet). Check the flannel pod log for this node."
        );
        // A directory where the file should be: readable as nothing, an I/O failure.
        let e = SubnetEnv::load(Path::new("/")).unwrap_err();
        assert_eq!(e.into_cni().code, Code::IoFailure);
        let dir = std::env::temp_dir().join(format!("weft-senv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("subnet.env");
        std::fs::write(&f, "foo=bar\n").unwrap();
        let e = SubnetEnv::load(&f).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        let cni = e.into_cni();
        assert_eq!(cni.code, Code::DecodingFailure);
        assert!(
            cni.msg.contains("subnet.env is missing FLANNEL_NETWORK"),
            "{}",
            cni.msg
        );
    }
}
