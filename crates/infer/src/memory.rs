//! A memory budget for the whole process: a global allocator over the system's that refuses
//! an allocation larger than a cap, or one that would take the live total past a limit.
//!
//! Why: a model file can make tract allocate far more than its own size while it loads —
//! 181 bytes of ONNX holding `ConstantOfShape([50000, 50000])` are folded into a 10 GB tensor
//! before any of the model's shapes can be checked. Under a budget such an allocation fails
//! instead: tract's tensors then panic, which [`Model::from_bytes`](crate::Model::from_bytes)
//! contains and reports as [`Error::Load`](crate::Error::Load) naming the file, in
//! milliseconds and without the memory. (An ordinary `Vec` that cannot grow still aborts the
//! process, as Rust does without a budget — but at the budget, not when the machine is out
//! of memory.)
//!
//! ```no_run
//! use tensorcv_infer::memory::Budget;
//!
//! #[global_allocator]
//! static MEMORY: Budget = Budget::new();
//!
//! fn main() {
//!     MEMORY.set_limits(4 << 30, 1 << 30); // 4 GiB in all, 1 GiB at once
//!     // ... load untrusted models ...
//! }
//! ```
//!
//! The `tensorcv` command installs one, with limits from `TENSORCV_MEMORY_MB` and
//! `TENSORCV_MAX_ALLOCATION_MB` ([`Budget::from_env`]); in the static musl build it allocates
//! with a pure-Rust allocator instead of musl's ([`Budget::pure_rust`]). Counting costs one
//! atomic add per allocation and per free.

#![deny(unsafe_op_in_unsafe_fn)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// 1 GiB; the defaults are multiples of it, saturating where `usize` has 32 bits (wasm32: 4 GiB
/// is the whole address space, and `4 << 30` would wrap to 0).
const GIB: usize = 1 << 30;

/// Allocations refused by every budget of the process so far.
static REFUSED: AtomicUsize = AtomicUsize::new(0);

/// How many allocations any [`Budget`] of this process has refused so far: a failure that
/// comes with a rise in it (a panic in tract's loader, say) was a refused allocation.
pub fn refusals() -> usize {
    REFUSED.load(Ordering::Relaxed)
}

/// A global allocator that keeps the process within a memory budget (see the module docs).
#[derive(Debug)]
pub struct Budget {
    live: AtomicUsize,
    total: AtomicUsize,
    single: AtomicUsize,
    refused: AtomicUsize,
    /// where the bytes come from (fixed at construction)
    source: Source,
}

/// The allocator under a [`Budget`]. (A budget is a `static`, so the TLSF variant's size —
/// its free lists, inline — costs nothing; it cannot be boxed: this is the allocator.)
#[allow(clippy::large_enum_variant)]
enum Source {
    /// the platform's (`std::alloc::System`)
    System,
    /// rlsf's TLSF over pools it maps itself (unix)
    #[cfg(unix)]
    Tlsf(rlsf::GlobalTlsf),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::System => "System",
            #[cfg(unix)]
            Source::Tlsf(_) => "Tlsf",
        })
    }
}

impl Default for Budget {
    fn default() -> Self {
        Self::new()
    }
}

impl Budget {
    /// No limits until [`Budget::set_limits`].
    pub const fn new() -> Self {
        Self::over(Source::System)
    }

    const fn over(source: Source) -> Self {
        Budget {
            live: AtomicUsize::new(0),
            total: AtomicUsize::new(usize::MAX),
            single: AtomicUsize::new(usize::MAX),
            refused: AtomicUsize::new(0),
            source,
        }
    }

    /// As [`Budget::new`], over [rlsf](https://docs.rs/rlsf)'s TLSF allocator (pure Rust,
    /// constant-time, pools mapped with `mmap` and kept) instead of the platform's.
    ///
    /// Why: musl's malloc maps and unmaps its blocks as they come and go — every buffer of 128
    /// KiB or more, and the groups of small ones once empty — so each frame of a static build
    /// paid ~50 `mmap`/`munmap` pairs, the page faults of fresh pages and lock waits: 1.7 s of
    /// system time for 200 1080p files, against 0.2 s with glibc, whose allocator keeps such
    /// memory. TLSF keeps what it maps, so a per-frame path reuses the same memory frame after
    /// frame (peak RSS stays what the pipeline holds at once). Not for glibc builds (glibc's
    /// allocator has per-thread caches), nor for fuzzing (AddressSanitizer sees only malloc).
    #[cfg(unix)]
    pub const fn pure_rust() -> Self {
        Self::over(Source::Tlsf(rlsf::GlobalTlsf::new()))
    }

