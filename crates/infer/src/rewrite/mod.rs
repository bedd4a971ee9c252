//! The graph rewrites that put tensorcv's operators ([`crate::ops`]) in place of tract's, on a
//! decluttered model before tract's own optimisation (tract's ops are trait objects and its
//! graphs can be patched, so this needs no fork). Each `replace` recognises one pattern of
//! tract's nodes, with what follows it that folds in; [`accelerate`] applies them, then the
//! passes over tensorcv's ops: stems switched to channels first, inverted residual blocks
//! fused, small planes switched to channels last, channel moves made tensorcv's.
//!
//! [`LoadOptions::tract_only`](crate::LoadOptions) skips all of it, to compare with tract's
//! own operators; tests run both on random inputs and compare.

mod activation;
mod channels;
mod conv;
mod depthwise;
mod epilogue;
mod pointwise;
mod pool;
mod resize;

use crate::ops::{Conv2d, DepthwiseConv, InvertedResidual, MoveChannels, PointwiseConv, Prelu};
use tensorcv_kernels::depthwise::{Geometry, MAX_TAPS};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::format_err;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::PoolSpec;
use tract_onnx::tract_core::ops::nn::DataFormat;

/// What [`accelerate`] replaced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replaced {
    /// depthwise convolutions
    pub depthwise: usize,
    /// of which with an activation folded in
    pub activations: usize,
    /// 1×1 convolutions
    pub pointwise: usize,
    /// other dense convolutions
    pub convs: usize,
    /// of which with a residual add folded in
    pub residuals: usize,
    /// max pools
    pub pools: usize,
    /// stem chains switched to channels first
    pub channels_first: usize,
    /// inverted residual blocks fused (expand, depthwise, project)
    pub blocks: usize,
    /// ops on small planes switched to channels last
    pub channels_last: usize,
    /// tract's moves of a channel axis made [`MoveChannels`]
    pub moves: usize,
    /// products of channels-last tensors by computed per-channel factors
    pub scales: usize,
    /// resizes
    pub resizes: usize,
    /// PReLUs (comparison, product and select) made one op
    pub prelus: usize,
}

impl Replaced {
    /// Operators of tensorcv's in the graph (the sub-counts aside).
    pub fn ops(&self) -> usize {
        self.depthwise
            + self.pointwise
            + self.convs
            + self.pools
            + self.blocks
            + self.resizes
            + self.moves
            + self.scales
            + self.prelus
    }
}

/// A replacing op, the inputs it reads and the nodes it absorbs (the last one's output is the
/// op's).
pub(crate) type Replacement<Op> = (Op, TVec<OutletId>, Vec<usize>);

/// Put tensorcv's ops in place of the tract nodes they run faster. Call on a decluttered model,
/// before tract's `optimize()` (codegen), which then leaves them alone.
pub fn accelerate(model: &mut TypedModel) -> TractResult<Replaced> {
    let mut replaced = Replaced {
        prelus: fold_prelus(model)?,
        ..Replaced::default()
    };
    for id in model.eval_order()? {
        let node = model.node(id);
        let (op, inputs, absorbed): Replacement<Box<dyn TypedOp>> =
            if let Some((op, absorbed)) = depthwise::replace(model, node)? {
                replaced.depthwise += 1;
                replaced.activations += op.has_clamp() as usize;
                (Box::new(op), tvec![node.inputs[0]], absorbed)
            } else if let Some((op, inputs, absorbed)) = pointwise::replace(model, node)? {
                replaced.pointwise += 1;
                replaced.residuals += op.has_residual() as usize;
                (Box::new(op), inputs, absorbed)
            } else if let Some((op, inputs, absorbed)) = conv::replace(model, node)? {
                replaced.convs += 1;
                replaced.residuals += op.has_residual() as usize;
                (Box::new(op), inputs, absorbed)
            } else if let Some(op) = pool::replace(model, node)? {
                replaced.pools += 1;
                (Box::new(op), tvec![node.inputs[0]], vec![])
            } else if let Some(op) = resize::replace(model, node)? {
                replaced.resizes += 1;
                (Box::new(op), tvec![node.inputs[0]], vec![])
            } else if let Some((op, inputs)) = channels::replace_scale(model, node)? {
                replaced.scales += 1;
                (Box::new(op), inputs, vec![])
            } else {
                continue;
            };
        let mut patch = TypedModelPatch::new("tensorcv kernels");
        let taps = inputs
            .iter()
            .map(|&i| patch.tap_model(model, i))
            .collect::<TractResult<TVec<_>>>()?;
        let wire = patch.wire_node(format!("{}.tensorcv", node.name), op, &taps)?[0];
        let last = absorbed.last().copied().unwrap_or(id);
        patch.shunt_outside(model, OutletId::new(last, 0), wire)?;
        patch.obliterate(id)?;
        for n in absorbed {
            patch.obliterate(n)?;
        }
        // an absorbed transpose of the input, now read by nothing
        for &i in &node.inputs {
            if !inputs.contains(&i)
                && model.outlet_successors(i).len() == 1
                && model.node(i.node).inputs.len() == 1
                && model.outlet_fact(i)?.konst.is_none()
            {
                patch.obliterate(i.node)?;
            }
        }
        patch.apply(model)?;
    }
    replaced.channels_first = channels_first_chains(model)?;
    replaced.blocks = fuse_blocks(model)?;
    replaced.channels_last = channels_last_tails(model)?;
    replaced.moves = move_channels(model)?;
    Ok(replaced)
}

