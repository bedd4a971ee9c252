//! tensorcv's own kernels for the operators where tract loses most time on mobile vision
//! models, put into tract's graph when a model is loaded (tract's ops are trait objects and its
//! graphs can be patched, so this needs no fork):
//!
//! - [`DepthwiseConv`] (NCHW and NHWC), the workhorse of MobileNet, EfficientNet-Lite,
//!   BlazeFace and the selfie segmenter, with the bias, per-channel scale/shift and a following ReLU / ReLU6 / clip
//!   folded in, in AVX-512, AVX2 + FMA, WebAssembly SIMD128 and portable copies;
//! - [`MaxPool2d`], max pooling (BlazeFace's 2×2 pools);
//! - [`Resize2d`], resizing of the two spatial axes (the segmenter's upsampling decoder).
//!
//! [`LoadOptions::tract_kernels`](crate::LoadOptions) turns them off, to compare with tract's
//! own operators; tests run both on random inputs and compare.

pub mod depthwise;
pub mod pool;
pub mod resample;
mod simd;

pub use depthwise::{DepthwiseConv, Geometry};
pub use pool::MaxPool2d;
pub use resample::Resize2d;
pub use simd::Level;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::tract_linalg::multithread::par_chunks_mut;

/// What [`accelerate`] replaced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replaced {
    /// depthwise convolutions
    pub depthwise: usize,
    /// of which with an activation folded in
    pub activations: usize,
    /// max pools
    pub pools: usize,
    /// resizes
    pub resizes: usize,
}

/// Put tensorcv's ops in place of the tract nodes they run faster. Call on a decluttered model,
/// before tract's `optimize()` (codegen), which then leaves them alone.
pub fn accelerate(model: &mut TypedModel) -> TractResult<Replaced> {
    let mut replaced = Replaced::default();
    for id in model.eval_order()? {
        let node = model.node(id);
        let (op, absorbed): (Box<dyn TypedOp>, Vec<usize>) =
            if let Some((op, absorbed)) = depthwise::replace(model, node)? {
                replaced.depthwise += 1;
                replaced.activations += op.has_clamp() as usize;
                (Box::new(op), absorbed)
            } else if let Some(op) = pool::replace(model, node)? {
                replaced.pools += 1;
                (Box::new(op), vec![])
            } else if let Some(op) = resample::replace(model, node)? {
                replaced.resizes += 1;
                (Box::new(op), vec![])
            } else {
                continue;
            };
        let mut patch = TypedModelPatch::new("tensorcv kernels");
        let x = patch.tap_model(model, node.inputs[0])?;
        let wire = patch.wire_node(format!("{}.tensorcv", node.name), op, &[x])?[0];
        let last = absorbed.last().copied().unwrap_or(id);
        patch.shunt_outside(model, OutletId::new(last, 0), wire)?;
        patch.obliterate(id)?;
        for n in absorbed {
            patch.obliterate(n)?;
        }
        patch.apply(model)?;
    }
    Ok(replaced)
}

/// Evaluate a one-input `f32` op: a fresh output of `shape`, filled by `compute(input, output)`.
pub(crate) fn eval_f32(
    inputs: TVec<TValue>,
    shape: &[usize],
    compute: impl FnOnce(&[f32], &mut [f32]) -> TractResult<()>,
) -> TractResult<TVec<TValue>> {
    use tract_onnx::tract_core::internal::*;
    let input = args_1!(inputs);
    let input = input.try_as_plain_ram()?;
    let mut output = unsafe { Tensor::uninitialized::<f32>(shape)? };
    {
        let mut out = output.try_as_plain_ram_mut()?;
        compute(input.as_slice::<f32>()?, out.as_slice_mut::<f32>()?)?;
    }
    Ok(tvec!(output.into_tvalue()))
}

/// Run `f(plane, input_plane, output_plane)` over the planes of a `[.., H, W]` tensor, spread
/// over tract's executor when it has threads and the work (`work` per output value) is large.
pub(crate) fn planes(
    input: &[f32],
    in_plane: usize,
    output: &mut [f32],
    out_plane: usize,
    work: usize,
    f: impl Fn(usize, &[f32], &mut [f32]) + Sync + Send,
) -> TractResult<()> {
    if out_plane == 0 || output.is_empty() {
        return Ok(());
    }
    let count = output.len() / out_plane;
    tract_onnx::tract_core::internal::ensure!(
        output.len() == count * out_plane && input.len() == count * in_plane,
        "plane sizes do not divide the tensors"
    );
    let total = output.len() * work.max(1);
    par_chunks_mut(output, out_plane, total, |first, chunk| {
        for (i, out) in chunk.chunks_exact_mut(out_plane).enumerate() {
            let p = first + i;
            f(p, &input[p * in_plane..(p + 1) * in_plane], out);
        }
        Ok(())
    })
}
