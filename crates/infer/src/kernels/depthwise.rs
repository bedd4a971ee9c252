//! tensorcv's depthwise convolution op, and the graph patch that puts it in place of tract's.
//!
//! Channels first (NCHW / CHW, `f32`), the op computes a channel plane at a time. It first
//! copies the plane's input rows into a *phase buffer*: zero-padded, and split by column phase for strided
//! convolutions (phase `p` of a padded row holds its columns `p, p + s, p + 2s, ...`). Every tap
//! `(ky, kx)` of output row `y` then reads `out_w` consecutive floats at
//! `y * row_stride + offset(ky, kx)`, with no border cases: the inner loop in [`super::simd`]
//! is one multiply-add per tap and vector, whatever the size, stride and padding. Channels last
//! (NHWC / HWC), it computes a vector of channels per output pixel, borders taking fewer taps.
//!
//! Bias, per-channel scale and shift (batch-norm remnants), and a clamp (ReLU, ReLU6, clip)
//! that follow the convolution in the graph are folded in when the model is loaded.

use super::lanes::Level;
use super::simd::{
    rows_apply, run_channels_last, run_plane, run_rows, ChannelsLast, Padded, PlaneArgs, RowsArgs,
    MAX_TAPS,
};
use super::{chunks, clamp_bits, clamp_floats, eval_f32, for_parts, parts_for, planes, SendPtr};
use std::cell::RefCell;
use std::sync::Arc;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, PoolSpec};
use tract_onnx::tract_core::ops::math::{Add, Max, Min, Mul, Sub};
use tract_onnx::tract_core::ops::nn::DataFormat;

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
    pub(super) fn setup(&self, forced: Option<Level>, channels_last: bool) -> Setup {
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

    /// The geometry of a 2-D pooling or convolution (tract's `PoolSpec`) over an input of
    /// `shape`, with whether it has a batch axis and whether channels come last; `None` where
    /// the kernels do not apply (other ranks, dilations, windows over [`MAX_TAPS`]).
    pub(super) fn from_pool_spec(
        spec: &PoolSpec,
        shape: &[usize],
    ) -> Option<(Geometry, bool, bool)> {
        let (has_batch, channels_last) = match spec.data_format {
            DataFormat::NCHW => (true, false),
            DataFormat::CHW => (false, false),
            DataFormat::NHWC => (true, true),
            DataFormat::HWC => (false, true),
        };
        if spec.rank() != 2
            || shape.len() != 3 + has_batch as usize
            || spec.dilations().iter().any(|&d| d != 1)
            || spec.kernel_shape.iter().product::<usize>() > MAX_TAPS
        {
            return None;
        }
        let r = shape.len();
        let (hw, channels) = if channels_last {
            (&shape[r - 3..r - 1], shape[r - 1])
        } else {
            (&shape[r - 2..], shape[r - 3])
        };
        let strides = spec.strides();
        let padded = spec
            .padding
            .compute(hw, &spec.kernel_shape, &[1, 1], &strides);
        let geo = Geometry {
            batch: if has_batch { shape[0] } else { 1 },
            channels,
            in_h: hw[0],
            in_w: hw[1],
            out_h: padded[0].convoluted,
            out_w: padded[1].convoluted,
            kh: spec.kernel_shape[0],
            kw: spec.kernel_shape[1],
            stride_h: strides[0],
            stride_w: strides[1],
            pad_top: padded[0].pad_before,
            pad_left: padded[1].pad_before,
        };
        Some((geo, has_batch, channels_last))
    }

    /// Whether there is an output and every window covers at least one input pixel (where one
    /// covers only padding, tract's own conventions apply, so its op stays).
    pub(super) fn every_window_reads_input(&self) -> bool {
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
pub(super) enum Mode {
    /// the weighted sum plus bias, then the optional clamp (convolution)
    Sum(Option<(f32, f32)>),
    /// the maximum, padding with -inf (max pooling)
    Max,
}

/// What an op's runs share, fixed when it is built ([`Geometry::setup`]): the instruction set
/// and, channels first, the tap offsets into the phase buffer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Setup {
    pub(super) level: Level,
    /// channels first, strides 1 and 2: computed straight from the input (no phase buffer)
    pub(super) direct: bool,
    offsets: Vec<usize>,
    row_stride: usize,
}

impl Geometry {
    /// Every plane of `input` (`[.., C, H, W]`) into `output`, as `setup` says; `weights`
    /// (`[C][kh * kw]`) and `bias` (`[C]`) are empty for [`Mode::Max`].
    pub(super) fn run(
        &self,
        setup: &Setup,
        input: &[f32],
        output: &mut [f32],
        mode: Mode,
        weights: &[f32],
        bias: &[f32],
    ) -> TractResult<()> {
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

/// Planes read by [`Geometry::run_direct`]: `count` of them, `in_stride` floats apart in
/// `input`, written `out_stride` apart.
pub(super) struct Planes<'a> {
    pub input: &'a [f32],
    pub in_stride: usize,
    pub out_stride: usize,
    pub count: usize,
}

impl Geometry {
    /// Planes at strides 1 or 2 (see [`super::simd::rows_apply`]) on this thread, through its
    /// padded buffer: `weights` and `bias` hold the planes' own (empty for pooling).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run_direct(
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

/// Weights, bias or scale as exact bits, so the op can be `Eq` and `Hash` as tract asks.
#[derive(Clone, Debug)]
pub(super) struct Floats(pub(super) Arc<[f32]>);

impl PartialEq for Floats {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&*other.0)
                .all(|(a, b)| a.to_bits() == b.to_bits())
    }
}
impl Eq for Floats {}
impl std::hash::Hash for Floats {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for x in self.0.iter() {
            x.to_bits().hash(state);
        }
    }
}

