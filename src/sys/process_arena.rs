//! The allocator of short-lived applet processes (the CNI plugins, mk-docker-opts, --install):
//! a bump arena that is never given back, in front of the system allocator.
//!
//! Why: the static binary is built on musl, whose allocator returns a freed group of blocks to
//! the kernel at once. A bridge ADD made about 35 `munmap` calls, and in a process with two
//! threads on two CPUs each one is a TLB shoot-down, an inter-processor interrupt, which in a VM
//! traps to the hypervisor. A plugin lives for a few milliseconds and allocates a few hundred
//! KiB in all, so it has no use for memory given back: the arena hands out space by moving one
//! cursor, takes back only the newest block, and lets process exit free the rest. Measured on
//! bridge ADD against the system allocator: README, Benchmarks.
//!
//! flanneld, which runs for months, never enables it and keeps the system allocator.
//! Allocations made before [`enable`] (the runtime's start-up) stay with the system allocator,
//! and so does anything larger than [`LARGE`] or past the arena's end: each block is freed by
//! whoever made it, told apart by its address.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Address space reserved for the arena. Only the pages used are ever backed (a bridge ADD uses
/// under 1 MiB); past the end the system allocator takes over.
pub const RESERVE: usize = 64 << 20;

/// Blocks asked for at this size or more go to the system allocator: they are rare (a large
/// file read whole), and leaving one behind in the arena would cost its whole size. (The
/// newest block may still grow past it in place, which leaves nothing behind.)
pub const LARGE: usize = 256 << 10;

/// [`Arena::base`] while [`Arena::map`] is at work: off, and claimed.
const MAPPING: usize = 1;

/// A bump arena over one anonymous mapping. Lock-free (one atomic cursor), so a forked child
/// can allocate whatever the parent's threads were doing. Acquire/release on the cursor orders
/// a released block's last use before its next owner's first.
pub struct Arena {
    /// The mapping's start; 0 while off, [`MAPPING`] while being turned on.
    base: AtomicUsize,
    end: AtomicUsize,
    next: AtomicUsize,
    /// The highest address ever handed out: the mapping's pages above it are still the
    /// kernel's zeroes, untouched.
    used: AtomicUsize,
}

impl Arena {
    /// An arena that is off: everything goes to the system allocator until [`Arena::map`].
    pub const fn new() -> Self {
        Arena {
            base: AtomicUsize::new(0),
            end: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            used: AtomicUsize::new(0),
        }
    }

    /// Reserves `size` bytes of address space and turns the arena on. Returns false (and
    /// leaves the arena as it is) if it is already on or being turned on, or the kernel refuses
    /// the mapping.
    pub fn map(&self, size: usize) -> bool {
        // Claimed first, so that two callers cannot both set the cursor.
        if self
            .base
            .compare_exchange(0, MAPPING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        // SAFETY: a new private anonymous mapping; nothing else refers to it yet.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            self.base.store(0, Ordering::Release);
            return false;
        }
        // Small pages: where transparent huge pages are always on, the first touch would
        // otherwise back (and zero) 2 MiB for a process that needs a few hundred KiB.
        // SAFETY: advice on the mapping just made.
        unsafe { libc::madvise(p, size, libc::MADV_NOHUGEPAGE) };
        let base = p as usize;
        self.next.store(base, Ordering::Relaxed);
        self.used.store(base, Ordering::Relaxed);
        self.end.store(base + size, Ordering::Relaxed);
        // Release: whoever sees the base sees the cursor and bounds stored above.
        self.base.store(base, Ordering::Release);
        true
    }

    /// Whether the arena hands out blocks.
    fn is_on(&self) -> bool {
        self.base.load(Ordering::Acquire) > MAPPING
    }

    /// Whether `p` points into the arena (rather than at a system allocation).
    pub fn owns(&self, p: *const u8) -> bool {
        let base = self.base.load(Ordering::Acquire);
        base > MAPPING && (base..self.end.load(Ordering::Relaxed)).contains(&(p as usize))
    }

