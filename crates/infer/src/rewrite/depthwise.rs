//! Finding depthwise convolutions in tract's graph: a `Conv` with one group per channel, and the
//! bias, batch-norm scale and shift and clamp after it.

use super::{geometry_of, next_binary, per_channel};
use crate::ops::DepthwiseConv;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::math::{Add, Max, Min, Mul, Sub};

/// tensorcv's op for a tract `Conv` node that is a depthwise convolution this module runs, and
/// the nodes after it that the op absorbs (the last one's output is the op's).
pub(crate) fn replace(
    model: &TypedModel,
    node: &TypedNode,
) -> TractResult<Option<(DepthwiseConv, Vec<usize>)>> {
    let id = node.id;
    let Some(conv) = node.op_as::<Conv>() else {
        return Ok(None);
    };
    let input_fact = model.outlet_fact(node.inputs[0])?;
    let Some(shape) = input_fact.shape.as_concrete() else {
        return Ok(None);
    };
    let Some((geo, has_batch, channels_last)) = geometry_of(&conv.pool_spec, shape) else {
        return Ok(None);
    };
    let channels = geo.channels;
    if conv.q_params.is_some()
        || input_fact.datum_type != f32::datum_type()
        || conv.input_channels() != channels
        || conv.group != channels
        || conv.output_channels() != channels
        || channels < 2
        || (channels_last && !geo.every_window_reads_input())
    {
        return Ok(None);
    }
    let (kh, kw) = (geo.kh, geo.kw);
    // weights as [C, kh * kw]
    let (Some(kernel), Some(bias)) = (
        model.outlet_fact(node.inputs[1])?.konst.clone(),
        model.outlet_fact(node.inputs[2])?.konst.clone(),
    ) else {
        return Ok(None);
    };
    if kernel.datum_type() != f32::datum_type() || kernel.len() != channels * kh * kw {
        return Ok(None);
    }
    // the channel axis before the spatial ones ([C, 1, kh, kw], [1, C, kh, kw], [C, kh, kw, 1])
    // or after them ([kh, kw, C, 1], [kh, kw, 1, C], and tract's depthwise OHWI [1, kh, kw, C])
    let tap_major = match conv.kernel_fmt {
        KernelFormat::OIHW => false,
        KernelFormat::HWIO => true,
        KernelFormat::OHWI => kernel.shape().last() == Some(&channels),
    };
    let kernel = kernel.try_as_plain_ram()?;
    let k = kernel.as_slice::<f32>()?;
    let taps = kh * kw;
    let mut weights = vec![0f32; channels * taps];
    for c in 0..channels {
        for t in 0..taps {
            weights[c * taps + t] = if tap_major {
                k[t * channels + c]
            } else {
                k[c * taps + t]
            };
        }
    }
    let Some(mut bias) = per_channel(&bias, 1, 0, channels) else {
        return Ok(None);
    };

    // fold what follows: per-channel scale and shift, then a clamp
    let rank = shape.len();
    let c_axis = if channels_last { rank - 1 } else { rank - 3 };
    let mut absorbed = vec![];
    let mut last = id;
    let (mut lo, mut hi) = (f32::NEG_INFINITY, f32::INFINITY);
    while let Some((next, slot, bin)) = next_binary(model, last)? {
        let other = next.inputs[1 - slot];
        let Some(konst) = model.outlet_fact(other)?.konst.clone() else {
            break;
        };
        let Some(v) = per_channel(&konst, rank, c_axis, channels) else {
            break;
        };
        let activated = lo > f32::NEG_INFINITY || hi < f32::INFINITY;
        let uniform = v.iter().all(|x| x.to_bits() == v[0].to_bits());
        let op = &bin.0;
        if op.is::<Add>() && !activated {
            bias.iter_mut().zip(&v).for_each(|(b, x)| *b += x);
        } else if op.is::<Sub>() && slot == 0 && !activated {
            bias.iter_mut().zip(&v).for_each(|(b, x)| *b -= x);
        } else if op.is::<Mul>() && !activated {
            for c in 0..channels {
                bias[c] *= v[c];
                weights[c * taps..(c + 1) * taps]
                    .iter_mut()
                    .for_each(|w| *w *= v[c]);
            }
        } else if op.is::<Max>() && uniform && !v[0].is_nan() {
            lo = lo.max(v[0]);
        } else if op.is::<Min>() && uniform && !v[0].is_nan() {
            hi = hi.min(v[0]);
        } else {
            break;
        }
        absorbed.push(next.id);
        last = next.id;
    }
    if lo > hi {
        return Ok(None);
    }
    let clamp = (lo > f32::NEG_INFINITY || hi < f32::INFINITY).then_some((lo, hi));
    let op = DepthwiseConv::new(geo, has_batch, channels_last, weights, bias, clamp)?;
    Ok(Some((op, absorbed)))
}
