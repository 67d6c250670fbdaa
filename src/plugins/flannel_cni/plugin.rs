//! `flannel`: the CNI meta-plugin. ADD turns flanneld's subnet.env and this config into a
//! delegate config (bridge + host-local by default), saves it under `dataDir`, then runs the
//! delegate (in-process when it is weft); DEL replays the saved config. Behaves as the upstream
//! plugin; where upstream does nothing (CHECK, STATUS, GC) it does what the spec asks of a
//! meta-plugin: delegate.

use crate::cni::delegate;
use crate::cni::{CmdArgs, CniResult, Code, Command, Error, NetConf, Plugin};
use crate::plugins::flannel_cni::{
    delegate_conf, DelegateConf, FlannelConf, SavedConf, SavedConfigs, SubnetEnv,
};
use anyhow::{Context, Result};
use serde_json::Value;
use std::collections::HashSet;

pub struct Flannel;

/// flannel's config and subnet.env turned into the delegate config, as ADD builds it.
fn delegate_for(fc: &FlannelConf, unavailable: Option<Code>) -> Result<DelegateConf> {
    let env = SubnetEnv::load(&fc.subnet_file).map_err(|e| {
        let mut err = e.into_cni();
        if let Some(code) = unavailable {
            err.code = code;
        }
        err
    })?;
    Ok(delegate_conf::build(fc, &env)?)
}

