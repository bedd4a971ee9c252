//! tensorcv's 1×1 convolution: tract's decluttered `EinSum` of an activation with a constant
//! weight matrix (`IHW,OI->OHW`, `NIHW,OI->NOHW`, `NHWI,OI->OHW`, ...), together with what
//! follows it in a mobile network's block: the bias and per-channel scale/shift (folded into
//! the weights), a clamp (ReLU, ReLU6), the residual add (also from a channel-padded skip, as
//! BlazeFace's `Pad` → `Add`) and a clamp after it. One pass over the output, through the
//! [`gemm`](super::gemm) kernels.

use super::depthwise::{per_channel, Floats};
use super::gemm::{self, Epilogue, Kind, Mat, Packed};
use super::lanes::Level;
use super::layout::channels_moved;
use super::{chain_clamp, clamp_bits, clamp_floats, for_parts, parts_for, Residual, SendPtr};
use std::sync::Arc;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::array::{Pad, PadMode};
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::math::{Add, Mul, Sub};

/// How a pointwise convolution's tensors are laid out: `batch` images of `n` pixels, `k`
/// channels in, `m` out; each side with its channels first (`[C, pixels]`) or last
/// (`[pixels, C]`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    pub batch: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub in_last: bool,
    pub out_last: bool,
}

impl Shape {
    /// The tile kind that wastes fewest lanes: pixels in vectors where the planes are whole
    /// vectors (or large), channels in vectors where the planes are small (14×14, 7×7).
    fn kind(&self, level: Level) -> Kind {
        if self.in_last || self.out_last {
            return Kind::Cols;
        }
        let lanes = level.or_portable().lanes();
        let waste = |len: usize| len.div_ceil(lanes) * lanes - len;
        // lanes computed per useful value, pixels vs channels
        let rows = self.n.div_ceil(lanes) as f32 / self.n as f32;
        let cols = self.m.div_ceil(lanes) as f32 / self.m as f32;
        if waste(self.n) == 0 || self.n >= 32 * lanes || rows <= cols {
            Kind::Rows
        } else {
            Kind::Cols
        }
    }
}

/// A 1×1 convolution with its epilogue; inputs: the activation, then the residual if any.
#[derive(Clone, Debug)]
pub struct PointwiseConv {
    pub(super) shape: Shape,
    pub(super) in_shape: TVec<usize>,
    pub(super) out_shape: TVec<usize>,
    pub(super) weights: Arc<Packed>,
    /// clamp before / after the residual, as bits
    pre: Option<(u32, u32)>,
    post: Option<(u32, u32)>,
    /// the residual's channels (fewer than `m` for a channel-padded skip) and shape
    pub(super) residual: Residual,
    /// unpacked weights `[m][k]` and bias, to repack for another level
    source: (Floats, Floats),
}

impl PartialEq for PointwiseConv {
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape
            && self.in_shape == other.in_shape
            && self.out_shape == other.out_shape
            && (self.weights.level(), self.weights.kind())
                == (other.weights.level(), other.weights.kind())
            && self.pre == other.pre
            && self.post == other.post
            && self.residual == other.residual
            && self.source == other.source
    }
}
impl Eq for PointwiseConv {}