/// tensorcv's depthwise convolution: one input, `[N, C, H, W]` / `[C, H, W]` or channels last
/// (`[N, H, W, C]` / `[H, W, C]`), `f32`; weights, bias and the clamp are part of the op.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DepthwiseConv {
    pub(super) geo: Geometry,
    /// `true` for `[N, ..]`, `false` for one image without a batch axis
    has_batch: bool,
    /// channels last: weights are kept `[kh * kw, C]`, else `[C, kh * kw]`
    channels_last: bool,
    pub(super) weights: Floats,
    pub(super) bias: Floats,
    /// lower and upper bounds as bits (`None`: no activation)
    clamp: Option<(u32, u32)>,
    /// channels last: a row of zeros (`in_w * C`), what the taps above and below the image read
    zeros: Floats,
    /// instruction set and tap offsets, from the geometry (and a level forced in tests)
    pub(super) setup: Setup,
}

impl DepthwiseConv {
    /// `weights`: `channels * kh * kw` floats, channel-major (`[C, kh, kw]`, whatever the
    /// layout); `bias`: `channels` floats.
    pub fn new(
        geo: Geometry,
        has_batch: bool,
        channels_last: bool,
        weights: Vec<f32>,
        bias: Vec<f32>,
        clamp: Option<(f32, f32)>,
    ) -> TractResult<DepthwiseConv> {
        ensure!(
            weights.len() == geo.channels * geo.kh * geo.kw,
            "weights do not fit"
        );
        ensure!(bias.len() == geo.channels, "bias does not fit");
        ensure!(geo.kh * geo.kw <= MAX_TAPS, "kernel too large");
        ensure!(geo.stride_h >= 1 && geo.stride_w >= 1, "zero stride");
        ensure!(has_batch || geo.batch == 1, "a CHW input holds one image");
        let taps = geo.kh * geo.kw;
        let weights = if channels_last {
            // tap-major: one vector of channels per tap
            let c = geo.channels;
            (0..taps * c)
                .map(|i| weights[(i % c) * taps + i / c])
                .collect()
        } else {
            weights
        };
        let zeros = if channels_last {
            geo.in_w * geo.channels
        } else {
            0
        };
        Ok(DepthwiseConv {
            setup: geo.setup(None, channels_last),
            geo,
            has_batch,
            channels_last,
            zeros: Floats(vec![0.0; zeros].into()),
            weights: Floats(weights.into()),
            bias: Floats(bias.into()),
            clamp: clamp_bits(clamp),
        })
    }

    /// The same convolution on channels-first (`[N, C, H, W]` / `[C, H, W]`) or channels-last
    /// (`[N, H, W, C]` / `[H, W, C]`) tensors.
    pub fn with_channels_last(&self, last: bool) -> TractResult<DepthwiseConv> {
        let (c, taps) = (self.geo.channels, self.geo.kh * self.geo.kw);
        // back to channel-major weights
        let weights = if self.channels_last {
            (0..c * taps)
                .map(|i| self.weights.0[(i % taps) * c + i / taps])
                .collect()
        } else {
            self.weights.0.to_vec()
        };
        let clamp = self.clamp();
        DepthwiseConv::new(
            self.geo.clone(),
            self.has_batch,
            last,
            weights,
            self.bias.0.to_vec(),
            clamp,
        )
    }

    /// The clamp folded in.
    pub(super) fn clamp(&self) -> Option<(f32, f32)> {
        clamp_floats(self.clamp)
    }

    /// Whether the tensors are channels last.
    pub fn channels_last(&self) -> bool {
        self.channels_last
    }

    /// Run with `level` instead of the best available one (for comparing them).
    pub fn with_level(mut self, level: Level) -> DepthwiseConv {
        self.setup = self.geo.setup(Some(level), self.channels_last);
        self
    }