impl Plugin for Flannel {
    const ABOUT: &'static str = concat!("CNI flannel plugin weft ", env!("CARGO_PKG_VERSION"));
    const KEYS: &'static [&'static str] = &crate::plugins::flannel_cni::conf::KEYS;

    fn add(args: &CmdArgs, conf: &NetConf) -> Result<CniResult> {
        let fc = FlannelConf::load(conf)?;
        let d = delegate_for(&fc, None)?;
        log::debug!("delegate config: {}", String::from_utf8_lossy(&d.bytes));
        let store = SavedConfigs::new(&fc.data_dir);
        // A repeated ADD (a runtime retrying) must not lose the config of the attachment that
        // already exists: a failure puts the previous file back instead of removing it.
        let previous = store.load(&args.container_id)?;
        let undo_save = || {
            let undone = match &previous {
                Some(bytes) => store.save(&args.container_id, bytes),
                None => store.remove(&args.container_id),
            };
            if let Err(e) = undone {
                log::warn!("rollback: {e:#}");
            }
        };
        // Saved before the delegate runs, so a DEL can clean up whatever a half-done ADD left.
        if let Err(e) = store.save(&args.container_id, &d.bytes) {
            undo_save();
            return Err(e);
        }
        // A delegate that fails its ADD cleans up after itself (weft's do); replaying DEL on a
        // config it just refused would fail the same way, so only the saved file is taken back.
        let out = match delegate::invoke(&d.plugin, Command::Add, &d.bytes, args) {
            Ok(out) => out,
            Err(e) => {
                undo_save();
                return Err(e.context("failed to delegate add"));
            }
        };
        let parsed = serde_json::from_slice::<Value>(&out)
            .map_err(|e| {
                Error::new(
                    Code::DecodingFailure,
                    format!("failed to decode {} result", d.plugin),
                )
                .with_details(e.to_string())
            })
            .and_then(|v| CniResult::parse(&v, conf.result_version()).map(|(r, _)| r))
            .and_then(|r| r.to_value(conf.result_version()).map(|_| r));
        match parsed {
            Ok(result) => Ok(result),
            Err(e) => {
                // The delegate's ADD succeeded but its result is unusable: the spec says take
                // the attachment back; keep the file if that fails so the runtime's DEL retries.
                match delegate::call(&d.plugin, Command::Del, &d.bytes, args) {
                    Ok(()) => undo_save(),
                    Err(del) => log::warn!("rollback: delegate DEL failed: {del:#}"),
                }
                Err(anyhow::Error::new(e).context("failed to delegate add"))
            }
        }
    }

    fn del(args: &CmdArgs, conf: &NetConf) -> Result<()> {
        // Only dataDir is read from the config: subnet.env and delegate may have changed or gone.
        let Some(data_dir) = FlannelConf::data_dir_for_del(conf) else {
            return Ok(());
        };
        let store = SavedConfigs::new(&data_dir);
        let Some(bytes) = store.load(&args.container_id)? else {
            return Ok(());
        };
        let saved = match SavedConf::parse(&bytes) {
            Ok(s) => s,
            Err(e) => {
                // Upstream: the attachment is left to a reboot rather than failing every DEL.
                log::warn!(
                    "{}: cannot parse the saved delegate config, skipping DEL: {e}",
                    store.path(&args.container_id).display()
                );
                return Ok(());
            }
        };
        delegate::call(&saved.plugin, Command::Del, &bytes, args)?;
        // Removed only after the delegate succeeded, so a failed DEL can be retried.
        if let Err(e) = store.remove(&args.container_id) {
            log::warn!("{e:#}");
        }
        Ok(())
    }

    fn check(args: &CmdArgs, conf: &NetConf) -> Result<()> {
        // Upstream's CHECK is an empty TODO; the spec wants it passed to the delegate, with the
        // config ADD used and the runtime's prevResult (in the runtime's version).
        let fc = FlannelConf::load(conf)?;
        let store = SavedConfigs::new(&fc.data_dir);
        let bytes = store.load(&args.container_id)?.ok_or_else(|| {
            Error::new(
                Code::UnknownContainer,
                format!(
                    "no saved delegate config for container {}",
                    args.container_id
                ),
            )
            .with_details(format!(
                "{} does not exist: flannel never added this container",
                store.path(&args.container_id).display()
            ))
        })?;
        let saved = SavedConf::parse(&bytes).map_err(|e| {
            Error::new(
                Code::DecodingFailure,
                "cannot parse the saved delegate config",
            )
            .with_details(e)
        })?;
        let mut extra = vec![("cniVersion", Value::from(conf.cni_version.clone()))];
        if let Some(prev) = &conf.prev_result {
            extra.push(("prevResult", prev.clone()));
        }
        delegate::call(&saved.plugin, Command::Check, &saved.with(&extra), args)
    }

    fn status(args: &CmdArgs, conf: &NetConf) -> Result<()> {
        // Ready when flanneld has written a usable subnet.env and the delegate is ready.
        let fc = FlannelConf::load(conf)?;
        let d = delegate_for(&fc, Some(Code::PluginNotAvailable))?;
        delegate::call(&d.plugin, Command::Status, &d.bytes, args)
    }

    fn gc(args: &CmdArgs, conf: &NetConf) -> Result<()> {
        let fc = FlannelConf::load(conf)?;
        let valid = conf.valid_attachments.as_ref().ok_or_else(|| {
            Error::invalid_config("GC requires cni.dev/valid-attachments in the config")
        })?;
        let keep: HashSet<&str> = valid.iter().map(|a| a.container_id.as_str()).collect();
        let removed = SavedConfigs::new(&fc.data_dir)
            .sweep(&fc.name, &keep)
            .context("failed to remove stale delegate configs")?;
        if !removed.is_empty() {
            log::info!("flannel GC: removed the saved configs of {removed:?}");
        }
        // The delegate (host-local through bridge) releases what it holds for the others.
        let d = delegate_for(&fc, None)?;
        let attachments = serde_json::to_value(valid).context("valid-attachments")?;
        let mut with_valid = d.conf.clone();
        with_valid.insert("cni.dev/valid-attachments".into(), attachments);
        let bytes = crate::plugins::flannel_cni::gojson::to_vec(&Value::Object(with_valid));
        delegate::call(&d.plugin, Command::Gc, &bytes, args)
    }
}
