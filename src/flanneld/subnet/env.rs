//! subnet.env: written once at startup, atomically, 0644 whatever the umask, in upstream's exact
//! format and order; read back at the next start to ask for the same subnet again.

use anyhow::Result;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::path::Path;

use crate::sys::atomic_file;

use super::lease::{gateway_v4, gateway_v6};

/// What flanneld writes to subnet.env.
#[derive(Debug, Clone, PartialEq)]
pub struct SubnetFile {
    pub network: Option<Ipv4Net>,
    pub subnet: Option<Ipv4Net>,
    pub ipv6_network: Option<Ipv6Net>,
    pub ipv6_subnet: Option<Ipv6Net>,
    pub mtu: u32,
    pub ip_masq: bool,
}

impl SubnetFile {
    /// The file's text. Subnets are written as their first host address (`10.5.72.1/24`).
    pub fn render(&self) -> String {
        let mut s = String::new();
        if let (Some(n), Some(sub)) = (self.network, self.subnet) {
            s.push_str(&format!("FLANNEL_NETWORK={n}\n"));
            s.push_str(&format!("FLANNEL_SUBNET={}\n", gateway_v4(sub)));
        }
        if let (Some(n), Some(sub)) = (self.ipv6_network, self.ipv6_subnet) {
            s.push_str(&format!("FLANNEL_IPV6_NETWORK={n}\n"));
            s.push_str(&format!("FLANNEL_IPV6_SUBNET={}\n", gateway_v6(sub)));
        }
        s.push_str(&format!("FLANNEL_MTU={}\n", self.mtu));
        s.push_str(&format!("FLANNEL_IPMASQ={}\n", self.ip_masq));
        s
    }

    /// Writes `path` atomically, mode 0644 whatever the umask (docker units and the CNI plugin,
    /// possibly as other users, read it).
    pub fn write(&self, path: &Path) -> Result<()> {
        atomic_file::write(
            path,
            self.render().as_bytes(),
            atomic_file::Mode::Fixed(0o644),
            atomic_file::Symlink::Replace,
        )
    }
}

/// The values of a previous subnet.env that flanneld reuses: each is `None` when missing, invalid
/// or a comma list (upstream treats more than one entry as none).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PreviousEnv {
    pub network: Option<Ipv4Net>,
    pub subnet: Option<Ipv4Net>,
    pub ipv6_network: Option<Ipv6Net>,
    pub ipv6_subnet: Option<Ipv6Net>,
}

fn value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .filter_map(|l| l.trim().split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().trim_matches('"').trim_matches('\''))
        .next_back()
}

fn net(text: &str, key: &str) -> Option<IpNet> {
    let v = value(text, key)?;
    if v.contains(',') {
        return None;
    }
    v.parse::<IpNet>().ok().map(|n| n.trunc())
}

impl PreviousEnv {
    /// Reads `path`; a missing or unreadable file is an empty result, never an error.
    pub fn read(path: &Path) -> PreviousEnv {
        let Ok(text) = crate::sys::small_file::read_to_string(path) else {
            return PreviousEnv::default();
        };
        let v4 = |k| match net(&text, k) {
            Some(IpNet::V4(n)) => Some(n),
            _ => None,
        };
        let v6 = |k| match net(&text, k) {
            Some(IpNet::V6(n)) => Some(n),
            _ => None,
        };
        PreviousEnv {
            network: v4("FLANNEL_NETWORK"),
            subnet: v4("FLANNEL_SUBNET"),
            ipv6_network: v6("FLANNEL_IPV6_NETWORK"),
            ipv6_subnet: v6("FLANNEL_IPV6_SUBNET"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn env() -> SubnetFile {
        SubnetFile {
            network: Some("10.5.0.0/16".parse().unwrap()),
            subnet: Some("10.5.72.0/24".parse().unwrap()),
            ipv6_network: None,
            ipv6_subnet: None,
            mtu: 1450,
            ip_masq: false,
        }
    }

    #[test]
    fn renders_upstream_format() {
        assert_eq!(
            env().render(),
            "FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"
        );
        let mut ds = env();
        ds.ipv6_network = Some("fc00::/48".parse().unwrap());
        ds.ipv6_subnet = Some("fc00:0:0:5::/64".parse().unwrap());
        ds.ip_masq = true;
        let golden = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/flannel/subnet-dualstack.env"
        ))
        .unwrap();
        assert_eq!(ds.render(), golden);
    }

    #[test]
    fn written_atomically_with_mode_0644_and_read_back() {
        let dir = std::env::temp_dir().join(format!("weft-env-{}", std::process::id()));
        let path = dir.join("sub/subnet.env");
        // SAFETY: umask only changes this process's file-creation mask.
        let old = unsafe { libc::umask(0o077) };
        env().write(&path).unwrap();
        // SAFETY: as above, restoring the previous mask.
        unsafe { libc::umask(old) };
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
        let prev = PreviousEnv::read(&path);
        assert_eq!(prev.subnet, Some("10.5.72.0/24".parse().unwrap()));
        assert_eq!(prev.network, Some("10.5.0.0/16".parse().unwrap()));
        assert_eq!(prev.ipv6_subnet, None);
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "temporary file left behind: {names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn previous_env_ignores_lists_and_garbage() {
        let dir = std::env::temp_dir().join(format!("weft-prev-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("subnet.env");
        std::fs::write(
            &p,
            "FLANNEL_NETWORK=10.5.0.0/16,10.6.0.0/16\nFLANNEL_SUBNET=junk\nFLANNEL_IPV6_SUBNET=fc00::1/64\n",
        )
        .unwrap();
        let prev = PreviousEnv::read(&p);
        assert_eq!(prev.network, None);
        assert_eq!(prev.subnet, None);
        assert_eq!(prev.ipv6_subnet, Some("fc00::/64".parse().unwrap()));
        assert_eq!(PreviousEnv::read(&dir.join("none")), PreviousEnv::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
