//! The depthwise convolution's inner loops, one body for every instruction set.
//!
//! A plane is computed from a *phase buffer* (see [`Geometry`]): the zero-padded input
//! rows split by column phase, so that every tap of every output point is a contiguous read at a
//! fixed offset from the output row's base. The loop below is then the same for every kernel
//! size, stride and padding: for a few output vectors at a time, one fused multiply-add per tap.
//!
//! [`Lanes`] abstracts the vector: AVX-512 (16 lanes), AVX2 + FMA (8), WebAssembly SIMD128 (4,
//! when the crate is compiled with `+simd128`) and a portable 8-lane array the compiler
//! vectorises for the baseline target. The x86 copies are chosen at run time.

use crate::error::{ensure, SizeError};
use crate::isa::{dispatch, Kernel, Lanes, Level};
use crate::parallel::{chunks, for_parts, parts_for, planes, SendPtr};
use std::cell::RefCell;
use std::mem::MaybeUninit;

/// Shape and arithmetic of one depthwise convolution.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    /// images per run (1 for a CHW input)
    pub batch: usize,
    pub channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

impl Geometry {
    /// Floats in a phase row: enough for every output vector (rounded up to `lanes`) and the
    /// widest tap offset within a phase.
    fn phase_row(&self, lanes: usize) -> usize {
        self.out_w.div_ceil(lanes) * lanes + (self.kw - 1) / self.stride_w
    }

    /// The instruction set and, channels first, the tap offsets: `forced`, else the best set,
    /// except that 16-lane vectors would be half empty on output rows of 8 or fewer (channels
    /// first) and would leave fewer than 16 channels to scalar code (channels last), which take
    /// 8 lanes.
    pub fn setup(&self, forced: Option<Level>, channels_last: bool) -> Setup {
        let level = forced.unwrap_or_else(|| {
            let narrow = if channels_last {
                self.channels < 16
            } else {
                self.out_w <= 8
            };
            match Level::best() {
                Level::Avx512 if narrow && Level::Avx2.available() => Level::Avx2,
                best => best,
            }
        });
        let direct = !channels_last && rows_apply(self);
        let (offsets, row_stride) = if channels_last || direct {
            (vec![], 0)
        } else {
            self.offsets(level.lanes())
        };
        Setup {
            level,
            direct,
            offsets,
            row_stride,
        }
    }

    /// Multiply-adds (or, pooling, taps) of a run over every plane.
    pub fn work(&self) -> usize {
        self.batch * self.channels * self.out_h * self.out_w * self.kh * self.kw
    }

    /// Whether there is an output and every window covers at least one input pixel (where one
    /// covers only padding, tract's own conventions apply, so its op stays).
    pub fn every_window_reads_input(&self) -> bool {
        self.out_h > 0
            && self.out_w > 0
            && self.pad_top < self.kh
            && self.pad_left < self.kw
            && (self.out_h - 1) * self.stride_h < self.in_h + self.pad_top
            && (self.out_w - 1) * self.stride_w < self.in_w + self.pad_left
    }

    /// Padded input rows the outputs read.
    fn padded_rows(&self) -> usize {
        (self.out_h.max(1) - 1) * self.stride_h + self.kh
    }

    /// Tap offsets (row-major over the kernel) relative to an output row's base, and the
    /// distance between two output rows' bases.
    fn offsets(&self, lanes: usize) -> (Vec<usize>, usize) {
        let row = self.phase_row(lanes);
        let s = self.stride_w;
        let offsets = (0..self.kh)
            .flat_map(|ky| (0..self.kw).map(move |kx| (ky * s + kx % s) * row + kx / s))
            .collect();
        (offsets, self.stride_h * s * row)
    }

    /// Fill `buf` with the phase rows of one input plane, padding with `pad`.
    fn fill_phases(&self, plane: &[f32], lanes: usize, pad: f32, buf: &mut Vec<f32>) {
        let row = self.phase_row(lanes);
        let s = self.stride_w;
        let rows = self.padded_rows();
        buf.clear();
        buf.resize(rows * s * row, pad);
        for r in 0..rows {
            let Some(iy) = r.checked_sub(self.pad_top).filter(|&iy| iy < self.in_h) else {
                continue; // padding rows
            };
            let src = &plane[iy * self.in_w..(iy + 1) * self.in_w];
            if s == 1 && self.pad_left < row {
                let dst = &mut buf[r * row..(r + 1) * row];
                let n = self.in_w.min(row.saturating_sub(self.pad_left));
                dst[self.pad_left..self.pad_left + n].copy_from_slice(&src[..n]);
                continue;
            }
            for p in 0..s {
                let dst = &mut buf[(r * s + p) * row..(r * s + p + 1) * row];
                // padded column j = q * s + p reads input column j - pad_left: the first q
                // with j >= pad_left, then every s-th input column
                let q0 = (self.pad_left + s - 1 - p) / s;
                let Some(ix0) = (q0 * s + p).checked_sub(self.pad_left) else {
                    continue;
                };
                for (d, &v) in dst.iter_mut().skip(q0).zip(src.iter().skip(ix0).step_by(s)) {
                    *d = v;
                }
            }
        }
    }
}

/// What a plane computes from its taps.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// the weighted sum plus bias, then the optional clamp (convolution)
    Sum(Option<(f32, f32)>),
    /// the maximum, padding with -inf (max pooling)
    Max,
}

/// What an op's runs share, fixed when it is built ([`Geometry::setup`]): the instruction set
/// and, channels first, the tap offsets into the phase buffer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Setup {
    pub level: Level,
    /// channels first, strides 1 and 2: computed straight from the input (no phase buffer)
    pub direct: bool,
    offsets: Vec<usize>,
    row_stride: usize,
}

