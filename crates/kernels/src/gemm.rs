//! Matrix products for convolutions: `C[M × N] = W[M × K] · X[K × N]`, with the bias, a clamp
//! (ReLU, ReLU6, clip), a residual tensor and a second clamp folded into the store, so a 1×1
//! convolution and everything up to its block's residual add is one pass over memory.
//!
//! `M` is output channels, `K` input channels (or patch taps), `N` pixels. The weights are
//! packed once, when the op is built; the pixels are read where they are (no packing), through
//! strides. Two families of register tiles:
//!
//! - [`Kind::Rows`]: `MR` output channels × `NV` vectors of pixels. Each step over `K` loads
//!   `NV` vectors of one input row and broadcasts `MR` weights. Needs pixels contiguous in the
//!   input and the output (channels-first planes); wastes lanes only on the last vector of a
//!   plane, so it suits large planes.
//! - [`Kind::Cols`]: `MV` vectors of output channels × `NR` pixels. Each step loads `MV` vectors
//!   of packed weights and broadcasts `NR` input values, read through any strides (channels
//!   first or last, or an im2col panel). Wastes lanes only on the last vector of channels, so
//!   it suits small planes (14×14, 7×7). Stores channels-last outputs directly and
//!   channels-first ones through a small transposing buffer.
//!
//! - [`Kind::ColsT`]: like columns with one vector of channels and a vector's worth of pixels,
//!   transposed in registers, for channels-first outputs of short products (stems).
//!
//! Every tile size is a const generic; the driver picks the instance for tails at run time.

use crate::isa::{dispatch, Kernel, Lanes, Level};

/// Which register tile a packed matrix is laid out for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// channels broadcast, pixels in vectors
    Rows,
    /// channels in vectors, pixels broadcast
    Cols,
    /// one vector of channels by as many pixels as it has lanes, transposed in registers
    /// before the store: channels-first outputs read through strides (a convolution's
    /// patches), where a short `K` leaves no time to transpose through memory
    ColsT,
}

/// Tile sizes per instruction set: `(MR, NV)` for rows, `(MV, NR)` for columns.
fn tiles(level: Level) -> ((usize, usize), (usize, usize)) {
    match level {
        // 32 vector registers: 16 accumulators for rows, 14 for columns (measured best)
        Level::Avx512 => ((8, 2), (2, 7)),
        // 16 registers: 12 accumulators + 2 loads + 1 broadcast
        Level::Avx2 => ((6, 2), (2, 6)),
        // 32 registers, four lanes each: the AVX-512 shapes
        Level::Neon => ((8, 2), (2, 7)),
        Level::Portable | Level::Simd128 => ((4, 2), (2, 4)),
    }
}

/// Most rows (`MR`) and pixels (`NR`) a tile has at any level, and vectors (`NV`, `MV`).
const MAX_MR: usize = 8;
const MAX_NR: usize = 7;
const MAX_V: usize = 2;

/// A weight matrix `[M][K]` packed for one tile kind and instruction set, with its bias.
#[derive(Clone, Debug, PartialEq)]
pub struct Packed {
    level: Level,
    kind: Kind,
    m: usize,
    k: usize,
    /// rows per tile (`MR`) or channels per tile (`MV × lanes`)
    tile: usize,
    data: Vec<f32>,
    /// `M` floats, zero-padded to whole tiles
    bias: Vec<f32>,
}

impl Packed {
    /// Pack `weights` (`m × k`, row-major) and `bias` (`m`) for `kind` at `level` (a level this
    /// machine cannot run packs and runs as portable code).
    pub fn new(
        level: Level,
        kind: Kind,
        weights: &[f32],
        bias: &[f32],
        m: usize,
        k: usize,
    ) -> Packed {
        assert!(
            weights.len() == m * k && bias.len() == m,
            "weights do not fit"
        );
        let level = level.or_portable();
        let ((mr, _), (mv, _)) = tiles(level);
        let tile = match kind {
            Kind::Rows => mr,
            Kind::Cols => mv * level.lanes(),
            Kind::ColsT => level.lanes(),
        };
        let tiles = m.div_ceil(tile);
        let mut data = vec![0f32; tiles * tile * k];
        for t in 0..tiles {
            let m0 = t * tile;
            let rows = tile.min(m - m0);
            let block = &mut data[m0 * k..(m0 + tile) * k];
            // rows: [k][rows in this tile]; columns: [k][tile], zero beyond m
            let width = if kind == Kind::Rows { rows } else { tile };
            for kk in 0..k {
                for i in 0..rows {
                    block[kk * width + i] = weights[(m0 + i) * k + kk];
                }
            }
        }
        let mut padded = bias.to_vec();
        padded.resize(tiles * tile, 0.0);
        Packed {
            level,
            kind,
            m,
            k,
            tile,
            data,
            bias: padded,
        }
    }