    /// At most `total` bytes live at once, at most `single` in one allocation.
    pub fn set_limits(&self, total: usize, single: usize) {
        self.total.store(total.max(1 << 20), Ordering::Relaxed);
        self.single.store(single.max(1 << 20), Ordering::Relaxed);
    }

    /// The limits the `tensorcv` command uses: `TENSORCV_MEMORY_MB` in all (default: three
    /// quarters of the machine's memory, 4 GiB when it cannot be read) and
    /// `TENSORCV_MAX_ALLOCATION_MB` at once (default 2 GiB — the largest model file, far more
    /// than any tensor of a vision model — and never more than the total):
    /// `(total, single)` in bytes.
    pub fn from_env() -> (usize, usize) {
        let mb = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|&v| v > 0)
                .map(|v| v.saturating_mul(1 << 20))
        };
        let total = mb("TENSORCV_MEMORY_MB")
            .or_else(|| physical_memory().map(|m| m / 4 * 3))
            .unwrap_or(GIB.saturating_mul(4));
        let single = mb("TENSORCV_MAX_ALLOCATION_MB")
            .unwrap_or(GIB.saturating_mul(2))
            .min(total);
        (total, single)
    }

    /// Bytes allocated now.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The limits in effect: `(total, single)`.
    pub fn limits(&self) -> (usize, usize) {
        (
            self.total.load(Ordering::Relaxed),
            self.single.load(Ordering::Relaxed),
        )
    }

    /// How many allocations were refused so far.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }

    /// Count `n` more bytes if the limits allow.
    fn reserve(&self, n: usize) -> bool {
        let within = n <= self.single.load(Ordering::Relaxed) && {
            let total = self.total.load(Ordering::Relaxed);
            let before = self.live.fetch_add(n, Ordering::Relaxed);
            let fits = before.checked_add(n).is_some_and(|after| after <= total);
            if !fits {
                self.live.fetch_sub(n, Ordering::Relaxed);
            }
            fits
        };
        if !within {
            self.refused.fetch_add(1, Ordering::Relaxed);
            REFUSED.fetch_add(1, Ordering::Relaxed);
        }
        within
    }

    fn release(&self, n: usize) {
        self.live.fetch_sub(n, Ordering::Relaxed);
    }

    /// `allocate` for `layout` if the limits allow, counted; null if not or if it fails.
    fn counted(&self, layout: Layout, allocate: impl FnOnce() -> *mut u8) -> *mut u8 {
        if !self.reserve(layout.size()) {
            return std::ptr::null_mut();
        }
        let p = allocate();
        if p.is_null() {
            self.release(layout.size());
        }
        p
    }
}