    /// A block for `l` from the arena, or None when it is off, `l` is large, or it is full.
    pub fn bump(&self, l: Layout) -> Option<*mut u8> {
        let p = self.bump_unnoted(l)?;
        self.note_used(p as usize + l.size());
        Some(p)
    }

    fn bump_unnoted(&self, l: Layout) -> Option<*mut u8> {
        if l.size() >= LARGE {
            return None;
        }
        self.carve_unnoted(l)
    }

    fn carve_unnoted(&self, l: Layout) -> Option<*mut u8> {
        if !self.is_on() {
            return None;
        }
        let end = self.end.load(Ordering::Relaxed);
        let mut cur = self.next.load(Ordering::Relaxed);
        loop {
            // Layout guarantees a power-of-two alignment; sizes are far below usize::MAX here.
            let start = cur.checked_add(l.align() - 1)? & !(l.align() - 1);
            let stop = start.checked_add(l.size())?;
            if stop > end {
                return None;
            }
            match self
                .next
                .compare_exchange_weak(cur, stop, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Some(start as *mut u8),
                Err(now) => cur = now,
            }
        }
    }

    /// Takes `p` (an arena block of `size` bytes) back if it is the newest; otherwise it stays
    /// used until the process exits.
    pub fn release(&self, p: *mut u8, size: usize) {
        self.release_tail(p as usize, p as usize + size);
    }

    /// Resizes the arena block `p` where it is, which works when it is the newest block and the
    /// arena has room. Shrinking always succeeds.
    pub fn resize_in_place(&self, p: *mut u8, old: usize, new: usize) -> bool {
        let at = p as usize;
        if new <= old {
            self.release_tail(at + new, at + old);
            return true;
        }
        let grown = at + new <= self.end.load(Ordering::Relaxed)
            && self
                .next
                .compare_exchange(at + old, at + new, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok();
        if grown {
            self.note_used(at + new);
        }
        grown
    }

    /// A zeroed block for `l`, as [`Arena::bump`]. Only the part that was handed out before is
    /// cleared: a 32 KiB netlink buffer, say, would otherwise be backed page by page at once.
    pub fn bump_zeroed(&self, l: Layout) -> Option<*mut u8> {
        let p = self.bump_unnoted(l)?;
        let (start, stop) = (p as usize, p as usize + l.size());
        let before = self.used.fetch_max(stop, Ordering::AcqRel);
        if before > start {
            // SAFETY: [start, stop) is the block just handed out, inside the mapping.
            unsafe { std::ptr::write_bytes(p, 0, before.min(stop) - start) };
        }
        Some(p)
    }

    fn note_used(&self, stop: usize) {
        if self.used.load(Ordering::Relaxed) < stop {
            self.used.fetch_max(stop, Ordering::AcqRel);
        }
    }

    /// Takes back `from..to` if it is the newest space handed out.
    fn release_tail(&self, from: usize, to: usize) {
        let _ = self
            .next
            .compare_exchange(to, from, Ordering::AcqRel, Ordering::Relaxed);
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

static ARENA: Arena = Arena::new();

/// The binary's global allocator: [`Arena`] once [`enable`] has run, the system allocator
/// before and for what the arena does not take.
pub struct ProcessArena;

/// Turns the arena on for the rest of this process. For applets that exit within seconds; a
/// daemon must not call it.
pub fn enable() {
    ARENA.map(RESERVE);
}

/// The kernel's page size (from the auxiliary vector: no system call).
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).unwrap_or(4096)
}

// Not inlined: at every allocation site of the binary, that would add some 470 KiB of code
// (and of page faults on it).
// SAFETY: every block comes from either the arena (disjoint ranges handed out by an atomic
// cursor inside one live mapping) or `System`, and is given back to the one that made it,
// which `Arena::owns` tells by address.
unsafe impl GlobalAlloc for ProcessArena {
    #[inline(never)]
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        match ARENA.bump(l) {
            Some(p) => p,
            // SAFETY: the caller's layout, passed on.
            None => unsafe { System.alloc(l) },
        }
    }

