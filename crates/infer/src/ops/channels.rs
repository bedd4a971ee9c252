//! Moving the channel axis of an `f32` tensor between first and last (`[.., C, H, W]` ⇄
//! `[.., H, W, C]`): tract's `AxisOp::Move` copies element by element through strides (150 µs
//! for the selfie segmenter's 16×128×128); here it is a transpose of `C × HW` matrices in
//! square register tiles (16×16 with AVX-512), split between threads on large tensors. Also
//! the op the channels-last pass puts at the edges of the runs it switches.
//!
//! And scaling a channels-last tensor by a vector computed in the graph (squeeze-and-excite
//! attention: `x * sigmoid(...)` with `[1, 1, 1, C]`), which tract's broadcasting `Mul` ran at
//! 2 ns per value (520 µs of the selfie segmenter's 2.9 ms).

use super::{tract_op, KernelOp};
use tensorcv_kernels::channels;
use tensorcv_kernels::Level;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

/// `[.., C, H, W]` → `[.., H, W, C]` (`to_last`) or back, `f32`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MoveChannels {
    /// the input's shape
    shape: TVec<usize>,
    to_last: bool,
}

impl MoveChannels {
    /// The move of a tensor of `shape` (rank 3 or more).
    pub fn new(shape: &[usize], to_last: bool) -> TractResult<MoveChannels> {
        ensure!(
            shape.len() >= 3,
            "a {}-d tensor has no channel axis to move",
            shape.len()
        );
        Ok(MoveChannels {
            shape: shape.into(),
            to_last,
        })
    }

    /// The output's shape.
    pub fn output_shape(&self) -> TVec<usize> {
        let r = self.shape.len();
        let mut s = self.shape.clone();
        // rank checked when built
        let c = if self.to_last {
            s.remove(r - 3)
        } else {
            s.remove(r - 1)
        };
        if self.to_last {
            s.push(c);
        } else {
            s.insert(r - 3, c);
        }
        s
    }

    /// `(images, rows, columns)` of the input seen as matrices: `C × HW` to last, `HW × C`
    /// to first.
    fn matrices(&self) -> (usize, usize, usize) {
        let r = self.shape.len();
        let images = self.shape[..r - 3].iter().product();
        let (c, hw) = if self.to_last {
            (self.shape[r - 3], self.shape[r - 2] * self.shape[r - 1])
        } else {
            (self.shape[r - 1], self.shape[r - 3] * self.shape[r - 2])
        };
        if self.to_last {
            (images, c, hw)
        } else {
            (images, hw, c)
        }
    }

    /// Transpose `input` into `output` (both the op's shapes), with `level`'s tiles.
    pub fn compute_with(&self, level: Level, input: &[f32], output: &mut [f32]) -> TractResult<()> {
        let (images, rows, cols) = self.matrices();
        Ok(channels::transpose(
            level, input, output, images, rows, cols,
        )?)
    }
}

/// `shape` (`[.., C, H, W]` when `!from_last`, `[.., H, W, C]` when `from_last`) with its
/// channel axis moved when `to_last` differs: what [`MoveChannels`] makes of it.
pub(crate) fn channels_moved(
    shape: &[usize],
    from_last: bool,
    to_last: bool,
) -> TractResult<TVec<usize>> {
    if from_last == to_last {
        return Ok(shape.into());
    }
    Ok(MoveChannels::new(shape, to_last)?.output_shape())
}

/// `x * s`, `x` of `shape` (channels last) and `s` its `C` channels' factors (`[1, .., 1, C]`),
/// both inputs of the graph's, `f32`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScaleChannels {
    shape: TVec<usize>,
}

impl ScaleChannels {
    /// Scale a tensor of `shape` per its last axis.
    pub fn new(shape: &[usize]) -> TractResult<ScaleChannels> {
        ensure!(!shape.is_empty(), "a scalar has no channels");
        Ok(ScaleChannels {
            shape: shape.into(),
        })
    }

