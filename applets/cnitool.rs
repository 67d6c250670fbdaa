//! `cnitool`: runs a network configuration list against a network namespace the way a container
//! runtime does (weft::cni::runtime), with upstream cnitool's command line and environment.

use sha2::{Digest, Sha512};
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use weft::cni::runtime::{cache, load, Attachment, ConfList, Runtime};
use weft::cni::{Code, Error};

const HELP: &str = "\
usage: cnitool [-i IFNAME] add|check|del NETWORK NETNS
       cnitool gc|status NETWORK [NETNS]

Runs the CNI network NETWORK's configuration list as a container runtime does: ADD through
every plugin in order (each given the previous one's result), CHECK and DEL with the result
ADD cached, DEL in reverse order. A failed ADD is deleted again. The ADD result is printed;
errors are printed as the CNI spec's error JSON, with exit status 1.

Commands:
  add      attach NETNS to NETWORK and print the result
  check    check the attachment (cniVersion 0.4.0 and later)
  del      detach NETNS from NETWORK
  gc       delete cached attachments of NETWORK whose namespace is gone, then send GC to
           every plugin with the remaining ones as the valid attachments (1.1.0 and later)
  status   ask every plugin whether it can serve ADDs (1.1.0 and later)

Options:
  -i, --ifname IFNAME  interface name in the namespace (default: $CNI_IFNAME, else eth0)
  -h, --help           this help

Environment:
  NETCONFPATH    directory of .conflist, .conf and .json files (default /etc/cni/net.d)
  CNI_PATH       plugin directories, separated by ':'
  CNI_IFNAME     interface name when -i is not given
  CNI_ARGS       KEY=VALUE;... passed to every plugin
  CAP_ARGS       capability arguments as a JSON object, e.g. portMappings
  CNI_CACHE_DIR  where results are cached (default /var/lib/cni; weft's addition)

The container ID is cnitool-<first 10 bytes of sha512(NETNS) in hex>, as upstream's cnitool
makes it, so both find the same cached attachments.

Examples:
  ip netns add pod1
  CNI_PATH=/opt/cni/bin weft cnitool add cbr0 /run/netns/pod1
  CNI_PATH=/opt/cni/bin CAP_ARGS='{\"portMappings\":[{\"hostPort\":8080,\"containerPort\":80,\"protocol\":\"tcp\"}]}' \\
      weft cnitool add cbr0 /run/netns/pod1
  CNI_PATH=/opt/cni/bin weft cnitool check cbr0 /run/netns/pod1
  CNI_PATH=/opt/cni/bin weft cnitool del cbr0 /run/netns/pod1";

#[derive(Debug, PartialEq)]
struct Cli {
    command: String,
    network: String,
    netns: String,
    ifname: Option<String>,
}

/// Flags may come before or after the operands, as with upstream's cobra command line.
fn parse(args: &[String]) -> Result<Option<Cli>, String> {
    let mut ifname = None;
    let mut operands = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" | "help" => return Ok(None),
            "-i" | "--ifname" => {
                ifname = Some(
                    it.next()
                        .ok_or(format!("flag needs an argument: {a}"))?
                        .clone(),
                )
            }
            _ if a.starts_with("--ifname=") => ifname = Some(a["--ifname=".len()..].to_string()),
            _ if a.starts_with('-') && a.len() > 1 => return Err(format!("unknown flag: {a}")),
            _ => operands.push(a.clone()),
        }
    }
    let command = operands.first().cloned().ok_or("no command given")?;
    if !matches!(command.as_str(), "add" | "check" | "del" | "gc" | "status") {
        return Err(format!("unknown command {command:?}"));
    }
    let needs_netns = matches!(command.as_str(), "add" | "check" | "del");
    let (network, netns) = match (&operands[1..], needs_netns) {
        ([net, ns], _) => (net.clone(), ns.clone()),
        ([net], false) => (net.clone(), String::new()),
        _ => return Err("network name and namespace are required".into()),
    };
    Ok(Some(Cli {
        command,
        network,
        netns,
        ifname,
    }))
}

/// `filepath.Abs`: joined to the working directory and cleaned, symlinks left alone.
fn absolute(p: &str) -> std::io::Result<PathBuf> {
    let joined = if Path::new(p).is_absolute() {
        PathBuf::from(p)
    } else {
        std::env::current_dir()?.join(p)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    Ok(out)
}

/// upstream cnitool's container ID for a namespace path.
fn container_id(netns: &Path) -> String {
    let digest = Sha512::digest(netns.as_os_str().as_encoded_bytes());
    let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    format!("cnitool-{hex}")
}

/// `CNI_ARGS` as pairs: each `;`-separated piece must be one non-empty key and value.
fn parse_cni_args(raw: &str) -> Result<Vec<(String, String)>, Error> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    raw.split(';')
        .map(
            |pair| match pair.split('=').collect::<Vec<_>>().as_slice() {
                [k, v] if !k.is_empty() && !v.is_empty() => Ok((k.to_string(), v.to_string())),
                _ => Err(Error::new(
                    Code::InvalidEnv,
                    format!("invalid CNI_ARGS pair {pair:?}"),
                )),
            },
        )
        .collect()
}

fn parse_cap_args(raw: &str) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    if raw.is_empty() {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_str(raw) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::new(
            Code::InvalidEnv,
            "CAP_ARGS must be a JSON object",
        )),
        Err(e) => {
            Err(Error::new(Code::InvalidEnv, "CAP_ARGS is not valid JSON")
                .with_details(e.to_string()))
        }
    }
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_default()
}