/// Put [`Prelu`] in place of tract's expansion of each PReLU. Returns the PReLUs replaced.
fn fold_prelus(model: &mut TypedModel) -> TractResult<usize> {
    let mut folded = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some((op, x, others)) = activation::replace(model, node)? else {
            continue;
        };
        let mut patch = TypedModelPatch::new("tensorcv prelu");
        let tap = patch.tap_model(model, x)?;
        let y = patch.wire_node(format!("{}.tensorcv", node.name), op, &[tap])?[0];
        patch.shunt_outside(model, OutletId::new(id, 0), y)?;
        patch.obliterate(id)?;
        for n in others {
            patch.obliterate(n)?;
        }
        patch.apply(model)?;
        folded += 1;
    }
    Ok(folded)
}

/// Put [`MoveChannels`] in place of tract's moves of a channel axis. Returns the moves
/// replaced.
fn move_channels(model: &mut TypedModel) -> TractResult<usize> {
    let mut moved = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(op) = channels::replace(model, node)? else {
            continue;
        };
        let mut patch = TypedModelPatch::new("tensorcv channel move");
        let tap = patch.tap_model(model, node.inputs[0])?;
        let y = patch.wire_node(format!("{}.tensorcv", node.name), op, &[tap])?[0];
        patch.shunt_outside(model, OutletId::new(id, 0), y)?;
        patch.obliterate(id)?;
        patch.apply(model)?;
        moved += 1;
    }
    Ok(moved)
}

/// The next step of a chain after node `last`: its single reader when that is an
/// element-wise binary op (no quantization) of the same shape as `last`'s output, with the
/// reader's node, the slot `last` feeds and the op; `None` where the chain ends (the output
/// leaves the model, is read twice, or by something else).
pub(crate) fn next_binary(
    model: &TypedModel,
    last: usize,
) -> TractResult<Option<(&TypedNode, usize, &TypedBinOp)>> {
    let outlet = OutletId::new(last, 0);
    let successors = model.outlet_successors(outlet);
    if model.output_outlets()?.contains(&outlet) || successors.len() != 1 {
        return Ok(None);
    }
    let next = model.node(successors[0].node);
    let Some(bin) = next.op_as::<TypedBinOp>() else {
        return Ok(None);
    };
    let same_shape = model
        .outlet_fact(OutletId::new(next.id, 0))?
        .shape
        .as_concrete()
        == model.outlet_fact(outlet)?.shape.as_concrete();
    Ok((bin.1.is_none() && same_shape).then_some((next, successors[0].slot, bin)))
}

/// The single reader of `n`'s output, unless that output leaves the model.
fn only_reader(model: &TypedModel, n: usize) -> TractResult<Option<usize>> {
    let outlet = OutletId::new(n, 0);
    let s = model.outlet_successors(outlet);
    Ok((s.len() == 1 && !model.output_outlets()?.contains(&outlet)).then(|| s[0].node))
}

