//! Running a network configuration list against one attachment, as libcni's `api.go` does:
//! ADD through the plugins in order, each given the previous one's result; CHECK and DEL with
//! the cached final result as `prevResult` (DEL in reverse order); STATUS and GC to every
//! plugin. Beyond libcni, as runtimes do around it: each plugin's VERSION is asked before an
//! ADD or CHECK, and a failed ADD is undone with a DEL.

use super::cache::{self, Entry};
use super::conflist::ConfList;
use crate::cni::conf::validate_network_name;
use crate::cni::delegate;
use crate::cni::env::{validate_container_id, validate_ifname, CmdArgs, Command};
use crate::cni::error::{Code, Error};
use crate::cni::result::CniResult;
use crate::cni::version::{self, Semver};
use anyhow::{Context, Result};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// Where plugins and cached results are found.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// `CNI_PATH`: `:`-separated plugin directories.
    pub cni_path: String,
    pub cache_dir: PathBuf,
}

/// One attachment of a container to a network (libcni's `RuntimeConf`).
#[derive(Debug, Clone, Default)]
pub struct Attachment {
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    /// `CNI_ARGS`, as pairs.
    pub args: Vec<(String, String)>,
    /// Capability arguments, given to the plugins that enable each capability.
    pub capability_args: Map<String, Value>,
}

/// A plugin's failure as libcni words it (`plugin type="bridge" failed (add): …`), keeping the
/// plugin's own error code.
fn plugin_failed(list: &ConfList, idx: usize, op: &str, err: &anyhow::Error) -> anyhow::Error {
    let inner = Error::from_anyhow(err);
    Error {
        code: inner.code,
        msg: format!("plugin {} failed ({op}): {}", list.describe(idx), inner.msg),
        details: inner.details,
    }
    .into()
}

fn at_least(v: &str, min: &str) -> Result<bool> {
    Ok(Semver::parse(v)? >= Semver::parse(min)?)
}

