//! Choosing the applet: by basename(argv[0]), else by the first argument, else the top-level
//! options (`--list`, `--version`, `--help`, `--install DIR [--copy] [--force] [--replace NAME]`,
//! `--install-conf SRC DEST`).

use crate::{find_applet, install, APPLETS};
use argh::FromArgs;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The version line: crate version and the git commit it was built from.
pub fn version_line() -> String {
    format!(
        "weft {} (commit {})",
        env!("CARGO_PKG_VERSION"),
        env!("WEFT_GIT_COMMIT")
    )
}

#[derive(FromArgs)]
/// weft: flannel and the CNI plugins it needs, in one binary. Run an applet as `weft APPLET
/// [ARGS]`, or through a symlink named after it (see --install).
struct TopLevel {
    /// list the applets
    #[argh(switch)]
    list: bool,
    /// print the version and git commit
    #[argh(switch)]
    version: bool,
    /// create one symlink per applet in DIR, pointing at this binary
    #[argh(option, arg_name = "DIR")]
    install: Option<PathBuf>,
    /// with --install: copy this binary to DIR/weft and link the applets to that copy; names
    /// taken by other files are kept and reported
    #[argh(switch)]
    copy: bool,
    /// with --install: replace files that are not weft's
    #[argh(switch)]
    force: bool,
    /// with --install: replace the file of applet NAME even if it is not weft's (repeatable)
    #[argh(option, arg_name = "NAME")]
    replace: Vec<String>,
    /// write the CNI network config SRC (checked first) to the file DEST, atomically, mode 0644
    #[argh(option, arg_name = "SRC")]
    install_conf: Option<PathBuf>,
    /// the DEST of --install-conf
    #[argh(positional, arg_name = "DEST")]
    dest: Option<PathBuf>,
}

fn basename(p: &OsString) -> String {
    Path::new(p)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn applet_names() -> String {
    APPLETS
        .iter()
        .map(|a| a.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown(name: &str) -> ExitCode {
    eprintln!("weft: unknown applet {name:?}");
    eprintln!("applets: {}", applet_names());
    ExitCode::from(2)
}

pub fn run(argv: Vec<OsString>) -> ExitCode {
    let Some(arg0) = argv.first() else {
        return unknown("");
    };
    let called = basename(arg0);
    if let Some(applet) = find_applet(&called) {
        return (applet.main)(argv);
    }
    if called != "weft" && !called.starts_with("weft") {
        return unknown(&called);
    }
    let Some(first) = argv.get(1).map(|a| a.to_string_lossy().into_owned()) else {
        print_help();
        return ExitCode::from(2);
    };
    if !first.starts_with('-') {
        return match find_applet(&first) {
            // The applet sees itself as argv[0], as if run through its symlink.
            Some(applet) => (applet.main)(argv[1..].to_vec()),
            None => unknown(&first),
        };
    }
    let strs: Vec<String> = argv[1..]
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let refs: Vec<&str> = strs.iter().map(String::as_str).collect();
    let top = match TopLevel::from_args(&["weft"], &refs) {
        Ok(t) => t,
        Err(early) => {
            return match early.status {
                Ok(()) => {
                    println!("{}", early.output);
                    print_applets();
                    ExitCode::SUCCESS
                }
                Err(()) => {
                    eprintln!("{}", early.output);
                    ExitCode::from(2)
                }
            };
        }
    };
    let with_install = top.copy || top.force || !top.replace.is_empty();
    if top.install.is_none() && with_install {
        eprintln!("weft: --copy, --force and --replace go with --install DIR");
        return ExitCode::from(2);
    }
    if top.install_conf.is_some() != top.dest.is_some()
        || (top.install.is_some() && top.dest.is_some())
    {
        eprintln!("weft: usage: weft --install-conf SRC DEST");
        return ExitCode::from(2);
    }
    if top.version {
        println!("{}", version_line());
        return ExitCode::SUCCESS;
    }
    if top.list {
        for a in APPLETS {
            println!("{}", a.name);
        }
        return ExitCode::SUCCESS;
    }
    if let Some(dir) = top.install {
        let opts = install::Options {
            copy: top.copy,
            force: top.force,
            replace: top.replace,
        };
        return match install::install(&dir, &opts) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("weft: --install: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let (Some(src), Some(dest)) = (top.install_conf, top.dest) {
        return match install::install_conf(&src, &dest) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("weft: --install-conf: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    print_help();
    ExitCode::from(2)
}

fn print_applets() {
    println!("Applets:");
    for a in APPLETS {
        println!("  {:<15} {}", a.name, a.summary);
    }
}

fn print_help() {
    eprintln!("{}", version_line());
    eprintln!(
        "usage: weft APPLET [ARGS...] | weft --list | weft --version \
         | weft --install DIR [--copy] [--force] [--replace NAME] | weft --install-conf SRC DEST"
    );
    eprintln!("applets: {}", applet_names());
}
