//! mk-docker-opts: flanneld's subnet.env turned into docker daemon options, written byte for byte
//! as flannel's `mk-docker-opts.sh` writes them, so units and scripts built around the script's
//! output keep working.
//!
//! What the script does, and what of it is kept here:
//! - It *sources* the env file, so the file's assignments and every inherited environment variable
//!   are shell variables. Here the file is read as a strict subset of shell assignments (see
//!   [`parse_env_file`]) whose meaning is the same in sh and here; anything else is an error rather
//!   than a silent difference. Inherited variables still count, as they do for the script.
//! - Every variable whose name contains `DOCKER_OPT_` (the script greps `set` for it) becomes one
//!   option, in byte order of names: the computed `DOCKER_OPT_BIP`, `DOCKER_OPT_IPMASQ`,
//!   `DOCKER_OPT_MTU`, and any inherited or file-set `DOCKER_OPT_*`.
//! - `FLANNEL_IPMASQ` is inverted: flanneld masquerading means docker must not, and vice versa.
//! - The combined variable starts from the inherited value of the variable it is named after plus
//!   one space, and each option is appended as a space and the value, hence its leading space.
//!
//! Deliberate differences (the script's behaviour there is an accident, not an interface): a
//! missing env file, a missing or malformed `FLANNEL_SUBNET` and a non-numeric `FLANNEL_MTU` are
//! errors before anything is written (the script writes `--bip=` with whatever it found, and with
//! no file at all it writes an empty `DOCKER_OPTS`); option values are written verbatim (the script
//! passes them through `echo`, which mangles whitespace, backslashes and glob characters), and a
//! value holding `"`, `$`, `` ` ``, `\` or a control character is refused (the script writes it
//! inside double quotes, where it runs or expands when the output is sourced; see
//! `fits_in_quotes`); the output file is replaced atomically instead of truncated and appended
//! to.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

/// The script's defaults.
pub const DEFAULT_FLANNEL_ENV: &str = "/run/flannel/subnet.env";
pub const DEFAULT_DOCKER_ENV: &str = "/run/docker_opts.env";
pub const DEFAULT_COMBINED_KEY: &str = "DOCKER_OPTS";

/// The variable-name marker the script greps its `set` listing for.
const OPT_MARKER: &str = "DOCKER_OPT_";

/// Shell variables as the script would see them after sourcing the env file: name → value.
pub type Vars = BTreeMap<String, String>;

/// What to write, from the flags `-i`, `-c`, `-m`, `-k`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Render {
    /// `-i`: one `DOCKER_OPT_*="value"` line per option.
    pub individual: bool,
    /// `-c`: the combined `KEY=" opt opt ..."` line.
    pub combined: bool,
    /// False with `-m`: no `--ip-masq` option (old docker versions lack it).
    pub ip_masq: bool,
    /// `-k`: the combined variable's name.
    pub combined_key: String,
}

impl Default for Render {
    /// The script with no flags: both kinds of line, ip-masq on, `DOCKER_OPTS`.
    fn default() -> Render {
        Render {
            individual: true,
            combined: true,
            ip_masq: true,
            combined_key: DEFAULT_COMBINED_KEY.to_string(),
        }
    }
}

/// True for a name the shell accepts as a variable: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_shell_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The environment as shell variables: entries whose name is not a shell name are not variables
/// to the shell either, so they are left out.
pub fn vars_from_env(
    env: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Vars {
    env.into_iter()
        .filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            is_shell_name(&k).then(|| (k, v.to_string_lossy().into_owned()))
        })
        .collect()
}

/// Parses an env file as the assignments sourcing it would make, in order.
///
/// Accepted, because sh gives each the same meaning this parser does: blank lines, `#` comments,
/// and `[export ]NAME=VALUE` where VALUE is a concatenation of plain characters, `'single-quoted'`
/// text and `"double-quoted"` text without `$`, backquote or backslash, optionally followed by
/// blanks and a `#` comment. Everything else (expansions, commands, several assignments on a line,
/// CRLF line ends) is reported with its line number.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let n = i + 1;
        if line.ends_with('\r') {
            bail!("line {n}: carriage return at the end of the line (a file with CRLF line ends?)");
        }
        let t = line.trim_start_matches([' ', '\t']);
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let t = t
            .strip_prefix("export")
            .filter(|r| r.starts_with([' ', '\t']))
            .map_or(t, |r| r.trim_start_matches([' ', '\t']));
        let Some((name, rest)) = t.split_once('=') else {
            bail!("line {n}: not a NAME=value assignment: {line:?}");
        };
        if !is_shell_name(name) {
            bail!("line {n}: {name:?} is not a variable name: {line:?}");
        }
        let value = parse_value(rest).with_context(|| format!("line {n}: {line:?}"))?;
        out.push((name.to_string(), value));
    }
    Ok(out)
}

