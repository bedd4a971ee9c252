//! PReLU with one slope per channel (LeakyReLU when they are all equal). tf2onnx writes
//! TensorFlow's PReLU as ONNX `PRelu`, which tract expands into `Greater(0, x)`, `Mul(x, alpha)`
//! and `Iff`: three passes over the tensor, a boolean one and two temporaries (1.5 ms of
//! face_landmark's 3.3 ms); here it is one pass.

use super::{side, tract_op, KernelOp};
use tensorcv_kernels::activation;
use tensorcv_kernels::Level;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

/// `x < 0 ? alpha[c] * x : x` over an `f32` tensor of `shape`, its channels on `axis`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Prelu {
    shape: TVec<usize>,
    axis: usize,
    /// the slopes' bit patterns (the op is `Hash` and `Eq`), one per channel
    alpha: Vec<u32>,
}

impl Prelu {
    /// A PReLU over a tensor of `shape` with the slopes `alpha` of the channels on `axis`
    /// (one slope: every channel's).
    pub fn new(shape: &[usize], axis: usize, alpha: &[f32]) -> TractResult<Prelu> {
        ensure!(
            axis < shape.len(),
            "no axis {axis} in a {}-d tensor",
            shape.len()
        );
        let alpha = if alpha.len() == 1 {
            vec![alpha[0]; shape[axis]]
        } else {
            alpha.to_vec()
        };
        ensure!(
            alpha.len() == shape[axis],
            "{} slopes for {} channels",
            alpha.len(),
            shape[axis]
        );
        Ok(Prelu {
            shape: shape.into(),
            axis,
            alpha: alpha.iter().map(|a| a.to_bits()).collect(),
        })
    }

    /// The channel axis.
    pub fn axis(&self) -> usize {
        self.axis
    }

    /// The same activation on the tensor with its channels moved last (`[.., C, H, W]` seen
    /// as `[.., H, W, C]`; the axis must be the third from last).
    pub fn with_channels_last(&self) -> TractResult<Prelu> {
        let r = self.shape.len();
        ensure!(r >= 3 && self.axis == r - 3, "not a channels-first tensor");
        let shape = super::channels_moved(&self.shape, false, true)?;
        Ok(Prelu {
            shape,
            axis: r - 1,
            alpha: self.alpha.clone(),
        })
    }

    /// Compute with `level`'s vectors.
    pub fn compute_with(&self, level: Level, x: &[f32], out: &mut [f32]) -> TractResult<()> {
        let alpha: Vec<f32> = self.alpha.iter().map(|&a| f32::from_bits(a)).collect();
        let inner = self.shape[self.axis + 1..].iter().product();
        Ok(activation::prelu(level, x, &alpha, inner, out)?)
    }
}

impl KernelOp for Prelu {
    const NAME: &'static str = "Prelu(tensorcv)";
    const ROUNDING: bool = false;

    fn describe(&self) -> TractResult<String> {
        let r = self.shape.len();
        let layout = if r >= 3 && self.axis == r - 1 {
            format!(", channels {}", side(true))
        } else {
            format!(", channels on axis {}", self.axis)
        };
        Ok(format!("{:?}{layout}", self.shape))
    }

    fn input_shapes(&self) -> TVec<TVec<usize>> {
        tvec![self.shape.clone()]
    }

    fn output_shape(&self) -> TVec<usize> {
        self.shape.clone()
    }

    fn fma(&self) -> usize {
        self.shape.iter().product()
    }

    fn run(&self, inputs: &[&[f32]], output: &mut [f32]) -> TractResult<()> {
        self.compute_with(Level::best(), inputs[0], output)
    }
}

tract_op!(Prelu);