impl Geometry {
    /// Every plane of `input` (`[.., C, H, W]`) into `output`, as `setup` says; `weights`
    /// (`[C][kh * kw]`) and `bias` (`[C]`) are empty for [`Mode::Max`].
    pub fn run(
        &self,
        setup: &Setup,
        input: &[f32],
        output: &mut [f32],
        mode: Mode,
        weights: &[f32],
        bias: &[f32],
    ) -> Result<(), SizeError> {
        let (in_plane, out_plane) = (self.in_h * self.in_w, self.out_h * self.out_w);
        let count = self.batch * self.channels;
        ensure!(input.len() == count * in_plane && output.len() == count * out_plane);
        let level = setup.level;
        let lanes = level.lanes();
        let (max, clamp, pad) = match mode {
            Mode::Sum(clamp) => (false, clamp, 0.0),
            Mode::Max => (true, None, f32::NEG_INFINITY),
        };
        let taps = self.kh * self.kw;
        ensure!(max || (weights.len() == self.channels * taps && bias.len() == self.channels));
        thread_local! {
            static PHASES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
        }
        if setup.direct {
            // strides 1 and 2: a padded copy of each plane, then every tap a plain load; the
            // planes of a thread's share in runs of consecutive channels
            return chunks(
                input,
                in_plane,
                output,
                out_plane,
                taps,
                |first, input, out| {
                    let count = out.len() / out_plane;
                    let mut p = 0;
                    while p < count {
                        let c = (first + p) % self.channels;
                        let n = (self.channels - c).min(count - p);
                        let (w, b) = if max {
                            (&[][..], &[][..])
                        } else {
                            (&weights[c * taps..(c + n) * taps], &bias[c..c + n])
                        };
                        let planes = Planes {
                            input: &input[p * in_plane..(p + n) * in_plane],
                            in_stride: in_plane,
                            out_stride: out_plane,
                            count: n,
                        };
                        self.run_direct(
                            level,
                            planes,
                            &mut out[p * out_plane..(p + n) * out_plane],
                            max,
                            w,
                            b,
                            clamp,
                        );
                        p += n;
                    }
                },
            );
        }
        planes(input, in_plane, output, out_plane, taps, |p, input, out| {
            PHASES.with_borrow_mut(|buf| {
                self.fill_phases(input, lanes, pad, buf);
                let c = p % self.channels;
                let (weights, bias) = if max {
                    (&[][..], 0.0)
                } else {
                    (&weights[c * taps..(c + 1) * taps], bias[c])
                };
                let args = PlaneArgs {
                    max,
                    offsets: &setup.offsets,
                    weights,
                    bias,
                    clamp,
                    out_h: self.out_h,
                    out_w: self.out_w,
                    row_stride: setup.row_stride,
                };
                run_plane(level, buf, out, &args);
            })
        })
    }
}

impl Geometry {
    /// Every image of a channels-last `input` (`[N, H, W, C]`) into `output` at `level`, each
    /// image's output rows split between the run's threads: `weights` tap-major (`[kh * kw][C]`),
    /// `bias` `[C]`, `zeros` a row of `in_w * C` zeros (what taps above and below the image read).
    #[allow(clippy::too_many_arguments)]
    pub fn run_last(
        &self,
        level: Level,
        input: &[f32],
        output: &mut [f32],
        weights: &[f32],
        bias: &[f32],
        clamp: Option<(f32, f32)>,
        zeros: &[f32],
    ) -> Result<(), SizeError> {
        let g = self;
        let taps = g.kh * g.kw;
        let args = ChannelsLast {
            geo: g,
            weights,
            bias,
            clamp,
            zeros,
        };
        let (in_image, row) = (g.in_h * g.in_w * g.channels, g.out_w * g.channels);
        ensure!(input.len() == g.batch * in_image && output.len() == g.batch * g.out_h * row);
        let parts = parts_for(g.out_h * row * taps, g.out_h);
        let per = g.out_h.div_ceil(parts);
        for b in 0..g.batch {
            let input = &input[b * in_image..(b + 1) * in_image];
            let out = SendPtr(output[b * g.out_h * row..].as_mut_ptr());
            for_parts(parts, |part| {
                let rows = (part * per).min(g.out_h)..((part + 1) * per).min(g.out_h);
                // SAFETY: `rows` lies within this image's `out_h` rows of `output` (its length
                // checked above), and parts write disjoint runs of rows
                let out = unsafe {
                    std::slice::from_raw_parts_mut(
                        out.get().add(rows.start * row),
                        rows.len() * row,
                    )
                };
                run_channels_last(level, input, out, &args, rows);
            });
        }
        Ok(())
    }
}

/// Planes read by [`Geometry::run_direct`]: `count` of them, `in_stride` floats apart in
/// `input`, written `out_stride` apart.
pub struct Planes<'a> {
    pub input: &'a [f32],
    pub in_stride: usize,
    pub out_stride: usize,
    pub count: usize,
}

impl Geometry {
    /// Planes at strides 1 or 2 (see [`rows_apply`]) on this thread, through its
    /// padded buffer: `weights` and `bias` hold the planes' own (empty for pooling).
    #[allow(clippy::too_many_arguments)]
    pub fn run_direct(
        &self,
        level: Level,
        planes: Planes,
        out: &mut [f32],
        max: bool,
        weights: &[f32],
        bias: &[f32],
        clamp: Option<(f32, f32)>,
    ) {
        thread_local! {
            static PADDED: RefCell<(Vec<f32>, Option<Padded>)> = const { RefCell::new((Vec::new(), None)) };
        }
        let padded = Padded::new(self, level.or_portable().lanes(), max);
        PADDED.with_borrow_mut(|(buf, last)| {
            if *last != Some(padded) {
                // a new geometry: the border takes the padding value once (and room to start
                // the rows on a 64-byte boundary)
                buf.clear();
                buf.resize(padded.len() + 16, f32::from_bits(padded.fill));
                *last = Some(padded);
            }
            let at = buf.as_ptr().align_offset(64).min(16);
            let buf = &mut buf[at..at + padded.len()];
            let args = RowsArgs {
                geo: self,
                max,
                weights,
                bias,
                clamp,
                in_stride: planes.in_stride,
                out_stride: planes.out_stride,
            };
            run_rows(level, planes.input, buf, &padded, out, &args, planes.count);
        })
    }
}

impl std::fmt::Display for Geometry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}x{} stride {}x{} pad {},{} on {}x{}x{} -> {}x{}",
            self.kh,
            self.kw,
            self.stride_h,
            self.stride_w,
            self.pad_top,
            self.pad_left,
            self.channels,
            self.in_h,
            self.in_w,
            self.out_h,
            self.out_w
        )
    }
}

/// Most taps a kernel may have here (7×7); larger ones stay with tract's own op.
pub const MAX_TAPS: usize = 49;

/// What a plane needs besides its data: tap offsets into the phase buffer (relative to an output
/// row's base), weights, bias and the optional clamp (a fused ReLU / ReLU6 / clip).
pub struct PlaneArgs<'a> {
    /// the maximum over the taps instead of the weighted sum (max pooling: weights, bias and
    /// clamp unused)
    pub max: bool,
    pub offsets: &'a [usize],
    pub weights: &'a [f32],
    pub bias: f32,
    pub clamp: Option<(f32, f32)>,
    /// output rows and columns
    pub out_h: usize,
    pub out_w: usize,
    /// distance in the phase buffer between the bases of two consecutive output rows
    pub row_stride: usize,
}

/// Output vectors computed together: independent accumulator chains keep the FMA units busy
/// (one chain would wait on each multiply-add's latency).
const GROUP: usize = 4;

