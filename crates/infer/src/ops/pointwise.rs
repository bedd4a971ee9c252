//! tensorcv's 1×1 convolution: tract's decluttered `EinSum` of an activation with a constant
//! weight matrix (`IHW,OI->OHW`, `NIHW,OI->NOHW`, `NHWI,OI->OHW`, ...), together with what
//! follows it in a mobile network's block: the bias and per-channel scale/shift (folded into
//! the weights), a clamp (ReLU, ReLU6), the residual add (also from a channel-padded skip, as
//! BlazeFace's `Pad` → `Add`) and a clamp after it. One pass over the output, through the
//! [`gemm`](tensorcv_kernels::gemm) kernels.

use super::channels::channels_moved;
use super::{
    clamp_bits, clamp_floats, epilogue_args, epilogue_info, side, tract_op, with_residual, Floats,
    KernelOp, Residual,
};
use std::sync::Arc;
use tensorcv_kernels::gemm::{Kind, Packed};
use tensorcv_kernels::pointwise::{self, Shape};
use tensorcv_kernels::Level;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

/// A 1×1 convolution with its epilogue; inputs: the activation, then the residual if any.
#[derive(Clone, Debug)]
pub struct PointwiseConv {
    pub(crate) shape: Shape,
    pub(crate) in_shape: TVec<usize>,
    pub(crate) out_shape: TVec<usize>,
    pub(crate) weights: Arc<Packed>,
    /// clamp before / after the residual, as bits
    pub(crate) pre: Option<(u32, u32)>,
    pub(crate) post: Option<(u32, u32)>,
    /// the residual's channels (fewer than `m` for a channel-padded skip) and shape
    pub(crate) residual: Residual,
    /// unpacked weights `[m][k]` and bias, to repack for another level
    source: (Floats, Floats),
}

impl PartialEq for PointwiseConv {
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape
            && self.in_shape == other.in_shape
            && self.out_shape == other.out_shape
            && (self.weights.level(), self.weights.kind())
                == (other.weights.level(), other.weights.kind())
            && self.pre == other.pre
            && self.post == other.post
            && self.residual == other.residual
            && self.source == other.source
    }
}
impl Eq for PointwiseConv {}

impl PointwiseConv {
    /// `weights`: `m × k` row-major; `bias`: `m`. The shapes are the tensors' own (with their
    /// size-1 axes); `residual`: its channel count and shape.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shape: Shape,
        in_shape: TVec<usize>,
        out_shape: TVec<usize>,
        weights: Vec<f32>,
        bias: Vec<f32>,
        pre: Option<(f32, f32)>,
        residual: Residual,
        post: Option<(f32, f32)>,
    ) -> TractResult<PointwiseConv> {
        ensure!(weights.len() == shape.m * shape.k && bias.len() == shape.m);
        ensure!(in_shape.iter().product::<usize>() == shape.batch * shape.k * shape.n);
        ensure!(out_shape.iter().product::<usize>() == shape.batch * shape.m * shape.n);
        if let Some((c, s)) = &residual {
            ensure!(
                *c >= 1
                    && *c <= shape.m
                    && s.iter().product::<usize>() == shape.batch * c * shape.n
            );
        }
        let level = Level::best();
        let packed = Packed::new(level, shape.kind(level), &weights, &bias, shape.m, shape.k);
        Ok(PointwiseConv {
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

    /// Run with `level` and `kind` instead of the best ones (for comparing them).
    pub fn with_level(mut self, level: Level, kind: Option<Kind>) -> PointwiseConv {
        let kind = kind.unwrap_or_else(|| self.shape.kind(level));
        let kind = if self.shape.in_last || self.shape.out_last {
            Kind::Cols
        } else {
            kind
        };
        let s = &self.shape;
        self.weights = Arc::new(Packed::new(
            level,
            kind,
            &self.source.0 .0,
            &self.source.1 .0,
            s.m,
            s.k,
        ));
        self
    }

    /// Whether the input is channels last.
    pub fn in_last(&self) -> bool {
        self.shape.in_last
    }

    /// The same convolution with its input and its output (and residual) channels first or
    /// last as asked: `[N, C, H, W]` / `[C, H, W]` or `[N, H, W, C]` / `[H, W, C]`.
    pub fn with_layouts(&self, in_last: bool, out_last: bool) -> TractResult<PointwiseConv> {
        let mut shape = self.shape.clone();
        let in_shape = channels_moved(&self.in_shape, shape.in_last, in_last)?;
        let out_shape = channels_moved(&self.out_shape, shape.out_last, out_last)?;
        let residual = match &self.residual {
            Some((c, r)) => Some((*c, channels_moved(r, shape.out_last, out_last)?)),
            None => None,
        };
        (shape.in_last, shape.out_last) = (in_last, out_last);
        PointwiseConv::new(
            shape,
            in_shape,
            out_shape,
            self.source.0 .0.to_vec(),
            self.source.1 .0.to_vec(),
            clamp_floats(self.pre),
            residual,
            clamp_floats(self.post),
        )
    }

    /// Whether the output is channels last.
    pub fn out_last(&self) -> bool {
        self.shape.out_last
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.shape.n
    }

    /// The tile kind the op runs.
    pub fn kind(&self) -> Kind {
        self.weights.kind()
    }

    /// Whether a residual add is folded in.
    pub fn has_residual(&self) -> bool {
        self.residual.is_some()
    }

    /// Compute `output` from `input` (and `residual`), all in the op's layouts.
    pub fn compute(
        &self,
        input: &[f32],
        residual: Option<&[f32]>,
        output: &mut [f32],
    ) -> TractResult<()> {
        let (pre, post, residual) = epilogue_args(self.pre, self.post, &self.residual, residual)?;
        Ok(pointwise::run(
            &self.shape,
            &self.weights,
            pre,
            post,
            input,
            residual,
            output,
        )?)
    }
}

impl KernelOp for PointwiseConv {
    const NAME: &'static str = "PointwiseConv(tensorcv)";

    fn describe(&self) -> TractResult<String> {
        let s = &self.shape;
        Ok(format!(
            "{}x{} on {} pixels x {}, channels {} -> {}, {:?} tiles{}",
            s.m,
            s.k,
            s.n,
            s.batch,
            side(s.in_last),
            side(s.out_last),
            self.weights.kind(),
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
        s.batch * s.m * s.k * s.n
    }

    fn run(&self, inputs: &[&[f32]], output: &mut [f32]) -> TractResult<()> {
        self.compute(inputs[0], inputs.get(1).copied(), output)
    }
}

tract_op!(PointwiseConv);