/// One assignment's value: see [`parse_env_file`].
fn parse_value(s: &str) -> Result<String> {
    let mut value = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => bail!("unterminated single quote"),
                }
            },
            '"' => loop {
                match chars.next() {
                    Some('"') => break,
                    Some(c @ ('$' | '`' | '\\')) => {
                        bail!("{c:?} inside double quotes is shell syntax mk-docker-opts does not evaluate")
                    }
                    Some(c) => value.push(c),
                    None => bail!("unterminated double quote"),
                }
            },
            ' ' | '\t' => {
                // The value ends at a blank; only a comment may follow.
                let rest: String = chars.collect();
                let rest = rest.trim_start_matches([' ', '\t']);
                if !rest.is_empty() && !rest.starts_with('#') {
                    bail!("text after the value: {rest:?} (quote values that contain blanks)");
                }
                break;
            }
            '$' | '`' | '\\' | ';' | '&' | '|' | '<' | '>' | '(' | ')' | '~' => {
                bail!("{c:?} is shell syntax mk-docker-opts does not evaluate")
            }
            c => value.push(c),
        }
    }
    Ok(value)
}

/// Reads the flannel env file and applies its assignments over `inherited`, as sourcing it does.
/// A missing file is an error that says who writes it.
pub fn load_vars(path: &Path, inherited: Vars) -> Result<Vars> {
    let text = crate::sys::small_file::read_to_string(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            ": flanneld writes it once it holds a subnet lease; flanneld is not running or has not written it yet"
        } else {
            ""
        };
        anyhow::anyhow!("cannot read the flannel env file {}: {e}{hint}", path.display())
    })?;
    let assignments = parse_env_file(&text).with_context(|| format!("{}", path.display()))?;
    let mut vars = inherited;
    vars.extend(assignments);
    Ok(vars)
}

fn nonempty<'a>(vars: &'a Vars, name: &str) -> Option<&'a str> {
    vars.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// `FLANNEL_SUBNET`, which must be there and be `a.b.c.d/len`: without it docker keeps its own
/// default bridge network, which is the failure this tool exists to prevent. Returns the text as
/// written (the script copies it verbatim) and its parts.
fn flannel_subnet(vars: &Vars) -> Result<(&str, Ipv4Addr, u8)> {
    let Some(s) = nonempty(vars, "FLANNEL_SUBNET") else {
        bail!("FLANNEL_SUBNET is missing or empty in the flannel env file");
    };
    let parsed = s.split_once('/').and_then(|(a, l)| {
        let len_ok = !l.is_empty() && l.len() <= 2 && l.bytes().all(|b| b.is_ascii_digit());
        let len = l.parse::<u8>().ok().filter(|l| len_ok && *l <= 32)?;
        Some((s, a.parse::<Ipv4Addr>().ok()?, len))
    });
    parsed.with_context(|| {
        format!("FLANNEL_SUBNET={s:?} is not an IPv4 address/prefix such as 10.1.74.1/24")
    })
}

/// The file the script would write, for the shell variables `vars` (the inherited environment with
/// the env file's assignments applied). Errors are the ones the script stops at before writing
/// (the invalid `FLANNEL_IPMASQ` message is the script's, word for word) plus the checks listed in
/// the module docs.
pub fn render(vars: &Vars, r: &Render) -> Result<String> {
    if !is_shell_name(&r.combined_key) {
        bail!("{:?} is not a variable name (-k)", r.combined_key);
    }
    let (subnet, _, _) = flannel_subnet(vars)?;
    let mut opts: BTreeMap<&str, String> = vars
        .iter()
        .filter(|(k, _)| k.contains(OPT_MARKER))
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    opts.insert("DOCKER_OPT_BIP", format!("--bip={subnet}"));
    if let Some(mtu) = nonempty(vars, "FLANNEL_MTU") {
        if !mtu.bytes().all(|b| b.is_ascii_digit()) || mtu.parse::<u32>().is_err() {
            bail!("FLANNEL_MTU={mtu:?} is not a number");
        }
        opts.insert("DOCKER_OPT_MTU", format!("--mtu={mtu}"));
    }
    if let Some(masq) = nonempty(vars, "FLANNEL_IPMASQ").filter(|_| r.ip_masq) {
        let docker_masq = match masq {
            "true" => "false",
            "false" => "true",
            other => bail!("Invalid value of FLANNEL_IPMASQ: {other}"),
        };
        opts.insert("DOCKER_OPT_IPMASQ", format!("--ip-masq={docker_masq}"));
    }
    for (name, value) in &opts {
        fits_in_quotes(name, value)?;
    }
    let mut combined = match nonempty(vars, &r.combined_key) {
        Some(prefix) => {
            fits_in_quotes(&r.combined_key, prefix)?;
            format!("{prefix} ")
        }
        None => String::new(),
    };
    let mut out = String::new();
    for (name, value) in &opts {
        if r.individual {
            out.push_str(&format!("{name}=\"{value}\"\n"));
        }
        combined.push(' ');
        combined.push_str(value);
    }
    if r.combined {
        out.push_str(&format!("{}=\"{combined}\"\n", r.combined_key));
    }
    Ok(out)
}

