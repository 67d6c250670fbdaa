//! resolv.conf read into a CNI DNS section, as host-local's `resolvConf` option does.

use crate::cni::result::Dns;
use anyhow::{Context, Result};
use std::path::Path;

/// Parses resolv.conf text: `nameserver` appends, `domain` (last wins), `search` and `options`
/// append every word; comments (`#`, `;`) and lines with fewer than two words are ignored.
pub fn parse(text: &str) -> Dns {
    let mut dns = Dns::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() < 2 {
            continue;
        }
        let rest = words[1..].iter().map(|w| w.to_string());
        match words[0] {
            "nameserver" => dns.nameservers.push(words[1].to_string()),
            "domain" => dns.domain = words[1].to_string(),
            "search" => dns.search.extend(rest),
            "options" => dns.options.extend(rest),
            _ => {}
        }
    }
    dns
}

pub fn read(path: &Path) -> Result<Dns> {
    let text = crate::sys::small_file::read_to_string(path)
        .with_context(|| format!("failed to read {path:?}"))?;
    Ok(parse(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_host_local() {
        let d = parse("nameserver 192.0.2.0\nnameserver 192.0.2.1\n");
        assert_eq!(d.nameservers, ["192.0.2.0", "192.0.2.1"]);
        let d = parse("; comment\nnameserver 192.0.2.0\n#nameserver 1.1.1.1\n");
        assert_eq!(d.nameservers, ["192.0.2.0"]);
        let d = parse(
            "nameserver 192.0.2.0\ndomain example.com\ndomain other.com\nsearch a.com b.com\n\
             search c.com\noptions ndots:5 debug\noptions rotate\nsortlist x\nlonely\n",
        );
        assert_eq!(d.domain, "other.com");
        assert_eq!(d.search, ["a.com", "b.com", "c.com"]);
        assert_eq!(d.options, ["ndots:5", "debug", "rotate"]);
    }
}