/// Compute one plane. `src` is the phase buffer, which must hold, for every output row `y`,
/// `y * row_stride + offset + round_up(out_w, L::N)` floats for every offset; `out` holds
/// `out_h * out_w` floats.
///
/// # Safety
/// The CPU must support `L`'s instruction set; `src` and `out` sized as above.
#[inline(always)]
unsafe fn plane<L: Lanes, const CLAMP: bool, const MAX: bool>(
    src: &[f32],
    out: &mut [f32],
    a: &PlaneArgs,
) {
    let taps = a.offsets.len();
    debug_assert!(taps <= MAX_TAPS && (MAX || taps == a.weights.len()));
    let per_row = a.out_w.div_ceil(L::N);
    debug_assert!(out.len() >= a.out_h * a.out_w);
    debug_assert!(
        a.out_h == 0
            || src.len()
                >= (a.out_h - 1) * a.row_stride
                    + a.offsets.iter().max().copied().unwrap_or(0)
                    + per_row * L::N
    );
    // SAFETY: this function's contract (its `# Safety`), which its caller upholds
    unsafe {
        let mut w = [MaybeUninit::<L>::uninit(); MAX_TAPS];
        for (t, slot) in w[..taps].iter_mut().enumerate() {
            slot.write(L::splat(if MAX { 0.0 } else { a.weights[t] }));
        }
        let w = &*(&w[..taps] as *const [MaybeUninit<L>] as *const [L]);
        let bias = L::splat(if MAX { f32::NEG_INFINITY } else { a.bias });
        let (lo, hi) = a.clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
        let (lo, hi) = (L::splat(lo), L::splat(hi));
        let src = src.as_ptr();
        let out = out.as_mut_ptr();
        let total = a.out_h * per_row;
        // where block `b` reads, where it writes, how many lanes it keeps
        let at = |b: usize| {
            let (y, xb) = (b / per_row, b % per_row);
            let x = xb * L::N;
            (
                y * a.row_stride + x,
                y * a.out_w + x,
                (a.out_w - x).min(L::N),
            )
        };
        let finish = |acc: L, o: usize, n: usize| {
            let acc = if CLAMP { acc.clamp(lo, hi) } else { acc };
            if n == L::N {
                acc.store(out.add(o));
            } else {
                acc.store_first(out.add(o), n);
            }
        };
        let mut b = 0;
        while b + GROUP <= total {
            let blocks: [(usize, usize, usize); GROUP] = std::array::from_fn(|i| at(b + i));
            let mut acc = [bias; GROUP];
            for (&off, &wt) in a.offsets.iter().zip(w) {
                for g in 0..GROUP {
                    let x = L::load(src.add(blocks[g].0 + off));
                    acc[g] = if MAX {
                        acc[g].max(x)
                    } else {
                        x.mul_add(wt, acc[g])
                    };
                }
            }
            for g in 0..GROUP {
                finish(acc[g], blocks[g].1, blocks[g].2);
            }
            b += GROUP;
        }
        while b < total {
            let (s, o, n) = at(b);
            let mut acc = bias;
            for (&off, &wt) in a.offsets.iter().zip(w) {
                let x = L::load(src.add(s + off));
                acc = if MAX { acc.max(x) } else { x.mul_add(wt, acc) };
            }
            finish(acc, o, n);
            b += 1;
        }
    }
}

/// # Safety
/// The CPU supports `L`'s instruction set, and the buffers are at least as large as the `run_*`
/// function calling this checked.
#[inline(always)]
unsafe fn plane_any<L: Lanes>(src: &[f32], out: &mut [f32], a: &PlaneArgs) {
    // SAFETY: this function's contract (its `# Safety`), which its caller upholds
    unsafe {
        match (a.max, a.clamp.is_some()) {
            (true, _) => plane::<L, false, true>(src, out, a),
            (false, true) => plane::<L, true, false>(src, out, a),
            (false, false) => plane::<L, false, false>(src, out, a),
        }
    }
}

/// One channels-first plane, strides 1 and 2. The plane is first copied into a buffer with a
/// border of padding (zeros, or -inf for pooling) wide enough that every load of every output
/// vector is a plain load inside it, its columns split by phase at horizontal stride 2 (even
/// columns, then odd ones: every tap is then a contiguous read). Then four output vectors at a
/// time, every tap one load at a fixed offset, the common kernel sizes unrolled.
pub struct RowsArgs<'a> {
    pub geo: &'a Geometry,
    /// the maximum over the taps instead of the weighted sum (max pooling)
    pub max: bool,
    /// `kh * kw` weights per plane, row-major (empty for pooling)
    pub weights: &'a [f32],
    /// one bias per plane (empty for pooling)
    pub bias: &'a [f32],
    pub clamp: Option<(f32, f32)>,
    /// floats from one input plane to the next, and output plane (at least the planes' sizes)
    pub in_stride: usize,
    pub out_stride: usize,
}

/// Output rows computed together.
const ROWS: usize = 4;

/// The padded, phase-split copy of a plane: its size and where the plane sits in it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Padded {
    /// floats per phase of a buffer row; phases per row (the horizontal stride)
    pub phase: usize,
    pub phases: usize,
    /// buffer rows
    pub height: usize,
    /// the plane's first row and column (in padded, unsplit columns) in the buffer
    pub top: usize,
    pub left: usize,
    /// the plane's size
    pub in_h: usize,
    pub in_w: usize,
    /// the padding value's bits
    pub fill: u32,
}

impl Padded {
    /// The buffer a plane of `geo` needs at `lanes` (every output vector of every row group
    /// reads inside it).
    pub fn new(geo: &Geometry, lanes: usize, max: bool) -> Padded {
        let s = geo.stride_w;
        let vectors = geo.out_w.div_ceil(lanes);
        // every output vector reads two whole vectors per phase, the copy of a row writes whole
        // vectors; rows start 64-byte aligned
        let phase = ((vectors + 1) * lanes)
            .max(geo.pad_left.div_ceil(s) + (geo.in_w.div_ceil(s * lanes) + 1) * lanes)
            .next_multiple_of(16);
        let groups = geo.out_h.div_ceil(ROWS);
        let height = ((groups * ROWS - 1) * geo.stride_h + geo.kh).max(geo.pad_top + geo.in_h);
        Padded {
            phase,
            phases: s,
            height,
            top: geo.pad_top,
            left: geo.pad_left,
            in_h: geo.in_h,
            in_w: geo.in_w,
            fill: if max { f32::NEG_INFINITY } else { 0.0 }.to_bits(),
        }
    }

    /// Floats per buffer row.
    pub fn width(&self) -> usize {
        self.phase * self.phases
    }

    /// Floats in the buffer.
    pub fn len(&self) -> usize {
        self.width() * self.height
    }

