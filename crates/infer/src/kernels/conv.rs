//! tensorcv's dense 2-D convolution (`group == 1`, any kernel size and stride), the stem of
//! nearly every vision network (MobileNet's 3×3 stride 2 on RGB, BlazeFace's 5×5 stride 2) and
//! the plain convolutions of small classifiers.
//!
//! The input is first copied into a zero-bordered buffer (in its own layout). An output row's
//! patches are then, per kernel row (channels last) or per channel and kernel row (channels
//! first), contiguous runs of the buffer at a fixed stride from one output pixel to the next:
//! the [`gemm`](super::gemm) channel-vector tiles read them through those strides as `K`
//! segments, so no patch matrix (im2col) is ever written. Bias, scale, clamps and a residual
//! after the convolution fold into its store, as for the 1×1 convolution; a transpose of the
//! input from channels last to first just before (BlazeFace's) is absorbed too.

use super::depthwise::{Floats, Geometry};
use super::gemm::{self, Epilogue, Kind, Mat, Packed};
use super::lanes::Level;
use super::layout::channels_moved;
use super::pointwise::absorb;
use super::{clamp_bits, clamp_floats, for_parts, parts_for, Residual, SendPtr};
use std::cell::RefCell;
use std::sync::Arc;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};

/// A dense convolution: the spatial geometry (its `channels` are the input's), output
/// channels, layouts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConvShape {
    pub geo: Geometry,
    /// output channels
    pub m: usize,
    /// input and output channels last (`[H, W, C]`) rather than first
    pub in_last: bool,
    pub out_last: bool,
}

impl ConvShape {
    /// Rows and columns of the padded input copy: every window of every output.
    fn padded(&self) -> (usize, usize) {
        let g = &self.geo;
        (
            ((g.out_h - 1) * g.stride_h + g.kh).max(g.pad_top + g.in_h),
            ((g.out_w - 1) * g.stride_w + g.kw).max(g.pad_left + g.in_w),
        )
    }

    /// Columns of a phase plane's row ([`Kind::Rows`]): every `stride_w`-th padded column.
    fn phase_width(&self) -> usize {
        self.padded().1.div_ceil(self.geo.stride_w)
    }

    /// Floats in the padded copy.
    fn buffer_len(&self) -> usize {
        let (hp, wp) = self.padded();
        if self.kind() == Kind::Rows {
            self.geo.channels * self.geo.stride_w * hp * self.phase_width()
        } else {
            self.geo.channels * hp * wp
        }
    }

    /// Where output row `oy`'s windows start in the padded copy (its pixel 0's corner).
    fn corner(&self, oy: usize) -> usize {
        let g = &self.geo;
        let (_, wp) = self.padded();
        match (self.kind(), self.in_last) {
            (Kind::Rows, _) => oy * g.stride_h * self.phase_width(),
            (_, true) => oy * g.stride_h * wp * g.channels,
            (_, false) => oy * g.stride_h * wp,
        }
    }

    /// Where run `j` of a patch starts in the padded copy relative to its window's corner, and
    /// the stride from one output pixel to the next. [`Kind::Rows`]: the copy is split into
    /// planes per channel and column phase (phase `p` holds padded columns `p, p + s, ..`), so
    /// every tap `(ky, kx, ch)` of a row of outputs is a run of consecutive floats; one run per
    /// tap, in the weights' patch order.
    fn segments(&self) -> (Vec<usize>, usize) {
        let g = &self.geo;
        let (hp, wp) = self.padded();
        let c = g.channels;
        if self.kind() == Kind::Rows {
            let (s, wq) = (g.stride_w, self.phase_width());
            let at =
                move |ch: usize, ky: usize, kx: usize| ((ch * s + kx % s) * hp + ky) * wq + kx / s;
            let taps: Vec<usize> = if self.in_last {
                (0..g.kh)
                    .flat_map(|ky| {
                        (0..g.kw).flat_map(move |kx| (0..c).map(move |ch| at(ch, ky, kx)))
                    })
                    .collect()
            } else {
                (0..c)
                    .flat_map(|ch| {
                        (0..g.kh).flat_map(move |ky| (0..g.kw).map(move |kx| at(ch, ky, kx)))
                    })
                    .collect()
            };
            return (taps, 1);
        }
        if self.in_last {
            ((0..g.kh).map(|ky| ky * wp * c).collect(), g.stride_w * c)
        } else {
            let runs = (0..c).flat_map(|ch| (0..g.kh).map(move |ky| ch * hp * wp + ky * wp));
            (runs.collect(), g.stride_w)
        }
    }

