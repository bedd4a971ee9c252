//! A mobile network's inverted residual block as one op: a 1×1 expansion (optional), a
//! depthwise convolution, and a 1×1 projection with the block's residual, computed in bands of
//! output rows.
//!
//! Run op by op, the expanded tensor (MobileNetV2's first blocks: 96 × 112 × 112 floats, 4.8 MB)
//! is written to memory by the expansion and read back by the depthwise convolution, and the
//! depthwise output again by the projection: at these sizes the block is bound by memory, not
//! arithmetic. Here each band of output rows expands only the input rows it needs (the rows
//! its windows share with the next band are computed again), into a buffer that stays in the
//! cache, then runs the depthwise convolution and the projection on it. The three stages use
//! the same kernels as the separate ops ([`tensorcv_kernels::gemm`], the depthwise convolution's padded
//! planes), so the numbers are the same.

use super::{clamp_floats, tract_op, with_residual, DepthwiseConv, KernelOp, PointwiseConv};
use tensorcv_kernels::inverted_residual::{self, Depthwise, Product};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

/// expand → depthwise → project (+ residual), channels first; inputs: the block's input, then
/// the residual if the projection has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvertedResidual {
    expand: Option<PointwiseConv>,
    dw: DepthwiseConv,
    project: PointwiseConv,
    in_shape: TVec<usize>,
    /// most output rows of the depthwise convolution per band
    band: usize,
}

impl InvertedResidual {
    /// The block made of these ops (which must chain: channels first, the expansion's output
    /// the depthwise input, its output the projection's input).
    pub fn new(
        expand: Option<PointwiseConv>,
        dw: DepthwiseConv,
        project: PointwiseConv,
    ) -> TractResult<InvertedResidual> {
        let g = &dw.geo;
        ensure!(
            dw.setup.direct && !dw.channels_last(),
            "a channels-first depthwise op"
        );
        let (pixels, out_pixels) = (g.in_h * g.in_w, g.out_h * g.out_w);
        if let Some(e) = &expand {
            let s = &e.shape;
            ensure!(!s.in_last && !s.out_last && e.residual.is_none());
            ensure!(s.m == g.channels && s.n == pixels && s.batch == g.batch);
        }
        let p = &project.shape;
        ensure!(!p.in_last && !p.out_last);
        ensure!(p.k == g.channels && p.n == out_pixels && p.batch == g.batch);
        let in_shape = match &expand {
            Some(e) => e.in_shape.clone(),
            None => dw.input_shape(),
        };
        let band = inverted_residual::band_rows(g);
        Ok(InvertedResidual {
            expand,
            dw,
            project,
            in_shape,
            band,
        })
    }

    /// Whether a block of this expansion / depthwise geometry gains from running in bands: when
    /// the expanded tensor (or, without one, the depthwise input) does not fit the L2 cache.
    pub(crate) fn worth_it(dw: &DepthwiseConv) -> bool {
        let g = &dw.geo;
        g.channels * g.in_h * g.in_w * 4 > 512 * 1024
    }

    /// Whether the projection adds a residual.
    pub fn has_residual(&self) -> bool {
        self.project.residual.is_some()
    }

    /// Compute the output from the input (and residual), channels first.
    pub fn compute(
        &self,
        input: &[f32],
        residual: Option<&[f32]>,
        output: &mut [f32],
    ) -> TractResult<()> {
        ensure!(residual.is_some() == self.has_residual());
        fn product(p: &PointwiseConv) -> Product<'_> {
            Product {
                weights: &p.weights,
                pre: clamp_floats(p.pre),
                post: clamp_floats(p.post),
            }
        }
        let res_channels = self.project.residual.as_ref().map(|r| r.0).unwrap_or(0);
        let dw = Depthwise {
            geo: &self.dw.geo,
            level: self.dw.setup.level,
            weights: &self.dw.weights.0,
            bias: &self.dw.bias.0,
            clamp: self.dw.clamp(),
        };
        Ok(inverted_residual::run(
            self.expand.as_ref().map(product),
            &dw,
            product(&self.project),
            self.band,
            input,
            residual.map(|r| (r, res_channels)),
            output,
        )?)
    }
}

impl KernelOp for InvertedResidual {
    const NAME: &'static str = "InvertedResidual(tensorcv)";

    fn describe(&self) -> TractResult<String> {
        let mut info = vec![];
        if let Some(e) = &self.expand {
            info.push(format!("expand {}", e.describe()?));
        }
        info.push(format!("depthwise {}", self.dw.describe()?));
        info.push(format!("project {}", self.project.describe()?));
        info.push(format!("bands of at most {} rows", self.band));
        Ok(info.join("; "))
    }

    fn input_shapes(&self) -> TVec<TVec<usize>> {
        with_residual(&self.in_shape, &self.project.residual)
    }

    fn output_shape(&self) -> TVec<usize> {
        self.project.out_shape.clone()
    }

    fn fma(&self) -> usize {
        self.expand.as_ref().map_or(0, |e| e.fma()) + self.dw.fma() + self.project.fma()
    }

    fn run(&self, inputs: &[&[f32]], output: &mut [f32]) -> TractResult<()> {
        self.compute(inputs[0], inputs.get(1).copied(), output)
    }
}

tract_op!(InvertedResidual);