    /// Whether the buffer holds nothing (no plane).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Copy `plane` into the padded buffer `buf` (whose borders already hold the padding). The last
/// vector of a row is loaded with the padding value in the lanes past the row and stored whole
/// (the buffer has room; a masked store is slow).
///
/// # Safety
/// The CPU supports `L`'s instruction set, and the buffers are at least as large as the `run_*`
/// function calling this checked.
#[inline(always)]
unsafe fn fill_padded<L: Lanes>(plane: &[f32], buf: &mut [f32], pad: &Padded) {
    let (w, left) = (pad.in_w, pad.left);
    let fill = f32::from_bits(pad.fill);
    // SAFETY: this function's contract (its `# Safety`), which its caller upholds
    unsafe {
        let dst0 = buf.as_mut_ptr();
        for y in 0..pad.in_h {
            let src = plane.as_ptr().add(y * w);
            let row = dst0.add((pad.top + y) * pad.width());
            let mut i = 0;
            if pad.phases == 1 {
                let dst = row.add(left);
                while i + L::N <= w {
                    L::load(src.add(i)).store(dst.add(i));
                    i += L::N;
                }
                if i < w {
                    L::load_range(src.add(i), 0, w - i, fill).store(dst.add(i));
                }
            } else {
                // input column x goes to padded column x + left: phase (x + left) % 2, index
                // (x + left) / 2; even input columns to one phase, odd ones to the other
                let (even, odd) = if left % 2 == 0 {
                    (row.add(left / 2), row.add(pad.phase + left / 2))
                } else {
                    (
                        row.add(pad.phase + (left - 1) / 2),
                        row.add(left.div_ceil(2)),
                    )
                };
                while i < w {
                    let n = (w - i).min(2 * L::N);
                    let (a, b) = if n == 2 * L::N {
                        (L::load(src.add(i)), L::load(src.add(i + L::N)))
                    } else {
                        let a = L::load_range(src.add(i), 0, n.min(L::N), fill);
                        let b = if n > L::N {
                            L::load_range(src.add(i + L::N), 0, n - L::N, fill)
                        } else {
                            L::splat(fill)
                        };
                        (a, b)
                    };
                    // past the row: the padding value, stored whole into the buffer's slack
                    L::even(a, b).store(even.add(i / 2));
                    L::odd(a, b).store(odd.add(i / 2));
                    i += n;
                }
            }
        }
    }
}

/// Every output vector of a plane from its padded copy, [`JOBS`] (row, vector) pairs at a time.
/// `KH`×`KW` at horizontal stride `S` (`KH == 0`: any kernel, taps in a loop, unaligned loads):
/// for each tap row and phase two aligned vectors are loaded, and tap `kx` is the phase
/// `kx % S` shifted by `kx / S` lanes ([`Lanes::shifted`]).
///
/// # Safety
/// The CPU supports `L`'s instruction set, and the buffers are at least as large as the `run_*`
/// function calling this checked.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn plane_padded<
    L: Lanes,
    const CLAMP: bool,
    const MAX: bool,
    const KH: usize,
    const KW: usize,
    const S: usize,
>(
    buf: *const f32,
    pad: &Padded,
    out: &mut [f32],
    a: &RowsArgs,
    wv: &[L],
    bias: f32,
    offsets: &[usize],
) {
    let g = a.geo;
    let width = pad.width();
    let vectors = g.out_w.div_ceil(L::N);
    let total = g.out_h * vectors;
    // SAFETY: this function's contract (its `# Safety`), which its caller upholds
    unsafe {
        let bias = L::splat(if MAX { f32::NEG_INFINITY } else { bias });
        let (lo, hi) = a.clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
        let (lo, hi) = (L::splat(lo), L::splat(hi));
        let dst = out.as_mut_ptr();
        let (wp, op) = (wv.as_ptr(), offsets.as_ptr());
        let (mut y, mut xv) = (0, 0);
        let mut job = 0;
        while job < total {
            let n = JOBS.min(total - job);
            // each job: where its window starts, where it writes, how many lanes it keeps
            let mut base = [buf; JOBS];
            let mut dest = [(dst, 0usize); JOBS];
            for j in 0..JOBS {
                if j < n {
                    let x0 = xv * L::N;
                    base[j] = buf.add(y * g.stride_h * width + x0);
                    dest[j] = (dst.add(y * g.out_w + x0), L::N.min(g.out_w - x0));
                    xv += 1;
                    if xv == vectors {
                        xv = 0;
                        y += 1;
                    }
                } else {
                    // a repeat of the first job, computed and not stored
                    base[j] = base[0];
                }
            }
            let mut acc = [bias; JOBS];
            if KH == 0 {
                for t in 0..offsets.len() {
                    let (o, w) = (*op.add(t), *wp.add(t));
                    for j in 0..JOBS {
                        let x = L::load(base[j].add(o));
                        acc[j] = if MAX {
                            acc[j].max(x)
                        } else {
                            x.mul_add(w, acc[j])
                        };
                    }
                }
            } else {
                for ky in 0..KH {
                    for p in 0..S.min(KW) {
                        let row: [*const f32; JOBS] =
                            std::array::from_fn(|j| base[j].add(ky * width + p * pad.phase));
                        let av: [L; JOBS] = std::array::from_fn(|j| L::load(row[j]));
                        let bv: [L; JOBS] = std::array::from_fn(|j| {
                            if KW > S {
                                L::load(row[j].add(L::N))
                            } else {
                                av[j]
                            }
                        });
                        let mut kx = p;
                        while kx < KW {
                            let w = *wp.add(ky * KW + kx);
                            for j in 0..JOBS {
                                let x = match kx / S {
                                    0 => av[j],
                                    1 => L::shifted::<1>(row[j], av[j], bv[j]),
                                    2 => L::shifted::<2>(row[j], av[j], bv[j]),
                                    3 => L::shifted::<3>(row[j], av[j], bv[j]),
                                    4 => L::shifted::<4>(row[j], av[j], bv[j]),
                                    5 => L::shifted::<5>(row[j], av[j], bv[j]),
                                    _ => L::shifted::<6>(row[j], av[j], bv[j]),
                                };
                                acc[j] = if MAX {
                                    acc[j].max(x)
                                } else {
                                    x.mul_add(w, acc[j])
                                };
                            }
                            kx += S;
                        }
                    }
                }
            }
            for j in 0..n {
                let v = if CLAMP { acc[j].clamp(lo, hi) } else { acc[j] };
                let (o, lanes) = dest[j];
                if lanes == L::N {
                    v.store(o);
                } else {
                    v.store_first(o, lanes);
                }
            }
            job += n;
        }
    }
}

/// A 3×3 kernel at stride `S` (1 or 2, both axes) on [`ROWS`] output rows by `V` vectors from
/// the padded copy: each input row's vectors are loaded once (per phase), the column taps made
/// by shifting in registers, and each feeds every output row whose window covers that row.
/// `rows[i]` points at input row `i` of the group (its first column of output vector 0).
///
/// # Safety
/// The CPU supports `L`'s instruction set, and the buffers are at least as large as the `run_*`
/// function calling this checked.
#[inline(always)]
unsafe fn k3<L: Lanes, const MAX: bool, const S: usize, const V: usize>(
    rows: &[*const f32; 9],
    phase: usize,
    w: &[L; 9],
    acc: &mut [[L; V]; ROWS],
) {
    // SAFETY: this function's contract (its `# Safety`), which its caller upholds
    unsafe {
        macro_rules! input_row {
            ($i:literal) => {{
                let p = rows[$i];
                for v in 0..V {
                    let q = p.add(v * L::N);
                    // the three column taps of this row for output vector v
                    let t: [L; 3] = if S == 1 {
                        let (a, b) = (L::load(q), L::load(q.add(L::N)));
                        [a, L::shifted::<1>(q, a, b), L::shifted::<2>(q, a, b)]
                    } else {
                        // even columns, odd columns, even columns one further
                        let (a, b) = (L::load(q), L::load(q.add(L::N)));
                        [a, L::load(q.add(phase)), L::shifted::<1>(q, a, b)]
                    };
                    for ky in 0..3 {
                        // output row r reads input row S * r + ky
                        if $i >= ky && ($i - ky) % S == 0 && ($i - ky) / S < ROWS {
                            let r = ($i - ky) / S;
                            for kx in 0..3 {
                                let x = t[kx];
                                acc[r][v] = if MAX {
                                    acc[r][v].max(x)
                                } else {
                                    x.mul_add(w[ky * 3 + kx], acc[r][v])
                                };
                            }
                        }
                    }
                }
            }};
        }
        input_row!(0);
        input_row!(1);
        input_row!(2);
        input_row!(3);
        input_row!(4);
        input_row!(5);
        if S == 2 {
            input_row!(6);
            input_row!(7);
            input_row!(8);
        }
    }
}

/// A whole plane through [`k3`]: row groups, vectors in pairs then one.
///
/// # Safety
/// The CPU supports `L`'s instruction set, and the buffers are at least as large as the `run_*`
/// function calling this checked.
#[inline(always)]
unsafe fn plane_k3<L: Lanes, const CLAMP: bool, const MAX: bool, const S: usize>(
    buf: *const f32,
    pad: &Padded,
    out: &mut [f32],
    a: &RowsArgs,
    wv: &[L],
    bias: f32,
) {
    let g = a.geo;
    let width = pad.width();
    let vectors = g.out_w.div_ceil(L::N);
    // SAFETY: this function's contract (its `# Safety`), which its caller upholds
    unsafe {
        let w: [L; 9] = std::array::from_fn(|t| wv[t]);
        let bias = L::splat(if MAX { f32::NEG_INFINITY } else { bias });
        let (lo, hi) = a.clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
        let (lo, hi) = (L::splat(lo), L::splat(hi));
        let dst = out.as_mut_ptr();
        let mut oy = 0;
        while oy < g.out_h {
            let n_rows = ROWS.min(g.out_h - oy);
            let first = buf.add(oy * S * width);
            let mut xv = 0;
            while xv < vectors {
                let x0 = xv * L::N;
                let rows: [*const f32; 9] = std::array::from_fn(|i| first.add(i * width + x0));
                macro_rules! finish {
                    ($v:literal, $acc:expr) => {
                        for (r, acc) in $acc.iter().enumerate().take(n_rows) {
                            for (v, &x) in acc.iter().enumerate() {
                                let x = if CLAMP { x.clamp(lo, hi) } else { x };
                                let col = x0 + v * L::N;
                                let o = dst.add((oy + r) * g.out_w + col);
                                let lanes = L::N.min(g.out_w - col);
                                if lanes == L::N {
                                    x.store(o);
                                } else {
                                    x.store_first(o, lanes);
                                }
                            }
                        }
                    };
                }
                if xv + 2 <= vectors && L::N >= 16 {
                    let mut acc = [[bias; 2]; ROWS];
                    k3::<L, MAX, S, 2>(&rows, pad.phase, &w, &mut acc);
                    finish!(2, acc);
                    xv += 2;
                } else {
                    let mut acc = [[bias; 1]; ROWS];
                    k3::<L, MAX, S, 1>(&rows, pad.phase, &w, &mut acc);
                    finish!(1, acc);
                    xv += 1;
                }
            }
            oy += ROWS;
        }
    }
}

/// Output vectors computed together: independent accumulator chains keep the FMA units busy.
const JOBS: usize = 4;

/// Every plane of `input` into `out` (`planes` of them, each through the padded buffer).
///
/// # Safety
/// The CPU supports `L`'s instruction set, and the buffers are at least as large as the `run_*`
/// function calling this checked.
#[inline(always)]
unsafe fn planes_padded<L: Lanes, const CLAMP: bool, const MAX: bool>(
    input: &[f32],
    buf: &mut [f32],
    pad: &Padded,
    out: &mut [f32],
    a: &RowsArgs,
    planes: usize,
) {
    let g = a.geo;
    let taps = g.kh * g.kw;
    let s = g.stride_w;
    let (in_plane, out_plane) = (g.in_h * g.in_w, g.out_h * g.out_w);
    let (in_stride, out_stride) = (a.in_stride, a.out_stride);
    // tap (ky, kx) of an output vector reads buffer row ky below its window's first row, phase
    // kx % s, kx / s floats in
    let mut offsets = [0usize; MAX_TAPS];
    for ky in 0..g.kh {
        for kx in 0..g.kw {
            offsets[ky * g.kw + kx] = ky * pad.width() + (kx % s) * pad.phase + kx / s;
        }
    }
    let offsets = &offsets[..taps];
    // shifts by up to kw / s lanes within two vectors
    let fits = (g.kw - 1) / s < L::N;
    let kind = match (g.kh, g.kw, s, g.stride_h) {
        (3, 3, 1, 1) => 0,
        (3, 3, 2, 2) => 1,
        (3, 3, 1, _) if fits => 2,
        (3, 3, 2, _) if fits => 3,
        (5, 5, 1, _) if fits => 4,
        (5, 5, 2, _) if fits => 5,
        (2, 2, 2, _) => 6,
        _ => 7,
    };
    // SAFETY: this function's contract (its `# Safety`), which its caller upholds
    unsafe {
        let mut wv = [L::splat(0.0); MAX_TAPS];
        for p in 0..planes {
            fill_padded::<L>(&input[p * in_stride..p * in_stride + in_plane], buf, pad);
            let bias = if MAX { 0.0 } else { a.bias[p] };
            if !MAX {
                for (t, w) in wv[..taps].iter_mut().enumerate() {
                    *w = L::splat(a.weights[p * taps + t]);
                }
            }
            let wv = &wv[..taps];
            let out = &mut out[p * out_stride..p * out_stride + out_plane];
            let b = buf.as_ptr();
            match kind {
                0 => plane_k3::<L, CLAMP, MAX, 1>(b, pad, out, a, wv, bias),
                1 => plane_k3::<L, CLAMP, MAX, 2>(b, pad, out, a, wv, bias),
                2 => plane_padded::<L, CLAMP, MAX, 3, 3, 1>(b, pad, out, a, wv, bias, offsets),
                3 => plane_padded::<L, CLAMP, MAX, 3, 3, 2>(b, pad, out, a, wv, bias, offsets),
                4 => plane_padded::<L, CLAMP, MAX, 5, 5, 1>(b, pad, out, a, wv, bias, offsets),
                5 => plane_padded::<L, CLAMP, MAX, 5, 5, 2>(b, pad, out, a, wv, bias, offsets),
                6 => plane_padded::<L, CLAMP, MAX, 2, 2, 2>(b, pad, out, a, wv, bias, offsets),
                _ => plane_padded::<L, CLAMP, MAX, 0, 0, 1>(b, pad, out, a, wv, bias, offsets),
            }
        }
    }
}

/// # Safety
/// The CPU supports `L`'s instruction set, and the buffers are at least as large as the `run_*`
/// function calling this checked.
#[inline(always)]
unsafe fn planes_any<L: Lanes>(
    input: &[f32],
    buf: &mut [f32],
    pad: &Padded,
    out: &mut [f32],
    a: &RowsArgs,
    planes: usize,
) {
    // SAFETY: this function's contract (its `# Safety`), which its caller upholds
    unsafe {
        match (a.max, a.clamp.is_some()) {
            (true, _) => planes_padded::<L, false, true>(input, buf, pad, out, a, planes),
            (false, true) => planes_padded::<L, true, false>(input, buf, pad, out, a, planes),
            (false, false) => planes_padded::<L, false, false>(input, buf, pad, out, a, planes),
        }
    }
}

/// Whether [`run_rows`] computes `geo`: strides 1 and 2, kernels up to 7×7, any padding.
pub fn rows_apply(geo: &Geometry) -> bool {
    matches!(geo.stride_w, 1 | 2) && matches!(geo.stride_h, 1 | 2) && geo.kw <= 7 && geo.kh <= 7
}

/// Compute `planes` channels-first planes at `level` through the padded buffer `buf` (see
/// [`RowsArgs`], [`Padded`]), which holds `pad.len()` floats whose border is the padding.
pub fn run_rows(
    level: Level,
    input: &[f32],
    buf: &mut [f32],
    pad: &Padded,
    out: &mut [f32],
    a: &RowsArgs,
    planes: usize,
) {
    let g = a.geo;
    let lanes = level.or_portable().lanes();
    let taps = g.kh * g.kw;
    assert!(
        rows_apply(g)
            && *pad == Padded::new(g, lanes, a.max)
            && a.in_stride >= g.in_h * g.in_w
            && a.out_stride >= g.out_h * g.out_w
            && (planes == 0 || input.len() >= (planes - 1) * a.in_stride + g.in_h * g.in_w)
            && buf.len() >= pad.len()
            && (planes == 0 || out.len() >= (planes - 1) * a.out_stride + g.out_h * g.out_w)
            && (a.max || (a.weights.len() >= planes * taps && a.bias.len() >= planes)),
        "depthwise planes do not fit"
    );
    // SAFETY: the buffers' sizes are checked above
    unsafe {
        dispatch(
            level,
            Rows {
                input,
                buf,
                pad,
                out,
                a,
                planes,
            },
        )
    }
}

/// One channels-last (`[H, W, C]`) image of a depthwise convolution: every output pixel is
/// `C` consecutive floats. For 3×3 and 5×5 kernels at stride 1 and 2, each output row runs as
/// blocks of channels (two vectors with 32 registers, else one) whose taps' weights stay in
/// registers while four pixels at a time take them: input rows above or below the image are
/// read from a zero row, and the tiles at the left and right borders skip the columns outside
/// it. The channels after the last whole vector and other kernels take, per pixel, the taps
/// that fall inside the image.
pub struct ChannelsLast<'a> {
    pub geo: &'a Geometry,
    /// `[kh * kw][C]`
    pub weights: &'a [f32],
    /// `[C]`
    pub bias: &'a [f32],
    pub clamp: Option<(f32, f32)>,
    /// at least `in_w * C` zeros: the rows above and below the image
    pub zeros: &'a [f32],
}