    /// The instruction set it was packed for.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The register tile it was packed for.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Rows (output channels).
    pub fn m(&self) -> usize {
        self.m
    }

    /// Columns of the weights (input channels or patch taps).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Tiles of output channels.
    pub fn m_tiles(&self) -> usize {
        self.m.div_ceil(self.tile)
    }

    /// Pixels one tile covers along `N` (`NV × lanes` for rows, `NR` for columns), the unit a
    /// split of the pixels should respect.
    pub fn n_step(&self) -> usize {
        let ((_, nv), (_, nr)) = tiles(self.level);
        match self.kind {
            Kind::Rows => nv * self.level.lanes(),
            Kind::Cols => nr,
            Kind::ColsT => self.level.lanes(),
        }
    }
}

/// A clamp `(lo, hi)` of an epilogue, if any.
pub type Clamp = Option<(f32, f32)>;

/// A strided matrix: element `(r, c)` at `ptr + r * rs + c * cs`.
#[derive(Clone, Copy, Debug)]
pub struct Mat<P> {
    pub ptr: P,
    /// stride between rows (`K` rows of the input, `M` rows of the output)
    pub rs: usize,
    /// stride between columns (pixels)
    pub cs: usize,
}

/// What happens between the accumulators and memory.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue {
    /// clamp after the bias (the convolution's own activation)
    pub pre: Option<(f32, f32)>,
    /// a tensor laid out like the output added after `pre`, to its first `channels` channels
    pub residual: Option<(Mat<*const f32>, usize)>,
    /// clamp after the residual
    pub post: Option<(f32, f32)>,
}

impl Epilogue {
    /// Clamp `pre`, then the residual at `residual` (if any; `(rs, cs)` its row and column
    /// strides) added to the output's first `channels` channels, then clamp `post`.
    pub fn new(
        pre: Clamp,
        residual: Option<*const f32>,
        (rs, cs): (usize, usize),
        channels: usize,
        post: Clamp,
    ) -> Epilogue {
        Epilogue {
            pre,
            residual: residual.map(|ptr| (Mat { ptr, rs, cs }, channels)),
            post,
        }
    }
}

/// Compute the output channel tiles `m_tiles` and pixels `cols` of `out = W · x` (+ epilogue),
/// `x` being `K × N` and `out` `M × N`. `segments` splits `K` into equal runs: row `k` of `x`,
/// in run `k / len` at `j = k % len`, starts at `x.ptr + segments[k / len] + j * x.rs` (a
/// convolution's patch is such runs, one per kernel row; `&[0]`: one run, a plain product).
///
/// # Safety
/// `x`, `out` and the residual must address `K × N`, `M × N` and `channels × N` valid floats
/// through their strides and segments; for [`Kind::Rows`] their column strides must be 1, for
/// [`Kind::ColsT`] the output's and residual's column strides 1; `cols.end <= N`.
pub unsafe fn run(
    w: &Packed,
    x: Mat<*const f32>,
    segments: &[usize],
    out: Mat<*mut f32>,
    ep: &Epilogue,
    m_tiles: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) {
    debug_assert!(m_tiles.end <= w.m_tiles());
    debug_assert!(!segments.is_empty() && w.k.is_multiple_of(segments.len()));
    let s = Segments {
        at: segments.as_ptr(),
        count: segments.len(),
        len: w.k / segments.len(),
    };
    let kernel = Gemm {
        w,
        x,
        segments: &s,
        out,
        ep,
        m_tiles,
        cols,
    };
    // SAFETY: the buffers are this function's contract, passed on unchanged
    unsafe { dispatch(w.level, kernel) }
}

/// Runs of `K` (see [`run`]).
struct Segments {
    at: *const usize,
    count: usize,
    len: usize,
}

/// The arguments of one [`run`], as a [`Kernel`].
struct Gemm<'a> {
    w: &'a Packed,
    x: Mat<*const f32>,
    segments: &'a Segments,
    out: Mat<*mut f32>,
    ep: &'a Epilogue,
    m_tiles: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
}

