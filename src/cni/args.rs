//! `CNI_ARGS` (`K=V;K2=V2`) parsed the way Go's `types.LoadArgs` does: keys are case-sensitive,
//! unknown keys are an error unless `IgnoreUnknown` is true.

use anyhow::{bail, Result};

/// The pairs of a `CNI_ARGS` string, validated against the keys a plugin knows.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CniArgs {
    pairs: Vec<(String, String)>,
}

impl CniArgs {
    /// Parses `raw`, accepting only `known` keys (plus `IgnoreUnknown`) unless unknown keys are
    /// explicitly ignored.
    pub fn parse(raw: &str, known: &[&str]) -> Result<CniArgs> {
        let mut pairs = Vec::new();
        if raw.is_empty() {
            return Ok(CniArgs { pairs });
        }
        for item in raw.split(';') {
            let kv: Vec<&str> = item.split('=').collect();
            if kv.len() != 2 {
                bail!("ARGS: invalid pair {item:?}");
            }
            pairs.push((kv[0].to_string(), kv[1].to_string()));
        }
        let ignore_unknown = match pairs.iter().find(|(k, _)| k == "IgnoreUnknown") {
            None => false,
            Some((_, v)) => parse_go_bool(v)
                .ok_or_else(|| anyhow::anyhow!("ARGS: invalid value {v:?} for IgnoreUnknown"))?,
        };
        let unknown: Vec<String> = pairs
            .iter()
            .filter(|(k, _)| k != "IgnoreUnknown" && !known.contains(&k.as_str()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !unknown.is_empty() && !ignore_unknown {
            let quoted: Vec<String> = unknown.iter().map(|s| format!("{s:?}")).collect();
            bail!("ARGS: unknown args [{}]", quoted.join(" "));
        }
        Ok(CniArgs { pairs })
    }

    /// The last value given for `key` (case-sensitive).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Go's `strconv.ParseBool` subset that `UnmarshallableBool` accepts.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_and_ignores_unknown_when_asked() {
        let a = CniArgs::parse("IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.1.2.10", &["IP"]).unwrap();
        assert_eq!(a.get("IP"), Some("10.1.2.10"));
        assert_eq!(a.get("ip"), None);
        assert!(CniArgs::parse("", &[]).unwrap().get("IP").is_none());
        let a = CniArgs::parse("IgnoreUnknown=TRUE;foo=bar", &[]).unwrap();
        assert_eq!(a.get("foo"), Some("bar"));
    }

    #[test]
    fn rejects_bad_pairs_and_unknown_keys() {
        for bad in ["a=b=c", "IP=1;", "IP", ";"] {
            let e = CniArgs::parse(bad, &["IP"]).unwrap_err().to_string();
            assert!(e.starts_with("ARGS: invalid pair"), "{bad}: {e}");
        }
        let e = CniArgs::parse("ip=1.2.3.4", &["IP"])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "ARGS: unknown args [\"ip=1.2.3.4\"]");
        let e = CniArgs::parse("IgnoreUnknown=0;x=y", &["IP"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown args"));
        assert!(CniArgs::parse("IgnoreUnknown=maybe", &[]).is_err());
    }
}