/// Fuse [expand →] depthwise → project chains of tensorcv's ops into [`InvertedResidual`]s where the
/// expanded tensor is too large for the cache. Returns the blocks made.
fn fuse_blocks(model: &mut TypedModel) -> TractResult<usize> {
    let mut fused = 0;
    for id in model.eval_order()? {
        let Some(dw) = model.node(id).op_as::<DepthwiseConv>() else {
            continue;
        };
        if dw.channels_last() || !InvertedResidual::worth_it(dw) {
            continue;
        }
        let Some(pw_id) = only_reader(model, id)? else {
            continue;
        };
        let Some(project) = model.node(pw_id).op_as::<PointwiseConv>() else {
            continue;
        };
        if model.node(pw_id).inputs[0] != OutletId::new(id, 0) {
            continue;
        }
        let source = model.node(id).inputs[0];
        let expand = match model.node(source.node).op_as::<PointwiseConv>() {
            Some(e) if only_reader(model, source.node)? == Some(id) => Some((source.node, e)),
            _ => None,
        };
        let Ok(op) =
            InvertedResidual::new(expand.map(|(_, e)| e.clone()), dw.clone(), project.clone())
        else {
            continue;
        };
        let first = match expand {
            Some((e, _)) => model.node(e).inputs[0],
            None => source,
        };
        let mut patch = TypedModelPatch::new("tensorcv inverted residual");
        let mut inputs = tvec![patch.tap_model(model, first)?];
        for &i in &model.node(pw_id).inputs[1..] {
            inputs.push(patch.tap_model(model, i)?);
        }
        let y = patch.wire_node(format!("{}.block", model.node(id).name), op, &inputs)?[0];
        patch.shunt_outside(model, OutletId::new(pw_id, 0), y)?;
        patch.obliterate(id)?;
        patch.obliterate(pw_id)?;
        if let Some((e, _)) = expand {
            patch.obliterate(e)?;
        }
        patch.apply(model)?;
        fused += 1;
    }
    Ok(fused)
}

/// Where tract kept a network's first layers channels last (a stem convolution, a depthwise
/// convolution, then a 1×1 convolution to channels first: MobileNet's stem), and all three are
/// now tensorcv's, switch the two tensors between them to channels first, where the
/// depthwise kernel is fastest. Returns the chains switched.
fn channels_first_chains(model: &mut TypedModel) -> TractResult<usize> {
    let mut switched = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(conv) = node.op_as::<Conv2d>() else {
            continue;
        };
        let Some(dw_id) = only_reader(model, id)? else {
            continue;
        };
        let Some(pw_id) = only_reader(model, dw_id)? else {
            continue;
        };
        let (Some(dw), Some(pw)) = (
            model.node(dw_id).op_as::<DepthwiseConv>(),
            model.node(pw_id).op_as::<PointwiseConv>(),
        ) else {
            continue;
        };
        if !conv.out_last() || conv.has_residual() || !dw.channels_last() || !pw.in_last() {
            continue;
        }
        if model.node(pw_id).inputs[0] != OutletId::new(dw_id, 0) {
            continue;
        }
        let (conv, dw, pw) = (
            conv.to_channels_first_output()?,
            dw.with_channels_last(false)?,
            pw.with_layouts(false, pw.out_last())?,
        );
        let mut patch = TypedModelPatch::new("tensorcv channels first");
        let inputs = node
            .inputs
            .iter()
            .map(|&i| patch.tap_model(model, i))
            .collect::<TractResult<TVec<_>>>()?;
        let x = patch.wire_node(format!("{}.cf", node.name), conv, &inputs)?[0];
        let y = patch.wire_node(format!("{}.cf", model.node(dw_id).name), dw, &[x])?[0];
        let mut pw_inputs = tvec![y];
        for &i in &model.node(pw_id).inputs[1..] {
            pw_inputs.push(patch.tap_model(model, i)?);
        }
        let z = patch.wire_node(format!("{}.cf", model.node(pw_id).name), pw, &pw_inputs)?[0];
        patch.shunt_outside(model, OutletId::new(pw_id, 0), z)?;
        for n in [id, dw_id, pw_id] {
            patch.obliterate(n)?;
        }
        patch.apply(model)?;
        switched += 1;
    }
    Ok(switched)
}

/// Largest planes (pixels per channel) the channels-last pass takes: there the 1×1
/// convolutions store a vector of channels per pixel instead of transposing their tiles into
/// rows of a few pixels, and the depthwise kernel keeps a block of channels' weights in
/// registers across a row (MobileNetV2, with the channels-last depthwise rows: 4.24 → 3.99 ms,
/// A/B medians of 4 rounds).
const LAST_MAX_PLANE: usize = 14 * 14;