    /// `out = x * s` per channel.
    pub fn compute(&self, x: &[f32], s: &[f32], out: &mut [f32]) -> TractResult<()> {
        ensure!(s.len() == self.shape.last().copied().unwrap_or(0));
        Ok(channels::scale(x, s, out)?)
    }
}

/// `[1, .., 1, C]` for a tensor of `shape`.
pub(crate) fn factors_shape(shape: &[usize]) -> TVec<usize> {
    let mut s: TVec<usize> = tvec![1; shape.len()];
    if let (Some(l), Some(c)) = (s.last_mut(), shape.last()) {
        *l = *c;
    }
    s
}

impl KernelOp for MoveChannels {
    const NAME: &'static str = "MoveChannels(tensorcv)";
    const ROUNDING: bool = false;

    fn describe(&self) -> TractResult<String> {
        let to = if self.to_last { "last" } else { "first" };
        Ok(format!("{:?} -> channels {to}", self.shape))
    }

    fn input_shapes(&self) -> TVec<TVec<usize>> {
        tvec![self.shape.clone()]
    }

    fn output_shape(&self) -> TVec<usize> {
        MoveChannels::output_shape(self)
    }

    fn fma(&self) -> usize {
        0
    }

    fn run(&self, inputs: &[&[f32]], output: &mut [f32]) -> TractResult<()> {
        self.compute_with(Level::best(), inputs[0], output)
    }
}

tract_op!(MoveChannels);

impl KernelOp for ScaleChannels {
    const NAME: &'static str = "ScaleChannels(tensorcv)";
    const ROUNDING: bool = false;

    fn describe(&self) -> TractResult<String> {
        Ok(format!("{:?} by its last axis", self.shape))
    }

    fn input_shapes(&self) -> TVec<TVec<usize>> {
        tvec![self.shape.clone(), factors_shape(&self.shape)]
    }

    fn output_shape(&self) -> TVec<usize> {
        self.shape.clone()
    }

    fn fma(&self) -> usize {
        0
    }

    fn run(&self, inputs: &[&[f32]], output: &mut [f32]) -> TractResult<()> {
        self.compute(inputs[0], inputs[1], output)
    }
}

tract_op!(ScaleChannels);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_match_the_index_arithmetic() {
        for &(shape, to_last) in &[
            (&[3usize, 5, 7][..], true),
            (&[2, 40, 6, 7][..], true),
            (&[2, 6, 7, 40][..], false),
            (&[33, 17, 16][..], false),
            (&[1, 16, 128, 128][..], true),
            (&[1, 0, 4, 4][..], true),
        ] {
            let op = MoveChannels::new(shape, to_last).unwrap();
            let input: Vec<f32> = (0..shape.iter().product::<usize>())
                .map(|i| i as f32)
                .collect();
            let want = tract_ndarray::ArrayD::from_shape_vec(shape, input.clone()).unwrap();
            let r = shape.len();
            let want = if to_last {
                let mut a = want;
                for i in r - 3..r - 1 {
                    a.swap_axes(i, i + 1);
                }
                a
            } else {
                let mut a = want;
                for i in (r - 3..r - 1).rev() {
                    a.swap_axes(i, i + 1);
                }
                a
            };
            let want: Vec<f32> = want.iter().copied().collect();
            assert_eq!(&*op.output_shape(), {
                let mut s = shape.to_vec();
                if to_last {
                    let c = s.remove(r - 3);
                    s.push(c);
                } else {
                    let c = s.remove(r - 1);
                    s.insert(r - 3, c);
                }
                s
            });
            for level in Level::ALL {
                if !level.available() {
                    continue;
                }
                let mut got = vec![f32::NAN; input.len()];
                op.compute_with(level, &input, &mut got).unwrap();
                assert_eq!(got, want, "{shape:?} to_last {to_last} {level:?}");
            }
        }
    }
}
