//! Lowering two operators tract-tflite 0.23.9 lacks into ones it has, by editing the
//! flatbuffer before tract reads it. MediaPipe's models use both:
//!
//! - `DEQUANTIZE` of a `float16` constant (weights stored in half precision): the constant is
//!   widened to `float32` once, here, and the operator removed — its readers read the constant;
//! - `PRELU`: its operator code becomes `MAXIMUM` (same inputs, `x` and the slopes), and once
//!   tract has built the graph, [`expand_prelus`] replaces each of those nodes by TFLite's
//!   `x < 0 ? alpha·x : x`, which tensorcv's PReLU kernel then serves (as it does ONNX's).
//!
//! A flatbuffer's offsets only point forward, so data can be added at the end of the file and
//! any slot re-pointed at it; scalars already present in a table can be overwritten in place.
//! Nothing else of the file changes (its metadata, the other tensors and operators). The file
//! has been verified (`check_indices`) before it gets here, and the result is verified again:
//! if anything is out of place, the original bytes are what tract reads.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::bail;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::logic::{comp_gt, Iff};
use tract_onnx::tract_core::ops::math;
use tract_tflite::tflite::{self, BuiltinOperator, TensorType};

/// The file with its `float16` weights widened and its `PRELU`s turned into `MAXIMUM`s.
pub(crate) struct Lowered {
    pub bytes: Vec<u8>,
    /// the output tensor names of the main graph's `PRELU`s (what [`expand_prelus`] mends)
    pub prelus: Vec<String>,
}

// flatbuffer field slots (tract-tflite's generated `VT_*` constants, which are the schema's)
const MODEL_CODES: u16 = tflite::Model::VT_OPERATOR_CODES;
const MODEL_GRAPHS: u16 = tflite::Model::VT_SUBGRAPHS;
const MODEL_BUFFERS: u16 = tflite::Model::VT_BUFFERS;
const CODE_DEPRECATED: u16 = tflite::OperatorCode::VT_DEPRECATED_BUILTIN_CODE;
const CODE_BUILTIN: u16 = tflite::OperatorCode::VT_BUILTIN_CODE;
const GRAPH_TENSORS: u16 = tflite::SubGraph::VT_TENSORS;
const GRAPH_OUTPUTS: u16 = tflite::SubGraph::VT_OUTPUTS;
const GRAPH_OPERATORS: u16 = tflite::SubGraph::VT_OPERATORS;
const OP_CODE: u16 = tflite::Operator::VT_OPCODE_INDEX;
const OP_INPUTS: u16 = tflite::Operator::VT_INPUTS;
const OP_OUTPUTS: u16 = tflite::Operator::VT_OUTPUTS;
const TENSOR_TYPE: u16 = tflite::Tensor::VT_TYPE_;
const TENSOR_BUFFER: u16 = tflite::Tensor::VT_BUFFER;
const TENSOR_NAME: u16 = tflite::Tensor::VT_NAME;
const BUFFER_DATA: u16 = tflite::Buffer::VT_DATA;

/// Checked reads of a flatbuffer's raw bytes (every read is bounds-checked: `None` when a
/// position falls outside).
struct Flat<'a>(&'a [u8]);

impl Flat<'_> {
    fn u16(&self, at: usize) -> Option<u16> {
        Some(u16::from_le_bytes(self.0.get(at..at + 2)?.try_into().ok()?))
    }
    fn u32(&self, at: usize) -> Option<u32> {
        Some(u32::from_le_bytes(self.0.get(at..at + 4)?.try_into().ok()?))
    }
    fn i32(&self, at: usize) -> Option<i32> {
        self.u32(at).map(|v| v as i32)
    }
    /// Where a table's field is stored (`None`: absent, its default).
    fn field(&self, table: usize, slot: u16) -> Option<usize> {
        let vtable = table.checked_add_signed(-(self.i32(table)? as isize))?;
        if slot as usize + 2 > self.u16(vtable)? as usize {
            return None;
        }
        match self.u16(vtable + slot as usize)? {
            0 => None,
            off => Some(table + off as usize),
        }
    }
    /// What the offset stored at `at` points to.
    fn follow(&self, at: usize) -> Option<usize> {
        at.checked_add(self.u32(at)? as usize)
    }
    /// The table or vector a table's offset field points to.
    fn child(&self, table: usize, slot: u16) -> Option<usize> {
        self.follow(self.field(table, slot)?)
    }
    /// A vector's length and the position of its first element.
    fn vector(&self, at: usize) -> Option<(usize, usize)> {
        Some((self.u32(at)? as usize, at + 4))
    }
    /// The tables of a vector of tables.
    fn tables(&self, vector: usize) -> Option<Vec<usize>> {
        let (n, first) = self.vector(vector)?;
        (0..n).map(|i| self.follow(first + 4 * i)).collect()
    }
    /// The elements of a vector of `i32` and their positions.
    fn ints(&self, vector: usize) -> Option<Vec<(usize, i32)>> {
        let (n, first) = self.vector(vector)?;
        (0..n)
            .map(|i| Some((first + 4 * i, self.i32(first + 4 * i)?)))
            .collect()
    }
    /// A scalar field read as a byte (`TensorType`, the deprecated operator code).
    fn byte(&self, table: usize, slot: u16) -> Option<u8> {
        match self.field(table, slot) {
            Some(at) => self.0.get(at).copied(),
            None => Some(0),
        }
    }
    fn int_field(&self, table: usize, slot: u16) -> Option<i32> {
        match self.field(table, slot) {
            Some(at) => self.i32(at),
            None => Some(0),
        }
    }
    fn string(&self, at: usize) -> Option<String> {
        let (n, first) = self.vector(at)?;
        Some(String::from_utf8_lossy(self.0.get(first..first + n)?).into_owned())
    }
}

