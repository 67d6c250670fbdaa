//! Random bytes from the kernel (getrandom(2)): veth names, VXLAN MACs, the subnet pick.

use anyhow::{Context, Result};

/// Fills `buf` completely, or fails.
pub fn fill(buf: &mut [u8]) -> Result<()> {
    // SAFETY: getrandom writes at most buf.len() bytes into the valid buffer `buf`.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        return Err(std::io::Error::last_os_error()).context("getrandom");
    }
    Ok(())
}