    /// Whether an activation (a clamp) is folded in.
    pub fn has_clamp(&self) -> bool {
        self.clamp.is_some()
    }

    /// The geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    fn shape(&self, h: usize, w: usize) -> TVec<usize> {
        let c = self.geo.channels;
        let mut shape = if self.channels_last {
            tvec![h, w, c]
        } else {
            tvec![c, h, w]
        };
        if self.has_batch {
            shape.insert(0, self.geo.batch);
        }
        shape
    }

    /// The input's shape.
    pub(super) fn input_shape(&self) -> TVec<usize> {
        self.shape(self.geo.in_h, self.geo.in_w)
    }

    fn output_shape(&self) -> TVec<usize> {
        self.shape(self.geo.out_h, self.geo.out_w)
    }

    /// Compute the whole output from the whole input (both in the op's layout).
    pub fn compute(&self, input: &[f32], output: &mut [f32]) -> TractResult<()> {
        let g = &self.geo;
        let taps = g.kh * g.kw;
        let clamp = self.clamp();
        if self.channels_last {
            let level = self.setup.level;
            let args = ChannelsLast {
                geo: g,
                weights: &self.weights.0,
                bias: &self.bias.0,
                clamp,
                zeros: &self.zeros.0,
            };
            let (in_image, row) = (g.in_h * g.in_w * g.channels, g.out_w * g.channels);
            ensure!(input.len() == g.batch * in_image && output.len() == g.batch * g.out_h * row);
            // each image's output rows split between the run's threads
            let parts = parts_for(g.out_h * row * taps, g.out_h);
            let per = g.out_h.div_ceil(parts);
            for b in 0..g.batch {
                let input = &input[b * in_image..(b + 1) * in_image];
                let out = SendPtr(output[b * g.out_h * row..].as_mut_ptr());
                for_parts(parts, |part| {
                    let rows = (part * per).min(g.out_h)..((part + 1) * per).min(g.out_h);
                    // SAFETY: parts write disjoint runs of rows of this image's output
                    let out = unsafe {
                        std::slice::from_raw_parts_mut(
                            out.get().add(rows.start * row),
                            rows.len() * row,
                        )
                    };
                    run_channels_last(level, input, out, &args, rows);
                });
            }
            return Ok(());
        }
        self.geo.run(
            &self.setup,
            input,
            output,
            Mode::Sum(clamp),
            &self.weights.0,
            &self.bias.0,
        )
    }
}

impl Op for DepthwiseConv {
    fn name(&self) -> StaticName {
        "DepthwiseConv(tensorcv)".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let clamp = super::epilogue_info(self.clamp, &None, None);
        Ok(vec![format!("{}{clamp}", self.geo)])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for DepthwiseConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        eval_f32(inputs, &self.output_shape(), |i, o| self.compute(i, o))
    }
}

impl TypedOp for DepthwiseConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 1 && inputs[0].datum_type == f32::datum_type());
        let expected = self.shape(self.geo.in_h, self.geo.in_w);
        ensure!(
            inputs[0].shape.as_concrete() == Some(&*expected),
            "depthwise input is {:?}, the op was built for {:?}",
            inputs[0].shape,
            expected
        );
        Ok(tvec!(f32::fact(self.output_shape())))
    }

    fn cost(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let g = &self.geo;
        let fma = g.batch * g.channels * g.out_h * g.out_w * g.kh * g.kw;
        Ok(tvec!((Cost::FMA(f32::datum_type()), fma.to_dim())))
    }

    as_op!();
}

/// The values of a constant that broadcasts per channel over an `[.., C, H, W]` tensor of rank
/// `rank` (a scalar, `[C]` for a bias, `[1, C, 1, 1]`, ...), as `channels` floats.
pub(super) fn per_channel(
    t: &Tensor,
    rank: usize,
    c_axis: usize,
    channels: usize,
) -> Option<Vec<f32>> {
    if t.datum_type() != f32::datum_type() {
        return None;
    }
    let plain = t.try_as_plain_ram().ok()?;
    let values = plain.as_slice::<f32>().ok()?;
    if values.len() == 1 {
        return Some(vec![values[0]; channels]);
    }
    let shape = t.shape();
    // right-aligned broadcasting: the constant's axis for C is at `c_axis - (rank - its rank)`
    let offset = rank.checked_sub(shape.len())?;
    let c = c_axis.checked_sub(offset)?;
    let only_c = shape
        .iter()
        .enumerate()
        .all(|(i, &d)| if i == c { d == channels } else { d == 1 });
    only_c.then(|| values.to_vec())
}