impl Kernel for Gemm<'_> {
    type Output = ();
    /// # Safety
    /// As [`run`].
    #[inline(always)]
    unsafe fn run<L: Lanes>(self) {
        let Gemm {
            w,
            x,
            segments,
            out,
            ep,
            m_tiles,
            cols,
        } = self;
        // SAFETY: as `run`, whose contract the caller of `dispatch` took on
        unsafe { run_any::<L>(w, x, segments, out, ep, m_tiles, cols) }
    }
}

/// # Safety
/// The CPU supports `L`'s instruction set, and the tile's and the epilogue's pointers address every
/// element they read or write, as [`run`] requires of its caller.
#[inline(always)]
unsafe fn run_any<L: Lanes>(
    w: &Packed,
    x: Mat<*const f32>,
    segs: &Segments,
    out: Mat<*mut f32>,
    ep: &Epilogue,
    m_tiles: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) {
    let ((mr, nv), (mv, nr)) = tiles(w.level);
    let k = w.k;
    let (lo0, hi0) = ep.pre.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
    let (lo1, hi1) = ep.post.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
    let (res, res_channels) = match ep.residual {
        Some((r, c)) => (r, c),
        None => (
            Mat {
                ptr: std::ptr::null(),
                rs: 0,
                cs: 0,
            },
            0,
        ),
    };
    // SAFETY: this function's contract (its `# Safety`), which its caller upholds
    unsafe {
        let e = Ep::<L> {
            pre: ep.pre.is_some(),
            post: ep.post.is_some(),
            lo0: L::splat(lo0),
            hi0: L::splat(hi0),
            lo1: L::splat(lo1),
            hi1: L::splat(hi1),
        };
        match w.kind {
            Kind::Rows => {
                let step = nv * L::N;
                let mut n0 = cols.start;
                while n0 < cols.end {
                    let width = step.min(cols.end - n0);
                    let vecs = width.div_ceil(L::N);
                    let last = width - (vecs - 1) * L::N;
                    for t in m_tiles.clone() {
                        let m0 = t * mr;
                        let rows = mr.min(w.m - m0);
                        let t = RowsTile {
                            segs,
                            a: w.data.as_ptr().add(m0 * k),
                            x: x.ptr.wrapping_add(n0),
                            ldx: x.rs,
                            last,
                            c: out.ptr.add(m0 * out.rs + n0),
                            ldc: out.rs,
                            bias: w.bias.as_ptr().add(m0),
                            res: if res_channels > m0 {
                                res.ptr.add(m0 * res.rs + n0)
                            } else {
                                std::ptr::null()
                            },
                            ldr: res.rs,
                            res_rows: res_channels.saturating_sub(m0).min(rows),
                        };
                        rows_dispatch::<L>(rows, vecs, &t, &e);
                    }
                    n0 += width;
                }
            }
            Kind::ColsT => {
                for t in m_tiles {
                    let m0 = t * L::N;
                    let valid = L::N.min(w.m - m0);
                    let mut n0 = cols.start;
                    while n0 < cols.end {
                        let px = L::N.min(cols.end - n0);
                        let t = ColsTile {
                            segs,
                            fetch: (std::ptr::null(), 0),
                            a: w.data.as_ptr().add(m0 * k),
                            lda: L::N,
                            x: x.ptr.wrapping_add(n0 * x.cs),
                            ks: x.rs,
                            ns: x.cs,
                            c: out.ptr.add(m0 * out.rs + n0),
                            ms: out.rs,
                            cns: 1,
                            valid,
                            bias: w.bias.as_ptr().add(m0),
                            res: if res_channels > m0 {
                                res.ptr.add(m0 * res.rs + n0)
                            } else {
                                std::ptr::null()
                            },
                            rms: res.rs,
                            rns: 1,
                            res_channels: res_channels.saturating_sub(m0).min(valid),
                        };
                        cols_t_tile::<L>(&t, px, &e);
                        n0 += px;
                    }
                }
            }
            Kind::Cols => {
                let tile = mv * L::N;
                // the next tile's weights, a share per group of pixels, fetched while this
                // tile computes: weights come from memory (a model's are larger than the
                // caches), and read when needed the first group would wait on them
                let lines = (tile * k).div_ceil(LINE);
                let groups = cols.len().div_ceil(nr);
                let share = lines.div_ceil(groups.max(1));
                for t in m_tiles.clone() {
                    let m0 = t * tile;
                    let valid = tile.min(w.m - m0);
                    let vecs = valid.div_ceil(L::N);
                    let next = (t + 1 < m_tiles.end).then(|| w.data.as_ptr().add((m0 + tile) * k));
                    let mut n0 = cols.start;
                    let mut group = 0;
                    while n0 < cols.end {
                        let px = nr.min(cols.end - n0);
                        let first = (group * share).min(lines);
                        let t = ColsTile {
                            segs,
                            fetch: match next {
                                Some(p) => (p.add(first * LINE), share.min(lines - first)),
                                None => (std::ptr::null(), 0),
                            },
                            a: w.data.as_ptr().add(m0 * k),
                            lda: tile,
                            x: x.ptr.wrapping_add(n0 * x.cs),
                            ks: x.rs,
                            ns: x.cs,
                            c: out.ptr.add(m0 * out.rs + n0 * out.cs),
                            ms: out.rs,
                            cns: out.cs,
                            valid,
                            bias: w.bias.as_ptr().add(m0),
                            res: if res_channels > m0 {
                                res.ptr.add(m0 * res.rs + n0 * res.cs)
                            } else {
                                std::ptr::null()
                            },
                            rms: res.rs,
                            rns: res.cs,
                            res_channels: res_channels.saturating_sub(m0).min(valid),
                        };
                        cols_dispatch::<L>(vecs, px, &t, &e);
                        n0 += px;
                        group += 1;
                    }
                }
            }
        }
    }
}

