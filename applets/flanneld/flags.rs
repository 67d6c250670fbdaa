//! flanneld's command line as upstream parses it (Go's flag package): `-name` and `--name` alike,
//! `-name=value` or `-name value`, booleans only as `-name` or `-name=true|false`, parsing stops
//! at the first non-flag. A flag not given is then taken from `FLANNELD_<NAME>` (dashes to
//! underscores, upper case); repeatable flags take the whole variable as one value.

use std::collections::BTreeMap;
use std::ffi::OsString;

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Str,
    Bool,
    Int,
    List,
}

pub struct Flag {
    pub name: &'static str,
    pub kind: Kind,
    pub default: &'static str,
    pub help: &'static str,
}

const fn f(name: &'static str, kind: Kind, default: &'static str, help: &'static str) -> Flag {
    Flag {
        name,
        kind,
        default,
        help,
    }
}

use Kind::*;

/// Every flag, with upstream's defaults. Kube-mode flags are accepted so unit files written for
/// upstream keep parsing; using them is refused later with a clear message.
pub const FLAGS: &[Flag] = &[
    f(
        "etcd-endpoints",
        Str,
        "http://127.0.0.1:4001,http://127.0.0.1:2379",
        "a comma-delimited list of etcd endpoints",
    ),
    f("etcd-prefix", Str, "/coreos.com/network", "etcd prefix"),
    f(
        "etcd-keyfile",
        Str,
        "",
        "SSL key file used to secure etcd communication",
    ),
    f(
        "etcd-certfile",
        Str,
        "",
        "SSL certification file used to secure etcd communication",
    ),
    f(
        "etcd-cafile",
        Str,
        "",
        "SSL Certificate Authority file used to secure etcd communication",
    ),
    f("etcd-username", Str, "", "username for BasicAuth to etcd"),
    f("etcd-password", Str, "", "password for BasicAuth to etcd"),
    f(
        "iface",
        List,
        "",
        "interface to use (IP or name) for inter-host communication; repeatable, tried in order",
    ),
    f(
        "iface-regex",
        List,
        "",
        "regex matching the IP or name of the interface to use; repeatable",
    ),
    f(
        "iface-can-reach",
        Str,
        "",
        "use the interface the kernel would use to reach this IP",
    ),
    f(
        "public-ip",
        Str,
        "",
        "IP accessible by other nodes for inter-host communication",
    ),
    f(
        "public-ipv6",
        Str,
        "",
        "IPv6 accessible by other nodes for inter-host communication",
    ),
    f(
        "subnet-file",
        Str,
        "/run/flannel/subnet.env",
        "filename where env variables (subnet, MTU, ...) will be written to",
    ),
    f(
        "subnet-lease-renew-margin",
        Int,
        "60",
        "subnet lease renewal margin, in minutes (1-1439)",
    ),
    f(
        "ip-masq",
        Bool,
        "false",
        "setup IP masquerade rule for traffic destined outside of overlay network",
    ),
    f(
        "ip-masq-fully-random-disable",
        Bool,
        "false",
        "do not add --random-fully to the MASQUERADE rules",
    ),
    f(
        "iptables-resync",
        Int,
        "5",
        "resync period for iptables rules, in seconds",
    ),
    f(
        "iptables-forward-rules",
        Bool,
        "true",
        "add default accept rules to FORWARD chain in iptables",
    ),
    f(
        "adopt-lease",
        Bool,
        "false",
        "take the lease of this host's public IP even when it names another weft host's VXLAN device (weft only)",
    ),
    f(
        "ip-blackhole-route",
        Bool,
        "false",
        "keep a blackhole route to this host's own subnet, re-added every -iptables-resync",
    ),
    f(
        "healthz-ip",
        Str,
        "0.0.0.0",
        "the IP address for the healthz server to listen on",
    ),
    f(
        "healthz-port",
        Int,
        "0",
        "the port for the healthz server to listen on (0 to disable)",
    ),
    f(
        "kube-subnet-mgr",
        Bool,
        "false",
        "contact the Kubernetes API for subnet assignment (not supported by weft)",
    ),
    f(
        "kube-api-url",
        Str,
        "",
        "Kubernetes API server URL (kube mode only)",
    ),
    f(
        "kubeconfig-file",
        Str,
        "",
        "kubeconfig file location (kube mode only)",
    ),
    f(
        "kube-annotation-prefix",
        Str,
        "flannel.alpha.coreos.com",
        "Kubernetes annotation prefix (kube mode only)",
    ),
    f(
        "net-config-path",
        Str,
        "/etc/kube-flannel/net-conf.json",
        "path to the network configuration file (kube mode only)",
    ),
    f(
        "set-node-network-unavailable",
        Bool,
        "true",
        "set the NetworkUnavailable node condition (kube mode only)",
    ),
    f("version", Bool, "false", "print version and exit"),
    f(
        "v",
        Int,
        "0",
        "accepted for compatibility; set RUST_LOG=debug for more detail",
    ),
    f(
        "vmodule",
        Str,
        "",
        "accepted for compatibility and ignored (see -v)",
    ),
    f(
        "log_backtrace_at",
        Str,
        ":0",
        "accepted for compatibility and ignored",
    ),
];

