//! The spec's error object and its codes. Library code raises a typed [`Error`] where a spec code
//! applies; anything else is an `anyhow::Error` that [`Error::from_anyhow`] turns into code 999
//! with the whole context chain in `details`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Error codes from the spec, plus Go's 8 (bad netns) and 999 (anything else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    IncompatibleVersion,
    UnsupportedField,
    UnknownContainer,
    InvalidEnv,
    IoFailure,
    DecodingFailure,
    InvalidConfig,
    InvalidNetns,
    TryAgainLater,
    PluginNotAvailable,
    PluginNotAvailableDegraded,
    Internal,
    /// Any other code, kept as received from a delegated plugin.
    Other(u32),
}

impl Code {
    pub fn number(self) -> u32 {
        match self {
            Code::IncompatibleVersion => 1,
            Code::UnsupportedField => 2,
            Code::UnknownContainer => 3,
            Code::InvalidEnv => 4,
            Code::IoFailure => 5,
            Code::DecodingFailure => 6,
            Code::InvalidConfig => 7,
            Code::InvalidNetns => 8,
            Code::TryAgainLater => 11,
            Code::PluginNotAvailable => 50,
            Code::PluginNotAvailableDegraded => 51,
            Code::Internal => 999,
            Code::Other(n) => n,
        }
    }

    pub fn from_number(n: u32) -> Code {
        match n {
            1 => Code::IncompatibleVersion,
            2 => Code::UnsupportedField,
            3 => Code::UnknownContainer,
            4 => Code::InvalidEnv,
            5 => Code::IoFailure,
            6 => Code::DecodingFailure,
            7 => Code::InvalidConfig,
            8 => Code::InvalidNetns,
            11 => Code::TryAgainLater,
            50 => Code::PluginNotAvailable,
            51 => Code::PluginNotAvailableDegraded,
            999 => Code::Internal,
            n => Code::Other(n),
        }
    }
}

/// A CNI error as the spec defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub msg: String,
    pub details: String,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(
        rename = "cniVersion",
        skip_serializing_if = "Option::is_none",
        default
    )]
    cni_version: Option<String>,
    code: u32,
    #[serde(default)]
    msg: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    details: String,
}

impl Error {
    pub fn new(code: Code, msg: impl Into<String>) -> Error {
        Error {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Error {
        self.details = details.into();
        self
    }

    /// Shorthand for the common "invalid network config" (code 7).
    pub fn invalid_config(msg: impl Into<String>) -> Error {
        Error::new(Code::InvalidConfig, msg)
    }

    /// Recovers a typed error anywhere in an anyhow chain; otherwise code 999. The outermost
    /// message becomes `msg` so the text matches what the Go plugins print, and the full chain
    /// goes to `details` when it says more.
    pub fn from_anyhow(err: &anyhow::Error) -> Error {
        for cause in err.chain() {
            if let Some(e) = cause.downcast_ref::<Error>() {
                let mut e = e.clone();
                let outer = err.to_string();
                if outer != e.msg && !std::ptr::eq(cause, err.as_ref()) {
                    let chain = format!("{err:#}");
                    e.details = if e.details.is_empty() {
                        chain
                    } else {
                        format!("{chain}: {}", e.details)
                    };
                }
                return e;
            }
        }
        let msg = format!("{err:#}");
        Error::new(Code::Internal, msg)
    }

    /// The spec's JSON form, pretty-printed like the Go library. `cniVersion` is included when the
    /// config's version is known (the spec wants it; Go omits it, and consumers ignore extra keys).
    pub fn to_json(&self, cni_version: Option<&str>) -> String {
        let w = Wire {
            cni_version: cni_version.filter(|v| !v.is_empty()).map(str::to_string),
            code: self.code.number(),
            msg: self.msg.clone(),
            details: self.details.clone(),
        };
        crate::cni::json::to_pretty(&w)
    }

    /// Parses an error object printed by another plugin.
    pub fn from_json(data: &[u8]) -> Option<Error> {
        let w: Wire = serde_json::from_slice(data).ok()?;
        Some(Error {
            code: Code::from_number(w.code),
            msg: w.msg,
            details: w.details,
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.details.is_empty() {
            write!(f, "{}", self.msg)
        } else {
            write!(f, "{}; {}", self.msg, self.details)
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_recovers_code_through_context() {
        let e = Error::new(Code::InvalidConfig, "bad").with_details("why");
        let j = e.to_json(Some("1.0.0"));
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["code"], 7);
        assert_eq!(v["cniVersion"], "1.0.0");
        assert_eq!(Error::from_json(j.as_bytes()).unwrap(), e);

        let a = anyhow::Error::new(e.clone()).context("loading config");
        let got = Error::from_anyhow(&a);
        assert_eq!(got.code, Code::InvalidConfig);
        assert_eq!(got.msg, "bad");
        assert!(got.details.contains("loading config"));

        let plain = anyhow::anyhow!("boom").context("outer");
        let got = Error::from_anyhow(&plain);
        assert_eq!(got.code, Code::Internal);
        assert_eq!(got.msg, "outer: boom");
    }

    #[test]
    fn no_details_key_when_empty() {
        let j = Error::new(Code::InvalidEnv, "x").to_json(None);
        assert!(!j.contains("details"));
        assert!(!j.contains("cniVersion"));
    }
}
