//! tensorcv's max pooling (NCHW / CHW `f32`, no index output), in place of tract's
//! `OptMaxPool`, which walks generic patch zones and was a third of BlazeFace's time. It runs
//! the depthwise convolution's kernel: its phase buffer (padded with -inf) and inner loop (a maximum
//! instead of a multiply-add per tap).

use super::{tract_op, KernelOp};
use tensorcv_kernels::depthwise::{Geometry, Mode, Setup, MAX_TAPS};
use tensorcv_kernels::Level;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

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
        Ok(self
            .geo
            .run(&self.setup, input, output, Mode::Max, &[], &[])?)
    }
}

impl KernelOp for MaxPool2d {
    const NAME: &'static str = "MaxPool(tensorcv)";
    const ROUNDING: bool = false;

    fn describe(&self) -> TractResult<String> {
        Ok(self.geo.to_string())
    }

    fn input_shapes(&self) -> TVec<TVec<usize>> {
        tvec![self.shape(self.geo.in_h, self.geo.in_w)]
    }

    fn output_shape(&self) -> TVec<usize> {
        self.shape(self.geo.out_h, self.geo.out_w)
    }

    fn fma(&self) -> usize {
        self.geo.work()
    }

    fn run(&self, inputs: &[&[f32]], output: &mut [f32]) -> TractResult<()> {
        self.compute(inputs[0], output)
    }
}

tract_op!(MaxPool2d);