    /// Floats per patch.
    fn k(&self) -> usize {
        self.geo.channels * self.geo.kh * self.geo.kw
    }

    /// Channels-first outputs: rows of pixels in vectors where output rows are 16 pixels or
    /// more (from a copy of the input split into phase planes, see [`ConvShape::segments`]),
    /// else channel vectors transposed in registers for short patches (a transpose through
    /// memory would cost as much as the products). Channels last: channel vectors.
    fn kind(&self) -> Kind {
        if !self.out_last && self.geo.out_w >= 16 {
            Kind::Rows
        } else if !self.out_last && self.k() <= 512 {
            Kind::ColsT
        } else {
            Kind::Cols
        }
    }
}

/// tensorcv's dense convolution; inputs: the image, then the residual if any.
#[derive(Clone, Debug)]
pub struct Conv2d {
    shape: ConvShape,
    in_shape: TVec<usize>,
    out_shape: TVec<usize>,
    weights: Arc<Packed>,
    pre: Option<(u32, u32)>,
    post: Option<(u32, u32)>,
    residual: Residual,
    /// weights `[m][k]` in the patch order of the input layout, and bias
    source: (Floats, Floats),
    /// [`ConvShape::segments`], computed once
    segments: (Vec<usize>, usize),
}

impl PartialEq for Conv2d {
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape
            && self.in_shape == other.in_shape
            && self.out_shape == other.out_shape
            && self.weights.level() == other.weights.level()
            && self.pre == other.pre
            && self.post == other.post
            && self.residual == other.residual
            && self.source == other.source
    }
}
impl Eq for Conv2d {}

