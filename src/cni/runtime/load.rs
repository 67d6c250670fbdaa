//! Finding a network by name in a configuration directory, as libcni's `LoadNetworkConf` does:
//! the `.conflist` files first, in name order, then the single-plugin `.conf` and `.json` files.
//! A file that cannot be parsed stops the search, as it does in libcni, so a broken file is
//! reported rather than silently passed over for a later one.

use super::conflist::{conf_files, ConfList};
use crate::cni::error::{Code, Error};
use std::path::Path;

fn io_error(dir: &Path, e: std::io::Error) -> Error {
    Error::new(
        Code::IoFailure,
        format!("failed to read {}: {e}", dir.display()),
    )
}

/// The network `name` in `dir`.
pub fn network(dir: &Path, name: &str) -> Result<ConfList, Error> {
    let lists = conf_files(dir, &["conflist"]).map_err(|e| io_error(dir, e))?;
    for file in &lists {
        let list = ConfList::from_file(file)?;
        if list.name == name {
            return Ok(list);
        }
    }
    let singles = conf_files(dir, &["conf", "json"]).map_err(|e| io_error(dir, e))?;
    if singles.is_empty() && lists.is_empty() {
        return Err(Error::invalid_config(format!(
            "no net configurations found in {}",
            dir.display()
        )));
    }
    for file in &singles {
        let bytes = std::fs::read(file).map_err(|e| {
            Error::new(
                Code::IoFailure,
                format!("error reading {}: {e}", file.display()),
            )
        })?;
        let list = ConfList::from_single(&bytes)?;
        if list.name == name {
            return Ok(list);
        }
    }
    Err(Error::invalid_config(format!(
        "no net configuration with name \"{name}\" in {}",
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflists_first_then_single_files_and_plugin_dirs() {
        let dir = std::env::temp_dir().join(format!("weft-load-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let err = network(&dir, "a").unwrap_err();
        assert!(
            err.msg.starts_with("no net configurations found in"),
            "{}",
            err.msg
        );
        std::fs::create_dir_all(dir.join("b")).unwrap();
        let w = |f: &str, s: &str| std::fs::write(dir.join(f), s).unwrap();
        w(
            "20-a.conflist",
            r#"{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"bridge"}]}"#,
        );
        w(
            "10-a.conf",
            r#"{"cniVersion":"0.3.1","name":"a","type":"ptp"}"#,
        );
        w("30-b.conflist", r#"{"cniVersion":"1.0.0","name":"b"}"#);
        w("b/1.conf", r#"{"type":"portmap"}"#);
        w("b/0.conf", r#"{"type":"tuning"}"#);
        w(
            "40-c.json",
            r#"{"cniVersion":"0.4.0","name":"c","type":"loopback"}"#,
        );
        let a = network(&dir, "a").unwrap();
        assert_eq!(a.plugin_type(0), "bridge", "a conflist wins over a .conf");
        let b = network(&dir, "b").unwrap();
        assert_eq!((b.plugin_type(0), b.plugin_type(1)), ("tuning", "portmap"));
        let c = network(&dir, "c").unwrap();
        assert_eq!(
            (c.cni_version.as_str(), c.plugin_type(0)),
            ("0.4.0", "loopback")
        );
        let err = network(&dir, "d").unwrap_err();
        assert_eq!(err.code, Code::InvalidConfig);
        assert!(err.msg.starts_with("no net configuration with name \"d\""));
        w("00-broken.conflist", "{");
        assert_eq!(network(&dir, "a").unwrap_err().code, Code::DecodingFailure);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