/// Floats in a cache line.
const LINE: usize = 16;

/// Ask for the cache line at `p` in the second-level cache (no-op where there is no hint). Safe
/// whatever `p` is: a prefetch is a hint and never faults.
#[inline(always)]
fn prefetch(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` needs SSE, which every x86-64 CPU has, and reads nothing
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        _mm_prefetch::<_MM_HINT_T1>(p as *const i8)
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The epilogue's clamps as vectors.
struct Ep<L> {
    pre: bool,
    post: bool,
    lo0: L,
    hi0: L,
    lo1: L,
    hi1: L,
}

/// One rows tile: `rows` output channels from `a` (`[k][rows]`), pixels from `x` (row `k` as
/// [`run`]'s segments say, rows of a run `ldx` apart), the last vector holding `last` pixels.
struct RowsTile<'s> {
    segs: &'s Segments,
    a: *const f32,
    x: *const f32,
    ldx: usize,
    last: usize,
    c: *mut f32,
    ldc: usize,
    bias: *const f32,
    res: *const f32,
    ldr: usize,
    res_rows: usize,
}

/// # Safety
/// The CPU supports `L`'s instruction set, and the tile's and the epilogue's pointers address every
/// element they read or write, as [`run`] requires of its caller.
#[inline(always)]
unsafe fn rows_dispatch<L: Lanes>(rows: usize, vecs: usize, t: &RowsTile<'_>, e: &Ep<L>) {
    macro_rules! go {
        ($($mr:literal),*) => {
            match (rows, vecs) {
                $(($mr, 1) => rows_tile::<L, $mr, 1>(t, e),
                  ($mr, 2) => rows_tile::<L, $mr, 2>(t, e),)*
                _ => unreachable!("rows tile {rows}x{vecs}"),
            }
        };
    }
    debug_assert!(rows <= MAX_MR && vecs <= MAX_V);
    // SAFETY: this function's contract (its `# Safety`), which its caller upholds
    unsafe { go!(1, 2, 3, 4, 5, 6, 7, 8) }
}

/// # Safety
/// The CPU supports `L`'s instruction set, and the tile's and the epilogue's pointers address every
/// element they read or write, as [`run`] requires of its caller.
#[inline(always)]
unsafe fn rows_tile<L: Lanes, const MR: usize, const NV: usize>(t: &RowsTile<'_>, e: &Ep<L>) {
    // SAFETY: this function's contract (its `# Safety`), which its caller upholds
    unsafe {
        if t.last == L::N {
            rows_tile_as::<L, MR, NV, true>(t, e)
        } else {
            rows_tile_as::<L, MR, NV, false>(t, e)
        }
    }
}

