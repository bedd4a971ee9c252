//! What follows a matrix-product op in the graph and folds into its store: per-channel
//! constants, clamps, a residual add (shared by the 1×1 and dense convolutions).

use super::pointwise::{reaches, residual_source};
use super::{chain_clamp, next_binary, per_channel};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::math::{Add, Mul, Sub};

/// What follows a convolution in the graph and folds into its store.
pub(crate) struct Absorbed {
    /// the nodes, in order (the last one's output becomes the op's)
    pub nodes: Vec<usize>,
    /// clamp before the residual
    pub pre: Option<(f32, f32)>,
    /// the residual tensor, its channels and shape
    pub residual: Option<(OutletId, usize, TVec<usize>)>,
    /// clamp after it
    pub post: Option<(f32, f32)>,
}

/// Walk the single-successor chain after the convolution `node` (output `out_shape`, channels
/// on `c_axis`): per-channel `Add`/`Sub`/`Mul` by constants fold into `weights` (`[m][k]`) and
/// `bias` (until a clamp or the residual), `Max`/`Min` by a scalar become a clamp, and one
/// `Add` of a non-constant tensor (which must not depend on the convolution) the residual.
pub(crate) fn absorb(
    model: &TypedModel,
    node: usize,
    out_shape: &[usize],
    c_axis: usize,
    weights: &mut [f32],
    bias: &mut [f32],
) -> TractResult<Absorbed> {
    let m = bias.len();
    let k = weights.len() / m.max(1);
    let rank = out_shape.len();
    let mut e = Absorbed {
        nodes: vec![],
        pre: None,
        residual: None,
        post: None,
    };
    let mut last = node;
    while let Some((next, slot, bin)) = next_binary(model, last)? {
        if model
            .outlet_fact(OutletId::new(next.id, 0))?
            .shape
            .as_concrete()
            != Some(out_shape)
        {
            break;
        }
        let other = next.inputs[1 - slot];
        let other_fact = model.outlet_fact(other)?;
        let op = &bin.0;
        if let Some(konst) = other_fact.konst.clone() {
            let Some(v) = per_channel(&konst, rank, c_axis, m) else {
                break;
            };
            let uniform = v.iter().all(|x| x.to_bits() == v[0].to_bits());
            let clamped = e.pre.is_some() || e.residual.is_some();
            if op.is::<Add>() && !clamped {
                bias.iter_mut().zip(&v).for_each(|(b, x)| *b += x);
            } else if op.is::<Sub>() && slot == 0 && !clamped {
                bias.iter_mut().zip(&v).for_each(|(b, x)| *b -= x);
            } else if op.is::<Mul>() && !clamped {
                for c in 0..m {
                    bias[c] *= v[c];
                    weights[c * k..(c + 1) * k]
                        .iter_mut()
                        .for_each(|w| *w *= v[c]);
                }
            } else if !(uniform
                && !v[0].is_nan()
                && chain_clamp(
                    op.as_ref(),
                    if e.residual.is_some() {
                        &mut e.post
                    } else {
                        &mut e.pre
                    },
                    v[0],
                ))
            {
                break;
            }
        } else if op.is::<Add>() && e.residual.is_none() {
            let Some(source) = residual_source(model, other, out_shape, c_axis)? else {
                break;
            };
            if reaches(model, node, source.0.node) {
                break;
            }
            e.residual = Some(source);
        } else {
            break;
        }
        e.nodes.push(next.id);
        last = next.id;
    }
    Ok(e)
}
