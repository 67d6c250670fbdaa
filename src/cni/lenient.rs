//! How DEL reads a config. A runtime repeats DEL with the config it used at ADD until DEL
//! succeeds, so a DEL that refuses a config leaves the pod stuck for good. DEL therefore reads
//! only the keys that say what ADD made, each on its own: a key that is missing, null or of the
//! wrong type takes its default (logged on stderr), and nothing ADD alone needs (an MTU's range,
//! VLAN ranges, a MAC, incompatible flags) is looked at.

use super::conf::NetConf;
use super::json::get_ci;
use serde_json::Value;

/// The keys bridge's and ptp's DEL need to find what their ADD made beside the veth pair (the
/// masquerade is removed from both backends, whichever the config names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Teardown {
    pub ip_masq: bool,
    pub macspoofchk: bool,
}

impl Teardown {
    pub fn read(conf: &NetConf) -> Teardown {
        Teardown {
            ip_masq: flag(conf, "ipMasq"),
            macspoofchk: flag(conf, "macspoofchk"),
        }
    }
}

fn ignored(conf: &NetConf, key: &str, want: &str, got: &Value) {
    log::warn!(
        "{}: DEL ignores {key} ({got} is not {want}) and uses its default",
        conf.plugin_type
    );
}

/// A boolean key: false unless it is `true`.
pub fn flag(conf: &NetConf, key: &str) -> bool {
    match get_ci(&conf.raw, key) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            ignored(conf, key, "a boolean", other);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(j: &str) -> Teardown {
        Teardown::read(&NetConf::parse(j.as_bytes()).unwrap())
    }

    #[test]
    fn reads_what_add_made_and_nothing_else() {
        let t = read(
            r#"{"name":"n","type":"bridge","IPMASQ":true,"ipMasqBackend":"nftables",
                "macspoofchk":true,"mtu":10,"hairpinMode":true,"promiscMode":true,
                "vlanTrunk":[{"minID":9,"maxID":2}],"runtimeConfig":{"mac":"zz:zz"}}"#,
        );
        assert_eq!(
            t,
            Teardown {
                ip_masq: true,
                macspoofchk: true
            }
        );
    }

    #[test]
    fn wrong_types_take_the_default() {
        let t = read(r#"{"name":"n","ipMasq":"yes","ipMasqBackend":7,"macspoofchk":null}"#);
        assert_eq!(t, Teardown::default());
        assert_eq!(
            read(r#"{"name":"n","ipMasqBackend":""}"#),
            Teardown::default()
        );
    }
}
