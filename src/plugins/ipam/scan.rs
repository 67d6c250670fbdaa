//! One pass over a directory of small files, reading each one, with no allocation per entry.
//!
//! host-local reads every reservation file of a network on each ADD (the duplicate check) and
//! DEL (finding the attachment's addresses), so this is the part of the plugin whose cost grows
//! with the pods on a node. Through `std::fs::read_dir` and `File` each file cost about six
//! small allocations and twice the time the kernel spends opening and reading it.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// What a directory entry is, as far as the scan tells its caller.
pub enum Entry<'a> {
    /// A regular file and its whole content.
    File(&'a CStr, &'a [u8]),
    /// Any other name the filter let through, not opened: see [`scan`].
    Name(&'a CStr),
}

/// How the scan should treat one name.
pub enum Visit {
    /// Open and read it if it is a regular file (symlinks are not followed).
    Read,
    /// Pass the name on without opening it.
    Name,
    Skip,
}

/// Calls `f` for the entries of the directory open at `dir` that `filter` does not skip.
/// Files that vanish or cannot be read between listing and opening are left out, as a reader
/// of a directory that others change must expect.
pub fn scan(
    dir: BorrowedFd<'_>,
    mut filter: impl FnMut(&CStr) -> Visit,
    mut f: impl FnMut(Entry<'_>),
) -> io::Result<()> {
    let listing = Listing::open(dir)?;
    let mut spill = Vec::new();
    loop {
        let Some((name, d_type)) = listing.next()? else {
            return Ok(());
        };
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        match filter(name) {
            Visit::Skip => continue,
            Visit::Name => {
                f(Entry::Name(name));
                continue;
            }
            Visit::Read => {}
        }
        let regular = match d_type {
            libc::DT_REG => true,
            libc::DT_UNKNOWN => is_regular_at(dir, name),
            _ => false,
        };
        if !regular {
            continue;
        }
        let mut small = [0u8; 256];
        if let Some(content) = read_at(dir, name, &mut small, &mut spill) {
            f(Entry::File(name, content));
        }
    }
}

/// An open directory stream over a duplicate of the caller's descriptor.
struct Listing(*mut libc::DIR);

impl Listing {
    fn open(dir: BorrowedFd<'_>) -> io::Result<Listing> {
        let dup = dir.try_clone_to_owned()?;
        // SAFETY: `dup` is a valid descriptor we own; on success the stream owns it.
        let dirp = unsafe { libc::fdopendir(dup.as_raw_fd()) };
        if dirp.is_null() {
            return Err(io::Error::last_os_error());
        }
        std::mem::forget(dup);
        // A duplicate shares the file offset: start from the beginning whatever it was.
        // SAFETY: a stream fdopendir just returned.
        unsafe { libc::rewinddir(dirp) };
        Ok(Listing(dirp))
    }

    /// The next name and its `d_type`; the name lives until the next call.
    fn next(&self) -> io::Result<Option<(&CStr, u8)>> {
        // readdir signals an error only through errno, so clear it first.
        // SAFETY: errno is thread-local.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: a stream we own, used from one thread.
        let ent = unsafe { libc::readdir64(self.0) };
        if ent.is_null() {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(0) | None => Ok(None),
                Some(_) => Err(e),
            };
        }
        // SAFETY: readdir returned a valid entry with a NUL-terminated name, valid until the
        // next readdir on this stream, which needs `&self` again.
        Ok(Some(unsafe {
            (CStr::from_ptr((*ent).d_name.as_ptr()), (*ent).d_type)
        }))
    }
}

impl Drop for Listing {
    fn drop(&mut self) {
        // SAFETY: the stream was opened by `open` and is closed once.
        unsafe { libc::closedir(self.0) };
    }
}

fn is_regular_at(dir: BorrowedFd<'_>, name: &CStr) -> bool {
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat64 = unsafe { std::mem::zeroed() };
    // SAFETY: a valid directory fd, a NUL-terminated name and a stat buffer we own.
    let rc = unsafe {
        libc::fstatat64(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    rc == 0 && st.st_mode & libc::S_IFMT == libc::S_IFREG
}

/// No file in a store is near this (an owner is two short lines); a larger one is not a
/// reservation, and reading it whole would let one stray file take the plugin's memory.
const MAX_FILE: usize = 64 << 10;

/// The whole content of `name`: in `small` when it fits, else in `spill`. None if it cannot be
/// opened or read, or is larger than [`MAX_FILE`].
fn read_at<'a>(
    dir: BorrowedFd<'_>,
    name: &CStr,
    small: &'a mut [u8],
    spill: &'a mut Vec<u8>,
) -> Option<&'a [u8]> {
    // SAFETY: a valid directory fd and a NUL-terminated name.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut len = 0;
    // Read until end of file (a read of 0): a short read need not mean the end on every
    // filesystem. The small buffer holds any reservation Go or weft writes.
    while len < small.len() {
        match read_some(&fd, &mut small[len..]) {
            Ok(0) => return Some(&small[..len]),
            Ok(n) => len += n,
            Err(_) => return None,
        }
    }
    spill.clear();
    spill.extend_from_slice(small);
    let mut chunk = [0u8; 4096];
    loop {
        match read_some(&fd, &mut chunk) {
            Ok(0) => return Some(spill),
            Ok(n) if spill.len() + n > MAX_FILE => return None,
            Ok(n) => spill.extend_from_slice(&chunk[..n]),
            Err(_) => return None,
        }
    }
}

fn read_some(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: reading into a buffer we own, at most its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::fs;
    use std::os::fd::AsFd;

    #[test]
    fn reads_regular_files_whole_and_names_the_rest() {
        let d = std::env::temp_dir().join(format!("weft-scan-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("subdir")).unwrap();
        fs::write(d.join("small"), "dummy\r\neth0").unwrap();
        fs::write(d.join("empty"), "").unwrap();
        // Larger than the in-place buffer: read through the spill buffer, to the end.
        let big: String = (0..3000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        fs::write(d.join("big"), &big).unwrap();
        fs::write(d.join("huge"), vec![b'x'; MAX_FILE + 1]).unwrap();
        fs::write(d.join("named"), "not opened").unwrap();
        fs::write(d.join("skipped"), "").unwrap();
        std::os::unix::fs::symlink(d.join("small"), d.join("link")).unwrap();

        let dir = fs::File::open(&d).unwrap();
        let mut files = BTreeMap::new();
        let mut names = Vec::new();
        let filter = |n: &CStr| match n.to_bytes() {
            b"named" => Visit::Name,
            b"skipped" => Visit::Skip,
            _ => Visit::Read,
        };
        scan(dir.as_fd(), filter, |e| match e {
            Entry::File(n, data) => {
                files.insert(n.to_str().unwrap().to_string(), data.to_vec());
            }
            Entry::Name(n) => names.push(n.to_str().unwrap().to_string()),
        })
        .unwrap();
        let keys: Vec<&str> = files.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            ["big", "empty", "small"],
            "no symlink, directory or huge file"
        );
        assert_eq!(files["small"], b"dummy\r\neth0");
        assert_eq!(files["empty"], b"");
        assert_eq!(files["big"], big.as_bytes());
        assert_eq!(names, ["named"]);
        fs::remove_dir_all(&d).unwrap();
    }
}
