//! Reading a file that a config names or another program writes (resolv.conf, subnet.env, a
//! saved delegate config, host-local's state): only a regular file, opened without blocking,
//! and at most [`LIMIT`] bytes. `"resolvConf": "/dev/zero"` or a FIFO as `subnetFile` would
//! otherwise grow the plugin until the OOM killer stops it, or hang it for good.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Far above any file of this kind: a resolv.conf, a subnet.env or a delegate config is a few
/// kilobytes.
pub const LIMIT: u64 = 1 << 20;

/// The whole content of the regular file at `path`, refused past [`LIMIT`] bytes.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        // A FIFO's open blocks until a writer comes; non-blocking, it returns and is refused
        // below. For a regular file the flag changes nothing.
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: {what}, not a file", path.display()),
        ));
    }
    read_limited(file, path)
}

/// [`read`], as UTF-8.
pub fn read_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read(path)?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not UTF-8 text", path.display()),
        )
    })
}

fn read_limited(file: File, path: &Path) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    file.take(LIMIT + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > LIMIT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: larger than {LIMIT} bytes", path.display()),
        ));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_huge_files_are_refused() {
        let e = read(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("a device"), "{e}");
        let d = std::env::temp_dir().join(format!("weft-small-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let fifo = d.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read(&fifo).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
        let big = d.join("big");
        std::fs::write(&big, vec![b'x'; LIMIT as usize + 1]).unwrap();
        let e = read(&big).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
        std::fs::write(&big, vec![b'x'; LIMIT as usize]).unwrap();
        assert_eq!(read(&big).unwrap().len(), LIMIT as usize);
        assert_eq!(read(&d).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let e = read(&d.join("none")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