/// Every value is written between double quotes for two readers: a POSIX shell sourcing the
/// file, where `"`, `$`, `` ` `` and `\` inside double quotes end the string or expand, and
/// systemd's EnvironmentFile, where a line ends the assignment and `\` escapes. No quoting
/// keeps such a value the same for both, so it is refused, naming the variable; every value
/// without them is written byte for byte as the script writes it.
fn fits_in_quotes(name: &str, value: &str) -> Result<()> {
    if let Some(c) = value
        .chars()
        .find(|c| matches!(c, '"' | '$' | '`' | '\\') || c.is_control())
    {
        bail!(
            "{name}={value:?}: {c:?} cannot be written inside double quotes safely for both a \
             shell and a systemd EnvironmentFile; refused"
        );
    }
    Ok(())
}

/// The subnet whose foreign route the script refuses: FLANNEL_SUBNET with its last octet minus
/// one (it assumes flanneld's `.1` gateway form), e.g. `10.1.74.0/24` for `10.1.74.1/24`. None when
/// that octet is 0 (the script's `.-1` can match no route).
pub fn clash_subnet(vars: &Vars) -> Option<String> {
    let (_, addr, len) = flannel_subnet(vars).ok()?;
    let [a, b, c, d] = addr.octets();
    Some(format!("{a}.{b}.{c}.{}/{len}", d.checked_sub(1)?))
}