/// Switch tensorcv's channels-first 1×1 and depthwise convolutions on small planes (see
/// [`LAST_MAX_PLANE`]) to channels last, with one [`MoveChannels`] per tensor entering such a
/// run of ops and, per tensor leaving it, a convolution writing channels first or a
/// [`MoveChannels`] back. Returns the ops switched.
fn channels_last_tails(model: &mut TypedModel) -> TractResult<usize> {
    use std::collections::{HashMap, HashSet};
    use tract_onnx::tract_core::ops::nn::Reduce;
    let concrete = |f: &TypedFact| -> TractResult<TVec<usize>> {
        f.shape
            .as_concrete()
            .map(|s| s.into())
            .ok_or_else(|| format_err!("a switched op's tensor has no concrete shape"))
    };
    let order = model.eval_order()?;
    let small = |shape: &[usize], n: usize| {
        let r = shape.len();
        r >= 3 && shape[r - 2] * shape[r - 1] == n && n <= LAST_MAX_PLANE
    };
    let mut members: HashSet<usize> = order
        .iter()
        .copied()
        .filter(|&id| {
            let op = model.node(id).op();
            if let Some(pw) = op.downcast_ref::<PointwiseConv>() {
                // (one that already writes channels last keeps doing so)
                let out_shape = crate::ops::channels_moved(&pw.out_shape, pw.out_last(), false);
                !pw.in_last()
                    && small(&pw.in_shape, pw.pixels())
                    && out_shape.is_ok_and(|s| small(&s, pw.pixels()))
            } else if let Some(dw) = op.downcast_ref::<DepthwiseConv>() {
                let g = dw.geometry();
                !dw.channels_last()
                    && g.out_h * g.out_w <= LAST_MAX_PLANE
                    && g.in_h * g.in_w <= LAST_MAX_PLANE
            } else {
                false
            }
        })
        .collect();
    // a sum or mean over the planes of a switched op's output (global average pooling)
    // switches with it, its output a transpose of `C` values away from channels first
    for &id in &order {
        let node = model.node(id);
        if let (Some(r), [i]) = (node.op_as::<Reduce>(), &node.inputs[..]) {
            let rank = model.outlet_fact(*i)?.rank();
            let mut axes = r.axes.clone();
            axes.sort();
            if members.contains(&i.node) && rank >= 3 && axes[..] == [rank - 2, rank - 1] {
                members.insert(id);
            }
        }
    }
    // a PReLU of a switched op's output switches with it
    for &id in &order {
        let node = model.node(id);
        if let (Some(p), [i]) = (node.op_as::<Prelu>(), &node.inputs[..]) {
            let shape = concrete(model.outlet_fact(*i)?)?;
            if members.contains(&i.node)
                && p.with_channels_last().is_ok()
                && small(&shape, shape[shape.len() - 2..].iter().product())
            {
                members.insert(id);
            }
        }
    }
    // a depthwise convolution is where most of the gain is
    if !members
        .iter()
        .any(|&id| model.node(id).op_is::<DepthwiseConv>())
    {
        return Ok(0);
    }
    let outputs = model.output_outlets()?.to_vec();
    let mut patch = TypedModelPatch::new("tensorcv channels last");
    // outlets of the switched ops, and transposes of the tensors entering, channels last
    let mut last: HashMap<OutletId, OutletId> = HashMap::new();
    for &id in order.iter().filter(|id| members.contains(id)) {
        let node = model.node(id);
        let mut inputs = tvec![];
        for &i in &node.inputs {
            let wire = match last.get(&i) {
                Some(&w) => w,
                None => {
                    let tap = patch.tap_model(model, i)?;
                    let w = patch.wire_node(
                        format!("{}.to_last", model.node(i.node).name),
                        MoveChannels::new(&concrete(patch.outlet_fact(tap)?)?, true)?,
                        &[tap],
                    )?[0];
                    last.insert(i, w);
                    w
                }
            };
            inputs.push(wire);
        }
        let outlet = OutletId::new(id, 0);
        let readers = model.outlet_successors(outlet);
        let inside = readers.iter().any(|s| members.contains(&s.node));
        let outside =
            readers.iter().any(|s| !members.contains(&s.node)) || outputs.contains(&outlet);
        let pw = node.op_as::<PointwiseConv>();
        // what the readers outside expect: channels first, but for a 1×1 convolution that
        // wrote channels last already
        let last_out = pw.is_some_and(|pw| pw.out_last());
        // a 1×1 convolution read only outside writes channels first itself, unless it adds a
        // residual (which is laid out as its output, and every input here is channels last)
        let first_out = !inside && !last_out && pw.is_some_and(|pw| !pw.has_residual());
        let op: Box<dyn TypedOp> = match (pw, node.op_as::<Reduce>()) {
            (Some(pw), _) => Box::new(pw.with_layouts(true, !first_out)?),
            (None, _) if node.op_is::<Prelu>() => Box::new(
                node.op_as::<Prelu>()
                    .expect("a PReLU")
                    .with_channels_last()?,
            ),
            (None, Some(r)) => {
                let rank = model.outlet_fact(outlet)?.rank();
                Box::new(Reduce::new(tvec![rank - 3, rank - 2], r.reducer))
            }
            _ => Box::new(
                node.op_as::<DepthwiseConv>()
                    .expect("a member")
                    .with_channels_last(true)?,
            ),
        };
        let y = patch.wire_node(format!("{}.last", node.name), op, &inputs)?[0];
        if inside {
            last.insert(outlet, y);
        }
        if outside {
            let back = if first_out || last_out {
                y
            } else {
                patch.wire_node(
                    format!("{}.to_first", node.name),
                    MoveChannels::new(&concrete(patch.outlet_fact(y)?)?, false)?,
                    &[y],
                )?[0]
            };
            patch.shunt_outside(model, outlet, back)?;
        }
    }
    for &id in &members {
        patch.obliterate(id)?;
    }
    patch.apply(model)?;
    Ok(members.len())
}