impl Conv2d {
    /// `weights`: `m × k` with each patch in the input layout's order (`[kh][kw][C]` channels
    /// last, `[C][kh][kw]` first); `bias`: `m`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shape: ConvShape,
        in_shape: TVec<usize>,
        out_shape: TVec<usize>,
        weights: Vec<f32>,
        bias: Vec<f32>,
        pre: Option<(f32, f32)>,
        residual: Residual,
        post: Option<(f32, f32)>,
    ) -> TractResult<Conv2d> {
        let g = &shape.geo;
        ensure!(weights.len() == shape.m * shape.k() && bias.len() == shape.m);
        ensure!(g.stride_h >= 1 && g.stride_w >= 1 && g.out_h >= 1 && g.out_w >= 1);
        ensure!(in_shape.iter().product::<usize>() == g.batch * g.channels * g.in_h * g.in_w);
        ensure!(out_shape.iter().product::<usize>() == g.batch * shape.m * g.out_h * g.out_w);
        if let Some((c, s)) = &residual {
            ensure!(*c >= 1 && *c <= shape.m);
            ensure!(s.iter().product::<usize>() == g.batch * c * g.out_h * g.out_w);
        }
        let packed = Packed::new(
            Level::best(),
            shape.kind(),
            &weights,
            &bias,
            shape.m,
            shape.k(),
        );
        Ok(Conv2d {
            segments: shape.segments(),
            shape,
            in_shape,
            out_shape,
            weights: Arc::new(packed),
            pre: clamp_bits(pre),
            post: clamp_bits(post),
            residual,
            source: (Floats(weights.into()), Floats(bias.into())),
        })
    }

    /// Whether a residual add is folded in.
    pub fn has_residual(&self) -> bool {
        self.residual.is_some()
    }

    /// Whether the output is channels last.
    pub fn out_last(&self) -> bool {
        self.shape.out_last
    }

    /// The same convolution writing channels first (`[N, C, H, W]` / `[C, H, W]`); not for
    /// one with a residual (whose layout follows the output's).
    pub fn to_channels_first_output(&self) -> TractResult<Conv2d> {
        ensure!(
            self.residual.is_none(),
            "a residual follows the output's layout"
        );
        let mut op = self.clone();
        if self.shape.out_last {
            op.out_shape = channels_moved(&op.out_shape, true, false)?;
            op.shape.out_last = false;
            let (s, (w, b)) = (&op.shape, &op.source);
            let level = op.weights.level();
            op.weights = Arc::new(Packed::new(level, s.kind(), &w.0, &b.0, s.m, s.k()));
            op.segments = op.shape.segments();
        }
        Ok(op)
    }

    /// Run with `level` instead of the best one (for comparing them).
    pub fn with_level(mut self, level: Level) -> Conv2d {
        let (s, (w, b)) = (&self.shape, &self.source);
        self.weights = Arc::new(Packed::new(level, s.kind(), &w.0, &b.0, s.m, s.k()));
        self
    }

    /// Compute `output` from `input` (and `residual`), in the op's layouts.
    pub fn compute(
        &self,
        input: &[f32],
        residual: Option<&[f32]>,
        output: &mut [f32],
    ) -> TractResult<()> {
        let s = &self.shape;
        let g = &s.geo;
        let (c, m) = (g.channels, s.m);
        let (image, pixels) = (c * g.in_h * g.in_w, g.out_h * g.out_w);
        ensure!(input.len() == g.batch * image && output.len() == g.batch * m * pixels);
        let res_channels = self.residual.as_ref().map(|r| r.0).unwrap_or(0);
        ensure!(
            residual.map(|r| r.len())
                == self
                    .residual
                    .as_ref()
                    .map(|_| g.batch * res_channels * pixels)
        );
        thread_local! {
            static PADDED: RefCell<(Vec<f32>, Option<ConvShape>)> = const { RefCell::new((Vec::new(), None)) };
        }
        let (segments, step) = (&self.segments.0, self.segments.1);
        // (rows, columns) strides of the output (and residual) with `ch` channels
        let strides = |ch: usize| {
            if s.out_last {
                (1, ch)
            } else {
                (pixels, 1)
            }
        };
        let ((or, oc), (rr, rc)) = (strides(m), strides(res_channels));
        let w = &*self.weights;
        let parts = parts_for(m * s.k() * pixels, g.out_h);
        let rows_per = g.out_h.div_ceil(parts);
        PADDED.with_borrow_mut(|(buf, last)| {
            if last.as_ref() != Some(s) {
                // a new geometry: zero borders once
                buf.clear();
                buf.resize(s.buffer_len(), 0.0);
                *last = Some(s.clone());
            }
            for b in 0..g.batch {
                fill(s, &input[b * image..(b + 1) * image], buf);
                let (src, out) = (SendPtr(buf.as_mut_ptr()), SendPtr(output.as_mut_ptr()));
                let res = residual.map(|r| SendPtr(r.as_ptr() as *mut f32));
                for_parts(parts, |p| {
                    let ep = Epilogue {
                        pre: clamp_floats(self.pre),
                        residual: res.map(|r| {
                            let ptr = unsafe { r.get().add(b * res_channels * pixels) };
                            let ptr = ptr as *const f32;
                            (
                                Mat {
                                    ptr,
                                    rs: rr,
                                    cs: rc,
                                },
                                res_channels,
                            )
                        }),
                        post: clamp_floats(self.post),
                    };
                    for oy in (p * rows_per).min(g.out_h)..((p + 1) * rows_per).min(g.out_h) {
                        let cols = oy * g.out_w..(oy + 1) * g.out_w;
                        // pixel n of this row reads from corner(oy) + (n - oy * out_w) * step
                        let ptr = src
                            .get()
                            .wrapping_add(s.corner(oy))
                            .wrapping_sub(cols.start * step)
                            as *const f32;
                        // SAFETY: the padded buffer holds every window of every output pixel;
                        // threads write disjoint rows of the output
                        unsafe {
                            gemm::run(
                                w,
                                Mat {
                                    ptr,
                                    rs: 1,
                                    cs: step,
                                },
                                segments,
                                Mat {
                                    ptr: out.get().add(b * m * pixels),
                                    rs: or,
                                    cs: oc,
                                },
                                &ep,
                                0..w.m_tiles(),
                                cols,
                            )
                        }
                    }
                });
            }
        });
        Ok(())
    }
}

/// `buf[at(q) + i] = src[i * f + q]` for `q < f`, `i < groups`: a run of groups of `f` floats
/// dealt out to `f` rows, with the group size a constant for the common ones (RGB at stride 1
/// and 2, planes at stride 2) so the compiler turns the loads into shuffles.
fn deal(src: &[f32], buf: &mut [f32], f: usize, at: impl Fn(usize) -> usize, groups: usize) {
    fn fixed<const F: usize>(
        src: &[f32],
        buf: &mut [f32],
        at: impl Fn(usize) -> usize,
        groups: usize,
    ) {
        let rows: [usize; F] = std::array::from_fn(at);
        assert!(src.len() >= groups * F && rows.iter().all(|&r| r + groups <= buf.len()));
        let (src, dst) = (src.as_ptr(), buf.as_mut_ptr());
        for i in 0..groups {
            for (q, &r) in rows.iter().enumerate() {
                // SAFETY: bounds asserted above
                unsafe { *dst.add(r + i) = *src.add(i * F + q) };
            }
        }
    }
    match f {
        2 => fixed::<2>(src, buf, at, groups),
        3 => fixed::<3>(src, buf, at, groups),
        6 => fixed::<6>(src, buf, at, groups),
        f => {
            for (i, group) in src.chunks_exact(f).take(groups).enumerate() {
                for (q, &v) in group.iter().enumerate() {
                    buf[at(q) + i] = v;
                }
            }
        }
    }
}