/// # Safety
/// The CPU supports `L`'s instruction set, and the tile's and the epilogue's pointers address every
/// element they read or write, as [`run`] requires of its caller.
#[inline(always)]
unsafe fn rows_tile_as<L: Lanes, const MR: usize, const NV: usize, const FULL: bool>(
    t: &RowsTile<'_>,
    e: &Ep<L>,
) {
    // SAFETY: this function's contract (its `# Safety`), which its caller upholds
    unsafe {
        let full = FULL;
        // the bias is added after the products, as TensorFlow and onnxruntime add it
        let mut acc = [[L::splat(0.0); NV]; MR];
        let mut a = t.a;
        // one step over K: a row of pixels at `x` times MR weights
        macro_rules! step {
            ($x:expr) => {{
                let x = $x;
                let xv: [L; NV] = std::array::from_fn(|j| {
                    if !FULL && j + 1 == NV {
                        L::load_first(x.add(j * L::N), t.last)
                    } else {
                        L::load(x.add(j * L::N))
                    }
                });
                for (i, row) in acc.iter_mut().enumerate() {
                    let w = L::splat(*a.add(i));
                    for j in 0..NV {
                        row[j] = xv[j].mul_add(w, row[j]);
                    }
                }
                a = a.add(MR);
            }};
        }
        if t.segs.count == 1 {
            // a plain product: rows `ldx` apart
            let mut x = t.x.wrapping_add(*t.segs.at);
            for _ in 0..t.segs.len {
                step!(x);
                x = x.add(t.ldx);
            }
        } else if t.segs.len == 1 {
            // a convolution's taps: one row each, anywhere
            for s in 0..t.segs.count {
                step!(t.x.wrapping_add(*t.segs.at.add(s)));
            }
        } else {
            for s in 0..t.segs.count {
                let mut x = t.x.wrapping_add(*t.segs.at.add(s));
                for _ in 0..t.segs.len {
                    step!(x);
                    x = x.add(t.ldx);
                }
            }
        }
        if t.res_rows == 0 && !e.post {
            // the common store, without a residual: a body small enough to unroll, so the
            // accumulators stay in registers
            for (i, row) in acc.iter().enumerate() {
                let bias = L::splat(*t.bias.add(i));
                for (j, &v) in row.iter().enumerate() {
                    let mut v = v.add(bias);
                    if e.pre {
                        v = v.clamp(e.lo0, e.hi0);
                    }
                    let c = t.c.add(i * t.ldc + j * L::N);
                    if j + 1 == NV && !full {
                        v.store_first(c, t.last);
                    } else {
                        v.store(c);
                    }
                }
            }
            return;
        }
        // with a residual, a loop over the accumulators in memory (its body is too large to
        // unroll; indexing the registers' array would keep it in memory through the products)
        let acc = std::hint::black_box(acc);
        for (i, row) in acc.iter().enumerate() {
            let bias = L::splat(*t.bias.add(i));
            for (j, &v) in row.iter().enumerate() {
                let tail = j + 1 == NV && !full;
                let mut v = v.add(bias);
                if e.pre {
                    v = v.clamp(e.lo0, e.hi0);
                }
                if i < t.res_rows {
                    let r = t.res.add(i * t.ldr + j * L::N);
                    v = v.add(if tail {
                        L::load_first(r, t.last)
                    } else {
                        L::load(r)
                    });
                }
                if e.post {
                    v = v.clamp(e.lo1, e.hi1);
                }
                let c = t.c.add(i * t.ldc + j * L::N);
                if tail {
                    v.store_first(c, t.last);
                } else {
                    v.store(c);
                }
            }
        }
    }
}

/// One columns tile: `valid` output channels from `a` (`[k][lda]`, zero-padded), `NR` pixels
/// from `x` (element `(k, n)` at `k * ks + n * ns`), written at `c` (`(m, n)` at
/// `m * ms + n * cns`).
struct ColsTile<'s> {
    segs: &'s Segments,
    /// cache lines to prefetch, one per step over `K`: from where, how many
    fetch: (*const f32, usize),
    a: *const f32,
    lda: usize,
    x: *const f32,
    ks: usize,
    ns: usize,
    c: *mut f32,
    ms: usize,
    cns: usize,
    valid: usize,
    bias: *const f32,
    res: *const f32,
    rms: usize,
    rns: usize,
    res_channels: usize,
}

/// # Safety
/// The CPU supports `L`'s instruction set, and the tile's and the epilogue's pointers address every
/// element they read or write, as [`run`] requires of its caller.
#[inline(always)]
unsafe fn cols_dispatch<L: Lanes>(vecs: usize, px: usize, t: &ColsTile<'_>, e: &Ep<L>) {
    macro_rules! go {
        ($($nr:literal),*) => {
            match (vecs, px) {
                $((1, $nr) => cols_tile::<L, 1, $nr>(t, e),
                  (2, $nr) => cols_tile::<L, 2, $nr>(t, e),)*
                _ => unreachable!("columns tile {vecs}x{px}"),
            }
        };
    }
    debug_assert!(px <= MAX_NR && vecs <= MAX_V);
    // SAFETY: this function's contract (its `# Safety`), which its caller upholds
    unsafe { go!(1, 2, 3, 4, 5, 6, 7) }
}