impl PointwiseConv {
    /// `weights`: `m × k` row-major; `bias`: `m`. The shapes are the tensors' own (with their
    /// size-1 axes); `residual`: its channel count and shape.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shape: Shape,
        in_shape: TVec<usize>,
        out_shape: TVec<usize>,
        weights: Vec<f32>,
        bias: Vec<f32>,
        pre: Option<(f32, f32)>,
        residual: Residual,
        post: Option<(f32, f32)>,
    ) -> TractResult<PointwiseConv> {
        ensure!(weights.len() == shape.m * shape.k && bias.len() == shape.m);
        ensure!(in_shape.iter().product::<usize>() == shape.batch * shape.k * shape.n);
        ensure!(out_shape.iter().product::<usize>() == shape.batch * shape.m * shape.n);
        if let Some((c, s)) = &residual {
            ensure!(
                *c >= 1
                    && *c <= shape.m
                    && s.iter().product::<usize>() == shape.batch * c * shape.n
            );
        }
        let level = Level::best();
        let packed = Packed::new(level, shape.kind(level), &weights, &bias, shape.m, shape.k);
        Ok(PointwiseConv {
            shape,
            in_shape,
            out_shape,
            weights: Arc::new(packed),
            pre: clamp_bits(pre),
            post: clamp_bits(post),
            residual,
            source: (Floats(weights.into()), Floats(bias.into())),
        })
    }

    /// Run with `level` and `kind` instead of the best ones (for comparing them).
    pub fn with_level(mut self, level: Level, kind: Option<Kind>) -> PointwiseConv {
        let kind = kind.unwrap_or_else(|| self.shape.kind(level));
        let kind = if self.shape.in_last || self.shape.out_last {
            Kind::Cols
        } else {
            kind
        };
        let s = &self.shape;
        self.weights = Arc::new(Packed::new(
            level,
            kind,
            &self.source.0 .0,
            &self.source.1 .0,
            s.m,
            s.k,
        ));
        self
    }

    /// The epilogue with the residual at `residual` (`(m, n)` at `m * rs + n * cs`).
    pub(super) fn epilogue(&self, residual: Option<Mat<*const f32>>) -> Epilogue {
        Epilogue {
            pre: clamp_floats(self.pre),
            residual: residual.zip(self.residual.as_ref().map(|r| r.0)),
            post: clamp_floats(self.post),
        }
    }

    /// Whether the input is channels last.
    pub fn in_last(&self) -> bool {
        self.shape.in_last
    }

    /// The same convolution with its input and its output (and residual) channels first or
    /// last as asked: `[N, C, H, W]` / `[C, H, W]` or `[N, H, W, C]` / `[H, W, C]`.
    pub fn with_layouts(&self, in_last: bool, out_last: bool) -> TractResult<PointwiseConv> {
        let mut shape = self.shape.clone();
        let in_shape = channels_moved(&self.in_shape, shape.in_last, in_last)?;
        let out_shape = channels_moved(&self.out_shape, shape.out_last, out_last)?;
        let residual = match &self.residual {
            Some((c, r)) => Some((*c, channels_moved(r, shape.out_last, out_last)?)),
            None => None,
        };
        (shape.in_last, shape.out_last) = (in_last, out_last);
        PointwiseConv::new(
            shape,
            in_shape,
            out_shape,
            self.source.0 .0.to_vec(),
            self.source.1 .0.to_vec(),
            clamp_floats(self.pre),
            residual,
            clamp_floats(self.post),
        )
    }

    /// Whether the output is channels last.
    pub fn out_last(&self) -> bool {
        self.shape.out_last
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.shape.n
    }

    /// The tile kind the op runs.
    pub fn kind(&self) -> Kind {
        self.weights.kind()
    }

    /// Whether a residual add is folded in.
    pub fn has_residual(&self) -> bool {
        self.residual.is_some()
    }

    /// Compute `output` from `input` (and `residual`), all in the op's layouts.
    pub fn compute(
        &self,
        input: &[f32],
        residual: Option<&[f32]>,
        output: &mut [f32],
    ) -> TractResult<()> {
        let s = &self.shape;
        ensure!(input.len() == s.batch * s.k * s.n && output.len() == s.batch * s.m * s.n);
        let res_channels = self.residual.as_ref().map(|r| r.0).unwrap_or(0);
        ensure!(
            residual.map(|r| r.len())
                == self.residual.as_ref().map(|_| s.batch * res_channels * s.n)
        );
        let w = &*self.weights;
        let (x, out) = (
            SendPtr(input.as_ptr() as *mut f32),
            SendPtr(output.as_mut_ptr()),
        );
        let res = residual.map(|r| SendPtr(r.as_ptr() as *mut f32));
        // split the pixels between threads (rows; columns on large planes) or the channel tiles
        let parts = parts_for(s.m * s.k * s.n, usize::MAX);
        let by_channels = w.kind() == Kind::Cols && w.m_tiles() >= 2 * parts;
        let step = w.n_step();
        let chunk = s.n.div_ceil(parts).div_ceil(step) * step;
        for b in 0..s.batch {
            for_parts(parts, |p| {
                let shares = if by_channels {
                    tile_shares(w.m_tiles(), s.n, step, parts, p)
                } else {
                    let cols = (p * chunk).min(s.n)..((p + 1) * chunk).min(s.n);
                    [(0..w.m_tiles(), cols), (0..0, 0..0), (0..0, 0..0)]
                };
                for (m_tiles, cols) in shares {
                    if m_tiles.is_empty() || cols.is_empty() {
                        continue;
                    }
                    // SAFETY: the lengths checked above hold image `b` of each tensor; parts
                    // write disjoint (tiles, pixels) pieces
                    unsafe {
                        self.run_tiles(
                            x.get().add(b * s.k * s.n),
                            out.get().add(b * s.m * s.n),
                            res.map(|r| r.get().add(b * res_channels * s.n) as *const f32),
                            m_tiles,
                            cols,
                        )
                    }
                }
            });
        }
        Ok(())
    }

    /// Channel tiles `m_tiles` × pixels `cols` of one image, from its input, output and
    /// residual.
    ///
    /// # Safety
    /// The pointers address a whole image of each, in the op's layouts.
    unsafe fn run_tiles(
        &self,
        input: *const f32,
        output: *mut f32,
        residual: Option<*const f32>,
        m_tiles: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
    ) {
        let s = &self.shape;
        // (rows, columns) strides of a `[C][pixels]` or `[pixels][C]` image
        let strides = |last: bool, c: usize| if last { (1, c) } else { (s.n, 1) };
        let (xr, xc) = strides(s.in_last, s.k);
        let (or, oc) = strides(s.out_last, s.m);
        let res_channels = self.residual.as_ref().map(|r| r.0).unwrap_or(0);
        let (rr, rc) = strides(s.out_last, res_channels);
        let ep = self.epilogue(residual.map(|ptr| Mat {
            ptr,
            rs: rr,
            cs: rc,
        }));
        // SAFETY: the caller's pointers cover every (row, column) the strides address
        unsafe {
            gemm::run(
                &self.weights,
                Mat {
                    ptr: input,
                    rs: xr,
                    cs: xc,
                },
                &[0],
                Mat {
                    ptr: output,
                    rs: or,
                    cs: oc,
                },
                &ep,
                m_tiles,
                cols,
            )
        }
    }
}