    #[inline(never)]
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        match ARENA.bump_zeroed(l) {
            Some(p) => p,
            // SAFETY: the caller's layout, passed on.
            None => unsafe { System.alloc_zeroed(l) },
        }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if ARENA.owns(p) {
            ARENA.release(p, l.size());
        } else {
            // SAFETY: not the arena's, so `System` made it with this layout.
            unsafe { System.dealloc(p, l) }
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        if !ARENA.owns(p) {
            // SAFETY: a `System` block and the caller's arguments.
            return unsafe { System.realloc(p, l, new_size) };
        }
        if ARENA.resize_in_place(p, l.size(), new_size) {
            return p;
        }
        // SAFETY: the caller guarantees new_size is valid for l's alignment.
        let new_l = unsafe { Layout::from_size_align_unchecked(new_size, l.align()) };
        // SAFETY: as `alloc`.
        let q = unsafe { self.alloc(new_l) };
        if !q.is_null() {
            // SAFETY: both blocks are live, distinct, and at least this long.
            unsafe { std::ptr::copy_nonoverlapping(p, q, l.size().min(new_size)) };
            ARENA.release(p, l.size());
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    fn arena(size: usize) -> Arena {
        let a = Arena::new();
        assert!(a.map(size));
        a
    }

    #[test]
    fn off_until_mapped_and_mapped_once() {
        let a = Arena::new();
        assert!(a.bump(layout(8, 8)).is_none());
        assert!(!a.owns(8 as *const u8));
        assert!(a.map(1 << 20));
        assert!(!a.map(1 << 20), "a second map must not replace the first");
        let p = a.bump(layout(8, 8)).unwrap();
        assert!(a.owns(p));
    }

    #[test]
    fn concurrent_maps_turn_it_on_once() {
        // Racy by nature: several rounds give a lost race many chances to show.
        for _ in 0..16 {
            let a = Arena::new();
            let won = std::thread::scope(|s| {
                let maps: Vec<_> = (0..4).map(|_| s.spawn(|| a.map(1 << 20))).collect();
                maps.into_iter()
                    .map(|m| m.join().unwrap())
                    .filter(|won| *won)
                    .count()
            });
            assert_eq!(won, 1);
            let p = a.bump(layout(64, 8)).unwrap();
            assert!(a.owns(p) && a.owns(p.wrapping_add(63)));
            // SAFETY: a block of 64 bytes just handed out.
            unsafe { std::ptr::write_bytes(p, 0xa5, 64) };
        }
    }

    #[test]
    fn blocks_are_aligned_disjoint_and_inside() {
        let a = arena(1 << 20);
        let mut blocks: Vec<(usize, usize)> = Vec::new();
        for (i, align) in [1, 2, 8, 16, 64, 4096, 8, 1]
            .iter()
            .cycle()
            .take(200)
            .enumerate()
        {
            let size = 1 + (i * 37) % 500;
            let p = a.bump(layout(size, *align)).unwrap() as usize;
            assert_eq!(p % align, 0);
            assert!(a.owns(p as *const u8) && a.owns((p + size - 1) as *const u8));
            blocks.push((p, p + size));
        }
        blocks.sort();
        assert!(
            blocks.windows(2).all(|w| w[0].1 <= w[1].0),
            "blocks overlap"
        );
    }

    #[test]
    fn only_the_newest_block_is_taken_back() {
        let a = arena(1 << 20);
        let p = a.bump(layout(100, 8)).unwrap();
        let q = a.bump(layout(100, 8)).unwrap();
        a.release(p, 100); // not the newest: stays used
        let r = a.bump(layout(100, 8)).unwrap();
        assert!(r > q, "p's space was handed out again while q follows it");
        a.release(r, 100);
        assert_eq!(a.bump(layout(100, 8)).unwrap(), r);
    }

    #[test]
    fn the_newest_block_grows_and_shrinks_in_place_others_do_not_grow() {
        let a = arena(1 << 20);
        let p = a.bump(layout(64, 8)).unwrap();
        assert!(a.resize_in_place(p, 64, 4096));
        let q = a.bump(layout(8, 8)).unwrap();
        assert_eq!(q as usize, p as usize + 4096);
        assert!(
            !a.resize_in_place(p, 4096, 8192),
            "p is no longer the newest"
        );
        assert!(a.resize_in_place(p, 4096, 16), "shrinking always works");
        assert!(a.resize_in_place(q, 8, 1 << 19));
        assert!(!a.resize_in_place(q, 1 << 19, 2 << 20), "past the end");
    }

    #[test]
    fn zeroed_blocks_are_zero_where_memory_was_used_before() {
        let a = arena(1 << 20);
        let p = a.bump(layout(300, 8)).unwrap();
        // SAFETY: the block just handed out.
        unsafe { std::ptr::write_bytes(p, 0xAB, 300) };
        a.release(p, 300);
        let q = a.bump_zeroed(layout(1000, 8)).unwrap();
        assert_eq!(q, p, "the released block is reused");
        // SAFETY: the block just handed out.
        let bytes = unsafe { std::slice::from_raw_parts(q, 1000) };
        assert!(bytes.iter().all(|&b| b == 0));
        // Grown in place over used memory, released, then handed out zeroed again.
        assert!(a.resize_in_place(q, 1000, 5000));
        // SAFETY: the block as grown.
        unsafe { std::ptr::write_bytes(q, 0xCD, 5000) };
        a.release(q, 5000);
        let r = a.bump_zeroed(layout(6000, 8)).unwrap();
        // SAFETY: the block just handed out.
        let bytes = unsafe { std::slice::from_raw_parts(r, 6000) };
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn large_and_overflowing_requests_are_refused() {
        let a = arena(1 << 20);
        assert!(a.bump(layout(LARGE, 8)).is_none());
        assert!(a.bump(layout(200 << 10, 8)).is_some());
        let mut n = 0;
        while a.bump(layout(200 << 10, 8)).is_some() {
            n += 1;
        }
        assert_eq!(n, 4, "1 MiB holds five blocks of 200 KiB");
        assert!(
            a.bump(layout(1, 1)).is_some(),
            "small ones still fit the tail"
        );
    }

    #[test]
    fn threads_get_disjoint_blocks() {
        let a = arena(16 << 20);
        let filled: Vec<Vec<(usize, usize)>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4u8)
                .map(|t| {
                    let a = &a;
                    s.spawn(move || {
                        let mut mine = Vec::new();
                        for i in 0..2000 {
                            let size = 1 + (i * 13 + t as usize) % 300;
                            let p = a.bump(layout(size, 8)).unwrap();
                            // SAFETY: a fresh block of `size` bytes owned by this thread.
                            unsafe { std::ptr::write_bytes(p, t, size) };
                            mine.push((p as usize, size));
                        }
                        mine
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (t, mine) in filled.iter().enumerate() {
            for &(p, size) in mine {
                // SAFETY: blocks handed out above, still mapped.
                let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, size) };
                assert!(bytes.iter().all(|&b| b == t as u8), "a block was shared");
            }
        }
    }

    #[test]
    fn the_global_allocator_keeps_system_blocks_apart() {
        // Before `enable` in this test process (the tests never enable it), everything is a
        // system block, and the allocator hands them back to the system.
        let l = layout(1000, 16);
        // SAFETY: plain alloc/realloc/dealloc through the global allocator's entry points.
        unsafe {
            let p = ProcessArena.alloc(l);
            assert!(!p.is_null() && !ARENA.owns(p));
            p.write_bytes(7, 1000);
            let q = ProcessArena.realloc(p, l, 5000);
            assert_eq!(*q.add(999), 7);
            ProcessArena.dealloc(q, layout(5000, 16));
        }
    }
}
