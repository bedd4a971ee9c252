//! 1×1 convolutions: a matrix product of the weights by the pixels (see [`crate::gemm`]), the
//! epilogue fused into the store, split between threads by pixels or, on small planes, by
//! channel tiles.

use crate::error::{ensure, SizeError};
use crate::gemm::{self, Clamp, Epilogue, Kind, Mat, Packed};
use crate::isa::Level;
use crate::parallel::{for_parts, parts_for, SendPtr};

/// How a pointwise convolution's tensors are laid out: `batch` images of `n` pixels, `k`
/// channels in, `m` out; each side with its channels first (`[C, pixels]`) or last
/// (`[pixels, C]`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    pub batch: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub in_last: bool,
    pub out_last: bool,
}

impl Shape {
    /// The tile kind that wastes fewest lanes: pixels in vectors where the planes are whole
    /// vectors (or large), channels in vectors where the planes are small (14×14, 7×7).
    pub fn kind(&self, level: Level) -> Kind {
        if self.in_last || self.out_last {
            return Kind::Cols;
        }
        let lanes = level.or_portable().lanes();
        let waste = |len: usize| len.div_ceil(lanes) * lanes - len;
        // lanes computed per useful value, pixels vs channels
        let rows = self.n.div_ceil(lanes) as f32 / self.n as f32;
        let cols = self.m.div_ceil(lanes) as f32 / self.m as f32;
        if waste(self.n) == 0 || self.n >= 32 * lanes || rows <= cols {
            Kind::Rows
        } else {
            Kind::Cols
        }
    }
}

/// `output = weights · input` with the epilogue (`pre` clamp, `residual` add to its first
/// channels, `post` clamp), all in `s`'s layouts: `input` `batch × k × n`, `output` and the
/// residual (with its channel count) `batch × m × n` and `batch × channels × n`; the pixels (or
/// channel tiles) split between the run's threads.
pub fn run(
    s: &Shape,
    w: &Packed,
    pre: Option<(f32, f32)>,
    post: Option<(f32, f32)>,
    input: &[f32],
    residual: Option<(&[f32], usize)>,
    output: &mut [f32],
) -> Result<(), SizeError> {
    ensure!(input.len() == s.batch * s.k * s.n && output.len() == s.batch * s.m * s.n);
    let res_channels = residual.map(|r| r.1).unwrap_or(0);
    ensure!(
        w.m() == s.m
            && w.k() == s.k
            // rows and transposed tiles read and write pixels contiguously
            && (w.kind() == Kind::Cols || !(s.in_last || s.out_last))
            && res_channels <= s.m
            && residual.is_none_or(|(r, c)| r.len() == s.batch * c * s.n)
    );
    let residual = residual.map(|r| r.0);
    let (x, out) = (
        SendPtr(input.as_ptr() as *mut f32),
        SendPtr(output.as_mut_ptr()),
    );
    let res = residual.map(|r| SendPtr(r.as_ptr() as *mut f32));
    // split the pixels between threads (rows; columns on large planes) or the channel tiles
    let parts = parts_for(s.m * s.k * s.n, usize::MAX);
    let by_channels = w.kind() == Kind::Cols && w.m_tiles() >= 2 * parts;
    let step = w.n_step();
    let chunk = s.n.div_ceil(parts).div_ceil(step) * step;
    for b in 0..s.batch {
        for_parts(parts, |p| {
            let shares = if by_channels {
                tile_shares(w.m_tiles(), s.n, step, parts, p)
            } else {
                let cols = (p * chunk).min(s.n)..((p + 1) * chunk).min(s.n);
                [(0..w.m_tiles(), cols), (0..0, 0..0), (0..0, 0..0)]
            };
            for (m_tiles, cols) in shares {
                if m_tiles.is_empty() || cols.is_empty() {
                    continue;
                }
                // SAFETY: the lengths checked above hold image `b` of each tensor; parts
                // write disjoint (tiles, pixels) pieces
                unsafe {
                    run_tiles(
                        s,
                        w,
                        (pre, post, res_channels),
                        x.get().add(b * s.k * s.n),
                        out.get().add(b * s.m * s.n),
                        res.map(|r| r.get().add(b * res_channels * s.n) as *const f32),
                        m_tiles,
                        cols,
                    )
                }
            }
        });
    }
    Ok(())
}

