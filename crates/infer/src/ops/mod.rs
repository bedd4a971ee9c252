//! tensorcv's operators as tract ops: each holds what it was built with (weights packed, the
//! geometry, the instruction set) and runs a kernel of `tensorcv-kernels`. The graph rewrites
//! in [`crate::rewrite`] put them in place of tract's own.
//!
//! - [`DepthwiseConv`] (NCHW and NHWC), the workhorse of MobileNet, EfficientNet-Lite,
//!   BlazeFace and the selfie segmenter, with the bias, per-channel scale/shift and a
//!   following ReLU / ReLU6 / clip folded in;
//! - [`PointwiseConv`], 1×1 convolutions (and matrix products over channels) with their
//!   epilogue: bias, clamp, a residual add, a second clamp;
//! - [`Conv2d`], other dense convolutions (stems, BlazeFace's 5×5s), as im2col panels into the
//!   same matrix product;
//! - [`InvertedResidual`], MobileNetV2's expand → depthwise → project run in bands of rows that
//!   stay in cache;
//! - [`MaxPool2d`], max pooling (BlazeFace's 2×2 pools);
//! - [`Resize2d`], resizing of the two spatial axes (the segmenter's upsampling decoder);
//! - [`Prelu`], PReLU / LeakyReLU with a slope per channel (tract expands it into three ops);
//! - [`MoveChannels`], a channel axis moved between first and last, and [`ScaleChannels`], a
//!   channels-last tensor times per-channel factors computed in the graph (squeeze-and-excite).
//!
//! Their `Op` / `EvalOp` / `TypedOp` impls are one implementation, [`KernelOp`] and
//! [`tract_op!`]: an op says its name, its description, the shapes it reads and writes, its
//! multiply-adds and how to compute; checking the input facts, allocating the output and
//! reading the inputs as `f32` are written once.

mod activation;
pub(crate) mod channels;
mod conv;
mod depthwise;
mod inverted_residual;
mod pointwise;
mod pool;
mod resize;

pub use activation::Prelu;
pub use channels::{MoveChannels, ScaleChannels};
pub use conv::Conv2d;
pub use depthwise::DepthwiseConv;
pub use inverted_residual::InvertedResidual;
pub use pointwise::PointwiseConv;
pub use pool::MaxPool2d;
pub use resize::Resize2d;

pub(crate) use channels::channels_moved;
pub(crate) use depthwise::Floats;

use tensorcv_kernels::gemm::Clamp;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

/// What one of tensorcv's ops says about itself; [`tract_op!`] makes a tract op of it.
pub(crate) trait KernelOp {
    /// The op's name in tract's graph (`"DepthwiseConv(tensorcv)"`).
    const NAME: &'static str;
    /// Whether results may differ from tract's op by rounding (sums taken in another order).
    const ROUNDING: bool = true;
    /// One line saying what the op computes, for `tensorcv graph` and tract's dumps.
    fn describe(&self) -> TractResult<String>;
    /// The shapes of the `f32` inputs the op was built for.
    fn input_shapes(&self) -> TVec<TVec<usize>>;
    /// The shape of its one `f32` output.
    fn output_shape(&self) -> TVec<usize>;
    /// Multiply-adds (or taps) per run, for tract's cost model; 0: none given.
    fn fma(&self) -> usize;
    /// Compute `output` from `inputs` (as many as [`KernelOp::input_shapes`], in order).
    fn run(&self, inputs: &[&[f32]], output: &mut [f32]) -> TractResult<()>;
}

/// `output_facts` of a [`KernelOp`]: its `f32` inputs of the shapes it was built for.
pub(crate) fn kernel_facts<K: KernelOp>(
    op: &K,
    inputs: &[&TypedFact],
) -> TractResult<TVec<TypedFact>> {
    let shapes = op.input_shapes();
    ensure!(
        inputs.len() == shapes.len(),
        "{} reads {} inputs, not {}",
        K::NAME,
        shapes.len(),
        inputs.len()
    );
    for (i, (fact, shape)) in inputs.iter().zip(&shapes).enumerate() {
        ensure!(
            fact.datum_type == f32::datum_type(),
            "{} input {i} is {:?}, not f32",
            K::NAME,
            fact.datum_type
        );
        ensure!(
            fact.shape.as_concrete() == Some(&**shape),
            "{} input {i} is {:?}, the op was built for {:?}",
            K::NAME,
            fact.shape,
            shape
        );
    }
    Ok(tvec!(f32::fact(op.output_shape())))
}