/// Copy one image into the padded buffer (zero borders already there).
fn fill(s: &ConvShape, image: &[f32], buf: &mut [f32]) {
    let g = &s.geo;
    let c = g.channels;
    let (hp, wp) = s.padded();
    if s.kind() == Kind::Rows {
        // phase planes: padded column `col` of channel `ch` at plane `ch * s + col % s`,
        // column `col / s`. Per input row, from the first pixel of a phase-0 column on,
        // groups of `s` pixels (`s * C` floats channels last) deal out one float per plane.
        let (st, wq) = (g.stride_w, s.phase_width());
        let line = if s.in_last { g.in_w * c } else { g.in_w };
        let x_start = ((st - g.pad_left % st) % st).min(g.in_w);
        let j_start = (g.pad_left + x_start) / st;
        let groups = (g.in_w - x_start) / st;
        let plane = |ch: usize, p: usize, row: usize| ((ch * st + p) * hp + row) * wq;
        for y in 0..g.in_h {
            let row = g.pad_top + y;
            // the pixels before the first group and after the last
            let lone = (0..x_start).chain(x_start + groups * st..g.in_w);
            for x in lone {
                let col = g.pad_left + x;
                for ch in 0..c {
                    let v = if s.in_last {
                        image[y * line + x * c + ch]
                    } else {
                        image[(ch * g.in_h + y) * line + x]
                    };
                    buf[plane(ch, col % st, row) + col / st] = v;
                }
            }
            if groups == 0 {
                continue;
            }
            if s.in_last {
                let src = &image[y * line + x_start * c..y * line + (x_start + groups * st) * c];
                // float q of a group: phase q / C, channel q % C
                let at = |q: usize| plane(q % c, q / c, row) + j_start;
                deal(src, buf, st * c, at, groups);
            } else {
                for ch in 0..c {
                    let from = (ch * g.in_h + y) * line + x_start;
                    let src = &image[from..from + groups * st];
                    deal(src, buf, st, |p| plane(ch, p, row) + j_start, groups);
                }
            }
        }
    } else if s.in_last {
        let row = g.in_w * c;
        for y in 0..g.in_h {
            let at = ((g.pad_top + y) * wp + g.pad_left) * c;
            buf[at..at + row].copy_from_slice(&image[y * row..(y + 1) * row]);
        }
    } else {
        for ch in 0..c {
            for y in 0..g.in_h {
                let at = ch * hp * wp + (g.pad_top + y) * wp + g.pad_left;
                let from = (ch * g.in_h + y) * g.in_w;
                buf[at..at + g.in_w].copy_from_slice(&image[from..from + g.in_w]);
            }
        }
    }
}

impl Op for Conv2d {
    fn name(&self) -> StaticName {
        "Conv(tensorcv)".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let s = &self.shape;
        let side = |last| if last { "last" } else { "first" };
        let mut info = format!(
            "{} -> {} channels, channels {} -> {}",
            s.geo,
            s.m,
            side(s.in_last),
            side(s.out_last)
        );
        info += &super::epilogue_info(self.pre, &self.residual, self.post);
        Ok(vec![info])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for Conv2d {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        super::eval_residual_op(
            inputs,
            self.residual.is_some(),
            &self.out_shape,
            |x, r, y| self.compute(x, r, y),
        )
    }
}

impl TypedOp for Conv2d {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        super::residual_op_facts(
            "convolution",
            inputs,
            &self.in_shape,
            &self.residual,
            &self.out_shape,
        )
    }

    fn cost(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let s = &self.shape;
        let g = &s.geo;
        let fma = g.batch * s.m * s.k() * g.out_h * g.out_w;
        Ok(tvec!((Cost::FMA(f32::datum_type()), fma.to_dim())))
    }

    as_op!();
}

