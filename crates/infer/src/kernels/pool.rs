//! tensorcv's max pooling (NCHW / CHW `f32`, no index output), in place of tract's
//! `OptMaxPool`, which walks generic patch zones and was a third of BlazeFace's time. It shares
//! the depthwise convolution's phase buffer (padded with -inf) and inner loop (a maximum
//! instead of a multiply-add per tap).

use super::depthwise::{Geometry, Mode};
use super::simd::{Level, MAX_TAPS};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::MaxPool;
use tract_onnx::tract_core::ops::nn::DataFormat;

/// Max pooling over the last two axes of `[N, C, H, W]` or `[C, H, W]`; padding never wins.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MaxPool2d {
    geo: Geometry,
    has_batch: bool,
    level: Option<Level>,
}

impl MaxPool2d {
    /// Pooling with `geo` (`kh * kw` at most 49).
    pub fn new(geo: Geometry, has_batch: bool) -> TractResult<MaxPool2d> {
        ensure!(geo.kh * geo.kw <= MAX_TAPS, "pool window too large");
        ensure!(geo.stride_h >= 1 && geo.stride_w >= 1, "zero stride");
        ensure!(has_batch || geo.batch == 1, "a CHW input holds one image");
        Ok(MaxPool2d {
            geo,
            has_batch,
            level: None,
        })
    }

    /// Run with `level` instead of the best available one (for comparing them).
    pub fn with_level(mut self, level: Level) -> MaxPool2d {
        self.level = Some(level);
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
            .run(self.level, input, output, Mode::Max, |_| (&[][..], 0.0))
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
        let input = args_1!(inputs);
        let input = input.try_as_plain_ram()?;
        let shape = self.shape(self.geo.out_h, self.geo.out_w);
        let mut output = unsafe { Tensor::uninitialized::<f32>(&shape)? };
        {
            let mut out = output.try_as_plain_ram_mut()?;
            self.compute(input.as_slice::<f32>()?, out.as_slice_mut::<f32>()?)?;
        }
        Ok(tvec!(output.into_tvalue()))
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
    let spec = &pool.pool_spec;
    let fact = model.outlet_fact(node.inputs[0])?;
    let Some(shape) = fact.shape.as_concrete() else {
        return Ok(None);
    };
    let has_batch = match spec.data_format {
        DataFormat::NCHW if shape.len() == 4 => true,
        DataFormat::CHW if shape.len() == 3 => false,
        _ => return Ok(None),
    };
    if pool.with_index_outputs.is_some()
        || fact.datum_type != f32::datum_type()
        || spec.rank() != 2
        || spec.dilations().iter().any(|&d| d != 1)
        || spec.kernel_shape.iter().product::<usize>() > MAX_TAPS
    {
        return Ok(None);
    }
    let hw = &shape[shape.len() - 2..];
    let strides = spec.strides();
    let padded = spec
        .padding
        .compute(hw, &spec.kernel_shape, &[1, 1], &strides);
    let geo = Geometry {
        batch: if has_batch { shape[0] } else { 1 },
        channels: shape[shape.len() - 3],
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
    // every window must see at least one real value (else tract's conventions for all-padding
    // windows apply)
    if geo.out_h == 0
        || geo.out_w == 0
        || geo.kh <= geo.pad_top
        || geo.kw <= geo.pad_left
        || (geo.out_h - 1) * geo.stride_h >= geo.in_h + geo.pad_top
        || (geo.out_w - 1) * geo.stride_w >= geo.in_w + geo.pad_left
    {
        return Ok(None);
    }
    Ok(Some(MaxPool2d::new(geo, has_batch)?))
}
