//! A thin wrapper over the `iptables`/`ip6tables` programs, with the idempotent verbs the CNI
//! plugins and flanneld need. Mirrors the behaviour of coreos/go-iptables, which the reference
//! plugins use, so the same rules come out the same way.

use super::exec::{find_program, run, CommandError};
use anyhow::{anyhow, Context, Result};
use std::path::{Path, PathBuf};

/// What iptables prints when the chain or rule an operation names is not there. Several
/// wordings because iptables-legacy and iptables-nft differ, and -D with a missing jump target
/// fails in the target lookup rather than the rule lookup.
const NOT_EXIST: [&str; 4] = [
    "Bad rule (does a matching rule exist in that chain?)",
    "No chain/target/match by that name",
    "No such file or directory",
    "does not exist",
];

/// One of `iptables` or `ip6tables`.
#[derive(Debug, Clone)]
pub struct Iptables {
    program: PathBuf,
    v6: bool,
}

impl Iptables {
    /// Finds `iptables` (or `ip6tables` if `v6`) in PATH.
    pub fn new(v6: bool) -> Result<Iptables> {
        let name = if v6 { "ip6tables" } else { "iptables" };
        let program = find_program(name)
            .ok_or_else(|| anyhow!("failed to locate iptables: {name} not found in PATH"))?;
        Ok(Iptables { program, v6 })
    }

    /// Uses a given program, such as `iptables-legacy`, instead of the one in PATH.
    pub fn with_program(program: impl Into<PathBuf>, v6: bool) -> Iptables {
        Iptables {
            program: program.into(),
            v6,
        }
    }