/// # Safety
/// The CPU supports `L`'s instruction set, and the tile's and the epilogue's pointers address every
/// element they read or write, as [`run`] requires of its caller.
#[inline(always)]
unsafe fn cols_tile<L: Lanes, const MV: usize, const NR: usize>(t: &ColsTile<'_>, e: &Ep<L>) {
    // SAFETY: this function's contract (its `# Safety`), which its caller upholds
    unsafe {
        let mut acc = [[L::splat(0.0); MV]; NR];
        let mut a = t.a;
        let (mut fetch, mut left) = t.fetch;
        let (ns, ks, lda) = (t.ns, t.ks, t.lda);
        // one step over K
        macro_rules! step {
            ($x:ident) => {{
                let av: [L; MV] = std::array::from_fn(|j| L::load(a.add(j * L::N)));
                for (i, px) in acc.iter_mut().enumerate() {
                    let xb = L::splat(*$x.add(i * ns));
                    for j in 0..MV {
                        px[j] = av[j].mul_add(xb, px[j]);
                    }
                }
                a = a.add(lda);
                $x = $x.add(ks);
            }};
        }
        // one run of K from `x`: the steps that also prefetch a line, then the others, as two
        // plain loops (a test for the prefetch inside one loop made the compiler copy every
        // accumulator on each step)
        macro_rules! run_of_k {
            ($x:expr) => {{
                let mut x = $x;
                let fetching = left.min(t.segs.len);
                for _ in 0..fetching {
                    prefetch(fetch);
                    fetch = fetch.add(LINE);
                    step!(x);
                }
                for _ in fetching..t.segs.len {
                    step!(x);
                }
            }};
        }
        // a single run (a 1×1 convolution) apart from several: inside a loop over the runs the
        // compiler copies the accumulators between the two loops
        if t.segs.count == 1 {
            run_of_k!(t.x.wrapping_add(*t.segs.at));
        } else {
            for s in 0..t.segs.count {
                run_of_k!(t.x.wrapping_add(*t.segs.at.add(s)));
                left = left.saturating_sub(t.segs.len);
            }
        }
        // the bias after the products, as TensorFlow and onnxruntime add it
        let bias: [L; MV] = std::array::from_fn(|j| L::load(t.bias.add(j * L::N)));
        for px in acc.iter_mut() {
            for (v, &b) in px.iter_mut().zip(&bias) {
                *v = v.add(b);
                if e.pre {
                    *v = v.clamp(e.lo0, e.hi0);
                }
            }
        }
        if t.ms == 1 {
            // channels last: a vector of channels per pixel
            for (i, px) in acc.iter().enumerate() {
                for (j, &v) in px.iter().enumerate() {
                    let ch = j * L::N;
                    if ch >= t.valid {
                        break;
                    }
                    let n = (t.valid - ch).min(L::N);
                    let mut v = v;
                    if ch < t.res_channels {
                        let r = t.res.add(i * t.rns + ch);
                        let rn = (t.res_channels - ch).min(L::N);
                        v = v.add(if rn == L::N {
                            L::load(r)
                        } else {
                            L::load_first(r, rn)
                        });
                    }
                    if e.post {
                        v = v.clamp(e.lo1, e.hi1);
                    }
                    let c = t.c.add(i * t.cns + ch);
                    if n == L::N {
                        v.store(c);
                    } else {
                        v.store_first(c, n);
                    }
                }
            }
        } else {
            // channels first: transpose through a buffer, a row of pixels per channel
            let mut buf = [[0f32; MAX_V * 16]; MAX_NR];
            for (i, px) in acc.iter().enumerate() {
                for (j, &v) in px.iter().enumerate() {
                    v.store(buf[i].as_mut_ptr().add(j * L::N));
                }
            }
            let (lo, hi) = match e.post {
                true => {
                    let mut l = [0f32; 16];
                    let mut h = [0f32; 16];
                    e.lo1.store(l.as_mut_ptr());
                    e.hi1.store(h.as_mut_ptr());
                    (l[0], h[0])
                }
                false => (f32::NEG_INFINITY, f32::INFINITY),
            };
            for ch in 0..t.valid {
                let c = t.c.add(ch * t.ms);
                if ch < t.res_channels {
                    let r = t.res.add(ch * t.rms);
                    for (i, row) in buf.iter().enumerate().take(NR) {
                        let v = row[ch] + *r.add(i * t.rns);
                        *c.add(i * t.cns) = if e.post { v.max(lo).min(hi) } else { v };
                    }
                } else {
                    for (i, row) in buf.iter().enumerate().take(NR) {
                        let v = row[ch];
                        *c.add(i * t.cns) = if e.post { v.max(lo).min(hi) } else { v };
                    }
                }
            }
        }
    }
}