/// Writes `content` to `path` atomically, so docker.service never reads a half-written file. An
/// existing file keeps its permission bits; a new one gets 0666 less the umask, as the script's
/// shell redirection gives it. A symlink is followed (the script writes through it).
pub fn write_atomic(path: &Path, content: &[u8]) -> Result<()> {
    crate::sys::atomic_file::write(
        path,
        content,
        crate::sys::atomic_file::Mode::Keep,
        crate::sys::atomic_file::Symlink::Follow,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const SAMPLE: &str = "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.74.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n";

    #[test]
    fn sample_renders_as_the_script_does() {
        let v: Vars = parse_env_file(SAMPLE).unwrap().into_iter().collect();
        assert_eq!(
            render(&v, &Render::default()).unwrap(),
            "DOCKER_OPT_BIP=\"--bip=10.1.74.1/24\"\nDOCKER_OPT_IPMASQ=\"--ip-masq=true\"\n\
             DOCKER_OPT_MTU=\"--mtu=1472\"\nDOCKER_OPTS=\" --bip=10.1.74.1/24 --ip-masq=true --mtu=1472\"\n"
        );
    }

    #[test]
    fn ipmasq_is_inverted_and_checked_only_without_m() {
        let mut v = vars(&[
            ("FLANNEL_SUBNET", "10.1.74.1/24"),
            ("FLANNEL_IPMASQ", "true"),
        ]);
        let c = Render {
            individual: false,
            ..Render::default()
        };
        assert_eq!(
            render(&v, &c).unwrap(),
            "DOCKER_OPTS=\" --bip=10.1.74.1/24 --ip-masq=false\"\n"
        );
        v.insert("FLANNEL_IPMASQ".into(), "yes".into());
        let e = render(&v, &c).unwrap_err().to_string();
        assert_eq!(e, "Invalid value of FLANNEL_IPMASQ: yes");
        let m = Render {
            ip_masq: false,
            ..c
        };
        assert_eq!(
            render(&v, &m).unwrap(),
            "DOCKER_OPTS=\" --bip=10.1.74.1/24\"\n"
        );
    }

    #[test]
    fn inherited_combined_value_and_options_are_kept() {
        let v = vars(&[
            ("FLANNEL_SUBNET", "10.1.74.1/24"),
            ("DOCKER_OPTS", "--debug"),
            ("DOCKER_OPT_DNS", "--dns=10.0.0.10"),
            ("MY_DOCKER_OPT_X", "--x"),
            ("DOCKER_OPTSX", "--not-an-option"),
        ]);
        assert_eq!(
            render(&v, &Render::default()).unwrap(),
            "DOCKER_OPT_BIP=\"--bip=10.1.74.1/24\"\nDOCKER_OPT_DNS=\"--dns=10.0.0.10\"\n\
             MY_DOCKER_OPT_X=\"--x\"\nDOCKER_OPTS=\"--debug  --bip=10.1.74.1/24 --dns=10.0.0.10 --x\"\n"
        );
    }

    #[test]
    fn missing_or_bad_values_are_errors() {
        let r = Render::default();
        let e = render(&vars(&[("FLANNEL_MTU", "1450")]), &r).unwrap_err();
        assert!(e.to_string().contains("FLANNEL_SUBNET is missing"), "{e}");
        for bad in [
            "10.1.74.1",
            "10.1.74/24",
            "10.1.74.1/33",
            "fc00::1/64",
            "10.1.74.1/+4",
            "10.1.74.1/024",
        ] {
            let e = render(&vars(&[("FLANNEL_SUBNET", bad)]), &r).unwrap_err();
            assert!(e.to_string().contains("not an IPv4"), "{bad}: {e}");
        }
        let e = render(
            &vars(&[("FLANNEL_SUBNET", "10.1.74.1/24"), ("FLANNEL_MTU", "+1450")]),
            &r,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a number"), "{e}");
        let k = Render {
            combined_key: "A-B".into(),
            ..r
        };
        assert!(render(&vars(&[("FLANNEL_SUBNET", "10.1.74.1/24")]), &k).is_err());
    }

    #[test]
    fn env_file_subset_of_shell() {
        let text = "# comment\n\n  export FLANNEL_SUBNET='10.1.74.1/24'  # why\nFLANNEL_MTU=\"14\"72\nA=\nB=x#y\n";
        let got = parse_env_file(text).unwrap();
        assert_eq!(
            got,
            [
                ("FLANNEL_SUBNET".to_string(), "10.1.74.1/24".to_string()),
                ("FLANNEL_MTU".into(), "1472".into()),
                ("A".into(), String::new()),
                ("B".into(), "x#y".into()),
            ]
        );
        for (bad, want) in [
            ("FLANNEL_MTU=$X\n", "line 1"),
            ("\nX=\"a$b\"\n", "line 2"),
            ("X=a b\n", "text after the value"),
            ("X='a\n", "unterminated"),
            ("X=1\r\n", "carriage return"),
            ("echo hi\n", "not a NAME=value"),
            ("1X=2\n", "not a variable name"),
            ("X=`id`\n", "shell syntax"),
            ("X=a;Y=b\n", "shell syntax"),
        ] {
            let e = format!("{:#}", parse_env_file(bad).unwrap_err());
            assert!(e.contains(want), "{bad:?}: {e}");
        }
    }

    /// Values that would run code or expand when the output is sourced, or start a new line in
    /// an EnvironmentFile, are refused, whether they come from the file or the environment.
    #[test]
    fn values_that_cannot_be_quoted_are_refused() {
        for bad in [
            "a\" ; touch PWNED ; \"",
            "$HOME",
            "`id`",
            "a\\",
            "--x\nEvil=1",
        ] {
            let v = vars(&[("FLANNEL_SUBNET", "10.1.74.1/24"), ("DOCKER_OPT_X", bad)]);
            let e = render(&v, &Render::default()).unwrap_err().to_string();
            assert!(e.contains("DOCKER_OPT_X=") && e.contains("refused"), "{e}");
            let v = vars(&[("FLANNEL_SUBNET", "10.1.74.1/24"), ("DOCKER_OPTS", bad)]);
            let e = render(&v, &Render::default()).unwrap_err().to_string();
            assert!(e.contains("DOCKER_OPTS=") && e.contains("refused"), "{e}");
        }
        let v = vars(&[
            ("FLANNEL_SUBNET", "10.1.74.1/24"),
            ("DOCKER_OPT_X", "--label=a b,c='d' --dns=10.0.0.10"),
        ]);
        assert!(render(&v, &Render::default())
            .unwrap()
            .contains("DOCKER_OPT_X=\"--label=a b,c='d' --dns=10.0.0.10\"\n"));
    }

    #[test]
    fn clash_subnet_is_last_octet_minus_one() {
        let s = |v: &str| clash_subnet(&vars(&[("FLANNEL_SUBNET", v)]));
        assert_eq!(s("10.1.74.1/24").as_deref(), Some("10.1.74.0/24"));
        assert_eq!(s("10.1.74.5/24").as_deref(), Some("10.1.74.4/24"));
        assert_eq!(s("10.1.74.0/24"), None);
    }

    #[test]
    fn shell_names() {
        assert!(is_shell_name("DOCKER_NETWORK_OPTIONS"));
        assert!(is_shell_name("_x1"));
        assert!(!is_shell_name("1x"));
        assert!(!is_shell_name(""));
        assert!(!is_shell_name("a.b"));
    }
}
