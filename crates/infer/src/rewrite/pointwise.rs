//! Finding 1×1 convolutions in tract's graph: an `EinSum` contracting the channel axis with a
//! constant matrix, and the epilogue after it.

use super::epilogue::absorb;
use crate::ops::PointwiseConv;
use tensorcv_kernels::pointwise::Shape;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::array::{Pad, PadMode};
use tract_onnx::tract_core::ops::einsum::EinSum;

/// What a pointwise convolution is made of in the graph: the activation, the weights (`m × k`),
/// and the layout.
struct Parsed {
    x: OutletId,
    weights: Vec<f32>,
    shape: Shape,
    /// the output's channel axis (for per-channel constants)
    c_axis: usize,
}

/// Read an `EinSum` that is a 1×1 convolution: one activation, one constant matrix contracted
/// over the activation's channel axis, the other axes kept in order, the channel axes first or
/// last among the non-batch axes (size-1 axes ignored).
fn parse(model: &TypedModel, node: &TypedNode) -> TractResult<Option<Parsed>> {
    let Some(es) = node.op_as::<EinSum>() else {
        return Ok(None);
    };
    if es.q_params.is_some() || es.operating_dt != f32::datum_type() || node.inputs.len() != 2 {
        return Ok(None);
    }
    let facts = model.node_input_facts(node.id)?;
    let Some(wi) = (0..2).find(|&i| facts[i].konst.is_some()) else {
        return Ok(None);
    };
    let xi = 1 - wi;
    if facts[xi].konst.is_some() || facts[xi].datum_type != f32::datum_type() {
        return Ok(None);
    }
    let out_fact = model.outlet_fact(OutletId::new(node.id, 0))?;
    let (Some(xshape), Some(oshape)) =
        (facts[xi].shape.as_concrete(), out_fact.shape.as_concrete())
    else {
        return Ok(None);
    };
    let konst = facts[wi].konst.clone().unwrap();
    if konst.datum_type() != f32::datum_type() {
        return Ok(None);
    }
    let (ins, outs) = es.axes.to_strs();
    let (xs, ws, os): (Vec<char>, Vec<char>, Vec<char>) = (
        ins[xi].chars().collect(),
        ins[wi].chars().collect(),
        outs[0].chars().collect(),
    );
    if xs.len() != xshape.len() || ws.len() != konst.rank() || os.len() != oshape.len() {
        return Ok(None);
    }
    // the labels of size > 1 in each, in order
    let big = |labels: &[char], shape: &[usize]| -> Vec<(char, usize)> {
        labels
            .iter()
            .zip(shape)
            .filter(|(_, &d)| d > 1)
            .map(|(&l, &d)| (l, d))
            .collect()
    };
    let (xb, wb, ob) = (big(&xs, xshape), big(&ws, konst.shape()), big(&os, oshape));
    if wb.len() != 2 {
        return Ok(None);
    }
    let has = |v: &[(char, usize)], l: char| v.iter().any(|&(c, _)| c == l);
    let (i, o) = if has(&xb, wb[0].0) {
        (wb[0], wb[1])
    } else {
        (wb[1], wb[0])
    };
    if !has(&xb, i.0) || has(&ob, i.0) || has(&xb, o.0) || !has(&ob, o.0) {
        return Ok(None);
    }
    let x_others: Vec<_> = xb.iter().filter(|&&(c, _)| c != i.0).copied().collect();
    let o_others: Vec<_> = ob.iter().filter(|&&(c, _)| c != o.0).copied().collect();
    if x_others != o_others || xb.iter().any(|&(c, d)| c == i.0 && d != i.1) {
        return Ok(None);
    }
    // batch: the others before both channel axes; pixels: the rest, after or before the
    // channel axis on each side
    let pi = xb.iter().position(|&(c, _)| c == i.0).unwrap();
    let po = ob.iter().position(|&(c, _)| c == o.0).unwrap();
    let t = pi.min(po);
    let r = x_others.len();
    let in_last = match pi - t {
        0 => false,
        d if d == r - t && r > t => true,
        _ => return Ok(None),
    };
    let out_last = match po - t {
        0 => false,
        d if d == r - t && r > t => true,
        _ => return Ok(None),
    };
    let (mut in_last, mut out_last) = (in_last, out_last);
    let (mut batch, mut n): (usize, usize) = (
        x_others[..t].iter().map(|&(_, d)| d).product(),
        x_others[t..].iter().map(|&(_, d)| d).product(),
    );
    if t == r && r > 0 {
        // the channel axes last on both sides (NHWC, TFLite's layout; rows of a dense layer):
        // every other axis is pixels of one image, channels last — not images of one pixel,
        // channels first, which read the same but run a tile per pixel
        (in_last, out_last, batch, n) = (true, true, 1, batch * n);
    }
    let (m, k) = (o.1, i.1);
    // weights as [m][k]
    let plain = konst.try_as_plain_ram()?;
    let values = plain.as_slice::<f32>()?;
    let o_first = wb[0].0 == o.0;
    let weights: Vec<f32> = (0..m * k)
        .map(|e| {
            let (mm, kk) = (e / k, e % k);
            if o_first {
                values[mm * k + kk]
            } else {
                values[kk * m + mm]
            }
        })
        .collect();
    let c_axis = os.iter().position(|&c| c == o.0).unwrap();
    Ok(Some(Parsed {
        x: node.inputs[xi],
        weights,
        shape: Shape {
            batch,
            m,
            k,
            n,
            in_last,
            out_last,
        },
        c_axis,
    }))
}

