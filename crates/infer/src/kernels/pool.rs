//! tensorcv's max pooling (NCHW / CHW `f32`, no index output), in place of tract's
//! `OptMaxPool`, which walks generic patch zones and was a third of BlazeFace's time. It shares
//! the depthwise convolution's phase buffer (padded with -inf) and inner loop (a maximum
//! instead of a multiply-add per tap).

use super::depthwise::{Geometry, Mode, Setup};
use super::eval_f32;
use super::lanes::Level;
use super::simd::MAX_TAPS;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::MaxPool;

/// Max pooling over the last two axes of `[N, C, H, W]` or `[C, H, W]`; padding never wins.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MaxPool2d {
    geo: Geometry,
    has_batch: bool,
    /// instruction set and tap offsets, from the geometry (and a level forced in tests)
    setup: Setup,
}

impl MaxPool2d {
    /// Pooling with `geo` (`kh * kw` at most 49).
    pub fn new(geo: Geometry, has_batch: bool) -> TractResult<MaxPool2d> {
        ensure!(geo.kh * geo.kw <= MAX_TAPS, "pool window too large");
        ensure!(geo.stride_h >= 1 && geo.stride_w >= 1, "zero stride");
        ensure!(has_batch || geo.batch == 1, "a CHW input holds one image");
        Ok(MaxPool2d {
            setup: geo.setup(None, false),
            geo,
            has_batch,
        })
    }

    /// Run with `level` instead of the best available one (for comparing them).
    pub fn with_level(mut self, level: Level) -> MaxPool2d {
        self.setup = self.geo.setup(Some(level), false);
        self
    }

    fn shape(&self, h: usize, w: usize) -> TVec<usize> {
        let mut s = tvec![self.geo.channels, h, w];
        if self.has_batch {
            s.insert(0, self.geo.batch);
        }
        s
    }

    /// Compute the whole output from the whole input (both laid out `[.., C, H, W]`).
    pub fn compute(&self, input: &[f32], output: &mut [f32]) -> TractResult<()> {
        self.geo
            .run(&self.setup, input, output, Mode::Max, &[], &[])
    }
}

impl Op for MaxPool2d {
    fn name(&self) -> StaticName {
        "MaxPool(tensorcv)".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![self.geo.to_string()])
    }

    op_as_typed_op!();
}

impl EvalOp for MaxPool2d {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let shape = self.shape(self.geo.out_h, self.geo.out_w);
        eval_f32(inputs, &shape, |i, o| self.compute(i, o))
    }
}

impl TypedOp for MaxPool2d {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 1 && inputs[0].datum_type == f32::datum_type());
        let expected = self.shape(self.geo.in_h, self.geo.in_w);
        ensure!(inputs[0].shape.as_concrete() == Some(&*expected));
        Ok(tvec!(f32::fact(self.shape(self.geo.out_h, self.geo.out_w))))
    }

    fn cost(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let g = &self.geo;
        let n = g.batch * g.channels * g.out_h * g.out_w * g.kh * g.kw;
        Ok(tvec!((Cost::FMA(f32::datum_type()), n.to_dim())))
    }

    as_op!();
}

/// tensorcv's op for a tract `MaxPool` node, if it is one this module runs.
pub(super) fn replace(model: &TypedModel, node: &TypedNode) -> TractResult<Option<MaxPool2d>> {
    let Some(pool) = node.op_as::<MaxPool>() else {
        return Ok(None);
    };
    let fact = model.outlet_fact(node.inputs[0])?;
    let Some(shape) = fact.shape.as_concrete() else {
        return Ok(None);
    };
    let Some((geo, has_batch, channels_last)) = Geometry::from_pool_spec(&pool.pool_spec, shape)
    else {
        return Ok(None);
    };
    if pool.with_index_outputs.is_some()
        || fact.datum_type != f32::datum_type()
        || channels_last
        || !geo.every_window_reads_input()
    {
        return Ok(None);
    }
    Ok(Some(MaxPool2d::new(geo, has_batch)?))
}