impl ChannelsLast<'_> {
    /// The taps of output coordinate `o` that fall inside an axis of `len` (range of k).
    fn taps(o: usize, stride: usize, pad: usize, k: usize, len: usize) -> (usize, usize) {
        let start = (o * stride) as isize - pad as isize;
        let first = (-start).max(0) as usize;
        let last = (len as isize - start).clamp(0, k as isize) as usize;
        (first.min(last), last)
    }

    /// Output columns whose window lies inside the image's columns.
    fn inner_columns(&self) -> std::ops::Range<usize> {
        let g = self.geo;
        let lo = g.pad_left.div_ceil(g.stride_w).min(g.out_w);
        let hi = if g.in_w + g.pad_left >= g.kw {
            ((g.in_w + g.pad_left - g.kw) / g.stride_w + 1).min(g.out_w)
        } else {
            0
        };
        lo..hi.max(lo)
    }
}

/// Output pixel `(oy, ox)` from channel `from` on, over the taps inside the image.
///
/// # Safety
/// The CPU supports `L`'s instruction set, and the buffers are at least as large as the `run_*`
/// function calling this checked.
#[inline(always)]
unsafe fn pixel<L: Lanes, const CLAMP: bool>(
    src: *const f32,
    out: *mut f32,
    a: &ChannelsLast,
    (oy, ox): (usize, usize),
    from: usize,
) {
    let g = a.geo;
    let c = g.channels;
    let (lo, hi) = a.clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
    let (w, b) = (a.weights.as_ptr(), a.bias.as_ptr());
    let full = c / L::N * L::N;
    let (ky0, ky1) = ChannelsLast::taps(oy, g.stride_h, g.pad_top, g.kh, g.in_h);
    let iy0 = oy * g.stride_h + ky0 - g.pad_top;
    let (kx0, kx1) = ChannelsLast::taps(ox, g.stride_w, g.pad_left, g.kw, g.in_w);
    let ix0 = ox * g.stride_w + kx0 - g.pad_left;
    // SAFETY: this function's contract (its `# Safety`), which its caller upholds
    unsafe {
        let dst = out.add((oy * g.out_w + ox) * c);
        let mut ch = from;
        while ch < full {
            let mut acc = L::load(b.add(ch));
            for ky in ky0..ky1 {
                let row = src.add(((iy0 + ky - ky0) * g.in_w + ix0) * c + ch);
                let wrow = w.add((ky * g.kw + kx0) * c + ch);
                for k in 0..kx1 - kx0 {
                    acc = L::load(row.add(k * c)).mul_add(L::load(wrow.add(k * c)), acc);
                }
            }
            if CLAMP {
                acc = acc.clamp(L::splat(lo), L::splat(hi));
            }
            acc.store(dst.add(ch));
            ch += L::N;
        }
        // the channels after the last whole vector
        for ch in ch..c {
            let mut acc = *b.add(ch);
            for ky in ky0..ky1 {
                for kx in kx0..kx1 {
                    let x = *src.add(((iy0 + ky - ky0) * g.in_w + ix0 + kx - kx0) * c + ch);
                    acc += x * *w.add((ky * g.kw + kx) * c + ch);
                }
            }
            if CLAMP {
                acc = acc.max(lo).min(hi);
            }
            *dst.add(ch) = acc;
        }
    }
}