/// `eval` of a [`KernelOp`]: a fresh output, computed from the inputs as `f32` slices.
pub(crate) fn kernel_eval<K: KernelOp>(op: &K, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
    ensure!(inputs.len() == op.input_shapes().len());
    let views = inputs
        .iter()
        .map(|v| v.try_as_plain_ram())
        .collect::<TractResult<TVec<_>>>()?;
    let slices = views
        .iter()
        .map(|v| v.as_slice::<f32>())
        .collect::<TractResult<TVec<_>>>()?;
    // SAFETY: `run` writes every element of the output before it is read (each kernel
    // stores its whole output; tract's own ops allocate theirs the same way)
    let mut output = unsafe { Tensor::uninitialized::<f32>(&op.output_shape())? };
    {
        let mut out = output.try_as_plain_ram_mut()?;
        op.run(&slices, out.as_slice_mut::<f32>()?)?;
    }
    Ok(tvec!(output.into_tvalue()))
}

/// The tract op of a [`KernelOp`]: `Op`, `EvalOp` and `TypedOp` delegating to it.
macro_rules! tract_op {
    ($ty:ty) => {
        impl Op for $ty {
            fn name(&self) -> StaticName {
                <$ty as $crate::ops::KernelOp>::NAME.into()
            }

            fn info(&self) -> TractResult<Vec<String>> {
                Ok(vec![$crate::ops::KernelOp::describe(self)?])
            }

            fn validation(&self) -> Validation {
                if <$ty as $crate::ops::KernelOp>::ROUNDING {
                    Validation::Rounding
                } else {
                    Validation::Accurate
                }
            }

            op_as_typed_op!();
        }

        impl EvalOp for $ty {
            op_out_of_plan!();

            fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
                $crate::ops::kernel_eval(self, inputs)
            }
        }

        impl TypedOp for $ty {
            fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
                $crate::ops::kernel_facts(self, inputs)
            }

            fn cost(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
                match $crate::ops::KernelOp::fma(self) {
                    0 => Ok(tvec!()),
                    n => Ok(tvec!((Cost::FMA(f32::datum_type()), n.to_dim()))),
                }
            }

            as_op!();
        }
    };
}
pub(crate) use tract_op;

/// A clamp as bit patterns (the ops are `Hash` and `Eq`), and back.
pub(crate) fn clamp_bits(c: Option<(f32, f32)>) -> Option<(u32, u32)> {
    c.map(|(lo, hi)| (lo.to_bits(), hi.to_bits()))
}

/// See [`clamp_bits`].
pub(crate) fn clamp_floats(c: Option<(u32, u32)>) -> Option<(f32, f32)> {
    c.map(|(lo, hi)| (f32::from_bits(lo), f32::from_bits(hi)))
}

/// `last` or `first`: where a layout keeps the channels, for descriptions.
pub(crate) fn side(channels_last: bool) -> &'static str {
    if channels_last {
        "last"
    } else {
        "first"
    }
}

/// A residual input: its channel count and shape.
pub(crate) type Residual = Option<(usize, TVec<usize>)>;

/// The description of the matrix-product ops' epilogue: clamp, residual add, clamp.
pub(crate) fn epilogue_info(
    pre: Option<(u32, u32)>,
    residual: &Residual,
    post: Option<(u32, u32)>,
) -> String {
    let mut info = String::new();
    if let Some((lo, hi)) = clamp_floats(pre) {
        info += &format!(", clamp [{lo}, {hi}]");
    }
    if let Some((c, _)) = residual {
        info += &format!(", + residual ({c} channels)");
    }
    if let Some((lo, hi)) = clamp_floats(post) {
        info += &format!(", clamp [{lo}, {hi}]");
    }
    info
}

/// A residual input and its channel count, as the kernels take it.
pub(crate) type ResidualInput<'a> = Option<(&'a [f32], usize)>;

/// A matrix-product op's epilogue as its kernel takes it: the clamps before and after the
/// residual, and the residual input with its channel count (given exactly when the op adds
/// one).
pub(crate) fn epilogue_args<'a>(
    pre: Option<(u32, u32)>,
    post: Option<(u32, u32)>,
    spec: &Residual,
    residual: Option<&'a [f32]>,
) -> TractResult<(Clamp, Clamp, ResidualInput<'a>)> {
    ensure!(
        residual.is_some() == spec.is_some(),
        "a residual input is given exactly when the op adds one"
    );
    let residual = residual.zip(spec.as_ref().map(|r| r.0));
    Ok((clamp_floats(pre), clamp_floats(post), residual))
}

/// The input shapes of an op reading `input` and, if any, the `residual`.
pub(crate) fn with_residual(input: &[usize], residual: &Residual) -> TVec<TVec<usize>> {
    let mut shapes = tvec![input.into()];
    if let Some((_, shape)) = residual {
        shapes.push(shape.clone());
    }
    shapes
}
