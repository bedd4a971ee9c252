//! tensorcv's own kernels for the operators where tract loses most time on mobile vision
//! models, put into tract's graph when a model is loaded (tract's ops are trait objects and its
//! graphs can be patched, so this needs no fork):
//!
//! - [`DepthwiseConv`] (NCHW and NHWC), the workhorse of MobileNet, EfficientNet-Lite,
//!   BlazeFace and the selfie segmenter, with the bias, per-channel scale/shift and a following ReLU / ReLU6 / clip
//!   folded in, in AVX-512, AVX2 + FMA, WebAssembly SIMD128 and portable copies;
//! - [`MaxPool2d`], max pooling (BlazeFace's 2×2 pools);
//! - [`Resize2d`], resizing of the two spatial axes (the segmenter's upsampling decoder).
//!
//! [`LoadOptions::tract_kernels`](crate::LoadOptions) turns them off, to compare with tract's
//! own operators; tests run both on random inputs and compare.

pub mod block;
pub mod conv;
pub mod depthwise;
pub mod gemm;
mod lanes;
pub mod layout;
pub mod pointwise;
pub mod pool;
pub mod resample;
mod simd;
#[cfg(not(target_family = "wasm"))]
pub mod team;

pub use block::Block;
pub use conv::Conv2d;
pub use depthwise::{DepthwiseConv, Geometry};
pub use lanes::Level;
pub use layout::{MoveChannels, ScaleChannels};
pub use pointwise::PointwiseConv;
pub use pool::MaxPool2d;
pub use resample::Resize2d;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::{ensure, format_err};

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
    }
}

/// A clamp as bit patterns (the ops are `Hash` and `Eq`), and back.
pub(super) fn clamp_bits(c: Option<(f32, f32)>) -> Option<(u32, u32)> {
    c.map(|(lo, hi)| (lo.to_bits(), hi.to_bits()))
}

/// See [`clamp_bits`].
pub(super) fn clamp_floats(c: Option<(u32, u32)>) -> Option<(f32, f32)> {
    c.map(|(lo, hi)| (f32::from_bits(lo), f32::from_bits(hi)))
}

/// A residual input: its channel count and shape.
pub(super) type Residual = Option<(usize, TVec<usize>)>;

/// The `info` line of the GEMM ops' epilogue: clamp, residual add, clamp.
pub(super) fn epilogue_info(
    pre: Option<(u32, u32)>,
    residual: &Residual,
    post: Option<(u32, u32)>,
) -> String {
    let mut info = String::new();
    if let Some((lo, hi)) = clamp_floats(pre) {
        info += &format!(", clamp [{lo}, {hi}]");
    }
    if let Some((c, _)) = residual {
        info += &format!(", + residual ({c} channels)");
    }
    if let Some((lo, hi)) = clamp_floats(post) {
        info += &format!(", clamp [{lo}, {hi}]");
    }
    info
}

/// `output_facts` of an op reading one `f32` tensor of `in_shape` (and the `residual`) and
/// writing one of `out_shape`.
pub(super) fn residual_op_facts(
    what: &str,
    inputs: &[&TypedFact],
    in_shape: &[usize],
    residual: &Residual,
    out_shape: &[usize],
) -> TractResult<TVec<TypedFact>> {
    ensure!(inputs.len() == 1 + residual.is_some() as usize);
    ensure!(inputs.iter().all(|f| f.datum_type == f32::datum_type()));
    ensure!(
        inputs[0].shape.as_concrete() == Some(in_shape),
        "{what} input is {:?}, the op was built for {:?}",
        inputs[0].shape,
        in_shape
    );
    if let Some((_, shape)) = residual {
        ensure!(
            inputs[1].shape.as_concrete() == Some(&**shape),
            "{what} residual is {:?}, the op was built for {:?}",
            inputs[1].shape,
            shape
        );
    }
    Ok(tvec!(f32::fact(out_shape)))
}