/// Part `p` of `parts` of the channel tiles × pixels of a product, in tile-major order cut into
/// equal runs of `step` pixels: whole tiles, and parts of the tiles at either end, so that 5
/// tiles of 7×7 pixels split 17½ / 17½ instead of 3 / 2. At most three (tiles, pixels) pieces,
/// empty ones as `0..0`.
fn tile_shares(
    m_tiles: usize,
    n: usize,
    step: usize,
    parts: usize,
    p: usize,
) -> [(std::ops::Range<usize>, std::ops::Range<usize>); 3] {
    let per = n.div_ceil(step);
    let units = m_tiles * per;
    let (a, z) = (p * units / parts, (p + 1) * units / parts);
    let cols = |u0: usize, u1: usize| (u0 * step).min(n)..(u1 * step).min(n);
    let none = (0..0, 0..0);
    if a >= z {
        return [none.clone(), none.clone(), none];
    }
    let (ta, tz) = (a / per, z / per);
    if ta == tz {
        return [(ta..ta + 1, cols(a % per, z % per)), none.clone(), none];
    }
    let head = if a % per == 0 {
        (ta..ta, 0..0)
    } else {
        (ta..ta + 1, cols(a % per, per))
    };
    let full = a.div_ceil(per)..tz;
    [head, (full, 0..n), (tz..tz + 1, cols(0, z % per))]
}

impl Op for PointwiseConv {
    fn name(&self) -> StaticName {
        "PointwiseConv(tensorcv)".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let s = &self.shape;
        let side = |last| if last { "last" } else { "first" };
        let mut info = format!(
            "{}x{} on {} pixels x {}, channels {} -> {}, {:?} tiles",
            s.m,
            s.k,
            s.n,
            s.batch,
            side(s.in_last),
            side(s.out_last),
            self.weights.kind()
        );
        info += &super::epilogue_info(self.pre, &self.residual, self.post);
        Ok(vec![info])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for PointwiseConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        super::eval_residual_op(
            inputs,
            self.residual.is_some(),
            &self.out_shape,
            |x, r, y| self.compute(x, r, y),
        )
    }
}

impl TypedOp for PointwiseConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        super::residual_op_facts(
            "pointwise",
            inputs,
            &self.in_shape,
            &self.residual,
            &self.out_shape,
        )
    }

    fn cost(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let s = &self.shape;
        Ok(tvec!((
            Cost::FMA(f32::datum_type()),
            (s.batch * s.m * s.k * s.n).to_dim()
        )))
    }

    as_op!();
}

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
    let batch: usize = x_others[..t].iter().map(|&(_, d)| d).product();
    let n: usize = x_others[t..].iter().map(|&(_, d)| d).product();
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
fn reaches(model: &TypedModel, from: usize, target: usize) -> bool {
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
fn residual_source(
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
pub(super) fn replace(
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

/// What follows a convolution in the graph and folds into its store.
pub(super) struct Absorbed {
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
pub(super) fn absorb(
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
    let outputs = model.output_outlets()?;
    let mut e = Absorbed {
        nodes: vec![],
        pre: None,
        residual: None,
        post: None,
    };
    let mut last = node;
    loop {
        let outlet = OutletId::new(last, 0);
        let successors = model.outlet_successors(outlet);
        if outputs.contains(&outlet) || successors.len() != 1 {
            break;
        }
        let next = model.node(successors[0].node);
        let slot = successors[0].slot;
        let Some(bin) = next.op_as::<TypedBinOp>() else {
            break;
        };
        if bin.1.is_some()
            || model
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

#[cfg(test)]
mod tests {
    use super::tile_shares;

    /// Every (tile, pixel) in exactly one part's pieces, and no part more than one run of
    /// pixels heavier than another.
    #[test]
    fn tile_shares_cover_the_product_evenly() {
        for (m_tiles, n, step, parts) in [
            (5, 49, 7, 2),
            (5, 49, 7, 3),
            (4, 49, 7, 2),
            (3, 196, 7, 2),
            (7, 10, 7, 2),
            (1, 5, 7, 2),
            (2, 1, 7, 3),
            (32, 1, 7, 2),
        ] {
            let mut seen = vec![0u8; m_tiles * n];
            let mut loads = vec![];
            for p in 0..parts {
                let mut load = 0;
                for (tiles, cols) in tile_shares(m_tiles, n, step, parts, p) {
                    for t in tiles {
                        for c in cols.clone() {
                            seen[t * n + c] += 1;
                            load += 1;
                        }
                    }
                }
                loads.push(load);
            }
            let case = (m_tiles, n, step, parts);
            assert!(seen.iter().all(|&s| s == 1), "{case:?}: {seen:?}");
            let (lo, hi) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
            assert!(hi - lo <= step, "{case:?}: {loads:?}");
        }
    }
}