/// One output row, channels `ch..ch + V * N`, `P` pixels at a time with the weights in
/// registers: each input column the tile reads is loaded once and taken by every tap that
/// covers it (stride `S`); in the tiles that reach past the inner columns, the columns outside
/// the image are skipped.
///
/// # Safety
/// The CPU supports `L`'s instruction set, and the buffers are at least as large as the `run_*`
/// function calling this checked.
#[inline(always)]
unsafe fn row_block<
    L: Lanes,
    const CLAMP: bool,
    const KH: usize,
    const KW: usize,
    const S: usize,
    const V: usize,
    const TAIL: bool,
>(
    rows: &[*const f32; KH],
    out: *mut f32,
    a: &ChannelsLast,
    oy: usize,
    inner: &std::ops::Range<usize>,
    (ch, n): (usize, usize),
) {
    const P: usize = 4;
    let g = a.geo;
    let c = g.channels;
    let (lo, hi) = a.clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
    // SAFETY: this function's contract (its `# Safety`), which its caller upholds
    unsafe {
        // a tail block (`TAIL`, one vector): its first `n` channels, loaded and stored masked
        let load = |p: *const f32| {
            if TAIL {
                L::load_first(p, n)
            } else {
                L::load(p)
            }
        };
        let (lo, hi) = (L::splat(lo), L::splat(hi));
        let w = a.weights.as_ptr().add(ch);
        let wv: [[[L; V]; KW]; KH] = std::array::from_fn(|ky| {
            std::array::from_fn(|kx| {
                std::array::from_fn(|v| load(w.add((ky * KW + kx) * c + v * L::N)))
            })
        });
        let bias: [L; V] = std::array::from_fn(|v| load(a.bias.as_ptr().add(ch + v * L::N)));
        let dst = out.add(oy * g.out_w * c + ch);
        let mut ox = 0;
        macro_rules! tile {
            ($p:expr, $edge:expr) => {{
                let mut acc = [bias; $p];
                // the tile's first input column (left of the image at the left edge)
                let first = (ox * S) as isize - g.pad_left as isize;
                for ky in 0..KH {
                    let row = rows[ky].wrapping_offset(first * c as isize + ch as isize);
                    for j in 0..($p - 1) * S + KW {
                        let ix = first + j as isize;
                        if $edge && (ix < 0 || ix as usize >= g.in_w) {
                            continue;
                        }
                        let col = row.wrapping_add(j * c);
                        let xv: [L; V] = std::array::from_fn(|v| load(col.add(v * L::N)));
                        for kx in 0..KW {
                            if j >= kx && (j - kx) % S == 0 && (j - kx) / S < $p {
                                let p = (j - kx) / S;
                                for v in 0..V {
                                    acc[p][v] = xv[v].mul_add(wv[ky][kx][v], acc[p][v]);
                                }
                            }
                        }
                    }
                }
                for p in 0..$p {
                    for v in 0..V {
                        let mut y = acc[p][v];
                        if CLAMP {
                            y = y.clamp(lo, hi);
                        }
                        if TAIL {
                            y.store_first(dst.add((ox + p) * c + v * L::N), n);
                        } else {
                            y.store(dst.add((ox + p) * c + v * L::N));
                        }
                    }
                }
                ox += $p;
            }};
        }
        while ox < g.out_w {
            let p = (g.out_w - ox).min(P);
            let edge = ox < inner.start || ox + p > inner.end;
            match (p, edge) {
                (4, false) => tile!(4, false),
                (4, true) => tile!(4, true),
                (3, _) => tile!(3, true),
                (2, _) => tile!(2, true),
                _ => tile!(1, true),
            }
        }
    }
}

