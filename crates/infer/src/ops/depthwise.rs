//! tensorcv's depthwise convolution op: the kernel of [`tensorcv_kernels::depthwise`] with its
//! weights, bias and clamp (bias, per-channel scale and shift, batch-norm remnants, and ReLU /
//! ReLU6 / clip folded in when the model is loaded), channels first or last.

use super::{clamp_bits, clamp_floats, epilogue_info, tract_op, KernelOp};
use std::sync::Arc;
use tensorcv_kernels::depthwise::{Geometry, Mode, Setup, MAX_TAPS};
use tensorcv_kernels::Level;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

/// Weights, bias or scale as exact bits, so the op can be `Eq` and `Hash` as tract asks.
#[derive(Clone, Debug)]
pub(crate) struct Floats(pub(crate) Arc<[f32]>);

impl PartialEq for Floats {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&*other.0)
                .all(|(a, b)| a.to_bits() == b.to_bits())
    }
}
impl Eq for Floats {}
impl std::hash::Hash for Floats {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for x in self.0.iter() {
            x.to_bits().hash(state);
        }
    }
}

/// tensorcv's depthwise convolution: one input, `[N, C, H, W]` / `[C, H, W]` or channels last
/// (`[N, H, W, C]` / `[H, W, C]`), `f32`; weights, bias and the clamp are part of the op.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DepthwiseConv {
    pub(crate) geo: Geometry,
    /// `true` for `[N, ..]`, `false` for one image without a batch axis
    has_batch: bool,
    /// channels last: weights are kept `[kh * kw, C]`, else `[C, kh * kw]`
    channels_last: bool,
    pub(crate) weights: Floats,
    pub(crate) bias: Floats,
    /// lower and upper bounds as bits (`None`: no activation)
    clamp: Option<(u32, u32)>,
    /// channels last: a row of zeros (`in_w * C`), what the taps above and below the image read
    zeros: Floats,
    /// instruction set and tap offsets, from the geometry (and a level forced in tests)
    pub(crate) setup: Setup,
}

impl DepthwiseConv {
    /// `weights`: `channels * kh * kw` floats, channel-major (`[C, kh, kw]`, whatever the
    /// layout); `bias`: `channels` floats.
    pub fn new(
        geo: Geometry,
        has_batch: bool,
        channels_last: bool,
        weights: Vec<f32>,
        bias: Vec<f32>,
        clamp: Option<(f32, f32)>,
    ) -> TractResult<DepthwiseConv> {
        ensure!(
            weights.len() == geo.channels * geo.kh * geo.kw,
            "weights do not fit"
        );
        ensure!(bias.len() == geo.channels, "bias does not fit");
        ensure!(geo.kh * geo.kw <= MAX_TAPS, "kernel too large");
        ensure!(geo.stride_h >= 1 && geo.stride_w >= 1, "zero stride");
        ensure!(has_batch || geo.batch == 1, "a CHW input holds one image");
        let taps = geo.kh * geo.kw;
        let weights = if channels_last {
            // tap-major: one vector of channels per tap
            let c = geo.channels;
            (0..taps * c)
                .map(|i| weights[(i % c) * taps + i / c])
                .collect()
        } else {
            weights
        };
        let zeros = if channels_last {
            geo.in_w * geo.channels
        } else {
            0
        };
        Ok(DepthwiseConv {
            setup: geo.setup(None, channels_last),
            geo,
            has_batch,
            channels_last,
            zeros: Floats(vec![0.0; zeros].into()),
            weights: Floats(weights.into()),
            bias: Floats(bias.into()),
            clamp: clamp_bits(clamp),
        })
    }

    /// The same convolution on channels-first (`[N, C, H, W]` / `[C, H, W]`) or channels-last
    /// (`[N, H, W, C]` / `[H, W, C]`) tensors.
    pub fn with_channels_last(&self, last: bool) -> TractResult<DepthwiseConv> {
        let (c, taps) = (self.geo.channels, self.geo.kh * self.geo.kw);
        // back to channel-major weights
        let weights = if self.channels_last {
            (0..c * taps)
                .map(|i| self.weights.0[(i % taps) * c + i / taps])
                .collect()
        } else {
            self.weights.0.to_vec()
        };
        let clamp = self.clamp();
        DepthwiseConv::new(
            self.geo.clone(),
            self.has_batch,
            last,
            weights,
            self.bias.0.to_vec(),
            clamp,
        )
    }

    /// The clamp folded in.
    pub(crate) fn clamp(&self) -> Option<(f32, f32)> {
        clamp_floats(self.clamp)
    }

    /// Whether the tensors are channels last.
    pub fn channels_last(&self) -> bool {
        self.channels_last
    }

    /// Run with `level` instead of the best available one (for comparing them).
    pub fn with_level(mut self, level: Level) -> DepthwiseConv {
        self.setup = self.geo.setup(Some(level), self.channels_last);
        self
    }

    /// Whether an activation (a clamp) is folded in.
    pub fn has_clamp(&self) -> bool {
        self.clamp.is_some()
    }

    /// The geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    fn shape(&self, h: usize, w: usize) -> TVec<usize> {
        let c = self.geo.channels;
        let mut shape = if self.channels_last {
            tvec![h, w, c]
        } else {
            tvec![c, h, w]
        };
        if self.has_batch {
            shape.insert(0, self.geo.batch);
        }
        shape
    }

    /// The input's shape.
    pub(crate) fn input_shape(&self) -> TVec<usize> {
        self.shape(self.geo.in_h, self.geo.in_w)
    }

    /// Compute the whole output from the whole input (both in the op's layout).
    pub fn compute(&self, input: &[f32], output: &mut [f32]) -> TractResult<()> {
        let clamp = self.clamp();
        let (w, b) = (&self.weights.0, &self.bias.0);
        if self.channels_last {
            let level = self.setup.level;
            Ok(self
                .geo
                .run_last(level, input, output, w, b, clamp, &self.zeros.0)?)
        } else {
            Ok(self
                .geo
                .run(&self.setup, input, output, Mode::Sum(clamp), w, b)?)
        }
    }
}

impl KernelOp for DepthwiseConv {
    const NAME: &'static str = "DepthwiseConv(tensorcv)";

    fn describe(&self) -> TractResult<String> {
        Ok(format!(
            "{}{}",
            self.geo,
            epilogue_info(self.clamp, &None, None)
        ))
    }

    fn input_shapes(&self) -> TVec<TVec<usize>> {
        tvec![self.input_shape()]
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

tract_op!(DepthwiseConv);