/// Channel tiles `m_tiles` × pixels `cols` of one image, from its input, output and
/// residual.
///
/// # Safety
/// The pointers address a whole image of each, in `s`'s layouts.
#[allow(clippy::too_many_arguments)]
unsafe fn run_tiles(
    s: &Shape,
    w: &Packed,
    (pre, post, res_channels): (Clamp, Clamp, usize),
    input: *const f32,
    output: *mut f32,
    residual: Option<*const f32>,
    m_tiles: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) {
    // (rows, columns) strides of a `[C][pixels]` or `[pixels][C]` image
    let strides = |last: bool, c: usize| if last { (1, c) } else { (s.n, 1) };
    let (xr, xc) = strides(s.in_last, s.k);
    let (or, oc) = strides(s.out_last, s.m);
    let (rr, rc) = strides(s.out_last, res_channels);
    let ep = Epilogue::new(pre, residual, (rr, rc), res_channels, post);
    // SAFETY: the caller's pointers cover every (row, column) the strides address
    unsafe {
        gemm::run(
            w,
            Mat {
                ptr: input,
                rs: xr,
                cs: xc,
            },
            &[0],
            Mat {
                ptr: output,
                rs: or,
                cs: oc,
            },
            &ep,
            m_tiles,
            cols,
        )
    }
}

/// Part `p` of `parts` of the channel tiles × pixels of a product, in tile-major order cut into
/// equal runs of `step` pixels: whole tiles, and parts of the tiles at either end, so that 5
/// tiles of 7×7 pixels split 17½ / 17½ instead of 3 / 2. At most three (tiles, pixels) pieces,
/// empty ones as `0..0`.
fn tile_shares(
    m_tiles: usize,
    n: usize,
    step: usize,
    parts: usize,
    p: usize,
) -> [(std::ops::Range<usize>, std::ops::Range<usize>); 3] {
    let per = n.div_ceil(step);
    let units = m_tiles * per;
    let (a, z) = (p * units / parts, (p + 1) * units / parts);
    let cols = |u0: usize, u1: usize| (u0 * step).min(n)..(u1 * step).min(n);
    let none = (0..0, 0..0);
    if a >= z {
        return [none.clone(), none.clone(), none];
    }
    let (ta, tz) = (a / per, z / per);
    if ta == tz {
        return [(ta..ta + 1, cols(a % per, z % per)), none.clone(), none];
    }
    let head = if a % per == 0 {
        (ta..ta, 0..0)
    } else {
        (ta..ta + 1, cols(a % per, per))
    };
    let full = a.div_ceil(per)..tz;
    [head, (full, 0..n), (tz..tz + 1, cols(0, z % per))]
}

#[cfg(test)]
mod tests {
    use super::tile_shares;

    /// Every (tile, pixel) in exactly one part's pieces, and no part more than one run of
    /// pixels heavier than another.
    #[test]
    fn tile_shares_cover_the_product_evenly() {
        for (m_tiles, n, step, parts) in [
            (5, 49, 7, 2),
            (5, 49, 7, 3),
            (4, 49, 7, 2),
            (3, 196, 7, 2),
            (7, 10, 7, 2),
            (1, 5, 7, 2),
            (2, 1, 7, 3),
            (32, 1, 7, 2),
        ] {
            let mut seen = vec![0u8; m_tiles * n];
            let mut loads = vec![];
            for p in 0..parts {
                let mut load = 0;
                for (tiles, cols) in tile_shares(m_tiles, n, step, parts, p) {
                    for t in tiles {
                        for c in cols.clone() {
                            seen[t * n + c] += 1;
                            load += 1;
                        }
                    }
                }
                loads.push(load);
            }
            let case = (m_tiles, n, step, parts);
            assert!(seen.iter().all(|&s| s == 1), "{case:?}: {seen:?}");
            let (lo, hi) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
            assert!(hi - lo <= step, "{case:?}: {loads:?}");
        }
    }
}
