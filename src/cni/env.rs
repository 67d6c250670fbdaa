//! The `CNI_*` environment of one invocation, read and validated as Go's `skel` does.

use super::error::{Code, Error};
use std::collections::HashMap;

/// The CNI verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Status,
    Gc,
    Version,
}

impl Command {
    pub fn parse(s: &str) -> Result<Command, Error> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            "VERSION" => Command::Version,
            other => {
                return Err(Error::new(
                    Code::InvalidEnv,
                    format!("unknown CNI_COMMAND: {other}"),
                ))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Status => "STATUS",
            Command::Gc => "GC",
            Command::Version => "VERSION",
        }
    }
}

/// One invocation's parameters: what Go calls `skel.CmdArgs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdArgs {
    pub command: Command,
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    pub args: String,
    pub path: String,
    /// `CNI_NETNS_OVERRIDE`: skip the "netns is my own" check (Go test-harness extension).
    pub netns_override: bool,
    /// How many delegations deep this run is: 0 for a runtime's call, one more for each plugin
    /// that delegated to get here, in-process or exec'd (through [`DEPTH_VAR`]).
    pub depth: u32,
    pub stdin: Vec<u8>,
}

/// Carries [`CmdArgs::depth`] to an exec'd delegate, so a plugin that names itself as its own
/// IPAM or delegate is stopped however it is reached.
pub const DEPTH_VAR: &str = "WEFT_CNI_DEPTH";

/// The variables in the order Go reports them missing, with the verbs that require each.
const REQUIRED: [(&str, &[Command]); 5] = [
    (
        "CNI_CONTAINERID",
        &[Command::Add, Command::Del, Command::Check],
    ),
    ("CNI_NETNS", &[Command::Add, Command::Check]),
    ("CNI_IFNAME", &[Command::Add, Command::Del, Command::Check]),
    ("CNI_ARGS", &[]),
    (
        "CNI_PATH",
        &[
            Command::Add,
            Command::Del,
            Command::Check,
            Command::Gc,
            Command::Status,
        ],
    ),
];

impl CmdArgs {
    /// Reads the invocation from `env` (the process environment in production). `Ok(None)` means
    /// `CNI_COMMAND` is unset or empty: the caller prints its "about" text.
    pub fn from_env(
        env: &HashMap<String, String>,
        stdin: Vec<u8>,
    ) -> Result<Option<CmdArgs>, Error> {
        let get = |k: &str| env.get(k).cloned().unwrap_or_default();
        let cmd = get("CNI_COMMAND");
        if cmd.is_empty() {
            return Ok(None);
        }
        let command = Command::parse(&cmd)?;
        let missing: Vec<&str> = REQUIRED
            .iter()
            .filter(|(k, verbs)| verbs.contains(&command) && get(k).is_empty())
            .map(|(k, _)| *k)
            .collect();
        if !missing.is_empty() {
            return Err(Error::new(
                Code::InvalidEnv,
                format!("required env variables [{}] missing", missing.join(",")),
            ));
        }
        let ov = get("CNI_NETNS_OVERRIDE").to_ascii_lowercase();
        Ok(Some(CmdArgs {
            command,
            container_id: get("CNI_CONTAINERID"),
            netns: get("CNI_NETNS"),
            ifname: get("CNI_IFNAME"),
            args: get("CNI_ARGS"),
            path: get("CNI_PATH"),
            netns_override: ov == "1" || ov == "true",
            depth: get(DEPTH_VAR).parse().unwrap_or(0),
            stdin,
        }))
    }

    /// Container ID and interface name checks for the verbs that use them.
    pub fn validate(&self) -> Result<(), Error> {
        if matches!(self.command, Command::Add | Command::Del | Command::Check) {
            validate_container_id(&self.container_id)?;
            validate_ifname(&self.ifname)?;
        }
        Ok(())
    }

    /// The `CNI_*` variables as a delegate must see them, with `command` as the verb.
    pub fn env_for(&self, command: Command) -> [(&'static str, String); 7] {
        [
            ("CNI_COMMAND", command.as_str().to_string()),
            ("CNI_CONTAINERID", self.container_id.clone()),
            ("CNI_NETNS", self.netns.clone()),
            ("CNI_IFNAME", self.ifname.clone()),
            ("CNI_ARGS", self.args.clone()),
            ("CNI_PATH", self.path.clone()),
            (DEPTH_VAR, (self.depth + 1).to_string()),
        ]
    }
}

/// Go's `ValidateContainerID`.
pub fn validate_container_id(id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::new(Code::UnknownContainer, "missing containerID"));
    }
    if !super::conf::is_valid_name(id) {
        return Err(
            Error::new(Code::InvalidEnv, "invalid characters in containerID").with_details(id),
        );
    }
    Ok(())
}

/// Go's `ValidateInterfaceName`: the kernel's rules for a link name.
pub fn validate_ifname(name: &str) -> Result<(), Error> {
    let fail = |m: &str| Err(Error::new(Code::InvalidEnv, m.to_string()).with_details(name));
    if name.is_empty() {
        return Err(Error::new(Code::InvalidEnv, "interface name is empty"));
    }
    if name.len() > 15 {
        return Err(Error::new(Code::InvalidEnv, "interface name is too long")
            .with_details("interface name should be less than 16 characters"));
    }
    if name == "." || name == ".." {
        return fail("interface name is . or ..");
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return fail("interface name contains / or : or whitespace characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn required_vars_per_verb_in_go_order() {
        let e = CmdArgs::from_env(&env(&[("CNI_COMMAND", "ADD")]), vec![]).unwrap_err();
        assert_eq!(e.code, Code::InvalidEnv);
        assert_eq!(
            e.msg,
            "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing"
        );
        let e = CmdArgs::from_env(&env(&[("CNI_COMMAND", "DEL")]), vec![]).unwrap_err();
        assert_eq!(
            e.msg,
            "required env variables [CNI_CONTAINERID,CNI_IFNAME,CNI_PATH] missing"
        );
        let e = CmdArgs::from_env(&env(&[("CNI_COMMAND", "GC")]), vec![]).unwrap_err();
        assert_eq!(e.msg, "required env variables [CNI_PATH] missing");
        assert!(
            CmdArgs::from_env(&env(&[("CNI_COMMAND", "VERSION")]), vec![])
                .unwrap()
                .is_some()
        );
        assert!(CmdArgs::from_env(&env(&[]), vec![]).unwrap().is_none());
        let e = CmdArgs::from_env(&env(&[("CNI_COMMAND", "FOO")]), vec![]).unwrap_err();
        assert_eq!(
            (e.code, e.msg.as_str()),
            (Code::InvalidEnv, "unknown CNI_COMMAND: FOO")
        );
    }

    #[test]
    fn container_id_and_ifname_rules() {
        assert!(validate_container_id("abc-1.2_3").is_ok());
        assert_eq!(
            validate_container_id("").unwrap_err().code,
            Code::UnknownContainer
        );
        for bad in ["../x", "/", "a/b", " x", "-x"] {
            assert_eq!(
                validate_container_id(bad).unwrap_err().code,
                Code::InvalidEnv,
                "{bad}"
            );
        }
        assert!(validate_ifname("eth0").is_ok());
        assert!(validate_ifname("123456789012345").is_ok());
        for bad in [
            "",
            "1234567890123456",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
        ] {
            assert_eq!(
                validate_ifname(bad).unwrap_err().code,
                Code::InvalidEnv,
                "{bad:?}"
            );
        }
    }
}