/// `eval` of such an op: `compute(input, residual, output)` into a new `out_shape` tensor.
pub(super) fn eval_residual_op(
    inputs: TVec<TValue>,
    residual: bool,
    out_shape: &[usize],
    compute: impl FnOnce(&[f32], Option<&[f32]>, &mut [f32]) -> TractResult<()>,
) -> TractResult<TVec<TValue>> {
    ensure!(inputs.len() == 1 + residual as usize);
    let input = inputs[0].try_as_plain_ram()?;
    let residual = match inputs.get(1) {
        Some(r) => Some(r.try_as_plain_ram()?),
        None => None,
    };
    let mut output = unsafe { Tensor::uninitialized::<f32>(out_shape)? };
    {
        let mut out = output.try_as_plain_ram_mut()?;
        let residual = match &residual {
            Some(r) => Some(r.as_slice::<f32>()?),
            None => None,
        };
        compute(
            input.as_slice::<f32>()?,
            residual,
            out.as_slice_mut::<f32>()?,
        )?;
    }
    Ok(tvec!(output.into_tvalue()))
}

/// A replacing op, the inputs it reads and the nodes it absorbs (the last one's output is the
/// op's).
pub(super) type Replacement<Op> = (Op, TVec<OutletId>, Vec<usize>);

/// Put tensorcv's ops in place of the tract nodes they run faster. Call on a decluttered model,
/// before tract's `optimize()` (codegen), which then leaves them alone.
pub fn accelerate(model: &mut TypedModel) -> TractResult<Replaced> {
    let mut replaced = Replaced::default();
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
            } else if let Some(op) = resample::replace(model, node)? {
                replaced.resizes += 1;
                (Box::new(op), tvec![node.inputs[0]], vec![])
            } else if let Some((op, inputs)) = layout::replace_scale(model, node)? {
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

/// Put [`MoveChannels`] in place of tract's moves of a channel axis. Returns the moves
/// replaced.
fn move_channels(model: &mut TypedModel) -> TractResult<usize> {
    let mut moved = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(op) = layout::replace(model, node)? else {
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

/// The single reader of `n`'s output, unless that output leaves the model.
fn only_reader(model: &TypedModel, n: usize) -> TractResult<Option<usize>> {
    let outlet = OutletId::new(n, 0);
    let s = model.outlet_successors(outlet);
    Ok((s.len() == 1 && !model.output_outlets()?.contains(&outlet)).then(|| s[0].node))
}

/// Fuse [expand →] depthwise → project chains of tensorcv's ops into [`Block`]s where the
/// expanded tensor is too large for the cache. Returns the blocks made.
fn fuse_blocks(model: &mut TypedModel) -> TractResult<usize> {
    let mut fused = 0;
    for id in model.eval_order()? {
        let Some(dw) = model.node(id).op_as::<DepthwiseConv>() else {
            continue;
        };
        if dw.channels_last() || !block::worth_it(dw) {
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
        let Ok(op) = Block::new(expand.map(|(_, e)| e.clone()), dw.clone(), project.clone()) else {
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
                let out_shape = layout::channels_moved(&pw.out_shape, pw.out_last(), false);
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

/// A pointer shared by the threads of one op, which write disjoint parts of what it points to.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub(crate) *mut f32);
// SAFETY: the ops hand each thread its own part of the buffer
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The pointer (a method, so closures capture the whole `SendPtr`).
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

/// Threads for this run: the current [`team::Team`]'s, else tract's executor's (1 without one,
/// and on wasm).
pub(crate) fn threads() -> usize {
    #[cfg(not(target_family = "wasm"))]
    {
        if let Some(n) = team::team_size() {
            return n;
        }
        use tract_onnx::tract_core::tract_linalg::multithread::{current_tract_executor, Executor};
        if let Executor::MultiThread(pool) = current_tract_executor() {
            return pool.current_num_threads();
        }
    }
    1
}

/// Multiply-adds (or taps) below which an operator runs on one thread: splitting it costs the
/// threads' handshake, which on small tensors is more than the work it shares (2^18 measured
/// best of 2^18, 2^21 and 2^23 on the zoo at 2 threads).
const MIN_PARALLEL_WORK: usize = 1 << 18;

/// How many parts to split an operator of `work` multiply-adds into: the run's threads (at most
/// `limit`) when the work is large enough to share, else 1.
pub(crate) fn parts_for(work: usize, limit: usize) -> usize {
    if work >= MIN_PARALLEL_WORK {
        threads().min(limit).max(1)
    } else {
        1
    }
}

/// Run `f(part)` for every `part < parts`, on the current team's threads, else tract's
/// executor's when it has some.
pub(crate) fn for_parts(parts: usize, f: impl Fn(usize) + Sync + Send) {
    #[cfg(not(target_family = "wasm"))]
    if parts > 1 {
        if team::team_run(parts, &f) {
            return;
        }
        use rayon::prelude::*;
        use tract_onnx::tract_core::tract_linalg::multithread::{current_tract_executor, Executor};
        if let Executor::MultiThread(pool) = current_tract_executor() {
            pool.install(|| (0..parts).into_par_iter().for_each(&f));
            return;
        }
    }
    (0..parts).for_each(f)
}

/// Evaluate a one-input `f32` op: a fresh output of `shape`, filled by `compute(input, output)`.
pub(crate) fn eval_f32(
    inputs: TVec<TValue>,
    shape: &[usize],
    compute: impl FnOnce(&[f32], &mut [f32]) -> TractResult<()>,
) -> TractResult<TVec<TValue>> {
    use tract_onnx::tract_core::internal::*;
    let input = args_1!(inputs);
    let input = input.try_as_plain_ram()?;
    let mut output = unsafe { Tensor::uninitialized::<f32>(shape)? };
    {
        let mut out = output.try_as_plain_ram_mut()?;
        compute(input.as_slice::<f32>()?, out.as_slice_mut::<f32>()?)?;
    }
    Ok(tvec!(output.into_tvalue()))
}

/// Run `f(first, input_planes, output_planes)` over runs of consecutive planes of a `[.., H, W]`
/// tensor (`first` the index of the run's first plane), one run per thread of the run (the team,
/// else tract's executor) when the work (`work` per output value) is large, else one run.
pub(crate) fn chunks(
    input: &[f32],
    in_plane: usize,
    output: &mut [f32],
    out_plane: usize,
    work: usize,
    f: impl Fn(usize, &[f32], &mut [f32]) + Sync + Send,
) -> TractResult<()> {
    if out_plane == 0 || output.is_empty() {
        return Ok(());
    }
    let count = output.len() / out_plane;
    tract_onnx::tract_core::internal::ensure!(
        output.len() == count * out_plane && input.len() == count * in_plane,
        "plane sizes do not divide the tensors"
    );
    let parts = parts_for(output.len() * work.max(1), count);
    let per = count.div_ceil(parts);
    let out = SendPtr(output.as_mut_ptr());
    for_parts(parts, |part| {
        let (first, last) = ((part * per).min(count), ((part + 1) * per).min(count));
        if first < last {
            // SAFETY: parts write disjoint runs of planes of `output`
            let out = unsafe {
                std::slice::from_raw_parts_mut(
                    out.get().add(first * out_plane),
                    (last - first) * out_plane,
                )
            };
            f(first, &input[first * in_plane..last * in_plane], out);
        }
    });
    Ok(())
}

/// Run `f(plane, input_plane, output_plane)` over the planes of a `[.., H, W]` tensor, the
/// runs of [`chunks`] split between the run's threads.
pub(crate) fn planes(
    input: &[f32],
    in_plane: usize,
    output: &mut [f32],
    out_plane: usize,
    work: usize,
    f: impl Fn(usize, &[f32], &mut [f32]) + Sync + Send,
) -> TractResult<()> {
    chunks(
        input,
        in_plane,
        output,
        out_plane,
        work,
        |first, input, out| {
            for (i, out) in out.chunks_exact_mut(out_plane).enumerate() {
                f(first + i, &input[i * in_plane..(i + 1) * in_plane], out);
            }
        },
    )
}