/// What the command printed on success, or the error and the list's version when known.
fn run(cli: &Cli) -> Result<Option<String>, (Error, Option<String>)> {
    let plain = |e: Error| (e, None);
    let dir = match env("NETCONFPATH") {
        d if d.is_empty() => PathBuf::from("/etc/cni/net.d"),
        d => PathBuf::from(d),
    };
    let runtime = Runtime {
        cni_path: env("CNI_PATH"),
        cache_dir: match env("CNI_CACHE_DIR") {
            d if d.is_empty() => PathBuf::from(cache::DEFAULT_DIR),
            d => PathBuf::from(d),
        },
    };
    let ifname = cli
        .ifname
        .clone()
        .or_else(|| Some(env("CNI_IFNAME")).filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "eth0".into());
    let mut att = Attachment {
        ifname,
        args: parse_cni_args(&env("CNI_ARGS")).map_err(plain)?,
        capability_args: parse_cap_args(&env("CAP_ARGS")).map_err(plain)?,
        ..Attachment::default()
    };
    if !cli.netns.is_empty() {
        let abs = absolute(&cli.netns).map_err(|e| {
            plain(Error::new(
                Code::IoFailure,
                format!("cannot resolve {:?}: {e}", cli.netns),
            ))
        })?;
        att.container_id = container_id(&abs);
        att.netns = abs.to_string_lossy().into_owned();
    }
    let list = match load::network(&dir, &cli.network) {
        Ok(list) => list,
        // The attachment's own config, kept by its ADD, still serves its DEL, with the ADD's
        // arguments and capabilities (libcni's cached config).
        Err(e) if cli.command == "del" => {
            let (list, entry) = cached_list(&runtime, &cli.network, &att).ok_or((e, None))?;
            if !entry.cni_args.is_empty() {
                att.args = entry.cni_args;
            }
            att.capability_args = entry.capability_args;
            list
        }
        Err(e) => return Err(plain(e)),
    };
    let version = Some(list.cni_version.clone());
    let failed = |e: anyhow::Error| (Error::from_anyhow(&e), version.clone());
    match cli.command.as_str() {
        "add" => {
            let result = runtime.add(&list, &att).map_err(failed)?;
            let text = result
                .to_json(list.result_version())
                .map_err(|e| (e, version.clone()))?;
            Ok(Some(text))
        }
        "check" => runtime.check(&list, &att).map(|_| None).map_err(failed),
        "del" => runtime.del(&list, &att).map(|_| None).map_err(failed),
        "gc" => runtime.gc(&list).map(|_| None).map_err(failed),
        _ => runtime.status(&list).map(|_| None).map_err(failed),
    }
}

/// The conflist an attachment's ADD cached, for a DEL after the file is gone.
fn cached_list(
    runtime: &Runtime,
    network: &str,
    att: &Attachment,
) -> Option<(ConfList, cache::Entry)> {
    let entry = cache::read(&runtime.cache_dir, network, &att.container_id, &att.ifname).ok()??;
    let list = ConfList::parse(&entry.config)
        .ok()
        .filter(|l| !l.plugins.is_empty())?;
    Some((list, entry))
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    let args: Vec<String> = argv
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let cli = match parse(&args) {
        Ok(Some(cli)) => cli,
        Ok(None) => {
            println!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("cnitool: {msg}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    match run(&cli) {
        Ok(Some(out)) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err((e, version)) => {
            println!("{}", e.to_json(version.as_deref()));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn command_line_as_upstreams() {
        let cli = parse(&s(&["add", "net", "/run/netns/a", "-i", "net1"]))
            .unwrap()
            .unwrap();
        assert_eq!(cli.ifname.as_deref(), Some("net1"));
        assert_eq!(
            (cli.network.as_str(), cli.netns.as_str()),
            ("net", "/run/netns/a")
        );
        assert!(parse(&s(&["--ifname=x", "status", "net"]))
            .unwrap()
            .is_some());
        assert!(parse(&s(&["add", "net"])).is_err());
        assert!(parse(&s(&["frob", "net", "ns"])).is_err());
        assert!(parse(&s(&["add", "net", "ns", "-x"])).is_err());
        assert!(parse(&s(&["--help"])).unwrap().is_none());
    }

    #[test]
    fn container_id_and_args_as_upstreams() {
        // sha512("/run/netns/testing"), first 10 bytes.
        assert_eq!(
            container_id(Path::new("/run/netns/testing")),
            "cnitool-43057b9dcc39fe733071"
        );
        assert_eq!(
            absolute("/run/netns/../netns/./x").unwrap(),
            PathBuf::from("/run/netns/x")
        );
        assert_eq!(
            parse_cni_args("IgnoreUnknown=1;K8S_POD_NAME=p").unwrap(),
            vec![
                ("IgnoreUnknown".into(), "1".into()),
                ("K8S_POD_NAME".into(), "p".into())
            ]
        );
        for bad in ["a", "a=b=c", "a=b;", "=b", "a="] {
            assert_eq!(
                parse_cni_args(bad).unwrap_err().code,
                Code::InvalidEnv,
                "{bad}"
            );
        }
        assert!(parse_cap_args("[1]").is_err());
        assert!(parse_cap_args(r#"{"portMappings":[]}"#)
            .unwrap()
            .contains_key("portMappings"));
    }
}
