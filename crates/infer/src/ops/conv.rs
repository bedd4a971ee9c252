//! tensorcv's dense 2-D convolution (`group == 1`, any kernel size and stride), the stem of
//! nearly every vision network (MobileNet's 3×3 stride 2 on RGB, BlazeFace's 5×5 stride 2) and
//! the plain convolutions of small classifiers.
//!
//! The input is first copied into a zero-bordered buffer (in its own layout). An output row's
//! patches are then, per kernel row (channels last) or per channel and kernel row (channels
//! first), contiguous runs of the buffer at a fixed stride from one output pixel to the next:
//! the [`gemm`](tensorcv_kernels::gemm) channel-vector tiles read them through those strides as `K`
//! segments, so no patch matrix (im2col) is ever written. Bias, scale, clamps and a residual
//! after the convolution fold into its store, as for the 1×1 convolution; a transpose of the
//! input from channels last to first just before (BlazeFace's) is absorbed too.

use super::channels::channels_moved;
use super::{
    clamp_bits, epilogue_args, epilogue_info, side, tract_op, with_residual, Floats, KernelOp,
    Residual,
};
use std::sync::Arc;
use tensorcv_kernels::conv::{self, ConvShape, Segments};
use tensorcv_kernels::gemm::Packed;
use tensorcv_kernels::Level;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

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
    segments: Segments,
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
        let (pre, post, residual) = epilogue_args(self.pre, self.post, &self.residual, residual)?;
        Ok(conv::run(
            &self.shape,
            &self.weights,
            &self.segments,
            (pre, post),
            input,
            residual,
            output,
        )?)
    }
}

impl KernelOp for Conv2d {
    const NAME: &'static str = "Conv(tensorcv)";

    fn describe(&self) -> TractResult<String> {
        let s = &self.shape;
        Ok(format!(
            "{} -> {} channels, channels {} -> {}{}",
            s.geo,
            s.m,
            side(s.in_last),
            side(s.out_last),
            epilogue_info(self.pre, &self.residual, self.post)
        ))
    }

    fn input_shapes(&self) -> TVec<TVec<usize>> {
        with_residual(&self.in_shape, &self.residual)
    }

    fn output_shape(&self) -> TVec<usize> {
        self.out_shape.clone()
    }

    fn fma(&self) -> usize {
        let s = &self.shape;
        let g = &s.geo;
        g.batch * s.m * s.k() * g.out_h * g.out_w
    }

    fn run(&self, inputs: &[&[f32]], output: &mut [f32]) -> TractResult<()> {
        self.compute(inputs[0], inputs.get(1).copied(), output)
    }
}

tract_op!(Conv2d);
