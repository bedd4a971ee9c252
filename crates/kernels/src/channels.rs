//! Moving the channel axis of `f32` images between first and last (`[C, H, W]` ⇄ `[H, W, C]`)
//! as transposes of `C × HW` matrices in square register tiles (16×16 with AVX-512), split
//! between threads on large tensors; and scaling a channels-last tensor by one factor per
//! channel.

use crate::error::{ensure, SizeError};
use crate::isa::{dispatch, Kernel, Lanes, Level};
use crate::parallel::{for_parts, parts_for, SendPtr};

/// Transpose `images` row-major `rows × cols` matrices of `input` into `output` (image `b`'s
/// element `(r, c)` to `c * rows + r`), with `level`'s tiles.
pub fn transpose(
    level: Level,
    input: &[f32],
    output: &mut [f32],
    images: usize,
    rows: usize,
    cols: usize,
) -> Result<(), SizeError> {
    let size = rows * cols;
    ensure!(input.len() == images * size && output.len() == input.len());
    if size == 0 {
        return Ok(());
    }
    // bands of whole tiles of rows, one per thread
    let tile = level.or_portable().lanes();
    let parts = parts_for(input.len(), rows.div_ceil(tile));
    let band = rows.div_ceil(tile).div_ceil(parts) * tile;
    let out = SendPtr(output.as_mut_ptr());
    for b in 0..images {
        let src = &input[b * size..(b + 1) * size];
        for_parts(parts, |p| {
            let band = (p * band).min(rows)..((p + 1) * band).min(rows);
            let kernel = Tiles {
                src,
                // SAFETY: image `b` lies inside `output`, which is as long as `input`
                dst: unsafe { out.get().add(b * size) },
                rows,
                cols,
                band,
            };
            // SAFETY: `src` and the output image hold `rows × cols` floats; parts write
            // disjoint pieces of the output (its rows `band` of every column)
            unsafe { dispatch(level, kernel) }
        });
    }
    Ok(())
}

/// `dst[c * rows + r] = src[r * cols + c]` for rows `band`, as a [`Kernel`]: `src` holds
/// `rows * cols` floats and `dst` has room for as many.
struct Tiles<'a> {
    src: &'a [f32],
    dst: *mut f32,
    rows: usize,
    cols: usize,
    band: std::ops::Range<usize>,
}

impl Kernel for Tiles<'_> {
    type Output = ();
    /// # Safety
    /// `dst` has room for `rows * cols` floats.
    #[inline(always)]
    unsafe fn run<L: Lanes>(self) {
        let Tiles {
            src,
            dst,
            rows,
            cols,
            band,
        } = self;
        debug_assert!(src.len() == rows * cols && band.end <= rows);
        let n = L::N;
        let s = src.as_ptr();
        // whole tiles of this band
        let r_end = band.start + (band.len() / n) * n;
        let c_end = cols / n * n;
        // SAFETY: every index below is `r * cols + c` into `src` and `c * rows + r` into
        // `dst` with `r < rows` and `c < cols` (tiles end at `r_end <= band.end` and `c_end`);
        // the instruction set is `dispatch`'s
        unsafe {
            let mut v = [L::splat(0.0); 16];
            for r0 in (band.start..r_end).step_by(n) {
                for c0 in (0..c_end).step_by(n) {
                    for (i, x) in v[..n].iter_mut().enumerate() {
                        *x = L::load(s.add((r0 + i) * cols + c0));
                    }
                    L::transpose(&mut v[..n]);
                    for (j, x) in v[..n].iter().enumerate() {
                        x.store(dst.add((c0 + j) * rows + r0));
                    }
                }
            }
            // the rest: columns after the last whole tile, rows after the band's last whole
            // tile
            for r in band {
                let from = if r < r_end { c_end } else { 0 };
                for c in from..cols {
                    *dst.add(c * rows + r) = *s.add(r * cols + c);
                }
            }
        }
    }
}

/// `out = x * s` per channel, `x` and `out` channels last with `s.len()` channels.
pub fn scale(x: &[f32], s: &[f32], out: &mut [f32]) -> Result<(), SizeError> {
    let c = s.len();
    ensure!(x.len() == out.len() && x.len().is_multiple_of(c.max(1)));
    if c == 0 {
        return Ok(());
    }
    let parts = parts_for(x.len(), x.len() / c);
    let pixels = (x.len() / c).div_ceil(parts);
    let o = SendPtr(out.as_mut_ptr());
    for_parts(parts, |p| {
        let start = (p * pixels * c).min(x.len());
        let end = ((p + 1) * pixels * c).min(x.len());
        // SAFETY: `start <= end <= out.len()`, and parts write disjoint runs of whole pixels
        let out = unsafe { std::slice::from_raw_parts_mut(o.get().add(start), end - start) };
        for (o, x) in out.chunks_exact_mut(c).zip(x[start..end].chunks_exact(c)) {
            for ((o, x), s) in o.iter_mut().zip(x).zip(s) {
                *o = x * s;
            }
        }
    });
    Ok(())
}