/// Whether `target` can be reached from `from` by following outputs (a residual that depends on
/// the convolution cannot be one of its inputs).
pub(super) fn reaches(model: &TypedModel, from: usize, target: usize) -> bool {
    let mut stack = vec![from];
    let mut seen = std::collections::HashSet::new();
    while let Some(n) = stack.pop() {
        if n == target {
            return true;
        }
        if !seen.insert(n) {
            continue;
        }
        for o in &model.node(n).outputs {
            stack.extend(o.successors.iter().map(|s| s.node));
        }
    }
    false
}

/// The residual behind `outlet` for an output of `out_shape` with channels at `c_axis`: the
/// tensor itself when it has the output's shape, or what a zero `Pad` of the channel axis
/// (at its end only) reads, with fewer channels.
pub(super) fn residual_source(
    model: &TypedModel,
    outlet: OutletId,
    out_shape: &[usize],
    c_axis: usize,
) -> TractResult<Option<(OutletId, usize, TVec<usize>)>> {
    let fact = model.outlet_fact(outlet)?;
    if fact.datum_type != f32::datum_type() || fact.konst.is_some() {
        return Ok(None);
    }
    let Some(shape) = fact.shape.as_concrete() else {
        return Ok(None);
    };
    let channels = out_shape[c_axis];
    if shape == out_shape {
        let node = model.node(outlet.node);
        if let Some(pad) = node.op_as::<Pad>() {
            let zero = match &pad.mode {
                PadMode::Constant(v) => {
                    v.cast_to_scalar::<f32>().map(|v| v == 0.0).unwrap_or(false)
                }
                _ => false,
            };
            let only_channels_after = pad
                .pads
                .iter()
                .enumerate()
                .all(|(a, &(before, after))| before == 0 && (after == 0 || a == c_axis));
            let source = node.inputs[0];
            let src_fact = model.outlet_fact(source)?;
            if zero && only_channels_after && src_fact.datum_type == f32::datum_type() {
                if let Some(s) = src_fact.shape.as_concrete() {
                    return Ok(Some((source, s[c_axis], s.into())));
                }
            }
        }
        return Ok(Some((outlet, channels, shape.into())));
    }
    Ok(None)
}

/// tensorcv's op for a tract `EinSum` that is a 1×1 convolution, its inputs, and the nodes after
/// it that it absorbs (the last one's output is the op's).
pub(crate) fn replace(
    model: &TypedModel,
    node: &TypedNode,
) -> TractResult<Option<super::Replacement<PointwiseConv>>> {
    let Some(p) = parse(model, node)? else {
        return Ok(None);
    };
    let Some(in_shape) = model.outlet_fact(p.x)?.shape.as_concrete().map(TVec::from) else {
        return Ok(None);
    };
    let out_shape: TVec<usize> = model
        .outlet_fact(OutletId::new(node.id, 0))?
        .shape
        .as_concrete()
        .unwrap()
        .into();
    let mut weights = p.weights;
    let mut bias = vec![0f32; p.shape.m];
    let e = absorb(
        model,
        node.id,
        &out_shape,
        p.c_axis,
        &mut weights,
        &mut bias,
    )?;
    let mut inputs = tvec![p.x];
    if let Some((outlet, _, _)) = &e.residual {
        inputs.push(*outlet);
    }
    let op = PointwiseConv::new(
        p.shape,
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