/// # Safety
/// The CPU supports `L`'s instruction set, and the buffers are at least as large as the `run_*`
/// function calling this checked.
#[inline(always)]
unsafe fn rows_fixed<
    L: Lanes,
    const CLAMP: bool,
    const KH: usize,
    const KW: usize,
    const S: usize,
>(
    src: *const f32,
    out: *mut f32,
    a: &ChannelsLast,
    rows: std::ops::Range<usize>,
) {
    let g = a.geo;
    let c = g.channels;
    let inner = a.inner_columns();
    // two vectors per block where 32 registers hold 2 × KH × KW weights and 8 accumulators
    let wide = L::N == 16 && KH * KW <= 9;
    let block = if wide { 2 * L::N } else { L::N };
    let blocks = c / block * block;
    let full = c / L::N * L::N;
    // SAFETY: this function's contract (its `# Safety`), which its caller upholds
    unsafe {
        for oy in rows {
            let rows: [*const f32; KH] = std::array::from_fn(|ky| {
                let iy = (oy * g.stride_h + ky) as isize - g.pad_top as isize;
                if iy >= 0 && (iy as usize) < g.in_h {
                    src.add(iy as usize * g.in_w * c)
                } else {
                    a.zeros.as_ptr()
                }
            });
            let mut ch = 0;
            while ch < blocks {
                if wide {
                    row_block::<L, CLAMP, KH, KW, S, 2, false>(&rows, out, a, oy, &inner, (ch, 0));
                } else {
                    row_block::<L, CLAMP, KH, KW, S, 1, false>(&rows, out, a, oy, &inner, (ch, 0));
                }
                ch += block;
            }
            if ch < full {
                row_block::<L, CLAMP, KH, KW, S, 1, false>(&rows, out, a, oy, &inner, (ch, 0));
            }
            if full < c {
                // the last channels, fewer than a vector: the same tiles, masked
                let n = c - full;
                row_block::<L, CLAMP, KH, KW, S, 1, true>(&rows, out, a, oy, &inner, (full, n));
            }
        }
    }
}

