//! Finding PReLU in tract's graph: ONNX `PRelu` (what tf2onnx writes for TensorFlow's PReLU)
//! arrives as `Iff(x < 0, x * alpha, x)` — a comparison with zero, a product by a constant per
//! channel and a select, each node read only by the next.

use crate::ops::Prelu;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::logic::{CompGT, CompGTE, CompLT, CompLTE, Iff};
use tract_onnx::tract_core::ops::math::Mul;

/// Whether `t` is a constant of zeros (any shape that broadcasts).
fn zeros(t: &Tensor) -> bool {
    t.datum_type() == f32::datum_type()
        && t.try_as_plain_ram()
            .ok()
            .and_then(|p| {
                p.as_slice::<f32>()
                    .ok()
                    .map(|v| v.iter().all(|&z| z == 0.0))
            })
            .unwrap_or(false)
}

/// The tensor the comparison node `cond` tests against zero, and whether it is true where the
/// tensor is negative (`0 > x`, `x < 0`, or with equality) rather than positive.
fn sign_test(model: &TypedModel, cond: &TypedNode) -> TractResult<Option<(OutletId, bool)>> {
    let Some(bin) = cond.op_as::<TypedBinOp>() else {
        return Ok(None);
    };
    if cond.inputs.len() != 2 {
        return Ok(None);
    }
    let op = &bin.0;
    // (true when the left side is the larger)
    let left_larger = if op.is::<CompGT>() || op.is::<CompGTE>() {
        true
    } else if op.is::<CompLT>() || op.is::<CompLTE>() {
        false
    } else {
        return Ok(None);
    };
    for (z, x) in [(0, 1), (1, 0)] {
        let zf = model.outlet_fact(cond.inputs[z])?;
        if zf.konst.as_ref().is_some_and(|k| zeros(k)) {
            // `0 > x` or `x < 0`: true where x is negative
            let negative = (z == 0) == left_larger;
            return Ok(Some((cond.inputs[x], negative)));
        }
    }
    Ok(None)
}

/// The slopes of `mul` when it is `x * alpha` (either side) with `alpha` a constant of one
/// value or one per channel of an axis of `x` (which must keep `x`'s shape): the slopes and
/// that axis (for one value: the third from last, where channels first keep them).
fn slopes(
    model: &TypedModel,
    mul: &TypedNode,
    x: OutletId,
) -> TractResult<Option<(Vec<f32>, usize)>> {
    let Some(bin) = mul.op_as::<TypedBinOp>() else {
        return Ok(None);
    };
    if !bin.0.is::<Mul>() || bin.1.is_some() || mul.inputs.len() != 2 {
        return Ok(None);
    }
    let Some(slot) = mul.inputs.iter().position(|&i| i == x) else {
        return Ok(None);
    };
    let fact = model.outlet_fact(x)?;
    let Some(shape) = fact.shape.as_concrete() else {
        return Ok(None);
    };
    if fact.datum_type != f32::datum_type()
        || model
            .outlet_fact(OutletId::new(mul.id, 0))?
            .shape
            .as_concrete()
            != Some(shape)
    {
        return Ok(None);
    }
    let Some(alpha) = model.outlet_fact(mul.inputs[1 - slot])?.konst.clone() else {
        return Ok(None);
    };
    if alpha.datum_type() != f32::datum_type() || alpha.rank() > shape.len() {
        return Ok(None);
    }
    let plain = alpha.try_as_plain_ram()?;
    let values = plain.as_slice::<f32>()?;
    let rank = shape.len();
    let offset = rank - alpha.rank();
    let axes: Vec<usize> = (0..alpha.rank())
        .filter(|&i| alpha.shape()[i] != 1)
        .collect();
    Ok(match axes[..] {
        [] if !values.is_empty() => Some((vec![values[0]], rank.saturating_sub(3))),
        [a] if alpha.shape()[a] == shape[a + offset] => Some((values.to_vec(), a + offset)),
        _ => None,
    })
}

/// tensorcv's op for the `Iff` node `node` of a PReLU, with the input it reads and the other
/// nodes it takes the place of (the comparison and the product).
pub(crate) fn replace(
    model: &TypedModel,
    node: &TypedNode,
) -> TractResult<Option<(Prelu, OutletId, [usize; 2])>> {
    if !node.op_is::<Iff>() || node.inputs.len() != 3 {
        return Ok(None);
    }
    let read_once = |o: OutletId| -> TractResult<bool> {
        Ok(model.outlet_successors(o).len() == 1 && !model.output_outlets()?.contains(&o))
    };
    let [cond, then, other] = [node.inputs[0], node.inputs[1], node.inputs[2]];
    let Some((x, negative)) = sign_test(model, model.node(cond.node))? else {
        return Ok(None);
    };
    // negative: `Iff(x < 0, x * alpha, x)`; positive: `Iff(x > 0, x, x * alpha)`
    let (product, kept) = if negative {
        (then, other)
    } else {
        (other, then)
    };
    if kept != x || product.slot != 0 || cond.slot != 0 || !read_once(cond)? || !read_once(product)?
    {
        return Ok(None);
    }
    let Some((alpha, axis)) = slopes(model, model.node(product.node), x)? else {
        return Ok(None);
    };
    let Some(shape) = model.outlet_fact(x)?.shape.as_concrete() else {
        return Ok(None);
    };
    if shape.is_empty()
        || model
            .outlet_fact(OutletId::new(node.id, 0))?
            .shape
            .as_concrete()
            != Some(shape)
    {
        return Ok(None);
    }
    Ok(Some((
        Prelu::new(shape, axis, &alpha)?,
        x,
        [cond.node, product.node],
    )))
}