// SAFETY: each method forwards to the one allocator the variant names, with the caller's
// arguments unchanged; a `Source` never changes variant after construction (it is a field of a
// `static` budget), so a block always goes back to the allocator that made it.
unsafe impl GlobalAlloc for Source {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded
        unsafe {
            match self {
                Source::System => System.alloc(layout),
                #[cfg(unix)]
                Source::Tlsf(t) => t.alloc(layout),
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded
        unsafe {
            match self {
                Source::System => System.alloc_zeroed(layout),
                #[cfg(unix)]
                Source::Tlsf(t) => t.alloc_zeroed(layout),
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded to the allocator that made `ptr`
        unsafe {
            match self {
                Source::System => System.dealloc(ptr, layout),
                #[cfg(unix)]
                Source::Tlsf(t) => t.dealloc(ptr, layout),
            }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded to the allocator that made `ptr`
        unsafe {
            match self {
                Source::System => System.realloc(ptr, layout, new_size),
                #[cfg(unix)]
                Source::Tlsf(t) => t.realloc(ptr, layout, new_size),
            }
        }
    }
}

// SAFETY: every method forwards to the source allocator with the caller's arguments unchanged,
// or returns null (allowed for `alloc`, `alloc_zeroed` and `realloc`: "the allocation
// failed"); the counting is bookkeeping beside it and never touches the memory.
unsafe impl GlobalAlloc for Budget {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's `layout` is valid and of non-zero size (GlobalAlloc's contract).
        self.counted(layout, || unsafe { self.source.alloc(layout) })
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        self.counted(layout, || unsafe { self.source.alloc_zeroed(layout) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator, so by its source, with `layout`.
        unsafe { self.source.dealloc(ptr, layout) };
        self.release(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if new_size > old && !self.reserve(new_size - old) {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` was allocated by the source with `layout`; `new_size` is valid for it
        // (GlobalAlloc's contract for `realloc`).
        let p = unsafe { self.source.realloc(ptr, layout, new_size) };
        match (p.is_null(), new_size > old) {
            (true, true) => self.release(new_size - old),
            (false, false) => self.release(old - new_size),
            _ => {}
        }
        p
    }
}

/// The machine's memory (Linux: `MemTotal` in /proc/meminfo).
fn physical_memory() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_refuse_and_counts_balance() {
        let b = Budget::new();
        b.set_limits(8 << 20, 4 << 20);
        let small = Layout::from_size_align(1 << 20, 8).unwrap();
        let big = Layout::from_size_align(5 << 20, 8).unwrap();
        // SAFETY: layouts of non-zero size; every pointer is freed with its own layout.
        unsafe {
            assert!(b.alloc(big).is_null(), "over the single cap");
            let p: Vec<*mut u8> = (0..8).map(|_| b.alloc(small)).collect();
            assert!(p.iter().all(|p| !p.is_null()));
            assert_eq!(b.live(), 8 << 20);
            assert!(b.alloc(small).is_null(), "over the total");
            let grown = b.realloc(p[0], small, 2 << 20);
            assert!(grown.is_null(), "growing past the total is refused");
            for q in &p {
                b.dealloc(*q, small);
            }
            assert_eq!(b.live(), 0);
            let z = b.alloc_zeroed(small);
            assert!(!z.is_null() && *z == 0);
            let z2 = b.realloc(z, small, 3 << 20);
            assert_eq!(b.live(), 3 << 20);
            b.dealloc(z2, Layout::from_size_align(3 << 20, 8).unwrap());
        }
        assert_eq!(b.live(), 0);
        assert_eq!(b.refused(), 3);
        assert!(
            refusals() >= 3,
            "every budget's refusals are counted for the process"
        );
    }

    #[test]
    #[cfg(unix)]
    fn a_pure_rust_budget_counts_the_same_and_reuses_what_it_frees() {
        static B: Budget = Budget::pure_rust();
        B.set_limits(64 << 20, 32 << 20);
        let frame = Layout::from_size_align(6 << 20, 8).unwrap();
        // SAFETY: non-zero layouts; every pointer is freed once with its own layout.
        unsafe {
            let p = B.alloc(frame);
            assert!(!p.is_null());
            p.write_bytes(7, frame.size());
            assert_eq!(B.live(), 6 << 20);
            B.dealloc(p, frame);
            assert_eq!(B.live(), 0);
            let q = B.alloc_zeroed(frame);
            assert_eq!(q, p, "the freed block comes back: no new mapping per frame");
            assert!(*q == 0 && *q.add((6 << 20) - 1) == 0);
            assert!(B
                .alloc(Layout::from_size_align(40 << 20, 8).unwrap())
                .is_null());
            let r = B.realloc(q, frame, 12 << 20);
            assert!(!r.is_null() && *r == 0);
            assert_eq!(B.live(), 12 << 20);
            B.dealloc(r, Layout::from_size_align(12 << 20, 8).unwrap());
        }
        // threads share it
        {
            let handles: Vec<_> = (0..4u8)
                .map(|t| {
                    std::thread::spawn(move || {
                        for i in 0..200usize {
                            let l =
                                Layout::from_size_align(64 + (i * 7919) % (1 << 20), 8).unwrap();
                            // SAFETY: a non-zero layout, freed once
                            unsafe {
                                let p = B.alloc(l);
                                assert!(!p.is_null());
                                p.write_bytes(t, l.size());
                                assert_eq!(*p.add(l.size() - 1), t);
                                B.dealloc(p, l);
                            }
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
        }
        assert_eq!(B.live(), 0);
    }
}