/// # Safety
/// The CPU supports `L`'s instruction set, and the buffers are at least as large as the `run_*`
/// function calling this checked.
#[inline(always)]
unsafe fn channels_last<L: Lanes, const CLAMP: bool>(
    src: *const f32,
    out: *mut f32,
    a: &ChannelsLast,
    rows: std::ops::Range<usize>,
) {
    // SAFETY: this function's contract (its `# Safety`), which its caller upholds
    unsafe {
        match (a.geo.kh, a.geo.kw, a.geo.stride_w) {
            (3, 3, 1) => rows_fixed::<L, CLAMP, 3, 3, 1>(src, out, a, rows),
            (3, 3, 2) => rows_fixed::<L, CLAMP, 3, 3, 2>(src, out, a, rows),
            (5, 5, 1) => rows_fixed::<L, CLAMP, 5, 5, 1>(src, out, a, rows),
            (5, 5, 2) => rows_fixed::<L, CLAMP, 5, 5, 2>(src, out, a, rows),
            _ => {
                for oy in rows {
                    for ox in 0..a.geo.out_w {
                        pixel::<L, CLAMP>(src, out, a, (oy, ox), 0);
                    }
                }
            }
        }
    }
}

/// # Safety
/// The CPU supports `L`'s instruction set, and the buffers are at least as large as the `run_*`
/// function calling this checked.
#[inline(always)]
unsafe fn channels_last_any<L: Lanes>(
    src: *const f32,
    out: *mut f32,
    a: &ChannelsLast,
    rows: std::ops::Range<usize>,
) {
    // SAFETY: this function's contract (its `# Safety`), which its caller upholds
    unsafe {
        if a.clamp.is_some() {
            channels_last::<L, true>(src, out, a, rows)
        } else {
            channels_last::<L, false>(src, out, a, rows)
        }
    }
}

/// Compute output rows `rows` of one channels-last image at `level` (an unavailable level runs
/// the portable code) into `out`, which holds those rows.
pub fn run_channels_last(
    level: Level,
    input: &[f32],
    out: &mut [f32],
    a: &ChannelsLast,
    rows: std::ops::Range<usize>,
) {
    let g = a.geo;
    let taps = g.kh * g.kw;
    let row = g.out_w * g.channels;
    assert!(
        input.len() >= g.in_h * g.in_w * g.channels
            && rows.start <= rows.end
            && rows.end <= g.out_h
            && out.len() >= rows.len() * row
            && a.weights.len() == taps * g.channels
            && a.bias.len() == g.channels
            && a.zeros.len() >= g.in_w * g.channels
            && g.stride_h >= 1
            && g.stride_w >= 1
            // every output pixel sees at least one input pixel
            && (g.out_h == 0 || (g.out_h - 1) * g.stride_h < g.in_h + g.pad_top)
            && (g.out_w == 0 || (g.out_w - 1) * g.stride_w < g.in_w + g.pad_left)
            && g.pad_top < g.kh
            && g.pad_left < g.kw,
        "channels-last depthwise buffers do not fit"
    );
    // the kernels address output row `oy` at `oy * row` from the image's start
    let (src, out) = (
        input.as_ptr(),
        out.as_mut_ptr().wrapping_sub(rows.start * row),
    );
    // SAFETY: sizes checked above (each tap read is inside the image by `taps`, or in the
    // zero row; only rows `rows` are written)
    unsafe { dispatch(level, Last { src, out, a, rows }) }
}

/// Compute one plane at `level` (which must be [`Level::available`]; an unavailable level runs
/// the portable code).
pub fn run_plane(level: Level, src: &[f32], out: &mut [f32], a: &PlaneArgs) {
    let lanes = level.lanes();
    let per_row = a.out_w.div_ceil(lanes);
    let need = match a.out_h {
        0 => 0,
        h => {
            (h - 1) * a.row_stride + a.offsets.iter().max().copied().unwrap_or(0) + per_row * lanes
        }
    };
    assert!(
        src.len() >= need
            && out.len() >= a.out_h * a.out_w
            && (a.max || a.offsets.len() == a.weights.len())
            && a.offsets.len() <= MAX_TAPS,
        "depthwise plane buffers too small"
    );
    // SAFETY: sizes checked above
    unsafe { dispatch(level, Plane { src, out, a }) }
}

/// The arguments of [`run_rows`], as a [`Kernel`].
struct Rows<'a, 'b> {
    input: &'a [f32],
    buf: &'a mut [f32],
    pad: &'a Padded,
    out: &'a mut [f32],
    a: &'a RowsArgs<'b>,
    planes: usize,
}

impl Kernel for Rows<'_, '_> {
    type Output = ();
    /// # Safety
    /// The sizes [`run_rows`] checks.
    #[inline(always)]
    unsafe fn run<L: Lanes>(self) {
        // SAFETY: `run_rows` checked the sizes; `dispatch` the instruction set
        unsafe {
            planes_any::<L>(
                self.input,
                self.buf,
                self.pad,
                self.out,
                self.a,
                self.planes,
            )
        }
    }
}

/// The arguments of [`run_channels_last`], as a [`Kernel`].
struct Last<'a, 'b> {
    src: *const f32,
    out: *mut f32,
    a: &'a ChannelsLast<'b>,
    rows: std::ops::Range<usize>,
}

impl Kernel for Last<'_, '_> {
    type Output = ();
    /// # Safety
    /// The sizes [`run_channels_last`] checks.
    #[inline(always)]
    unsafe fn run<L: Lanes>(self) {
        // SAFETY: `run_channels_last` checked the sizes; `dispatch` the instruction set
        unsafe { channels_last_any::<L>(self.src, self.out, self.a, self.rows) }
    }
}

/// The arguments of [`run_plane`], as a [`Kernel`].
struct Plane<'a, 'b> {
    src: &'a [f32],
    out: &'a mut [f32],
    a: &'a PlaneArgs<'b>,
}

impl Kernel for Plane<'_, '_> {
    type Output = ();
    /// # Safety
    /// The sizes [`run_plane`] checks.
    #[inline(always)]
    unsafe fn run<L: Lanes>(self) {
        // SAFETY: `run_plane` checked the sizes; `dispatch` the instruction set
        unsafe { plane_any::<L>(self.src, self.out, self.a) }
    }
}
