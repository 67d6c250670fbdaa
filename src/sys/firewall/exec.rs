//! Running a firewall program and keeping what a failure needs to be understood.

use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Used when PATH is unset: a runtime may start plugins with an empty environment, and the
/// firewall programs live in sbin, which a minimal PATH often lacks.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Finds `name` in PATH as an executable file.
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| OsString::from(DEFAULT_PATH));
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A program that ran and failed (or could not be started).
#[derive(Debug)]
pub struct CommandError {
    /// The whole command line, for the message.
    pub argv: String,
    /// The exit code; None when it was killed by a signal or never started.
    pub code: Option<i32>,
    pub stderr: String,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(c) => write!(f, "running {}: exit status {c}", self.argv)?,
            None => write!(f, "running {}: did not exit normally", self.argv)?,
        }
        let e = self.stderr.trim();
        if !e.is_empty() {
            write!(f, ": {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CommandError {}

/// Runs `program args...` with `stdin` (if any) and returns stdout.
pub(crate) fn run(
    program: &Path,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Result<String, CommandError> {
    let argv = std::iter::once(program.display().to_string())
        .chain(args.iter().map(|a| shell_word(a)))
        .collect::<Vec<_>>()
        .join(" ");
    let fail = |code, stderr: String| CommandError {
        argv: argv.clone(),
        code,
        stderr,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(None, e.to_string()))?;
    if let Some(input) = stdin {
        // Dropping the handle closes the pipe so the program sees end of input.
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input)
            .map_err(|e| fail(None, format!("writing stdin: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(None, e.to_string()))?;
    if !out.status.success() {
        return Err(fail(
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Quotes an argument for the error message only, so a comment with spaces reads as one word.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@%+!".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_message_names_argv_and_stderr() {
        let sh = find_program("sh").expect("sh in PATH");
        let e = run(&sh, &["-c", "echo oops >&2; exit 3"], None).unwrap_err();
        assert_eq!(e.code, Some(3));
        assert_eq!(
            e.to_string(),
            format!(
                "running {} -c 'echo oops >&2; exit 3': exit status 3: oops",
                sh.display()
            )
        );
    }

    #[test]
    fn stdin_reaches_the_program() {
        let cat = find_program("cat").expect("cat in PATH");
        assert_eq!(run(&cat, &[], Some(b"hello")).unwrap(), "hello");
    }

    #[test]
    fn missing_program_is_none() {
        assert!(find_program("weft-no-such-program").is_none());
    }
}
