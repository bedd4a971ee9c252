//! Moving the channel axis of an `f32` tensor between first and last (`[.., C, H, W]` ⇄
//! `[.., H, W, C]`): tract's `AxisOp::Move` copies element by element through strides (150 µs
//! for the selfie segmenter's 16×128×128); here it is a transpose of `C × HW` matrices in
//! square register tiles (16×16 with AVX-512), split between threads on large tensors. Also
//! the op the channels-last pass puts at the edges of the runs it switches.
//!
//! And scaling a channels-last tensor by a vector computed in the graph (squeeze-and-excite
//! attention: `x * sigmoid(...)` with `[1, 1, 1, C]`), which tract's broadcasting `Mul` ran at
//! 2 ns per value (520 µs of the selfie segmenter's 2.9 ms).

use super::lanes::{Lanes, Level, Portable};
use super::{eval_f32, for_parts, parts_for, SendPtr};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::math::Mul;

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
        let size = rows * cols;
        ensure!(input.len() == images * size && output.len() == input.len());
        if size == 0 {
            return Ok(());
        }
        // bands of whole tiles of rows, one per thread
        let tile = level.or_portable().lanes();
        let parts = parts_for(input.len(), rows.div_ceil(tile));
        let band = rows.div_ceil(tile).div_ceil(parts) * tile;
        let out = SendPtr(output.as_mut_ptr());
        for b in 0..images {
            let src = &input[b * size..(b + 1) * size];
            for_parts(parts, |p| {
                let band = (p * band).min(rows)..((p + 1) * band).min(rows);
                // SAFETY: `src` and the output image hold `rows × cols` floats; parts write
                // disjoint columns of the output (its rows `band` of every column)
                unsafe { transpose(level, src, out.get().add(b * size), rows, cols, band) }
            });
        }
        Ok(())
    }
}

/// `shape` (`[.., C, H, W]` when `!from_last`, `[.., H, W, C]` when `from_last`) with its
/// channel axis moved when `to_last` differs: what [`MoveChannels`] makes of it.
pub(super) fn channels_moved(
    shape: &[usize],
    from_last: bool,
    to_last: bool,
) -> TractResult<TVec<usize>> {
    if from_last == to_last {
        return Ok(shape.into());
    }
    Ok(MoveChannels::new(shape, to_last)?.output_shape())
}

/// `dst[c * rows + r] = src[r * cols + c]` for rows `band`.
///
/// # Safety
/// `src` holds `rows * cols` floats and `dst` has room for as many.
unsafe fn transpose(
    level: Level,
    src: &[f32],
    dst: *mut f32,
    rows: usize,
    cols: usize,
    band: std::ops::Range<usize>,
) {
    debug_assert!(src.len() == rows * cols && band.end <= rows);
    unsafe {
        match level {
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 if level.available() => x86::avx512(src, dst, rows, cols, band),
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 if level.available() => x86::avx2(src, dst, rows, cols, band),
            #[cfg(all(target_family = "wasm", target_feature = "simd128"))]
            Level::Simd128 => tiles::<super::lanes::V128>(src, dst, rows, cols, band),
            _ => tiles::<Portable>(src, dst, rows, cols, band),
        }
    }
}

#[inline(always)]
unsafe fn tiles<L: Lanes>(
    src: &[f32],
    dst: *mut f32,
    rows: usize,
    cols: usize,
    band: std::ops::Range<usize>,
) {
    let n = L::N;
    let s = src.as_ptr();
    // whole tiles of this band
    let r_end = band.start + (band.len() / n) * n;
    let c_end = cols / n * n;
    unsafe {
        let mut v = [L::splat(0.0); 16];
        for r0 in (band.start..r_end).step_by(n) {
            for c0 in (0..c_end).step_by(n) {
                for (i, x) in v[..n].iter_mut().enumerate() {
                    *x = L::load(s.add((r0 + i) * cols + c0));
                }
                L::transpose(&mut v[..n]);
                for (j, x) in v[..n].iter().enumerate() {
                    x.store(dst.add((c0 + j) * rows + r0));
                }
            }
        }
        // the rest: columns after the last whole tile, rows after the band's last whole tile
        for r in band {
            let from = if r < r_end { c_end } else { 0 };
            for c in from..cols {
                *dst.add(c * rows + r) = *s.add(r * cols + c);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::tiles;
    use crate::kernels::lanes::{Avx2, Avx512};

    /// # Safety
    /// AVX-512F present; buffers as [`super::transpose`] says.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn avx512(
        src: &[f32],
        dst: *mut f32,
        rows: usize,
        cols: usize,
        band: std::ops::Range<usize>,
    ) {
        unsafe { tiles::<Avx512>(src, dst, rows, cols, band) }
    }

    /// # Safety
    /// AVX2 and FMA present; buffers as [`super::transpose`] says.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2(
        src: &[f32],
        dst: *mut f32,
        rows: usize,
        cols: usize,
        band: std::ops::Range<usize>,
    ) {
        unsafe { tiles::<Avx2>(src, dst, rows, cols, band) }
    }
}

impl Op for MoveChannels {
    fn name(&self) -> StaticName {
        "MoveChannels(tensorcv)".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let to = if self.to_last { "last" } else { "first" };
        Ok(vec![format!("{:?} -> channels {to}", self.shape)])
    }

    op_as_typed_op!();
}

impl EvalOp for MoveChannels {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        eval_f32(inputs, &self.output_shape(), |i, o| {
            self.compute_with(Level::best(), i, o)
        })
    }
}