/// Fold a `Max` (lower bound) or `Min` (upper bound) by the scalar `bound` into `clamp`; false
/// (and `clamp` unchanged) for other ops or bounds that would cross.
pub(crate) fn chain_clamp(
    op: &dyn tract_onnx::tract_core::ops::binary::BinMiniOp,
    clamp: &mut Option<(f32, f32)>,
    bound: f32,
) -> bool {
    use tract_onnx::tract_core::ops::math::{Max, Min};
    let (lo, hi) = clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
    let next = if op.is::<Max>() {
        (lo.max(bound), hi)
    } else if op.is::<Min>() {
        (lo, hi.min(bound))
    } else {
        return false;
    };
    if next.0 > next.1 {
        return false;
    }
    *clamp = Some(next);
    true
}

/// The values of a constant that broadcasts per channel over an `[.., C, H, W]` tensor of rank
/// `rank` (a scalar, `[C]` for a bias, `[1, C, 1, 1]`, ...), as `channels` floats.
pub(crate) fn per_channel(
    t: &Tensor,
    rank: usize,
    c_axis: usize,
    channels: usize,
) -> Option<Vec<f32>> {
    if t.datum_type() != f32::datum_type() {
        return None;
    }
    let plain = t.try_as_plain_ram().ok()?;
    let values = plain.as_slice::<f32>().ok()?;
    if values.len() == 1 {
        return Some(vec![values[0]; channels]);
    }
    let shape = t.shape();
    // right-aligned broadcasting: the constant's axis for C is at `c_axis - (rank - its rank)`
    let offset = rank.checked_sub(shape.len())?;
    let c = c_axis.checked_sub(offset)?;
    let only_c = shape
        .iter()
        .enumerate()
        .all(|(i, &d)| if i == c { d == channels } else { d == 1 });
    only_c.then(|| values.to_vec())
}

/// The geometry of a 2-D pooling or convolution (tract's `PoolSpec`) over an input of
/// `shape`, with whether it has a batch axis and whether channels come last; `None` where
/// the kernels do not apply (other ranks, dilations, windows over [`MAX_TAPS`]).
pub(crate) fn geometry_of(spec: &PoolSpec, shape: &[usize]) -> Option<(Geometry, bool, bool)> {
    let (has_batch, channels_last) = match spec.data_format {
        DataFormat::NCHW => (true, false),
        DataFormat::CHW => (false, false),
        DataFormat::NHWC => (true, true),
        DataFormat::HWC => (false, true),
    };
    if spec.rank() != 2
        || shape.len() != 3 + has_batch as usize
        || spec.dilations().iter().any(|&d| d != 1)
        || spec.kernel_shape.iter().product::<usize>() > MAX_TAPS
    {
        return None;
    }
    let r = shape.len();
    let (hw, channels) = if channels_last {
        (&shape[r - 3..r - 1], shape[r - 1])
    } else {
        (&shape[r - 2..], shape[r - 3])
    };
    let strides = spec.strides();
    let padded = spec
        .padding
        .compute(hw, &spec.kernel_shape, &[1, 1], &strides);
    let geo = Geometry {
        batch: if has_batch { shape[0] } else { 1 },
        channels,
        in_h: hw[0],
        in_w: hw[1],
        out_h: padded[0].convoluted,
        out_w: padded[1].convoluted,
        kh: spec.kernel_shape[0],
        kw: spec.kernel_shape[1],
        stride_h: strides[0],
        stride_w: strides[1],
        pad_top: padded[0].pad_before,
        pad_left: padded[1].pad_before,
    };
    Some((geo, has_batch, channels_last))
}