/// One [`Kind::ColsT`] tile: a vector of channels by `px <= N` pixels (the rest of the `N`
/// computed from the last pixel's window again, never stored), transposed before the store.
///
/// # Safety
/// The CPU supports `L`'s instruction set, and the tile's and the epilogue's pointers address every
/// element they read or write, as [`run`] requires of its caller.
#[inline(always)]
unsafe fn cols_t_tile<L: Lanes>(t: &ColsTile<'_>, px: usize, e: &Ep<L>) {
    // SAFETY: this function's contract (its `# Safety`), which its caller upholds
    unsafe {
        match (L::N, px == L::N) {
            (16, true) => cols_t::<L, 16, true>(t, px, e),
            (16, false) => cols_t::<L, 16, false>(t, px, e),
            (8, true) => cols_t::<L, 8, true>(t, px, e),
            (8, false) => cols_t::<L, 8, false>(t, px, e),
            (4, true) => cols_t::<L, 4, true>(t, px, e),
            _ => cols_t::<L, 4, false>(t, px, e),
        }
    }
}

/// # Safety
/// The CPU supports `L`'s instruction set, and the tile's and the epilogue's pointers address every
/// element they read or write, as [`run`] requires of its caller.
#[inline(always)]
unsafe fn cols_t<L: Lanes, const NP: usize, const FULL: bool>(
    t: &ColsTile<'_>,
    px: usize,
    e: &Ep<L>,
) {
    debug_assert!(NP == L::N);
    // SAFETY: this function's contract (its `# Safety`), which its caller upholds
    unsafe {
        let mut acc = [L::splat(0.0); NP];
        let pick: [usize; NP] = std::array::from_fn(|i| i.min(px - 1) * t.ns);
        let mut a = t.a;
        for s in 0..t.segs.count {
            let mut x = t.x.wrapping_add(*t.segs.at.add(s));
            for _ in 0..t.segs.len {
                let av = L::load(a);
                for (i, v) in acc.iter_mut().enumerate() {
                    let at = if FULL { i * t.ns } else { pick[i] };
                    *v = av.mul_add(L::splat(*x.add(at)), *v);
                }
                a = a.add(t.lda);
                x = x.add(t.ks);
            }
        }
        // the bias after the products, as TensorFlow and onnxruntime add it
        let bias = L::load(t.bias);
        for v in acc.iter_mut() {
            *v = v.add(bias);
            if e.pre {
                *v = v.clamp(e.lo0, e.hi0);
            }
        }
        // a vector of pixels per channel (a copy: the accumulators stay in registers above)
        let mut tr = acc;
        L::transpose(&mut tr);
        for (ch, &v) in tr.iter().enumerate().take(t.valid) {
            let mut v = v;
            if ch < t.res_channels {
                let r = t.res.add(ch * t.rms);
                v = v.add(if FULL {
                    L::load(r)
                } else {
                    L::load_first(r, px)
                });
            }
            if e.post {
                v = v.clamp(e.lo1, e.hi1);
            }
            let c = t.c.add(ch * t.ms);
            if FULL {
                v.store(c);
            } else {
                v.store_first(c, px);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(n: usize, seed: u32) -> Vec<f32> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1664525).wrapping_add(1013904223);
                (x >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// `W · x` in f64 with the epilogue, `x` and the result given by (row, col) strides.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        w: &[f32],
        bias: &[f32],
        x: &[f32],
        (m, k, n): (usize, usize, usize),
        (xr, xc): (usize, usize),
        pre: Option<(f32, f32)>,
        res: Option<(&[f32], usize, usize, usize)>,
        post: Option<(f32, f32)>,
        (or, oc): (usize, usize),
    ) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = bias[i] as f64;
                for kk in 0..k {
                    s += w[i * k + kk] as f64 * x[kk * xr + j * xc] as f64;
                }
                let mut v = s as f32;
                if let Some((lo, hi)) = pre {
                    v = v.max(lo).min(hi);
                }
                if let Some((r, rr, rc, ch)) = res {
                    if i < ch {
                        v += r[i * rr + j * rc];
                    }
                }
                if let Some((lo, hi)) = post {
                    v = v.max(lo).min(hi);
                }
                out[i * or + j * oc] = v;
            }
        }
        out
    }

    fn levels() -> Vec<Level> {
        Level::ALL.into_iter().filter(|l| l.available()).collect()
    }

    /// Every tile kind, level, layout and epilogue against the f64 reference, on sizes that
    /// leave every kind of tail.
    #[test]
    fn products_match_the_reference() {
        let mut cases = 0;
        for &(m, k, n) in &[
            (1, 1, 1),
            (8, 3, 16),
            (13, 7, 33),
            (24, 16, 49),
            (33, 20, 47),
            (40, 9, 100),
            (17, 64, 7),
        ] {
            let w = random(m * k, 1);
            let bias = random(m, 2);
            let x = random(k * n, 3);
            let r = random(m * n, 4);
            for level in levels() {
                for kind in [Kind::Rows, Kind::Cols, Kind::ColsT] {
                    let packed = Packed::new(level, kind, &w, &bias, m, k);
                    // input channels first or last; output channels first or last
                    for (x_last, out_last) in
                        [(false, false), (true, false), (false, true), (true, true)]
                    {
                        if (kind == Kind::Rows && (x_last || out_last))
                            || (kind == Kind::ColsT && out_last)
                        {
                            continue;
                        }
                        let (xr, xc) = if x_last { (1, k) } else { (n, 1) };
                        let (or, oc) = if out_last { (1, m) } else { (n, 1) };
                        for variant in 0..3 {
                            let res_ch = [0, m, m / 2 + 1][variant];
                            let (pre, post) = match variant {
                                0 => (Some((0.0, 6.0)), None),
                                1 => (None, None),
                                _ => (Some((-0.1, 0.2)), Some((0.0, f32::INFINITY))),
                            };
                            let (rr, rc) = if out_last { (1, res_ch) } else { (n, 1) };
                            let res = (res_ch > 0).then_some((&r[..], rr, rc, res_ch));
                            let want = reference(
                                &w,
                                &bias,
                                &x,
                                (m, k, n),
                                (xr, xc),
                                pre,
                                res,
                                post,
                                (or, oc),
                            );
                            let mut got = vec![f32::NAN; m * n];
                            let ep = Epilogue {
                                pre,
                                residual: res.map(|(r, rr, rc, ch)| {
                                    (
                                        Mat {
                                            ptr: r.as_ptr(),
                                            rs: rr,
                                            cs: rc,
                                        },
                                        ch,
                                    )
                                }),
                                post,
                            };
                            // columns tiles, channels first, even K: the input in two runs
                            // of K with a gap of 3 rows between them (a convolution's patch)
                            let split = !x_last && k % 2 == 0;
                            let (xs, segments) = if split {
                                let mut xs = vec![f32::NAN; (k + 3) * n];
                                xs[..k / 2 * n].copy_from_slice(&x[..k / 2 * n]);
                                xs[(k / 2 + 3) * n..].copy_from_slice(&x[k / 2 * n..]);
                                (xs, vec![0, (k / 2 + 3) * n])
                            } else {
                                (x.clone(), vec![0])
                            };
                            // in two halves of the pixels, as two threads would
                            let step = packed.n_step();
                            let half = (n / 2).div_ceil(step) * step;
                            for cols in [0..half.min(n), half.min(n)..n] {
                                // SAFETY: `xs`, `got` and the residual are sized for `K × N`,
                                // `M × N` and `ch × N` through the strides and segments above
                                unsafe {
                                    run(
                                        &packed,
                                        Mat {
                                            ptr: xs.as_ptr(),
                                            rs: xr,
                                            cs: xc,
                                        },
                                        &segments,
                                        Mat {
                                            ptr: got.as_mut_ptr(),
                                            rs: or,
                                            cs: oc,
                                        },
                                        &ep,
                                        0..packed.m_tiles(),
                                        cols,
                                    )
                                };
                            }
                            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                                assert!(
                                    (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                                    "{level:?} {kind:?} m{m} k{k} n{n} x_last {x_last} out_last {out_last} variant {variant}: [{i}] {g} vs {w}"
                                );
                            }
                            cases += 1;
                        }
                    }
                }
            }
        }
        assert!(cases >= 7 * 8 * 3, "{cases} cases");
    }
}