/// Overwrite `out[at..at + bytes.len()]` (`None` if that falls outside).
fn put(out: &mut [u8], at: usize, bytes: &[u8]) -> Option<()> {
    out.get_mut(at..at.checked_add(bytes.len())?)?
        .copy_from_slice(bytes);
    Some(())
}

/// One `DEQUANTIZE` of a `float16` constant: the operator's place in its graph, the constant
/// tensor it reads and the tensor it writes.
struct Widen {
    op: usize,
    input: i32,
    output: i32,
}

/// `bytes` lowered (see the module), or `None` when there is nothing to lower or the file is
/// not laid out as expected.
pub(crate) fn lower(bytes: &[u8]) -> Option<Lowered> {
    let lowered = lower_unchecked(bytes)?;
    // the edits keep a valid file; verify it as tract-tflite's reader would
    tflite::root_as_model(&lowered.bytes).ok()?;
    Some(lowered)
}

fn lower_unchecked(bytes: &[u8]) -> Option<Lowered> {
    let f = Flat(bytes);
    let root = f.follow(0)?;
    let codes = f.tables(f.child(root, MODEL_CODES)?)?;
    let code_of = |table: usize| -> Option<i32> {
        let deprecated = f.byte(table, CODE_DEPRECATED)? as i8 as i32;
        Some(deprecated.max(f.int_field(table, CODE_BUILTIN)?))
    };
    let kinds: Vec<i32> = codes.iter().map(|&t| code_of(t)).collect::<Option<_>>()?;
    let is = |op: usize, code: BuiltinOperator| -> Option<bool> {
        let index = f.int_field(op, OP_CODE)? as usize;
        Some(*kinds.get(index)? == code.0)
    };
    if !kinds
        .iter()
        .any(|&k| k == BuiltinOperator::DEQUANTIZE.0 || k == BuiltinOperator::PRELU.0)
    {
        return None;
    }
    let buffers = f.tables(f.child(root, MODEL_BUFFERS)?)?;
    let graphs = f.tables(f.child(root, MODEL_GRAPHS)?)?;
    // how many tensors of all graphs hold each buffer (a widened buffer must hold one)
    let mut holders = vec![0usize; buffers.len()];
    for &graph in &graphs {
        for table in f.tables(f.child(graph, GRAPH_TENSORS)?)? {
            if let Some(h) = usize::try_from(f.int_field(table, TENSOR_BUFFER)?)
                .ok()
                .and_then(|b| holders.get_mut(b))
            {
                *h += 1;
            }
        }
    }
    let mut out = bytes.to_vec();
    let mut prelus = Vec::new();
    let mut lowered_any = false;
    let mut all_prelus_binary = true;
    for (g, &graph) in graphs.iter().enumerate() {
        let tensors = f.tables(f.child(graph, GRAPH_TENSORS)?)?;
        let ops_vector = f.child(graph, GRAPH_OPERATORS)?;
        let ops = f.tables(ops_vector)?;
        // each operator's input or output tensors, with where each index is stored
        let operands = |slot: u16| -> Option<Vec<Vec<(usize, i32)>>> {
            ops.iter()
                .map(|&op| {
                    f.field(op, slot)
                        .map_or(Some(Vec::new()), |at| f.ints(f.follow(at)?))
                })
                .collect()
        };
        let (inputs, outputs) = (operands(OP_INPUTS)?, operands(OP_OUTPUTS)?);
        let tensor = |i: i32| tensors.get(usize::try_from(i).ok()?).copied();
        let type_of = |i: i32| f.byte(tensor(i)?, TENSOR_TYPE);
        let buffer_of = |i: i32| f.int_field(tensor(i)?, TENSOR_BUFFER);

        // DEQUANTIZE of a float16 constant into a float32 tensor
        let mut widen = Vec::new();
        for (k, &op) in ops.iter().enumerate() {
            if is(op, BuiltinOperator::PRELU)? {
                // (only the main graph's are expanded after loading: a PRELU elsewhere, left
                // a MAXIMUM, would be wrong, so then none is lowered)
                all_prelus_binary &= g == 0 && inputs[k].len() == 2 && outputs[k].len() == 1;
                if g == 0 {
                    if let Some(&(_, t)) = outputs[k].first() {
                        prelus.push(f.string(f.child(tensor(t)?, TENSOR_NAME)?)?);
                    }
                }
            }
            if !is(op, BuiltinOperator::DEQUANTIZE)?
                || inputs[k].len() != 1
                || outputs[k].len() != 1
            {
                continue;
            }
            let (input, output) = (inputs[k][0].1, outputs[k][0].1);
            let buffer = buffer_of(input)?;
            let has_data = buffer > 0
                && buffers
                    .get(buffer as usize)
                    .and_then(|&b| f.child(b, BUFFER_DATA))
                    .and_then(|d| f.vector(d))
                    .is_some_and(|(n, _)| n > 0);
            if has_data
                && type_of(input)? == TensorType::FLOAT16.0 as u8
                && type_of(output)? == TensorType::FLOAT32.0 as u8
            {
                widen.push(Widen {
                    op: k,
                    input,
                    output,
                });
            }
        }
        // a constant is widened only when DEQUANTIZEs are all that read it, and its buffer
        // holds no other tensor of any graph
        widen.retain(|w| {
            let readers_ok = inputs.iter().zip(&ops).all(|(ins, &op)| {
                !ins.iter().any(|&(_, t)| t == w.input)
                    || is(op, BuiltinOperator::DEQUANTIZE) == Some(true)
            });
            let alone =
                buffer_of(w.input).and_then(|b| holders.get(usize::try_from(b).ok()?)) == Some(&1);
            readers_ok && alone
        });
        if widen.is_empty() {
            continue;
        }
        lowered_any = true;
        // widen each constant: its data appended as float32, its buffer and type re-pointed
        let mut done = Vec::new();
        for w in &widen {
            if done.contains(&w.input) {
                continue;
            }
            done.push(w.input);
            let buffer = *buffers.get(usize::try_from(buffer_of(w.input)?).ok()?)?;
            let slot = f.field(buffer, BUFFER_DATA)?;
            let (n, first) = f.vector(f.follow(slot)?)?;
            let halves = bytes.get(first..first + n)?;
            if n % 2 != 0 {
                return None;
            }
            // the widened data 16-byte aligned (after its 4-byte length)
            while !(out.len() + 4).is_multiple_of(16) {
                out.push(0);
            }
            let at = out.len();
            out.extend_from_slice(&u32::try_from(n * 2).ok()?.to_le_bytes());
            for h in halves.chunks_exact(2) {
                let v = f16::from_bits(u16::from_le_bytes([h[0], h[1]])).to_f32();
                out.extend_from_slice(&v.to_le_bytes());
            }
            put(
                &mut out,
                slot,
                &u32::try_from(at - slot).ok()?.to_le_bytes(),
            )?;
            let ty = f.field(tensor(w.input)?, TENSOR_TYPE)?;
            put(&mut out, ty, &[TensorType::FLOAT32.0 as u8])?;
        }
        // readers of a DEQUANTIZE's output read its constant instead
        let source = |t: i32| widen.iter().find(|w| w.output == t).map_or(t, |w| w.input);
        for ins in &inputs {
            for &(at, t) in ins {
                put(&mut out, at, &source(t).to_le_bytes())?;
            }
        }
        if let Some(outs) = f.field(graph, GRAPH_OUTPUTS) {
            for (at, t) in f.ints(f.follow(outs)?)? {
                put(&mut out, at, &source(t).to_le_bytes())?;
            }
        }
        // the DEQUANTIZEs leave the operator list (shortened in place; each kept entry's
        // offset re-based to its new slot)
        let (_, first) = f.vector(ops_vector)?;
        let kept: Vec<usize> = (0..ops.len())
            .filter(|k| !widen.iter().any(|w| w.op == *k))
            .collect();
        put(
            &mut out,
            ops_vector,
            &u32::try_from(kept.len()).ok()?.to_le_bytes(),
        )?;
        for (j, &k) in kept.iter().enumerate() {
            let slot = first + 4 * j;
            let rel = u32::try_from(ops[k].checked_sub(slot)?).ok()?;
            put(&mut out, slot, &rel.to_le_bytes())?;
        }
    }
    // PRELU's operator code becomes MAXIMUM (in place: the code is stored, being non-zero)
    if all_prelus_binary && !prelus.is_empty() {
        for (&table, &kind) in codes.iter().zip(&kinds) {
            if kind != BuiltinOperator::PRELU.0 {
                continue;
            }
            if let Some(at) = f.field(table, CODE_DEPRECATED) {
                put(&mut out, at, &[BuiltinOperator::MAXIMUM.0 as u8])?;
            }
            if let Some(at) = f.field(table, CODE_BUILTIN) {
                put(&mut out, at, &BuiltinOperator::MAXIMUM.0.to_le_bytes())?;
            }
        }
        lowered_any = true;
    } else {
        prelus.clear();
    }
    lowered_any.then_some(Lowered { bytes: out, prelus })
}

