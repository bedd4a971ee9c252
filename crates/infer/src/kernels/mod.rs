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
pub mod gemm;
mod lanes;
pub mod pointwise;
pub mod pool;
pub mod resample;
mod simd;

pub use depthwise::{DepthwiseConv, Geometry};
pub use lanes::Level;
pub use pointwise::PointwiseConv;
pub use pool::MaxPool2d;
pub use resample::Resize2d;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::tract_linalg::multithread::par_chunks_mut;

/// What [`accelerate`] replaced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replaced {
    /// depthwise convolutions
    pub depthwise: usize,
    /// of which with an activation folded in
    pub activations: usize,
    /// 1×1 convolutions
    pub pointwise: usize,
    /// of which with a residual add folded in
    pub residuals: usize,
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
        let (op, inputs, absorbed): (Box<dyn TypedOp>, TVec<OutletId>, Vec<usize>) =
            if let Some((op, absorbed)) = depthwise::replace(model, node)? {
                replaced.depthwise += 1;
                replaced.activations += op.has_clamp() as usize;
                (Box::new(op), tvec![node.inputs[0]], absorbed)
            } else if let Some((op, inputs, absorbed)) = pointwise::replace(model, node)? {
                replaced.pointwise += 1;
                replaced.residuals += op.has_residual() as usize;
                (Box::new(op), inputs, absorbed)
            } else if let Some(op) = pool::replace(model, node)? {
                replaced.pools += 1;
                (Box::new(op), tvec![node.inputs[0]], vec![])
            } else if let Some(op) = resample::replace(model, node)? {
                replaced.resizes += 1;
                (Box::new(op), tvec![node.inputs[0]], vec![])
            } else {
                continue;
            };
        let mut patch = TypedModelPatch::new("tensorcv kernels");
        let taps = inputs
            .iter()
            .map(|&i| patch.tap_model(model, i))
            .collect::<TractResult<TVec<_>>>()?;
        let wire = patch.wire_node(format!("{}.tensorcv", node.name), op, &taps)?[0];
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

/// Fold a `Max` (lower bound) or `Min` (upper bound) by the scalar `bound` into `clamp`; false
/// (and `clamp` unchanged) for other ops or bounds that would cross.
pub(crate) fn chain_clamp(
    op: &dyn tract_onnx::tract_core::ops::binary::BinMiniOp,
    clamp: &mut Option<(f32, f32)>,
    bound: f32,
) -> bool {
    use tract_onnx::tract_core::ops::math::{Max, Min};
    let (lo, hi) = clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
    let next = if op.is::<Max>() {
        (lo.max(bound), hi)
    } else if op.is::<Min>() {
        (lo, hi.min(bound))
    } else {
        return false;
    };
    if next.0 > next.1 {
        return false;
    }
    *clamp = Some(next);
    true
}

/// A pointer shared by the threads of one op, which write disjoint parts of what it points to.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub(crate) *mut f32);
// SAFETY: the ops hand each thread its own part of the buffer
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The pointer (a method, so closures capture the whole `SendPtr`).
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

/// Threads of tract's executor for this run (1 without one, and on wasm).
pub(crate) fn threads() -> usize {
    #[cfg(not(target_family = "wasm"))]
    {
        use tract_onnx::tract_core::tract_linalg::multithread::{current_tract_executor, Executor};
        if let Executor::MultiThread(pool) = current_tract_executor() {
            return pool.current_num_threads();
        }
    }
    1
}

/// Run `f(part)` for every `part < parts`, on tract's executor's threads when it has some.
pub(crate) fn for_parts(parts: usize, f: impl Fn(usize) + Sync + Send) {
    #[cfg(not(target_family = "wasm"))]
    if parts > 1 {
        use rayon::prelude::*;
        use tract_onnx::tract_core::tract_linalg::multithread::{current_tract_executor, Executor};
        if let Executor::MultiThread(pool) = current_tract_executor() {
            pool.install(|| (0..parts).into_par_iter().for_each(&f));
            return;
        }
    }
    (0..parts).for_each(f)
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

/// Run `f(first, input_planes, output_planes)` over runs of consecutive planes of a `[.., H, W]`
/// tensor (`first` the index of the run's first plane), one run per thread of tract's executor
/// when it has threads and the work (`work` per output value) is large, else one run.
pub(crate) fn chunks(
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
    let parts = if output.len() * work.max(1) >= 1 << 16 {
        threads().min(count)
    } else {
        1
    };
    let per = count.div_ceil(parts);
    let out = SendPtr(output.as_mut_ptr());
    for_parts(parts, |part| {
        let (first, last) = ((part * per).min(count), ((part + 1) * per).min(count));
        if first < last {
            // SAFETY: parts write disjoint runs of planes of `output`
            let out = unsafe {
                std::slice::from_raw_parts_mut(
                    out.get().add(first * out_plane),
                    (last - first) * out_plane,
                )
            };
            f(first, &input[first * in_plane..last * in_plane], out);
        }
    });
    Ok(())
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