impl Runtime {
    fn cmd_args(&self, att: &Attachment) -> CmdArgs {
        let args = att
            .args
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";");
        CmdArgs {
            command: Command::Add,
            container_id: att.container_id.clone(),
            netns: att.netns.clone(),
            ifname: att.ifname.clone(),
            args,
            path: self.cni_path.clone(),
            netns_override: false,
            depth: 0,
            stdin: Vec::new(),
        }
    }

    fn find(&self, list: &ConfList, idx: usize) -> Result<PathBuf> {
        delegate::find(list.plugin_type(idx), &self.cni_path)
    }

    /// Runs plugin `idx` of `list` for `verb`; its stdout on success.
    fn call(
        &self,
        list: &ConfList,
        idx: usize,
        verb: Command,
        stdin: &[u8],
        args: &CmdArgs,
    ) -> Result<Vec<u8>> {
        let path = self.find(list, idx)?;
        delegate::invoke_at(list.plugin_type(idx), &path, verb, stdin, args)
    }

    /// The versions the plugin at `path` supports, from its VERSION reply, read as libcni reads
    /// it (a plugin that predates VERSION supports 0.1.0; a 0.2.0 reply without a list, 0.1.0
    /// and 0.2.0).
    pub fn plugin_versions(&self, plugin: &str, path: &Path) -> Result<Vec<String>> {
        let args = CmdArgs {
            command: Command::Version,
            container_id: String::new(),
            netns: "dummy".into(),
            ifname: "dummy".into(),
            args: String::new(),
            path: "dummy".into(),
            netns_override: false,
            depth: 0,
            stdin: Vec::new(),
        };
        let stdin = json!({ "cniVersion": version::CURRENT }).to_string();
        let out = match delegate::invoke_at(plugin, path, Command::Version, stdin.as_bytes(), &args)
        {
            Ok(out) => out,
            Err(e) if Error::from_anyhow(&e).msg == "unknown CNI_COMMAND: VERSION" => {
                return Ok(vec!["0.1.0".into()])
            }
            Err(e) => return Err(e),
        };
        let reply: Value = serde_json::from_slice(&out).context("decoding version info")?;
        let reported = reply
            .get("cniVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if reported.is_empty() {
            anyhow::bail!("decoding version info: missing field cniVersion");
        }
        match reply.get("supportedVersions").and_then(Value::as_array) {
            Some(list) if !list.is_empty() => Ok(list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()),
            _ if reported == "0.2.0" => Ok(vec!["0.1.0".into(), "0.2.0".into()]),
            _ => anyhow::bail!("decoding version info: missing field supportedVersions"),
        }
    }

    /// Every plugin of `list` is found and supports the list's version (libcni's
    /// `ValidateNetworkList`), before `op` runs. A plugin that is not there is reported as
    /// `op` itself would report it; every version mismatch at once otherwise.
    pub fn validate(&self, list: &ConfList, op: &str) -> Result<()> {
        let want = list.result_version();
        let mut problems = Vec::new();
        for idx in 0..list.plugins.len() {
            let plugin = list.plugin_type(idx);
            let path = self
                .find(list, idx)
                .map_err(|e| plugin_failed(list, idx, op, &e))?;
            match self.plugin_versions(plugin, &path) {
                Ok(v) if v.iter().any(|s| s == want) => {}
                Ok(_) => problems.push(format!(
                    "plugin {plugin} does not support config version {want:?}"
                )),
                Err(e) => problems.push(format!("{e:#}")),
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(Error::new(Code::IncompatibleVersion, problems.join("; ")).into())
    }

    /// ADD: the chain's result, cached for CHECK and DEL. When any plugin fails, the chain is
    /// deleted again (as a runtime does after a failed ADD) and the ADD's error returned.
    pub fn add(&self, list: &ConfList, att: &Attachment) -> Result<CniResult> {
        self.validate(list, "add")?;
        match self.add_chain(list, att) {
            Ok(result) => Ok(result),
            Err(e) => {
                if let Err(undo) = self.del_with(list, att, None) {
                    log::warn!("deleting the failed ADD's attachment: {undo:#}");
                }
                let _ = cache::remove(&self.cache_dir, &list.name, &att.container_id, &att.ifname);
                Err(e)
            }
        }
    }

    fn add_chain(&self, list: &ConfList, att: &Attachment) -> Result<CniResult> {
        let mut args = self.cmd_args(att);
        let mut prev: Option<(CniResult, String)> = None;
        for idx in 0..list.plugins.len() {
            let step = self.add_one(list, idx, att, prev.as_ref().map(|p| &p.0), &mut args);
            prev = Some(step.map_err(|e| plugin_failed(list, idx, "add", &e))?);
        }
        let (result, printed) = prev.context("the list has no plugins")?;
        let entry = Entry {
            container_id: att.container_id.clone(),
            network: list.name.clone(),
            ifname: att.ifname.clone(),
            config: list.bytes.clone(),
            netns: att.netns.clone(),
            cni_args: att.args.clone(),
            capability_args: att.capability_args.clone(),
            result: Some(result.to_value(&printed)?),
        };
        cache::write(&self.cache_dir, &entry)
            .with_context(|| format!("failed to set network {:?} cached result", list.name))?;
        Ok(result)
    }

    /// Plugin `idx`'s ADD: its result and the version it was printed in. libcni validates the
    /// attachment only once the plugin is found, and so reports a missing plugin first.
    fn add_one(
        &self,
        list: &ConfList,
        idx: usize,
        att: &Attachment,
        prev: Option<&CniResult>,
        args: &mut CmdArgs,
    ) -> Result<(CniResult, String)> {
        let path = self.find(list, idx)?;
        validate_container_id(&att.container_id)?;
        validate_network_name(&list.name)?;
        validate_ifname(&att.ifname)?;
        let stdin = list.plugin_stdin(idx, prev, &att.capability_args)?;
        args.stdin.clone_from(&stdin);
        let out = delegate::invoke_at(list.plugin_type(idx), &path, Command::Add, &stdin, args)?;
        let value: Value = serde_json::from_slice(&out).map_err(|e| {
            Error::new(
                Code::DecodingFailure,
                "failed to decode the plugin's result",
            )
            .with_details(e.to_string())
        })?;
        Ok(CniResult::parse(&value, list.result_version())?)
    }

    /// The cached result of `att` in `list`'s version, if there is one.
    fn cached_result(&self, list: &ConfList, att: &Attachment) -> Result<Option<CniResult>> {
        let Some(entry) = cache::read(&self.cache_dir, &list.name, &att.container_id, &att.ifname)?
        else {
            return Ok(None);
        };
        let Some(raw) = entry.result else {
            return Ok(None);
        };
        let ver = list.result_version();
        let (result, _) = CniResult::parse(&raw, ver).with_context(|| {
            format!("failed to convert cached result to config version {ver:?}")
        })?;
        Ok(Some(result))
    }

    /// CHECK: every plugin, with the cached result as `prevResult`. A list below 0.4.0 cannot
    /// be checked; a list that disables CHECK passes.
    pub fn check(&self, list: &ConfList, att: &Attachment) -> Result<()> {
        if !at_least(list.result_version(), "0.4.0")? {
            return Err(Error::new(
                Code::IncompatibleVersion,
                format!(
                    "configuration version {:?} does not support the CHECK command",
                    list.cni_version
                ),
            )
            .into());
        }
        if list.disable_check {
            return Ok(());
        }
        self.validate(list, "check")?;
        let cached = self
            .cached_result(list, att)
            .with_context(|| format!("failed to get network {:?} cached result", list.name))?;
        let mut args = self.cmd_args(att);
        for idx in 0..list.plugins.len() {
            let stdin = list.plugin_stdin(idx, cached.as_ref(), &att.capability_args)?;
            args.stdin.clone_from(&stdin);
            self.call(list, idx, Command::Check, &stdin, &args)
                .map_err(|e| plugin_failed(list, idx, "check", &e))?;
        }
        Ok(())
    }

    /// DEL: every plugin in reverse order, with the cached result as `prevResult` from 0.4.0
    /// on; then the cache record goes.
    pub fn del(&self, list: &ConfList, att: &Attachment) -> Result<()> {
        let cached = if at_least(list.result_version(), "0.4.0")? {
            // An unreadable record is dropped rather than left to block every later DEL.
            self.cached_result(list, att).unwrap_or_else(|e| {
                log::warn!("ignoring the cached result: {e:#}");
                None
            })
        } else {
            None
        };
        self.del_with(list, att, cached.as_ref())?;
        cache::remove(&self.cache_dir, &list.name, &att.container_id, &att.ifname)
    }

    fn del_with(&self, list: &ConfList, att: &Attachment, prev: Option<&CniResult>) -> Result<()> {
        let mut args = self.cmd_args(att);
        for idx in (0..list.plugins.len()).rev() {
            let stdin = list.plugin_stdin(idx, prev, &att.capability_args)?;
            args.stdin.clone_from(&stdin);
            self.call(list, idx, Command::Del, &stdin, &args)
                .map_err(|e| plugin_failed(list, idx, "delete", &e))?;
        }
        Ok(())
    }

    /// STATUS: every plugin from 1.1.0 on (an older list has no STATUS and is ready); the
    /// first failure is returned with its code (50 or 51) intact.
    pub fn status(&self, list: &ConfList) -> Result<()> {
        if !at_least(list.result_version(), "1.1.0")? {
            return Ok(());
        }
        let args = self.cmd_args(&Attachment::default());
        for idx in 0..list.plugins.len() {
            let stdin = list.plugin_with(idx, &[])?;
            self.call(list, idx, Command::Status, &stdin, &args)?;
        }
        Ok(())
    }

    /// GC: the cached attachments of `list` whose network namespace is gone are deleted; then,
    /// from 1.1.0 on, every plugin is told the remaining ones are the valid attachments and
    /// releases anything else it holds. Every failure is reported, none stops the rest.
    pub fn gc(&self, list: &ConfList) -> Result<()> {
        if list.disable_gc {
            return Ok(());
        }
        let mut errors = Vec::new();
        let mut valid = Vec::new();
        for entry in cache::list(&self.cache_dir, &list.name)? {
            if !entry.netns.is_empty() && Path::new(&entry.netns).exists() {
                valid.push(json!({"containerID": entry.container_id, "ifname": entry.ifname}));
                continue;
            }
            let att = Attachment {
                container_id: entry.container_id.clone(),
                netns: entry.netns.clone(),
                ifname: entry.ifname.clone(),
                args: entry.cni_args.clone(),
                capability_args: entry.capability_args.clone(),
            };
            if let Err(e) = self.del(list, &att) {
                errors.push(format!(
                    "failed to delete stale attachment {} {}: {e:#}",
                    att.container_id, att.ifname
                ));
            }
        }
        if at_least(list.result_version(), "1.1.0")? {
            let args = self.cmd_args(&Attachment::default());
            let valid = Value::Array(valid);
            for idx in 0..list.plugins.len() {
                let stdin = list.plugin_with(
                    idx,
                    &[
                        ("cni.dev/valid-attachments", valid.clone()),
                        ("cni.dev/attachments", valid.clone()),
                    ],
                )?;
                if let Err(e) = self.call(list, idx, Command::Gc, &stdin, &args) {
                    errors.push(format!(
                        "failed to GC plugin {}: {e:#}",
                        list.plugin_type(idx)
                    ));
                }
            }
        }
        if errors.is_empty() {
            return Ok(());
        }
        Err(Error::new(Code::Internal, errors.join("\n")).into())
    }
}