    pub fn is_v6(&self) -> bool {
        self.v6
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    /// `iptables -t TABLE -S CHAIN 1`: asking for rule 1 keeps the output short on big chains and
    /// still fails (exit 1) when the chain is missing.
    pub fn chain_exists(&self, table: &str, chain: &str) -> Result<bool> {
        match self.exec(&["-t", table, "-S", chain, "1"]) {
            Ok(_) => Ok(true),
            Err(e) if e.code == Some(1) => Ok(false),
            Err(e) => Err(e).context(format!(
                "failed to check for chain {chain} in table {table}"
            )),
        }
    }

    /// Creates the chain unless it exists.
    pub fn ensure_chain(&self, table: &str, chain: &str) -> Result<()> {
        if self.chain_exists(table, chain)? {
            return Ok(());
        }
        match self.exec(&["-t", table, "-N", chain]) {
            Ok(_) => Ok(()),
            // Someone else created it between our check and -N.
            Err(e) if e.code == Some(1) && e.stderr.contains("already exists") => Ok(()),
            Err(e) => Err(e).context(format!("failed to create chain {chain} in table {table}")),
        }
    }

    /// `iptables -t TABLE -F CHAIN`
    pub fn flush_chain(&self, table: &str, chain: &str) -> Result<()> {
        self.exec(&["-t", table, "-F", chain])
            .with_context(|| format!("failed to flush chain {chain} in table {table}"))?;
        Ok(())
    }

    /// `iptables -t TABLE -A CHAIN RULE`, whether or not an identical rule exists.
    pub fn append(&self, table: &str, chain: &str, rule: &[&str]) -> Result<()> {
        self.exec(&[&["-t", table, "-A", chain], rule].concat())
            .with_context(|| format!("failed to append rule to {table}/{chain}"))?;
        Ok(())
    }

    /// `iptables -C`: whether an identical rule is in the chain.
    pub fn exists(&self, table: &str, chain: &str, rule: &[&str]) -> Result<bool> {
        match self.exec(&[&["-t", table, "-C", chain], rule].concat()) {
            Ok(_) => Ok(true),
            Err(e) if e.code == Some(1) => Ok(false),
            Err(e) => Err(e).context(format!("failed to check rule in {table}/{chain}")),
        }
    }

    /// Appends the rule unless an identical one is already in the chain.
    pub fn append_unique(&self, table: &str, chain: &str, rule: &[&str]) -> Result<()> {
        if self.exists(table, chain, rule)? {
            return Ok(());
        }
        self.exec(&[&["-t", table, "-A", chain], rule].concat())
            .with_context(|| format!("failed to append rule to {table}/{chain}"))?;
        Ok(())
    }

    /// Inserts the rule at the top of the chain unless an identical one is anywhere in it.
    pub fn insert_unique(&self, table: &str, chain: &str, rule: &[&str]) -> Result<()> {
        if self.exists(table, chain, rule)? {
            return Ok(());
        }
        self.exec(&[&["-t", table, "-I", chain, "1"], rule].concat())
            .with_context(|| format!("failed to insert rule into {table}/{chain}"))?;
        Ok(())
    }

    /// Deletes the rule; a rule or chain that is not there is success.
    pub fn delete_rule(&self, table: &str, chain: &str, rule: &[&str]) -> Result<()> {
        match self.exec(&[&["-t", table, "-D", chain], rule].concat()) {
            Ok(_) => Ok(()),
            Err(e) if is_not_exist(&e) => Ok(()),
            Err(e) => Err(e).context(format!("failed to delete rule from {table}/{chain}")),
        }
    }

    /// Flushes and deletes the chain; a missing chain is success. Rules elsewhere that jump to
    /// it must be deleted first or the kernel refuses (EBUSY).
    pub fn clear_and_delete_chain(&self, table: &str, chain: &str) -> Result<()> {
        for op in ["-F", "-X"] {
            match self.exec(&["-t", table, op, chain]) {
                Ok(_) => {}
                Err(e) if is_not_exist(&e) => return Ok(()),
                Err(e) => {
                    return Err(e)
                        .context(format!("failed to delete chain {chain} in table {table}"))
                }
            }
        }
        Ok(())
    }

    /// `iptables -t TABLE -S CHAIN`: the chain's `-N`/`-P` line followed by its rules.
    pub fn list_rules(&self, table: &str, chain: &str) -> Result<Vec<String>> {
        let out = self
            .exec(&["-t", table, "-S", chain])
            .with_context(|| format!("failed to list rules of {table}/{chain}"))?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// `iptables-save -t TABLE`: the whole table as `iptables-restore` reads it.
    pub fn save(&self, table: &str) -> Result<String> {
        let prog = self.companion("save");
        run(&prog, &["-t", table], None).with_context(|| format!("failed to read table {table}"))
    }

    /// `iptables-restore --noflush` of `input`: every line applied in one transaction, or none.
    pub fn restore(&self, input: &str) -> Result<()> {
        let prog = self.companion("restore");
        run(&prog, &["--wait", "--noflush"], Some(input.as_bytes()))
            .with_context(|| format!("failed to apply rules:\n{input}"))?;
        Ok(())
    }

    /// `iptables-save` beside `iptables` (or `iptables-legacy-save` beside `iptables-legacy`).
    fn companion(&self, verb: &str) -> PathBuf {
        let mut name = self.program.file_name().unwrap_or_default().to_os_string();
        name.push(format!("-{verb}"));
        self.program.with_file_name(name)
    }

    /// Every call waits for the xtables lock rather than failing at once: the runtime may run
    /// many plugins at the same time (iptables-nft accepts and ignores the flag).
    fn exec(&self, args: &[&str]) -> Result<String, CommandError> {
        run(&self.program, &[&["--wait"], args].concat(), None)
    }
}

fn is_not_exist(e: &CommandError) -> bool {
    NOT_EXIST.iter().any(|m| e.stderr.contains(m))
}

/// Whether iptables can be used here (as the reference's `SupportsIPTables`): the program is
/// found and can look at the filter table.
pub fn usable() -> bool {
    Iptables::new(false).is_ok_and(|ipt| ipt.chain_exists("filter", "INPUT").is_ok())
}