impl TypedOp for MoveChannels {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 1 && inputs[0].datum_type == f32::datum_type());
        ensure!(
            inputs[0].shape.as_concrete() == Some(&*self.shape),
            "channel move input is {:?}, the op was built for {:?}",
            inputs[0].shape,
            self.shape
        );
        Ok(tvec!(f32::fact(self.output_shape())))
    }

    as_op!();
}

/// tensorcv's op for a tract `AxisOp::Move` of an `f32` tensor's channel axis between first
/// and last among its last three axes.
pub(super) fn replace(model: &TypedModel, node: &TypedNode) -> TractResult<Option<MoveChannels>> {
    let Some(AxisOp::Move(from, to)) = node.op_as::<AxisOp>() else {
        return Ok(None);
    };
    let fact = model.outlet_fact(node.inputs[0])?;
    let Some(shape) = fact.shape.as_concrete() else {
        return Ok(None);
    };
    let r = shape.len();
    if fact.datum_type != f32::datum_type() || r < 3 {
        return Ok(None);
    }
    let to_last = match (*from, *to) {
        (f, t) if f == r - 3 && t == r - 1 => true,
        (f, t) if f == r - 1 && t == r - 3 => false,
        _ => return Ok(None),
    };
    Ok(Some(MoveChannels::new(shape, to_last)?))
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
        let c = *self.shape.last().unwrap();
        ensure!(s.len() == c && x.len() == out.len() && x.len().is_multiple_of(c.max(1)));
        if c == 0 {
            return Ok(());
        }
        let parts = parts_for(x.len(), x.len() / c);
        let pixels = (x.len() / c).div_ceil(parts);
        let o = SendPtr(out.as_mut_ptr());
        for_parts(parts, |p| {
            let start = (p * pixels * c).min(x.len());
            let end = ((p + 1) * pixels * c).min(x.len());
            // SAFETY: parts write disjoint runs of whole pixels
            let out = unsafe { std::slice::from_raw_parts_mut(o.get().add(start), end - start) };
            for (o, x) in out.chunks_exact_mut(c).zip(x[start..end].chunks_exact(c)) {
                for ((o, x), s) in o.iter_mut().zip(x).zip(s) {
                    *o = x * s;
                }
            }
        });
        Ok(())
    }
}

impl Op for ScaleChannels {
    fn name(&self) -> StaticName {
        "ScaleChannels(tensorcv)".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{:?} by its last axis", self.shape)])
    }

    op_as_typed_op!();
}

impl EvalOp for ScaleChannels {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (x, s) = args_2!(inputs);
        let (x, s) = (x.try_as_plain_ram()?, s.try_as_plain_ram()?);
        let mut out = unsafe { Tensor::uninitialized::<f32>(&self.shape)? };
        {
            let mut o = out.try_as_plain_ram_mut()?;
            self.compute(
                x.as_slice::<f32>()?,
                s.as_slice::<f32>()?,
                o.as_slice_mut::<f32>()?,
            )?;
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for ScaleChannels {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 2 && inputs.iter().all(|f| f.datum_type == f32::datum_type()));
        ensure!(inputs[0].shape.as_concrete() == Some(&*self.shape));
        ensure!(inputs[1].shape.as_concrete() == Some(&*factors_shape(&self.shape)));
        Ok(tvec!(f32::fact(&*self.shape)))
    }

    as_op!();
}

/// `[1, .., 1, C]` for a tensor of `shape`.
fn factors_shape(shape: &[usize]) -> TVec<usize> {
    let mut s: TVec<usize> = tvec![1; shape.len()];
    if let (Some(l), Some(c)) = (s.last_mut(), shape.last()) {
        *l = *c;
    }
    s
}

/// tensorcv's op for a tract `Mul` of an `f32` tensor by a computed `[1, .., 1, C]` vector of
/// its last axis (either side), and the inputs in the op's order.
pub(super) fn replace_scale(
    model: &TypedModel,
    node: &TypedNode,
) -> TractResult<Option<(ScaleChannels, TVec<OutletId>)>> {
    let Some(bin) = node.op_as::<TypedBinOp>() else {
        return Ok(None);
    };
    if !bin.0.is::<Mul>() || bin.1.is_some() || node.inputs.len() != 2 {
        return Ok(None);
    }
    let facts = model.node_input_facts(node.id)?;
    if facts.iter().any(|f| f.datum_type != f32::datum_type()) {
        return Ok(None);
    }
    let (Some(a), Some(b)) = (facts[0].shape.as_concrete(), facts[1].shape.as_concrete()) else {
        return Ok(None);
    };
    for (x, s) in [(0, 1), (1, 0)] {
        let (xs, ss) = if x == 0 { (a, b) } else { (b, a) };
        // a whole tensor (more than one pixel) by a constant-free vector of its last axis
        if xs.len() >= 2
            && ss == &*factors_shape(xs)
            && xs.iter().product::<usize>() > *xs.last().unwrap()
            && facts[s].konst.is_none()
        {
            return Ok(Some((
                ScaleChannels::new(xs)?,
                tvec![node.inputs[x], node.inputs[s]],
            )));
        }
    }
    Ok(None)
}

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
            for level in [Level::Portable, Level::Avx2, Level::Avx512, Level::Simd128] {
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
