//! Finding dense 2-D convolutions in tract's graph (stems, BlazeFace's 5×5s).

use super::epilogue::absorb;
use super::geometry_of;
use crate::ops::Conv2d;
use tensorcv_kernels::conv::ConvShape;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};

/// The input to read for a convolution whose input is `outlet` and whose layout is channels
/// first: where a transpose from channels last (`Move(rank - 1, rank - 3)`) feeds only this
/// convolution, its input, read as channels last.
fn source(model: &TypedModel, outlet: OutletId, conv: usize) -> TractResult<(OutletId, bool)> {
    let node = model.node(outlet.node);
    if let Some(AxisOp::Move(from, to)) = node.op_as::<AxisOp>() {
        let rank = model.outlet_fact(outlet)?.rank();
        let only_conv = model
            .outlet_successors(outlet)
            .iter()
            .all(|s| s.node == conv);
        if rank >= 3 && *from == rank - 1 && *to == rank - 3 && only_conv {
            return Ok((node.inputs[0], true));
        }
    }
    Ok((outlet, false))
}

/// tensorcv's op for a tract `Conv` node that is a dense 2-D convolution, its inputs, and the
/// nodes it absorbs (the last one's output is the op's).
pub(crate) fn replace(
    model: &TypedModel,
    node: &TypedNode,
) -> TractResult<Option<super::Replacement<Conv2d>>> {
    let Some(conv) = node.op_as::<Conv>() else {
        return Ok(None);
    };
    let input_fact = model.outlet_fact(node.inputs[0])?;
    let Some(shape) = input_fact.shape.as_concrete() else {
        return Ok(None);
    };
    let Some((geo, _, channels_last)) = geometry_of(&conv.pool_spec, shape) else {
        return Ok(None);
    };
    let (c, m) = (conv.input_channels(), conv.output_channels());
    if conv.group != 1
        || conv.q_params.is_some()
        || input_fact.datum_type != f32::datum_type()
        || c != geo.channels
        || geo.out_h == 0
        || geo.out_w == 0
        || node.inputs.len() != 3
    {
        return Ok(None);
    }
    let (Some(kernel), Some(bias)) = (
        model.outlet_fact(node.inputs[1])?.konst.clone(),
        model.outlet_fact(node.inputs[2])?.konst.clone(),
    ) else {
        return Ok(None);
    };
    let (kh, kw) = (geo.kh, geo.kw);
    if kernel.datum_type() != f32::datum_type() || kernel.len() != m * c * kh * kw {
        return Ok(None);
    }
    // the patch order follows the layout read
    let (x, in_last) = if channels_last {
        (node.inputs[0], true)
    } else {
        source(model, node.inputs[0], node.id)?
    };
    let in_shape: TVec<usize> = match model.outlet_fact(x)?.shape.as_concrete() {
        Some(s) => s.into(),
        None => return Ok(None),
    };
    let kernel = kernel.try_as_plain_ram()?;
    let kv = kernel.as_slice::<f32>()?;
    let at = |o: usize, i: usize, ky: usize, kx: usize| match conv.kernel_fmt {
        KernelFormat::OIHW => ((o * c + i) * kh + ky) * kw + kx,
        KernelFormat::HWIO => ((ky * kw + kx) * c + i) * m + o,
        KernelFormat::OHWI => ((o * kh + ky) * kw + kx) * c + i,
    };
    let k = c * kh * kw;
    let mut weights = vec![0f32; m * k];
    for o in 0..m {
        for i in 0..c {
            for ky in 0..kh {
                for kx in 0..kw {
                    let col = if in_last {
                        (ky * kw + kx) * c + i
                    } else {
                        (i * kh + ky) * kw + kx
                    };
                    weights[o * k + col] = kv[at(o, i, ky, kx)];
                }
            }
        }
    }
    let Some(mut bias) = super::per_channel(&bias, 1, 0, m) else {
        return Ok(None);
    };
    let out_shape: TVec<usize> = match model
        .outlet_fact(OutletId::new(node.id, 0))?
        .shape
        .as_concrete()
    {
        Some(s) => s.into(),
        None => return Ok(None),
    };
    let rank = out_shape.len();
    let c_axis = if channels_last { rank - 1 } else { rank - 3 };
    let e = absorb(model, node.id, &out_shape, c_axis, &mut weights, &mut bias)?;
    let mut inputs = tvec![x];
    if let Some((outlet, _, _)) = &e.residual {
        inputs.push(*outlet);
    }
    let shape = ConvShape {
        geo,
        m,
        in_last,
        out_last: channels_last,
    };
    let op = Conv2d::new(
        shape,
        in_shape,
        out_shape,
        weights,
        bias,
        e.pre,
        e.residual.map(|(_, c, s)| (c, s)),
        e.post,
    )?;
    Ok(Some((op, inputs, e.nodes)))
}
