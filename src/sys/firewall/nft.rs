//! The `nft` program: scripts and JSON documents fed on stdin (`nft -f -`), each one atomic
//! transaction, and JSON listings.

use super::exec::{find_program, run, CommandError};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The `nft` program, probed once.
#[derive(Debug, Clone)]
pub struct Nft {
    program: PathBuf,
    object_comments: bool,
}

impl Nft {
    /// Finds `nft` and checks, as the reference's knftables does, that it is v1.0.1 or later and
    /// that a table can be added here (`nft --check`, which changes nothing). Kernels before
    /// 5.10 take comments only on rules; [`Nft::object_comments`] says which this is.
    pub fn new() -> Result<Nft> {
        let program = find_program("nft")
            .ok_or_else(|| anyhow!("could not find nftables binary: nft not found in PATH"))?;
        let version =
            run(&program, &["--version"], None).context("could not run nftables command")?;
        if version.starts_with("nftables v0.") || version.starts_with("nftables v1.0.0 ") {
            bail!(
                "nft version must be v1.0.1 or later (got {})",
                version.trim()
            );
        }
        let probe = |comment: &str| {
            let script = format!("add table ip supports_nftables_test{comment}\n");
            run(&program, &["--check", "-f", "-"], Some(script.as_bytes()))
        };
        let object_comments = match probe(r#" { comment "test" ; }"#) {
            Ok(_) => true,
            Err(_) => {
                probe("").context("could not run nftables command")?;
                false
            }
        };
        Ok(Nft {
            program,
            object_comments,
        })
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Whether tables and chains may carry comments.
    pub fn object_comments(&self) -> bool {
        self.object_comments
    }

    /// Applies an nft script (`nft -f -`) as one transaction.
    pub fn run_script(&self, script: &str) -> Result<()> {
        run(&self.program, &["-f", "-"], Some(script.as_bytes()))
            .with_context(|| format!("nft transaction failed:\n{script}"))?;
        Ok(())
    }

    /// Applies a JSON command list (`{"nftables": [...]}`, `nft -j -f -`) as one transaction.
    /// JSON carries names and strings as data, so nothing in them can change the command.
    pub fn run_json(&self, commands: &[Value]) -> Result<()> {
        let doc = serde_json::json!({ "nftables": commands }).to_string();
        run(&self.program, &["-j", "-f", "-"], Some(doc.as_bytes()))
            .with_context(|| format!("nft transaction failed: {doc}"))?;
        Ok(())
    }

    /// `nft -j list WHAT...`, returning the objects after the metainfo entry; `None` when the
    /// table or chain does not exist.
    pub fn list(&self, what: &[&str]) -> Result<Option<Vec<Value>>> {
        let out = match run(&self.program, &[&["-j", "list"], what].concat(), None) {
            Ok(out) => out,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e).context("failed to list nftables objects"),
        };
        let mut doc: Value = serde_json::from_str(&out)
            .with_context(|| format!("could not parse nft output {out:?}"))?;
        match doc.get_mut("nftables").map(Value::take) {
            Some(Value::Array(mut items)) => {
                if items
                    .first()
                    .and_then(|m| m.get("metainfo"))
                    .and_then(|m| m.get("json_schema_version"))
                    .and_then(Value::as_u64)
                    != Some(1)
                {
                    bail!("could not find supported json_schema_version in nft output {out:?}");
                }
                items.remove(0);
                Ok(Some(items))
            }
            _ => bail!("could not find result in nft output {out:?}"),
        }
    }

    /// `nft list WHAT...` as text (no handles, no counters' state unless the rules keep
    /// some); `None` when the object does not exist.
    pub fn show(&self, what: &[&str]) -> Result<Option<String>> {
        match run(&self.program, &[&["list"], what].concat(), None) {
            Ok(out) => Ok(Some(out)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e).context("failed to list nftables objects"),
        }
    }

    /// Whether `script` would be accepted (`nft --check -f -`, which changes nothing).
    pub fn check_script(&self, script: &str) -> bool {
        run(
            &self.program,
            &["--check", "-f", "-"],
            Some(script.as_bytes()),
        )
        .is_ok()
    }

    /// The rules (the inner `rule` objects) of `family table chain`; empty if it is missing.
    pub fn list_rules(&self, family: &str, table: &str, chain: &str) -> Result<Vec<Value>> {
        Ok(self
            .list(&["chain", family, table, chain])?
            .unwrap_or_default()
            .into_iter()
            .filter_map(|mut o| o.get_mut("rule").map(Value::take))
            .collect())
    }
}

fn is_not_found(e: &CommandError) -> bool {
    e.stderr.contains("No such file or directory")
}

/// Whether nftables can be used here (as the reference's `SupportsNFTables`).
pub fn usable() -> bool {
    Nft::new().is_ok()
}

/// Puts `s` in double quotes for an nft script. nft strings have no escapes, so a `"` cannot be
/// carried at all (callers strip it, as the reference does) and line breaks would split the
/// command; both are refused rather than let through.
pub fn quote(s: &str) -> Result<String> {
    if let Some(c) = s.chars().find(|c| *c == '"' || c.is_control()) {
        bail!("{c:?} cannot be written in an nft string: {s:?}");
    }
    Ok(format!("\"{s}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_refuses_what_nft_cannot_carry() {
        assert_eq!(quote("a b, c: d").unwrap(), "\"a b, c: d\"");
        assert!(quote("a\"b").is_err());
        assert!(quote("a\nadd table ip x").is_err());
    }
}
