//! CNI spec versions: the supported list, numeric comparison and the per-command gates.

use super::error::{Code, Error};

/// Every spec version weft speaks, oldest first (Go's `version.All`).
pub const SUPPORTED: [&str; 7] = [
    "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
];

/// The version weft reports from VERSION and uses for its internal result model.
pub const CURRENT: &str = "1.1.0";

/// The three result shapes the spec has had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    /// 0.1.0 and 0.2.0: `ip4`/`ip6` objects.
    V02,
    /// 0.3.0, 0.3.1 and 0.4.0: `interfaces`/`ips` with `version`.
    V04,
    /// 1.0.0 and 1.1.0: `ips` without `version`.
    V1,
}

/// A parsed `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Semver(pub u32, pub u32, pub u32);

impl Semver {
    /// Parses a dotted version; an empty string means 0.1.0, as Go's `DecodeVersion` does.
    pub fn parse(v: &str) -> Result<Semver, Error> {
        if v.is_empty() {
            return Ok(Semver(0, 1, 0));
        }
        let bad = || {
            Error::new(Code::DecodingFailure, format!("invalid version {v:?}"))
                .with_details("the version must have the form MAJOR.MINOR.PATCH")
        };
        let mut parts = v.split('.');
        let mut next = || -> Result<u32, Error> {
            let p = parts.next().ok_or_else(bad)?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse().map_err(|_| bad())
        };
        let sv = Semver(next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(sv)
    }
}

/// True if `v` is one of the exact version strings in [`SUPPORTED`].
pub fn is_supported(v: &str) -> bool {
    SUPPORTED.contains(&v)
}

/// The result shape a supported version uses; `None` for versions weft does not know.
pub fn family(v: &str) -> Option<Family> {
    match v {
        "" | "0.1.0" | "0.2.0" => Some(Family::V02),
        "0.3.0" | "0.3.1" | "0.4.0" => Some(Family::V04),
        "1.0.0" | "1.1.0" => Some(Family::V1),
        _ => None,
    }
}

/// `a >= b` numerically; an unparsable `a` compares as an error.
pub fn at_least(a: &str, b: &str) -> Result<bool, Error> {
    Ok(Semver::parse(a)? >= Semver::parse(b)?)
}

/// The config version an ADD or DEL may run with: an exact member of the supported list.
pub fn require_supported(v: &str) -> Result<(), Error> {
    let v = if v.is_empty() { "0.1.0" } else { v };
    if is_supported(v) {
        return Ok(());
    }
    let list: Vec<String> = SUPPORTED.iter().map(|s| format!("{s:?}")).collect();
    Err(
        Error::new(Code::IncompatibleVersion, "incompatible CNI versions").with_details(format!(
            "config is {v:?}, plugin supports [{}]",
            list.join(" ")
        )),
    )
}

/// CHECK needs 0.4.0, STATUS and GC need 1.1.0: the gate Go's skel applies before the plugin runs.
pub fn require_at_least(v: &str, min: &str, verb: &str) -> Result<(), Error> {
    require_supported(v)?;
    if at_least(v, min)? {
        Ok(())
    } else {
        Err(Error::new(
            Code::IncompatibleVersion,
            format!("config version does not allow {verb}"),
        ))
    }
}

/// The VERSION reply, compact with a trailing newline as the Go library prints it.
pub fn version_reply() -> String {
    let v = serde_json::json!({"cniVersion": CURRENT, "supportedVersions": SUPPORTED});
    format!("{v}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders() {
        assert_eq!(Semver::parse("").unwrap(), Semver(0, 1, 0));
        assert!(Semver::parse("1.1.0").unwrap() > Semver::parse("0.4.0").unwrap());
        assert!(Semver::parse("0.10.0").unwrap() > Semver::parse("0.4.0").unwrap());
        for bad in ["1", "1.0", "1.0.0.0", "a.b.c", "1..0", "-1.0.0", "1.0.x"] {
            assert_eq!(
                Semver::parse(bad).unwrap_err().code,
                Code::DecodingFailure,
                "{bad}"
            );
        }
    }

    #[test]
    fn gates() {
        assert!(require_supported("").is_ok());
        let e = require_supported("9.9.9").unwrap_err();
        assert_eq!(e.code, Code::IncompatibleVersion);
        assert!(e.details.contains("\"9.9.9\""));
        assert!(require_at_least("0.4.0", "0.4.0", "CHECK").is_ok());
        let e = require_at_least("0.3.1", "0.4.0", "CHECK").unwrap_err();
        assert_eq!(e.msg, "config version does not allow CHECK");
        assert!(require_at_least("1.0.0", "1.1.0", "GC").is_err());
        assert!(require_at_least("1.1.0", "1.1.0", "STATUS").is_ok());
    }

    #[test]
    fn version_reply_is_compact_with_newline() {
        let r = version_reply();
        assert!(r.ends_with("}\n"));
        let v: serde_json::Value = serde_json::from_str(&r).unwrap();
        assert_eq!(v["cniVersion"], "1.1.0");
        assert_eq!(v["supportedVersions"].as_array().unwrap().len(), 7);
    }
}