/// The input to read for a convolution whose input is `outlet` and whose layout is channels
/// first: where a transpose from channels last (`Move(rank - 1, rank - 3)`) feeds only this
/// convolution, its input, read as channels last.
fn source(model: &TypedModel, outlet: OutletId, conv: usize) -> TractResult<(OutletId, bool)> {
    let node = model.node(outlet.node);
    if let Some(AxisOp::Move(from, to)) = node.op_as::<AxisOp>() {
        let rank = model.outlet_fact(outlet)?.rank();
        let only_conv = model
            .outlet_successors(outlet)
            .iter()
            .all(|s| s.node == conv);
        if rank >= 3 && *from == rank - 1 && *to == rank - 3 && only_conv {
            return Ok((node.inputs[0], true));
        }
    }
    Ok((outlet, false))
}

/// tensorcv's op for a tract `Conv` node that is a dense 2-D convolution, its inputs, and the
/// nodes it absorbs (the last one's output is the op's).
pub(super) fn replace(
    model: &TypedModel,
    node: &TypedNode,
) -> TractResult<Option<super::Replacement<Conv2d>>> {
    let Some(conv) = node.op_as::<Conv>() else {
        return Ok(None);
    };
    let input_fact = model.outlet_fact(node.inputs[0])?;
    let Some(shape) = input_fact.shape.as_concrete() else {
        return Ok(None);
    };
    let Some((geo, _, channels_last)) = Geometry::from_pool_spec(&conv.pool_spec, shape) else {
        return Ok(None);
    };
    let (c, m) = (conv.input_channels(), conv.output_channels());
    if conv.group != 1
        || conv.q_params.is_some()
        || input_fact.datum_type != f32::datum_type()
        || c != geo.channels
        || geo.out_h == 0
        || geo.out_w == 0
        || node.inputs.len() != 3
    {
        return Ok(None);
    }
    let (Some(kernel), Some(bias)) = (
        model.outlet_fact(node.inputs[1])?.konst.clone(),
        model.outlet_fact(node.inputs[2])?.konst.clone(),
    ) else {
        return Ok(None);
    };
    let (kh, kw) = (geo.kh, geo.kw);
    if kernel.datum_type() != f32::datum_type() || kernel.len() != m * c * kh * kw {
        return Ok(None);
    }
    // the patch order follows the layout read
    let (x, in_last) = if channels_last {
        (node.inputs[0], true)
    } else {
        source(model, node.inputs[0], node.id)?
    };
    let in_shape: TVec<usize> = match model.outlet_fact(x)?.shape.as_concrete() {
        Some(s) => s.into(),
        None => return Ok(None),
    };
    let kernel = kernel.try_as_plain_ram()?;
    let kv = kernel.as_slice::<f32>()?;
    let at = |o: usize, i: usize, ky: usize, kx: usize| match conv.kernel_fmt {
        KernelFormat::OIHW => ((o * c + i) * kh + ky) * kw + kx,
        KernelFormat::HWIO => ((ky * kw + kx) * c + i) * m + o,
        KernelFormat::OHWI => ((o * kh + ky) * kw + kx) * c + i,
    };
    let k = c * kh * kw;
    let mut weights = vec![0f32; m * k];
    for o in 0..m {
        for i in 0..c {
            for ky in 0..kh {
                for kx in 0..kw {
                    let col = if in_last {
                        (ky * kw + kx) * c + i
                    } else {
                        (i * kh + ky) * kw + kx
                    };
                    weights[o * k + col] = kv[at(o, i, ky, kx)];
                }
            }
        }
    }
    let Some(mut bias) = super::depthwise::per_channel(&bias, 1, 0, m) else {
        return Ok(None);
    };
    let out_shape: TVec<usize> = match model
        .outlet_fact(OutletId::new(node.id, 0))?
        .shape
        .as_concrete()
    {
        Some(s) => s.into(),
        None => return Ok(None),
    };
    let rank = out_shape.len();
    let c_axis = if channels_last { rank - 1 } else { rank - 3 };
    let e = absorb(model, node.id, &out_shape, c_axis, &mut weights, &mut bias)?;
    let mut inputs = tvec![x];
    if let Some((outlet, _, _)) = &e.residual {
        inputs.push(*outlet);
    }
    let shape = ConvShape {
        geo,
        m,
        in_last,
        out_last: channels_last,
    };
    let op = Conv2d::new(
        shape,
        in_shape,
        out_shape,
        weights,
        bias,
        e.pre,
        e.residual.map(|(_, c, s)| (c, s)),
        e.post,
    )?;
    Ok(Some((op, inputs, e.nodes)))
}
