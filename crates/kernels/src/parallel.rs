//! Splitting a kernel's work between the threads of the current [`Team`](crate::team::Team):
//! how many parts a piece of work is worth ([`parts_for`]), running them ([`for_parts`]), and
//! the two shapes of split the kernels use, runs of planes ([`chunks`]) and single planes
//! ([`planes`]). Without a team (and on wasm, which has no threads) everything runs on the
//! calling thread.

use crate::error::{ensure, SizeError};

/// A pointer shared by the threads of one kernel, which write disjoint parts of what it points
/// to.
#[derive(Clone, Copy)]
pub struct SendPtr(pub *mut f32);
// SAFETY: every user hands each thread its own part of the buffer, so sending the pointer
// shares no element between threads
unsafe impl Send for SendPtr {}
// SAFETY: as for `Send`: the parts the threads reach through it are disjoint
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The pointer (a method, so closures capture the whole `SendPtr`).
    pub fn get(self) -> *mut f32 {
        self.0
    }
}

/// Threads of this run: the current team's (1 without one, and on wasm).
pub fn threads() -> usize {
    #[cfg(not(target_family = "wasm"))]
    if let Some(n) = crate::team::team_size() {
        return n;
    }
    1
}

/// Multiply-adds (or taps) below which a kernel runs on one thread: splitting it costs the
/// threads' handshake, which on small tensors is more than the work it shares (2^18 measured
/// best of 2^18, 2^21 and 2^23 on the zoo at 2 threads).
const MIN_PARALLEL_WORK: usize = 1 << 18;

/// How many parts to split a kernel of `work` multiply-adds into: the run's threads (at most
/// `limit`) when the work is large enough to share, else 1.
pub fn parts_for(work: usize, limit: usize) -> usize {
    if work >= MIN_PARALLEL_WORK {
        threads().min(limit).max(1)
    } else {
        1
    }
}

/// Run `f(part)` for every `part < parts`, on the current team's threads when there is one.
pub fn for_parts(parts: usize, f: impl Fn(usize) + Sync + Send) {
    #[cfg(not(target_family = "wasm"))]
    if parts > 1 && crate::team::team_run(parts, &f) {
        return;
    }
    (0..parts).for_each(f)
}

/// Run `f(first, input_planes, output_planes)` over runs of consecutive planes of a `[.., H, W]`
/// tensor (`first` the index of the run's first plane), one run per thread of the team when the
/// work (`work` per output value) is large, else one run.
pub fn chunks(
    input: &[f32],
    in_plane: usize,
    output: &mut [f32],
    out_plane: usize,
    work: usize,
    f: impl Fn(usize, &[f32], &mut [f32]) + Sync + Send,
) -> Result<(), SizeError> {
    if out_plane == 0 || output.is_empty() {
        return Ok(());
    }
    let count = output.len() / out_plane;
    ensure!(
        output.len() == count * out_plane && input.len() == count * in_plane,
        "plane sizes do not divide the tensors"
    );
    let parts = parts_for(output.len() * work.max(1), count);
    let per = count.div_ceil(parts);
    let out = SendPtr(output.as_mut_ptr());
    for_parts(parts, |part| {
        let (first, last) = ((part * per).min(count), ((part + 1) * per).min(count));
        if first < last {
            // SAFETY: `first < last <= count`, so the run lies inside `output`, and parts
            // write disjoint runs of planes
            let out = unsafe {
                std::slice::from_raw_parts_mut(
                    out.get().add(first * out_plane),
                    (last - first) * out_plane,
                )
            };
            f(first, &input[first * in_plane..last * in_plane], out);
        }
    });
    Ok(())
}

/// Run `f(plane, input_plane, output_plane)` over the planes of a `[.., H, W]` tensor, the
/// runs of [`chunks`] split between the run's threads.
pub fn planes(
    input: &[f32],
    in_plane: usize,
    output: &mut [f32],
    out_plane: usize,
    work: usize,
    f: impl Fn(usize, &[f32], &mut [f32]) + Sync + Send,
) -> Result<(), SizeError> {
    chunks(
        input,
        in_plane,
        output,
        out_plane,
        work,
        |first, input, out| {
            for (i, out) in out.chunks_exact_mut(out_plane).enumerate() {
                f(first + i, &input[i * in_plane..(i + 1) * in_plane], out);
            }
        },
    )
}
