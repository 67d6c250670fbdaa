//! The boundary between a plugin and the protocol: [`Plugin`] is what an applet implements,
//! [`execute`] applies the spec's gates around it, [`run`] is a process's `main`.

use super::conf::NetConf;
use super::env::{CmdArgs, Command};
use super::error::{Code, Error};
use super::result::CniResult;
use super::version;
use crate::sys::netns::NetNs;
use std::io::{Read, Write};
use std::process::ExitCode;

/// A CNI plugin. Methods return `anyhow` errors; a typed [`Error`] anywhere in the chain keeps
/// its spec code, anything else becomes code 999.
pub trait Plugin {
    /// Printed to stderr when `CNI_COMMAND` is empty, like the reference plugins' "about".
    const ABOUT: &'static str;

    /// The top-level config keys the plugin reads beside [`super::conf::SHARED_KEYS`]; only
    /// these are kept in [`NetConf::raw`].
    const KEYS: &'static [&'static str] = &[];

    fn add(args: &CmdArgs, conf: &NetConf) -> anyhow::Result<CniResult>;
    fn del(args: &CmdArgs, conf: &NetConf) -> anyhow::Result<()>;
    fn check(args: &CmdArgs, conf: &NetConf) -> anyhow::Result<()>;

    /// STATUS: the plugin can serve ADDs. Default: always ready.
    fn status(_args: &CmdArgs, _conf: &NetConf) -> anyhow::Result<()> {
        Ok(())
    }

    /// GC: release what belongs to attachments not in `cni.dev/valid-attachments`. Default: the
    /// plugin holds no such state.
    fn gc(_args: &CmdArgs, _conf: &NetConf) -> anyhow::Result<()> {
        Ok(())
    }
}

/// A failed invocation: the error and, when the config was readable, its version.
#[derive(Debug)]
pub struct Failure {
    pub error: Error,
    pub cni_version: Option<String>,
}

impl Failure {
    fn bare(error: Error) -> Failure {
        Failure {
            error,
            cni_version: None,
        }
    }
}

/// Runs one invocation and returns what goes on stdout on success (`None` = nothing).
pub fn execute<P: Plugin>(args: &CmdArgs) -> Result<Option<String>, Failure> {
    if args.command == Command::Version {
        return Ok(Some(version::version_reply()));
    }
    let conf = NetConf::parse_for(&args.stdin, P::KEYS).map_err(Failure::bare)?;
    let fail = |error: Error| Failure {
        error,
        cni_version: Some(conf.cni_version.clone()),
    };
    let from_anyhow = |e: anyhow::Error| fail(Error::from_anyhow(&e));
    match args.command {
        Command::Add | Command::Del => version::require_supported(&conf.cni_version),
        Command::Check => version::require_at_least(&conf.cni_version, "0.4.0", "CHECK"),
        Command::Status => version::require_at_least(&conf.cni_version, "1.1.0", "STATUS"),
        Command::Gc => version::require_at_least(&conf.cni_version, "1.1.0", "GC"),
        Command::Version => Ok(()),
    }
    .map_err(fail)?;
    args.validate().map_err(fail)?;
    if matches!(args.command, Command::Add | Command::Del | Command::Check) {
        check_not_own_netns(args).map_err(fail)?;
    }
    match args.command {
        Command::Add => {
            let res = P::add(args, &conf).map_err(from_anyhow)?;
            res.to_json(conf.result_version()).map(Some).map_err(fail)
        }
        Command::Del => P::del(args, &conf).map(|_| None).map_err(from_anyhow),
        Command::Check => P::check(args, &conf).map(|_| None).map_err(from_anyhow),
        Command::Status => P::status(args, &conf).map(|_| None).map_err(from_anyhow),
        Command::Gc => P::gc(args, &conf).map(|_| None).map_err(from_anyhow),
        Command::Version => Ok(None),
    }
}

/// Refuses to act when `CNI_NETNS` is the plugin's own namespace: an ADD or DEL there would
/// rewire the host. A path that cannot be opened is left for the plugin to report.
fn check_not_own_netns(args: &CmdArgs) -> Result<(), Error> {
    if args.netns.is_empty() || args.netns_override {
        return Ok(());
    }
    let Ok(ns) = NetNs::open(&args.netns) else {
        return Ok(());
    };
    match ns.is_current() {
        Ok(true) => Err(Error::new(
            Code::InvalidNetns,
            format!(
                "netns {:?} is the plugin's own network namespace",
                args.netns
            ),
        )
        .with_details("refusing to configure the namespace the plugin runs in")),
        _ => Ok(()),
    }
}

/// [`execute`] shaped for in-process delegation (no process state touched).
pub fn in_process<P: Plugin>(args: &CmdArgs) -> Result<Option<String>, Error> {
    execute::<P>(args).map_err(|f| f.error)
}

/// A plugin process's `main`: environment and stdin in, result or error JSON on stdout.
pub fn run<P: Plugin>() -> ExitCode {
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    let command = env.get("CNI_COMMAND").cloned().unwrap_or_default();
    let mut stdin = Vec::new();
    // VERSION ignores stdin (Go never reads it); skipping the read keeps a VERSION typed at a
    // terminal from hanging.
    if !command.is_empty() && command != "VERSION" {
        if let Err(e) = std::io::stdin().read_to_end(&mut stdin) {
            let err =
                Error::new(Code::IoFailure, "error reading from stdin").with_details(e.to_string());
            return emit(Err(Failure::bare(err)));
        }
    }
    match CmdArgs::from_env(&env, stdin) {
        Ok(None) => {
            eprintln!(
                "{}\nCNI protocol versions supported: {}",
                P::ABOUT,
                version::SUPPORTED.join(", ")
            );
            ExitCode::SUCCESS
        }
        Ok(Some(args)) => emit(execute::<P>(&args)),
        Err(e) => emit(Err(Failure::bare(e))),
    }
}

fn emit(outcome: Result<Option<String>, Failure>) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match outcome {
        Ok(text) => {
            if let Some(text) = text {
                if out
                    .write_all(text.as_bytes())
                    .and_then(|_| out.flush())
                    .is_err()
                {
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(f) => {
            log::debug!("failing with {:?}", f.error);
            let _ = out.write_all(f.error.to_json(f.cni_version.as_deref()).as_bytes());
            let _ = out.flush();
            ExitCode::FAILURE
        }
    }
}
