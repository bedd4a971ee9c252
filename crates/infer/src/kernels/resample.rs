//! tensorcv's resize of the last two axes (`f32`, constant scales or sizes), in place of tract's
//! `Resize`, which resamples axis by axis through fresh copies of the whole tensor and was half
//! of the selfie segmenter's time. The interpolation plan (source indices and weights per
//! output position, for every ONNX coordinate mode and interpolator tract knows) is tract's own.

use super::{eval_f32, planes};
use std::cell::RefCell;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::nn::resize::{AxisPlan, Resize};

/// One axis' plan: `window` source indices and weights per output position.
#[derive(Clone, Debug, PartialEq)]
struct Plan {
    window: usize,
    indices: Vec<usize>,
    weights: Vec<f32>,
}

impl Plan {
    fn new(plan: AxisPlan) -> Plan {
        Plan {
            window: plan.window,
            indices: plan.indices,
            weights: plan.weights,
        }
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
    fn output_shape(&self) -> TVec<usize> {
        let mut s = self.shape.clone();
        let r = s.len();
        s[r - 2] = self.out_h;
        s[r - 1] = self.out_w;
        s
    }

    fn plane(&self, input: &[f32], out: &mut [f32], tmp: &mut Vec<f32>) {
        let r = self.shape.len();
        let (in_h, in_w) = (self.shape[r - 2], self.shape[r - 1]);
        let ow = self.out_w;
        // every input row resampled to out_w columns
        tmp.clear();
        tmp.resize(in_h * ow, 0.0);
        let (cw, ci, cwt) = (self.cols.window, &self.cols.indices, &self.cols.weights);
        for (src, dst) in input.chunks_exact(in_w).zip(tmp.chunks_exact_mut(ow)) {
            for (x, d) in dst.iter_mut().enumerate() {
                let (ix, wt) = (&ci[x * cw..][..cw], &cwt[x * cw..][..cw]);
                *d = ix.iter().zip(wt).map(|(&i, &w)| src[i] * w).sum();
            }
        }
        // output rows as weighted sums of those rows
        let (rw, ri, rwt) = (self.rows.window, &self.rows.indices, &self.rows.weights);
        for (y, dst) in out.chunks_exact_mut(ow).enumerate() {
            let (iy, wt) = (&ri[y * rw..][..rw], &rwt[y * rw..][..rw]);
            let first = &tmp[iy[0] * ow..][..ow];
            dst.iter_mut().zip(first).for_each(|(d, &s)| *d = s * wt[0]);
            for (&i, &w) in iy[1..].iter().zip(&wt[1..]) {
                let src = &tmp[i * ow..][..ow];
                dst.iter_mut().zip(src).for_each(|(d, &s)| *d += s * w);
            }
        }
    }
}

impl Resize2d {
    /// Compute the whole output from the whole input (both laid out `[.., H, W]`).
    pub fn compute(&self, input: &[f32], output: &mut [f32]) -> TractResult<()> {
        thread_local! {
            static ROWS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
        }
        let r = self.shape.len();
        planes(
            input,
            self.shape[r - 2] * self.shape[r - 1],
            output,
            self.out_h * self.out_w,
            self.rows.window * self.cols.window,
            |_, i, o| ROWS.with_borrow_mut(|tmp| self.plane(i, o, tmp)),
        )
    }
}

impl Op for Resize2d {
    fn name(&self) -> StaticName {
        "Resize(tensorcv)".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let r = self.shape.len();
        Ok(vec![format!(
            "{}x{} -> {}x{}, window {}x{}",
            self.shape[r - 2],
            self.shape[r - 1],
            self.out_h,
            self.out_w,
            self.rows.window,
            self.cols.window
        )])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for Resize2d {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        eval_f32(inputs, &self.output_shape(), |i, o| self.compute(i, o))
    }
}

impl TypedOp for Resize2d {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 1 && inputs[0].datum_type == f32::datum_type());
        ensure!(inputs[0].shape.as_concrete() == Some(&*self.shape));
        Ok(tvec!(f32::fact(self.output_shape())))
    }

    as_op!();
}

/// tensorcv's op for a tract `Resize` node that resizes only the last two axes of an `f32`
/// tensor with constant scales or sizes.
pub(super) fn replace(model: &TypedModel, node: &TypedNode) -> TractResult<Option<Resize2d>> {
    let Some(resize) = node.op_as::<Resize>() else {
        return Ok(None);
    };
    let fact = model.outlet_fact(node.inputs[0])?;
    let Some(shape) = fact.shape.as_concrete() else {
        return Ok(None);
    };
    let konst = |ix: Option<usize>| -> TractResult<Option<Arc<Tensor>>> {
        Ok(match ix.and_then(|i| node.inputs.get(i)) {
            Some(&o) => model.outlet_fact(o)?.konst.clone(),
            None => None,
        })
    };
    let scales = konst(resize.optional_scales_input)?;
    let sizes = konst(resize.optional_sizes_input)?;
    if fact.datum_type != f32::datum_type()
        || shape.len() < 3
        || (resize.optional_scales_input.is_some() && scales.is_none())
        || (resize.optional_sizes_input.is_some() && sizes.is_none())
    {
        return Ok(None);
    }
    let Ok(out) = resize.compute_output_shape(shape, scales.as_deref(), sizes.as_deref()) else {
        return Ok(None);
    };
    let r = shape.len();
    // the scale tract's own op uses per axis
    let scale: Vec<f32> = match scales.as_ref().filter(|s| s.len() == r) {
        Some(s) => s
            .cast_to::<f32>()?
            .try_as_plain_ram()?
            .as_slice::<f32>()?
            .to_vec(),
        None => out
            .iter()
            .zip(shape)
            .map(|(&o, &i)| o as f32 / i as f32)
            .collect(),
    };
    if (0..r - 2).any(|a| out[a] != shape[a] || scale[a] != 1.0)
        || out[r - 2] == 0
        || out[r - 1] == 0
    {
        return Ok(None);
    }
    Ok(Some(Resize2d {
        shape: shape.into(),
        out_h: out[r - 2],
        out_w: out[r - 1],
        rows: Plan::new(resize.plan_axis(scale[r - 2], shape[r - 2], out[r - 2])),
        cols: Plan::new(resize.plan_axis(scale[r - 1], shape[r - 1], out[r - 1])),
    }))
}
