//! tensorcv's resize of the last two axes (`f32`, constant scales or sizes), in place of tract's
//! `Resize`, which resamples axis by axis through fresh copies of the whole tensor and was half
//! of the selfie segmenter's time. The interpolation plan (source indices and weights per
//! output position, for every ONNX coordinate mode and interpolator tract knows) is tract's own.

use super::{tract_op, KernelOp};
use tensorcv_kernels::resample::{self, Plan};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::nn::resize::AxisPlan;

/// One axis' plan from tract's.
fn plan(plan: AxisPlan) -> Plan {
    Plan {
        window: plan.window,
        indices: plan.indices,
        weights: plan.weights,
    }
}

/// Resampling of `[.., H, W]` to `[.., out_h, out_w]`, separably: rows first (a gather per
/// output column), then columns (whole rows blended, which vectorises).
#[derive(Clone, Debug)]
pub struct Resize2d {
    shape: TVec<usize>,
    out_h: usize,
    out_w: usize,
    rows: Plan,
    cols: Plan,
}

impl PartialEq for Resize2d {
    fn eq(&self, other: &Self) -> bool {
        let bits = |p: &Plan| -> Vec<u32> { p.weights.iter().map(|w| w.to_bits()).collect() };
        self.shape == other.shape
            && (self.out_h, self.out_w) == (other.out_h, other.out_w)
            && self.rows.indices == other.rows.indices
            && self.cols.indices == other.cols.indices
            && bits(&self.rows) == bits(&other.rows)
            && bits(&self.cols) == bits(&other.cols)
    }
}
impl Eq for Resize2d {}

impl Resize2d {
    /// The resize of a `[.., H, W]` tensor of `shape` to `out_h × out_w` with tract's plans
    /// for the rows and the columns.
    pub(crate) fn new(
        shape: &[usize],
        (out_h, out_w): (usize, usize),
        rows: AxisPlan,
        cols: AxisPlan,
    ) -> Resize2d {
        Resize2d {
            shape: shape.into(),
            out_h,
            out_w,
            rows: plan(rows),
            cols: plan(cols),
        }
    }

    /// Compute the whole output from the whole input (both laid out `[.., H, W]`).
    pub fn compute(&self, input: &[f32], output: &mut [f32]) -> TractResult<()> {
        let r = self.shape.len();
        let (in_h, in_w) = (self.shape[r - 2], self.shape[r - 1]);
        Ok(resample::run(
            (in_h, in_w),
            (self.out_h, self.out_w),
            &self.rows,
            &self.cols,
            input,
            output,
        )?)
    }
}

impl KernelOp for Resize2d {
    const NAME: &'static str = "Resize(tensorcv)";

    fn describe(&self) -> TractResult<String> {
        let r = self.shape.len();
        Ok(format!(
            "{}x{} -> {}x{}, window {}x{}",
            self.shape[r - 2],
            self.shape[r - 1],
            self.out_h,
            self.out_w,
            self.rows.window,
            self.cols.window
        ))
    }

    fn input_shapes(&self) -> TVec<TVec<usize>> {
        tvec![self.shape.clone()]
    }

    fn output_shape(&self) -> TVec<usize> {
        let mut s = self.shape.clone();
        let r = s.len();
        s[r - 2] = self.out_h;
        s[r - 1] = self.out_w;
        s
    }

    fn fma(&self) -> usize {
        0
    }

    fn run(&self, inputs: &[&[f32]], output: &mut [f32]) -> TractResult<()> {
        self.compute(inputs[0], output)
    }
}

tract_op!(Resize2d);