/// Every flag's value (its default when not given), typed, read once from the parse.
#[derive(Debug, Clone, PartialEq)]
pub struct Flags {
    pub etcd_endpoints: String,
    pub etcd_prefix: String,
    pub etcd_keyfile: String,
    pub etcd_certfile: String,
    pub etcd_cafile: String,
    pub etcd_username: String,
    pub etcd_password: String,
    pub iface: Vec<String>,
    pub iface_regex: Vec<String>,
    pub iface_can_reach: String,
    pub public_ip: String,
    pub public_ipv6: String,
    pub subnet_file: String,
    pub subnet_lease_renew_margin: i64,
    pub ip_masq: bool,
    pub ip_masq_fully_random_disable: bool,
    pub iptables_resync: i64,
    pub iptables_forward_rules: bool,
    pub adopt_lease: bool,
    pub ip_blackhole_route: bool,
    pub healthz_ip: String,
    pub healthz_port: i64,
    pub kube_subnet_mgr: bool,
    pub version: bool,
}

/// What the command line asked for.
pub enum Parsed {
    Run(Box<Flags>),
    Help,
}

fn find(name: &str) -> Option<&'static Flag> {
    FLAGS.iter().find(|f| f.name == name)
}

fn parse_bool(s: &str) -> Option<bool> {
    // Go's strconv.ParseBool.
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn check(flag: &Flag, v: &str) -> Result<String, String> {
    match flag.kind {
        Bool => parse_bool(v)
            .map(|b| b.to_string())
            .ok_or_else(|| format!("invalid boolean value {v:?} for -{}", flag.name)),
        Int => v
            .parse::<i64>()
            .map(|n| n.to_string())
            .map_err(|_| format!("invalid value {v:?} for -{}: not an integer", flag.name)),
        Str | List => Ok(v.to_string()),
    }
}

/// Panics unless `name` is in [`FLAGS`] with `kind`: a read under a misspelt name is a bug.
fn declared(name: &str, kind: Kind) {
    assert!(
        find(name).is_some_and(|f| f.kind == kind),
        "flanneld flag -{name} is not in FLAGS as read"
    );
}

/// The checked text of every flag, by name: only [`Flags::from`] reads it.
#[derive(Default)]
struct Values {
    strs: BTreeMap<&'static str, String>,
    lists: BTreeMap<&'static str, Vec<String>>,
    /// Flags given on the command line.
    given: Vec<&'static str>,
}

impl Values {
    fn set(&mut self, flag: &'static Flag, v: String) {
        if flag.kind == List {
            self.lists.entry(flag.name).or_default().push(v);
        } else {
            self.strs.insert(flag.name, v);
        }
    }

    /// The value of `name`, which must be in [`FLAGS`] with `kind` (the unit tests build
    /// [`Flags`], so a misspelt name fails them rather than reading as empty).
    fn text(&self, name: &str, kind: Kind) -> &str {
        declared(name, kind);
        self.strs.get(name).map(String::as_str).unwrap_or("")
    }

    fn str(&self, name: &str) -> String {
        self.text(name, Str).to_string()
    }

    fn bool(&self, name: &str) -> bool {
        self.text(name, Bool) == "true"
    }

    fn int(&self, name: &str) -> i64 {
        // Checked as an integer when set.
        self.text(name, Int).parse().unwrap_or(0)
    }

    fn list(&self, name: &str) -> Vec<String> {
        declared(name, List);
        self.lists.get(name).cloned().unwrap_or_default()
    }
}

impl From<&Values> for Flags {
    fn from(v: &Values) -> Flags {
        Flags {
            etcd_endpoints: v.str("etcd-endpoints"),
            etcd_prefix: v.str("etcd-prefix"),
            etcd_keyfile: v.str("etcd-keyfile"),
            etcd_certfile: v.str("etcd-certfile"),
            etcd_cafile: v.str("etcd-cafile"),
            etcd_username: v.str("etcd-username"),
            etcd_password: v.str("etcd-password"),
            iface: v.list("iface"),
            iface_regex: v.list("iface-regex"),
            iface_can_reach: v.str("iface-can-reach"),
            public_ip: v.str("public-ip"),
            public_ipv6: v.str("public-ipv6"),
            subnet_file: v.str("subnet-file"),
            subnet_lease_renew_margin: v.int("subnet-lease-renew-margin"),
            ip_masq: v.bool("ip-masq"),
            adopt_lease: v.bool("adopt-lease"),
            ip_masq_fully_random_disable: v.bool("ip-masq-fully-random-disable"),
            iptables_resync: v.int("iptables-resync"),
            iptables_forward_rules: v.bool("iptables-forward-rules"),
            ip_blackhole_route: v.bool("ip-blackhole-route"),
            healthz_ip: v.str("healthz-ip"),
            healthz_port: v.int("healthz-port"),
            kube_subnet_mgr: v.bool("kube-subnet-mgr"),
            version: v.bool("version"),
        }
    }
}

/// Parses `args` (without the program name), then fills what is missing from `env`.
pub fn parse(args: &[OsString], env: &dyn Fn(&str) -> Option<String>) -> Result<Parsed, String> {
    let mut vals = Values::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].to_string_lossy().into_owned();
        i += 1;
        if a == "--" {
            break;
        }
        let Some(body) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            break;
        };
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(format!("bad flag syntax: {a}"));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        if name == "h" || name == "help" {
            return Ok(Parsed::Help);
        }
        let flag = find(name).ok_or_else(|| format!("flag provided but not defined: -{name}"))?;
        let value = match (flag.kind, inline) {
            (_, Some(v)) => v,
            (Bool, None) => "true".to_string(),
            (_, None) => {
                let v = args
                    .get(i)
                    .ok_or_else(|| format!("flag needs an argument: -{name}"))?;
                i += 1;
                v.to_string_lossy().into_owned()
            }
        };
        let value = check(flag, &value)?;
        vals.set(flag, value);
        vals.given.push(flag.name);
    }
    for flag in FLAGS {
        if vals.given.contains(&flag.name) {
            continue;
        }
        let var = format!("FLANNELD_{}", flag.name.replace('-', "_").to_uppercase());
        match env(&var).filter(|v| !v.is_empty()) {
            Some(v) if flag.name != "version" => match check(flag, &v) {
                Ok(v) => vals.set(flag, v),
                Err(e) => {
                    log::error!("ignoring {var}: {e}");
                    if flag.kind != List {
                        vals.set(flag, flag.default.to_string());
                    }
                }
            },
            _ if flag.kind != List => vals.set(flag, flag.default.to_string()),
            _ => {}
        }
    }
    Ok(Parsed::Run(Box::new(Flags::from(&vals))))
}