/// tensorcv's op for a tract `Conv` node that is a depthwise convolution this module runs, and
/// the nodes after it that the op absorbs (the last one's output is the op's).
pub(super) fn replace(
    model: &TypedModel,
    node: &TypedNode,
) -> TractResult<Option<(DepthwiseConv, Vec<usize>)>> {
    let id = node.id;
    let Some(conv) = node.op_as::<Conv>() else {
        return Ok(None);
    };
    let input_fact = model.outlet_fact(node.inputs[0])?;
    let Some(shape) = input_fact.shape.as_concrete() else {
        return Ok(None);
    };
    let Some((geo, has_batch, channels_last)) = Geometry::from_pool_spec(&conv.pool_spec, shape)
    else {
        return Ok(None);
    };
    let channels = geo.channels;
    if conv.q_params.is_some()
        || input_fact.datum_type != f32::datum_type()
        || conv.input_channels() != channels
        || conv.group != channels
        || conv.output_channels() != channels
        || channels < 2
        || (channels_last && !geo.every_window_reads_input())
    {
        return Ok(None);
    }
    let (kh, kw) = (geo.kh, geo.kw);
    // weights as [C, kh * kw]
    let (Some(kernel), Some(bias)) = (
        model.outlet_fact(node.inputs[1])?.konst.clone(),
        model.outlet_fact(node.inputs[2])?.konst.clone(),
    ) else {
        return Ok(None);
    };
    if kernel.datum_type() != f32::datum_type() || kernel.len() != channels * kh * kw {
        return Ok(None);
    }
    // the channel axis before the spatial ones ([C, 1, kh, kw], [1, C, kh, kw], [C, kh, kw, 1])
    // or after them ([kh, kw, C, 1], [kh, kw, 1, C], and tract's depthwise OHWI [1, kh, kw, C])
    let tap_major = match conv.kernel_fmt {
        KernelFormat::OIHW => false,
        KernelFormat::HWIO => true,
        KernelFormat::OHWI => kernel.shape().last() == Some(&channels),
    };
    let kernel = kernel.try_as_plain_ram()?;
    let k = kernel.as_slice::<f32>()?;
    let taps = kh * kw;
    let mut weights = vec![0f32; channels * taps];
    for c in 0..channels {
        for t in 0..taps {
            weights[c * taps + t] = if tap_major {
                k[t * channels + c]
            } else {
                k[c * taps + t]
            };
        }
    }
    let Some(mut bias) = per_channel(&bias, 1, 0, channels) else {
        return Ok(None);
    };

    // fold what follows: per-channel scale and shift, then a clamp
    let rank = shape.len();
    let c_axis = if channels_last { rank - 1 } else { rank - 3 };
    let outputs = model.output_outlets()?;
    let mut absorbed = vec![];
    let mut last = id;
    let (mut lo, mut hi) = (f32::NEG_INFINITY, f32::INFINITY);
    loop {
        let outlet = OutletId::new(last, 0);
        let successors = model.outlet_successors(outlet);
        if outputs.contains(&outlet) || successors.len() != 1 {
            break;
        }
        let next = model.node(successors[0].node);
        let slot = successors[0].slot;
        let Some(bin) = next.op_as::<TypedBinOp>() else {
            break;
        };
        let other = next.inputs[1 - slot];
        let Some(konst) = model.outlet_fact(other)?.konst.clone() else {
            break;
        };
        if bin.1.is_some()
            || model
                .outlet_fact(OutletId::new(next.id, 0))?
                .shape
                .as_concrete()
                != model.outlet_fact(outlet)?.shape.as_concrete()
        {
            break;
        }
        let Some(v) = per_channel(&konst, rank, c_axis, channels) else {
            break;
        };
        let activated = lo > f32::NEG_INFINITY || hi < f32::INFINITY;
        let uniform = v.iter().all(|x| x.to_bits() == v[0].to_bits());
        let op = &bin.0;
        if op.is::<Add>() && !activated {
            bias.iter_mut().zip(&v).for_each(|(b, x)| *b += x);
        } else if op.is::<Sub>() && slot == 0 && !activated {
            bias.iter_mut().zip(&v).for_each(|(b, x)| *b -= x);
        } else if op.is::<Mul>() && !activated {
            for c in 0..channels {
                bias[c] *= v[c];
                weights[c * taps..(c + 1) * taps]
                    .iter_mut()
                    .for_each(|w| *w *= v[c]);
            }
        } else if op.is::<Max>() && uniform && !v[0].is_nan() {
            lo = lo.max(v[0]);
        } else if op.is::<Min>() && uniform && !v[0].is_nan() {
            hi = hi.min(v[0]);
        } else {
            break;
        }
        absorbed.push(next.id);
        last = next.id;
    }
    if lo > hi {
        return Ok(None);
    }
    let clamp = (lo > f32::NEG_INFINITY || hi < f32::INFINITY).then_some((lo, hi));
    let op = DepthwiseConv::new(geo, has_batch, channels_last, weights, bias, clamp)?;
    Ok(Some((op, absorbed)))
}
