//! The kernel's errno as text, worded as the reference plugins word it.
//!
//! The Go plugins print a netlink failure as Go's `syscall.Errno` text: glibc's `strerror` with
//! its first letter lowered ("file exists"). Taking the C library's text instead would make
//! weft's messages depend on the libc it was built with (musl says "Not supported" where glibc
//! says "Operation not supported") and differ from the reference's either way.

/// Go's text for the errnos rtnetlink answers with; others as Go prints an unknown errno.
pub fn text(errno: i32) -> String {
    let known = match errno {
        libc::EPERM => "operation not permitted",
        libc::ENOENT => "no such file or directory",
        libc::ESRCH => "no such process",
        libc::EINTR => "interrupted system call",
        libc::EIO => "input/output error",
        libc::ENXIO => "no such device or address",
        libc::E2BIG => "argument list too long",
        libc::EBADF => "bad file descriptor",
        libc::EAGAIN => "resource temporarily unavailable",
        libc::ENOMEM => "cannot allocate memory",
        libc::EACCES => "permission denied",
        libc::EFAULT => "bad address",
        libc::EBUSY => "device or resource busy",
        libc::EEXIST => "file exists",
        libc::EXDEV => "invalid cross-device link",
        libc::ENODEV => "no such device",
        libc::ENOTDIR => "not a directory",
        libc::EINVAL => "invalid argument",
        libc::ENFILE => "too many open files in system",
        libc::EMFILE => "too many open files",
        libc::ENOSPC => "no space left on device",
        libc::ERANGE => "numerical result out of range",
        libc::ENAMETOOLONG => "file name too long",
        libc::ENODATA => "no data available",
        libc::EPROTO => "protocol error",
        libc::EMSGSIZE => "message too long",
        libc::EPROTONOSUPPORT => "protocol not supported",
        libc::EOPNOTSUPP => "operation not supported",
        libc::EAFNOSUPPORT => "address family not supported by protocol",
        libc::EADDRINUSE => "address already in use",
        libc::EADDRNOTAVAIL => "cannot assign requested address",
        libc::ENETDOWN => "network is down",
        libc::ENETUNREACH => "network is unreachable",
        libc::ENOBUFS => "no buffer space available",
        libc::ETIMEDOUT => "connection timed out",
        libc::EHOSTUNREACH => "no route to host",
        _ => return format!("errno {errno}"),
    };
    known.to_string()
}

#[cfg(test)]
mod tests {
    use super::text;

    #[test]
    fn words_errnos_as_go_does() {
        assert_eq!(text(libc::EEXIST), "file exists");
        assert_eq!(text(libc::EOPNOTSUPP), "operation not supported");
        assert_eq!(text(4095), "errno 4095");
    }

    /// Go's table is glibc's text with the first letter lowered; on a glibc build, check every
    /// entry against the C library itself.
    #[cfg(target_env = "gnu")]
    #[test]
    fn matches_glibc_lowered() {
        for errno in 1..=133 {
            let ours = text(errno);
            if ours.starts_with("errno ") {
                continue;
            }
            let c = std::io::Error::from_raw_os_error(errno).to_string();
            let c = c.split(" (os error").next().unwrap();
            let mut lowered = c[..1].to_lowercase();
            lowered.push_str(&c[1..]);
            assert_eq!(ours, lowered, "errno {errno}");
        }
    }
}