/// Replace each lowered `PRELU` (a `Max(x, alpha)` node named after its output tensor) by
/// TFLite's PReLU, `x < 0 ? alpha·x : x`, in the nodes tract-onnx expands ONNX's `PRelu` into
/// (so the same rewrite finds it: `crate::rewrite::activation`).
pub(crate) fn expand_prelus(model: &mut TypedModel, names: &[String]) -> TractResult<()> {
    for name in names {
        let id = model.node_id_by_name(name)?;
        let node = model.node(id);
        let is_max = node
            .op_as::<TypedBinOp>()
            .is_some_and(|b| b.0.is::<math::Max>() && b.1.is_none());
        if !is_max || node.inputs.len() != 2 {
            bail!(
                "PRELU '{name}' was not translated as expected ({})",
                node.op.name()
            );
        }
        let (x, alpha) = (node.inputs[0], node.inputs[1]);
        let rank = model.outlet_fact(x)?.rank();
        model.node_mut(id).name = format!("{name}.maximum");
        let mut patch = TypedModelPatch::default();
        let x = patch.tap_model(model, x)?;
        let alpha = patch.tap_model(model, alpha)?;
        let zero = patch.add_const(
            format!("{name}.zero"),
            tensor0(0f32).broadcast_into_rank(rank)?,
        )?;
        let scaled = patch.wire_node(format!("{name}.mul"), math::mul(), &[x, alpha])?[0];
        let negative = patch.wire_node(
            format!("{name}.test"),
            TypedBinOp(comp_gt(), None),
            &[zero, x],
        )?[0];
        let prelu = patch.wire_node(name.clone(), Iff, &[negative, scaled, x])?[0];
        patch.shunt_outside(model, OutletId::new(id, 0), prelu)?;
        patch.apply(model)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &[u8] = include_bytes!("../../../../tests/data/tflite/prelu_fp16.tflite");

    /// What a lowered file holds: no DEQUANTIZE left in the graph, float32 constants of twice
    /// the bytes, the PRELUs named, and the file still verifies.
    #[test]
    fn lowering_widens_constants_and_names_prelus() {
        let lowered = lower(FILE).expect("lowered");
        assert_eq!(lowered.prelus.len(), 2, "{:?}", lowered.prelus);
        let model = tflite::root_as_model(&lowered.bytes).unwrap();
        let codes = model.operator_codes().unwrap();
        let graph = model.subgraphs().unwrap().get(0);
        let tensors = graph.tensors().unwrap();
        let mut seen = Vec::new();
        for op in graph.operators().unwrap() {
            let code = codes.get(op.opcode_index() as usize);
            let code = code
                .builtin_code()
                .0
                .max(code.deprecated_builtin_code() as i32);
            assert_ne!(code, BuiltinOperator::DEQUANTIZE.0);
            assert_ne!(code, BuiltinOperator::PRELU.0);
            seen.push(code);
            for i in op.inputs().unwrap() {
                let t = tensors.get(i as usize);
                assert_ne!(
                    t.type_(),
                    TensorType::FLOAT16,
                    "{:?} reads float16",
                    t.name()
                );
            }
        }
        assert_eq!(
            seen.iter()
                .filter(|&&c| c == BuiltinOperator::MAXIMUM.0)
                .count(),
            2
        );
    }

    /// Files cut short or with bytes flipped: no panic (the loader verifies a file before
    /// lowering it; this holds without that).
    #[test]
    fn lowering_damaged_files_does_not_panic() {
        for cut in (0..FILE.len()).step_by(97) {
            let _ = lower(&FILE[..cut]);
        }
        let mut bytes = FILE.to_vec();
        for i in (0..bytes.len()).step_by(13) {
            bytes[i] ^= 0x5a;
            let _ = lower(&bytes);
            bytes[i] ^= 0x5a;
        }
        assert!(lower(&[]).is_none());
    }
}