/// The flag list, as `-h` prints it.
pub fn usage() -> String {
    let mut s = String::from("Usage: flanneld [OPTION]...\n");
    for f in FLAGS {
        let arg = match f.kind {
            Bool => "",
            Int => " int",
            Str | List => " string",
        };
        s.push_str(&format!("  -{}{arg}\n    \t{}", f.name, f.help));
        if !f.default.is_empty() && f.default != "false" && f.default != "0" {
            s.push_str(&format!(" (default {:?})", f.default));
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Flags, String> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match parse(&args, &|k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })? {
            Parsed::Run(v) => Ok(*v),
            Parsed::Help => Err("help".into()),
        }
    }

    #[test]
    fn go_flag_syntax() {
        let v = run(
            &[
                "-etcd-endpoints=http://10.0.0.1:2379",
                "--etcd-prefix",
                "/x/network",
                "-ip-masq",
                "-iface",
                "eth0",
                "--iface=10.0.0.1",
                "-iptables-forward-rules=false",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(v.etcd_endpoints, "http://10.0.0.1:2379");
        assert_eq!(v.etcd_prefix, "/x/network");
        assert!(v.ip_masq);
        assert!(!v.iptables_forward_rules);
        assert_eq!(v.iface, ["eth0", "10.0.0.1"]);
        assert_eq!(v.subnet_file, "/run/flannel/subnet.env");
        assert_eq!(v.subnet_lease_renew_margin, 60);
    }

    #[test]
    fn env_fills_what_the_command_line_left_out() {
        let v = run(
            &["-etcd-prefix=/cli"],
            &[
                ("FLANNELD_ETCD_PREFIX", "/env"),
                ("FLANNELD_IP_MASQ", "true"),
                ("FLANNELD_IFACE", "eth0,eth1"),
                ("FLANNELD_HEALTHZ_PORT", "nope"),
            ],
        )
        .unwrap();
        assert_eq!(v.etcd_prefix, "/cli");
        assert!(v.ip_masq);
        assert_eq!(v.iface, ["eth0,eth1"]);
        assert_eq!(v.healthz_port, 0, "a bad env value is ignored");
    }

    #[test]
    fn parsing_stops_at_the_first_non_flag_and_bools_take_no_separate_value() {
        let v = run(&["-ip-masq", "false", "-v", "2"], &[]).unwrap();
        assert!(v.ip_masq);
    }

    #[test]
    fn errors_and_help() {
        assert!(run(&["-nope"], &[])
            .unwrap_err()
            .contains("not defined: -nope"));
        assert!(run(&["-etcd-prefix"], &[])
            .unwrap_err()
            .contains("needs an argument"));
        assert!(run(&["-healthz-port=x"], &[])
            .unwrap_err()
            .contains("not an integer"));
        assert!(run(&["-ip-masq=maybe"], &[])
            .unwrap_err()
            .contains("invalid boolean"));
        assert_eq!(run(&["--help"], &[]).unwrap_err(), "help");
        assert!(usage().contains("-etcd-endpoints string"));
    }

    #[test]
    fn defaults_are_upstreams() {
        let v = run(&[], &[]).unwrap();
        assert_eq!(
            v.etcd_endpoints,
            "http://127.0.0.1:4001,http://127.0.0.1:2379"
        );
        assert_eq!(v.etcd_prefix, "/coreos.com/network");
        assert!(v.iptables_forward_rules && !v.ip_masq && !v.kube_subnet_mgr);
        assert_eq!((v.iptables_resync, v.healthz_port), (5, 0));
        assert_eq!(v.healthz_ip, "0.0.0.0");
        assert!(v.iface.is_empty());
    }
}
