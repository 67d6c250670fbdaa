//! `mk-docker-opts`: flannel's mk-docker-opts.sh as an applet. Same flags (parsed with getopts
//! rules: `-ic`, `-fFILE`, `--`), same output bytes, same exit codes (usage 1, invalid
//! FLANNEL_IPMASQ 1, route clash 1); see weft::flanneld::docker_opts for what it writes and why.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;
use weft::flanneld::docker_opts::{self, Render};
use weft::sys::netlink::{Handle, MAIN_TABLE};

#[derive(Debug)]
struct Options {
    flannel_env: PathBuf,
    docker_env: PathBuf,
    render: Render,
}

const USAGE: &str = "\
usage: mk-docker-opts [-f FLANNEL-ENV-FILE] [-d DOCKER-ENV-FILE] [-i] [-c] [-m] [-k COMBINED-KEY]

Writes docker daemon options made from flanneld's subnet.env.
  -f FILE  flannel env file to read (default /run/flannel/subnet.env)
  -d FILE  docker env file to write (default /run/docker_opts.env)
  -i       one variable per option: DOCKER_OPT_BIP, DOCKER_OPT_IPMASQ, DOCKER_OPT_MTU
  -c       every option in one variable, named by -k
           (neither -i nor -c: both)
  -m       leave out --ip-masq (for docker versions without it)
  -k KEY   name of the combined variable (default DOCKER_OPTS)
  -h       this help";

/// getopts("f:d:icmk:?h") over `args` (without argv[0]). Err carries getopts' complaint, or
/// nothing for -h/-?; either way the caller prints the usage and exits 1, as the script does.
fn parse(args: &[OsString]) -> Result<Options, Option<String>> {
    let mut o = Options {
        flannel_env: PathBuf::from(docker_opts::DEFAULT_FLANNEL_ENV),
        docker_env: PathBuf::from(docker_opts::DEFAULT_DOCKER_ENV),
        render: Render {
            individual: false,
            combined: false,
            ..Render::default()
        },
    };
    let mut i = 0;
    while let Some(arg) = args.get(i).map(|a| a.as_bytes()) {
        i += 1;
        if arg == b"--" {
            break;
        }
        // Like getopts, the first operand ends the options; operands are ignored.
        if arg.len() < 2 || arg[0] != b'-' {
            break;
        }
        let mut j = 1;
        while j < arg.len() {
            let c = arg[j];
            j += 1;
            match c {
                b'f' | b'd' | b'k' => {
                    let value: OsString = if j < arg.len() {
                        OsStr::from_bytes(&arg[j..]).to_owned()
                    } else if let Some(next) = args.get(i) {
                        i += 1;
                        next.clone()
                    } else {
                        return Err(Some(format!(
                            "option requires an argument -- {}",
                            c as char
                        )));
                    };
                    j = arg.len();
                    match c {
                        b'f' => o.flannel_env = value.into(),
                        b'd' => o.docker_env = value.into(),
                        _ => o.render.combined_key = value.to_string_lossy().into_owned(),
                    }
                }
                b'i' => o.render.individual = true,
                b'c' => o.render.combined = true,
                b'm' => o.render.ip_masq = false,
                b'h' | b'?' => return Err(None),
                other => return Err(Some(format!("illegal option -- {}", other as char))),
            }
        }
    }
    if !o.render.individual && !o.render.combined {
        o.render.individual = true;
        o.render.combined = true;
    }
    Ok(o)
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let opts = match parse(args.get(1..).unwrap_or_default()) {
        Ok(o) => o,
        Err(complaint) => {
            if let Some(c) = complaint {
                eprintln!("mk-docker-opts: {c}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(1);
        }
    };
    match run(&opts) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(o: &Options) -> anyhow::Result<ExitCode> {
    let inherited = docker_opts::vars_from_env(std::env::vars_os());
    let vars = docker_opts::load_vars(&o.flannel_env, inherited)?;
    let content = docker_opts::render(&vars, &o.render)?;
    docker_opts::write_atomic(&o.docker_env, content.as_bytes())?;
    // The script checks after writing, and so exits 1 with the file in place: kept, since a unit's
    // ExecStartPost failing is what tells the operator.
    if let Some(line) = docker_opts::clash_subnet(&vars).and_then(|s| route_clash(&s)) {
        eprintln!("Your routing table already contains the subnet: {line}");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The script's `ip route show | grep SUBNET | grep via`: a main-table route to our own subnet
/// through a gateway means another host's route for this subnet is still here (a stale lease),
/// and docker's bridge would be unreachable. Returns the route as `ip route` shows it. A netlink
/// failure only warns: the check is a sanity check, and the script's also passes when `ip` fails.
fn route_clash(subnet: &str) -> Option<String> {
    let (handle, routes) = match Handle::open().and_then(|h| h.routes().map(|r| (h, r))) {
        Ok(both) => both,
        Err(e) => {
            log::warn!("cannot check the routing table for {subnet}: {e}");
            return None;
        }
    };
    let r = routes
        .iter()
        .find(|r| r.table == MAIN_TABLE && r.gw.is_some() && r.dst.to_string() == subnet)?;
    let mut line = format!("{} via {}", r.dst, r.gw?);
    if let Some(link) = r.oif.and_then(|i| handle.link_by_index(i).ok()) {
        line.push_str(&format!(" dev {}", link.name));
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Options, Option<String>> {
        let v: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse(&v)
    }

    #[test]
    fn getopts_rules() {
        let o = p(&[]).unwrap();
        assert!(o.render.individual && o.render.combined && o.render.ip_masq);
        assert_eq!(o.flannel_env, PathBuf::from("/run/flannel/subnet.env"));
        assert_eq!(o.docker_env, PathBuf::from("/run/docker_opts.env"));
        assert_eq!(o.render.combined_key, "DOCKER_OPTS");
        let o = p(&["-ic", "-fA", "-d", "B", "-mkKEY"]).unwrap();
        assert!(o.render.individual && o.render.combined && !o.render.ip_masq);
        assert_eq!(o.flannel_env, PathBuf::from("A"));
        assert_eq!(o.docker_env, PathBuf::from("B"));
        assert_eq!(o.render.combined_key, "KEY");
        let o = p(&["-c"]).unwrap();
        assert!(!o.render.individual && o.render.combined);
        // -- and the first operand end the options.
        let o = p(&["-i", "--", "-c"]).unwrap();
        assert!(o.render.individual && !o.render.combined);
        let o = p(&["-i", "operand", "-c"]).unwrap();
        assert!(!o.render.combined);
        // A later option wins.
        assert_eq!(p(&["-k", "A", "-k", "B"]).unwrap().render.combined_key, "B");
        // The value of -d may itself start with a dash.
        assert_eq!(p(&["-d", "-x"]).unwrap().docker_env, PathBuf::from("-x"));
    }

    #[test]
    fn usage_cases() {
        assert!(matches!(p(&["-h"]), Err(None)));
        assert!(matches!(p(&["-i", "-?"]), Err(None)));
        assert_eq!(p(&["-x"]).unwrap_err().unwrap(), "illegal option -- x");
        assert_eq!(
            p(&["-i", "-f"]).unwrap_err().unwrap(),
            "option requires an argument -- f"
        );
    }
}
