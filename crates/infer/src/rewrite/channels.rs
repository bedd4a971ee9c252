//! Finding moves of a channel axis and per-channel products by computed factors in tract's
//! graph.

use crate::ops::channels::factors_shape;
use crate::ops::{MoveChannels, ScaleChannels};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::math::Mul;

/// tensorcv's op for a tract `AxisOp::Move` of an `f32` tensor's channel axis between first
/// and last among its last three axes.
pub(crate) fn replace(model: &TypedModel, node: &TypedNode) -> TractResult<Option<MoveChannels>> {
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

/// tensorcv's op for a tract `Mul` of an `f32` tensor by a computed `[1, .., 1, C]` vector of
/// its last axis (either side), and the inputs in the op's order.
pub(crate) fn replace_scale(
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
