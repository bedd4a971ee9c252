//! `.tflite` specifics: lowering two operators tract-tflite lacks into ones it has
//! ([`lower`]), naming the operators it still cannot translate, and mending two quantized
//! operators that tract-tflite 0.23.9 translates wrongly.

mod lower;
pub(crate) use lower::{expand_prelus, lower};

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cast::Cast;
use tract_onnx::tract_core::ops::math;
use tract_onnx::tract_core::ops::nn::Softmax;
use tract_tflite::tflite;

/// tract-tflite 0.23.9's operators (its `ops::register_all`): used only to name, when loading
/// fails, every operator of a `.tflite` file that tract cannot run.
const TFLITE_SUPPORTED: &[&str] = &[
    "ABS",
    "ADD",
    "ARG_MAX",
    "AVERAGE_POOL_2D",
    "BATCH_MATMUL",
    "BROADCAST_TO",
    "CEIL",
    "CONCATENATION",
    "CONV_2D",
    "COS",
    "DEPTHWISE_CONV_2D",
    "DIV",
    "EQUAL",
    "EXP",
    "EXPAND_DIMS",
    "FLOOR",
    "FULLY_CONNECTED",
    "GREATER",
    "GREATER_EQUAL",
    "HARD_SWISH",
    "LEAKY_RELU",
    "LESS",
    "LESS_EQUAL",
    "LOG",
    "LOGICAL_AND",
    "LOGICAL_NOT",
    "LOGICAL_OR",
    "LOGISTIC",
    "MAXIMUM",
    "MAX_POOL_2D",
    "MEAN",
    "MINIMUM",
    "MUL",
    "NOT_EQUAL",
    "PAD",
    "PADV2",
    "REDUCE_MAX",
    "REDUCE_MIN",
    "REDUCE_PROD",
    "RELU",
    "RELU6",
    "RESHAPE",
    "RESIZE_BILINEAR",
    "RESIZE_NEAREST_NEIGHBOR",
    "RSQRT",
    "SELECT",
    "SELECT_V2",
    "SHAPE",
    "SIN",
    "SLICE",
    "SOFTMAX",
    "SQRT",
    "SQUARE",
    "SQUEEZE",
    "STRIDED_SLICE",
    "SUB",
    "SUM",
    "TANH",
    "TRANSPOSE",
];

/// The operators of a `.tflite` file that tract-tflite does not translate, each with how many
/// nodes use it and the first node's output tensor: `DEQUANTIZE (12 nodes, first 'conv/w')`.
pub(crate) fn tflite_unsupported(bytes: &[u8]) -> Vec<String> {
    use tract_tflite::tflite;
    let Ok(model) = tflite::root_as_model(bytes) else {
        return Vec::new();
    };
    let (Some(codes), Some(graphs)) = (model.operator_codes(), model.subgraphs()) else {
        return Vec::new();
    };
    let mut found: Vec<(String, usize, String)> = Vec::new();
    for graph in graphs.iter() {
        let tensors = graph.tensors();
        for op in graph.operators().into_iter().flatten() {
            let Some(code) = codes.iter().nth(op.opcode_index() as usize) else {
                continue;
            };
            let builtin = code
                .builtin_code()
                .0
                .max(code.deprecated_builtin_code() as i32);
            let name = match tflite::BuiltinOperator(builtin).variant_name() {
                Some("CUSTOM") => format!("custom op '{}'", code.custom_code().unwrap_or("?")),
                Some(n) if TFLITE_SUPPORTED.contains(&n) => continue,
                Some(n) => n.to_string(),
                None => format!("operator #{builtin}"),
            };
            let node = op
                .outputs()
                .and_then(|o| o.iter().next())
                .and_then(|i| tensors.and_then(|t| t.iter().nth(i as usize)))
                .and_then(|t| t.name())
                .unwrap_or("?")
                .to_string();
            match found.iter_mut().find(|f| f.0 == name) {
                Some(f) => f.1 += 1,
                None => found.push((name, 1, node)),
            }
        }
    }
    found
        .into_iter()
        .map(|(name, n, node)| match n {
            1 => format!("{name} (node '{node}')"),
            _ => format!("{name} ({n} nodes, first '{node}')"),
        })
        .collect()
}

/// Suffix of the node re-expressing a mended value in the type tract-tflite gave it.
const AS_TRANSLATED: &str = ".as_translated";

/// A quantized operator's output as the file declares it.
struct QuantOp {
    /// `MEAN` or `SOFTMAX`
    kind: &'static str,
    /// the output tensor's name, which tract-tflite gives the operator's last node
    name: String,
    /// the output's declared type (`QI8`/`QU8` with the file's zero point and scale)
    dt: DatumType,
}

/// The `MEAN` and `SOFTMAX` operators of the main graph whose output is quantized.
fn quantized_mean_softmax(bytes: &[u8]) -> Vec<QuantOp> {
    let Ok(model) = tflite::root_as_model(bytes) else {
        return Vec::new();
    };
    let (Some(codes), Some(graph)) = (model.operator_codes(), model.subgraphs()) else {
        return Vec::new();
    };
    let Some(tensors) = graph
        .iter()
        .next()
        .and_then(|g| g.tensors().zip(g.operators()))
    else {
        return Vec::new();
    };
    let (tensors, ops) = tensors;
    let mut found = Vec::new();
    for op in ops.iter() {
        let Some(code) = codes.iter().nth(op.opcode_index() as usize) else {
            continue;
        };
        let builtin = code
            .builtin_code()
            .0
            .max(code.deprecated_builtin_code() as i32);
        let kind = match tflite::BuiltinOperator(builtin) {
            tflite::BuiltinOperator::MEAN => "MEAN",
            tflite::BuiltinOperator::SOFTMAX => "SOFTMAX",
            _ => continue,
        };
        let Some(out) = op
            .outputs()
            .and_then(|o| o.iter().next())
            .and_then(|i| tensors.iter().nth(i as usize))
        else {
            continue;
        };
        let dt = match out.type_() {
            tflite::TensorType::INT8 => DatumType::I8,
            tflite::TensorType::UINT8 => DatumType::U8,
            _ => continue,
        };
        let qp = out.quantization();
        let (Some(scale), Some(zp)) = (
            qp.and_then(|q| q.scale()).filter(|s| s.len() == 1),
            qp.and_then(|q| q.zero_point()).filter(|z| z.len() == 1),
        ) else {
            continue;
        };
        found.push(QuantOp {
            kind,
            name: out.name().unwrap_or_default().to_string(),
            dt: dt.quantize(QParams::ZpScale {
                zero_point: zp.get(0) as i32,
                scale: scale.get(0),
            }),
        });
    }
    found
}

/// Mend what tract-tflite 0.23.9 gets wrong with quantized `MEAN` and `SOFTMAX`:
///
/// - `MEAN` becomes a quantized `Reduce<Sum>`, which saturates the sum in 8 bits before it is
///   divided, and its result keeps the *input's* zero point and scale instead of the output's;
/// - `SOFTMAX` keeps the input's zero point and scale too (TFLite's int8 softmax declares
///   1/256 and -128), and tract's fixed-point softmax ignores the output zero point anyway.
///
/// Both are recomputed in `f32` from the dequantized input and quantized to the type the file
/// declares, as TFLite does. Where other nodes read the result, they were built by
/// tract-tflite for its (wrong) type, so they get the corrected value re-expressed in that type.
pub(crate) fn mend_quantized_ops(bytes: &[u8], model: &mut TypedModel) -> TractResult<()> {
    for op in quantized_mean_softmax(bytes) {
        let Ok(last) = model.node_id_by_name(&op.name) else {
            continue;
        };
        let mut patch = TypedModelPatch::default();
        let fixed = match op.kind {
            "MEAN" => {
                let Ok(first) = model.node_id_by_name(&format!("{}.reduce", op.name)) else {
                    continue;
                };
                // the chain reduce -> (axis removals) -> scale by 1/n, each node fed by the last
                let mut chain = vec![first];
                while *chain.last().unwrap() != last {
                    let here = *chain.last().unwrap();
                    let next = model.outlet_successors(OutletId::new(here, 0));
                    if next.len() != 1 || chain.len() > 8 {
                        tract_onnx::tract_core::internal::bail!(
                            "unexpected translation of MEAN '{}'",
                            op.name
                        );
                    }
                    chain.push(next[0].node);
                }
                let source = model.node(first).inputs[0];
                let tap = patch.tap_model(model, source)?;
                let mut wire = cast(&mut patch, &op.name, "dequantize", DatumType::F32, tap)?;
                let mut previous = source;
                for &id in &chain {
                    let node = model.node(id);
                    let inputs = node
                        .inputs
                        .iter()
                        .map(|&i| {
                            if i == previous {
                                Ok(wire)
                            } else {
                                patch.tap_model(model, i)
                            }
                        })
                        .collect::<TractResult<TVec<_>>>()?;
                    // tract's Scale rounds its result to whole numbers, even in f32
                    let is_scale = node
                        .op_as::<TypedBinOp>()
                        .is_some_and(|b| b.0.name() == "Scale");
                    let new_op: Box<dyn TypedOp> = if is_scale {
                        Box::new(math::mul())
                    } else {
                        node.op.clone()
                    };
                    wire = patch.wire_node(format!("{}.f32", node.name), new_op, &inputs)?[0];
                    previous = OutletId::new(id, 0);
                }
                cast(&mut patch, &op.name, "quantize", op.dt, wire)?
            }
            _ => {
                let node = model.node(last);
                let Some(softmax) = node.op_as::<Softmax>() else {
                    continue;
                };
                let softmax = Softmax {
                    quant_output_dt: None,
                    ..softmax.clone()
                };
                // after a mended MEAN, read its declared-type value, not the re-expressed one
                let mut input = node.inputs[0];
                let before = model.node(input.node);
                if before.name.ends_with(AS_TRANSLATED) {
                    input = before.inputs[0];
                }
                let tap = patch.tap_model(model, input)?;
                let wire = cast(&mut patch, &op.name, "dequantize", DatumType::F32, tap)?;
                let wire = patch.wire_node(format!("{}.f32", op.name), softmax, &[wire])?[0];
                cast(&mut patch, &op.name, "quantize", op.dt, wire)?
            }
        };
        let outlet = OutletId::new(last, 0);
        let fixed_name = patch.node(fixed.node).name.clone();
        let output = model.output_outlets()?.iter().position(|&o| o == outlet);
        if !model.outlet_successors(outlet).is_empty() {
            // the nodes reading it were built for the type tract-tflite gave it
            let translated = model.outlet_fact(outlet)?.datum_type;
            let wire = cast(&mut patch, &op.name, &AS_TRANSLATED[1..], translated, fixed)?;
            patch.shunt_outside(model, outlet, wire)?;
        }
        patch.apply(model)?;
        if let Some(ix) = output {
            // a graph output gets the declared type itself, under the tensor's name
            let id = model.node_id_by_name(&fixed_name)?;
            let mut outputs = model.output_outlets()?.to_vec();
            outputs[ix] = OutletId::new(id, 0);
            model.select_output_outlets(&outputs)?;
            model.node_mut(last).name = format!("{}.translated", op.name);
            model.node_mut(id).name = op.name.clone();
        }
    }
    Ok(())
}

/// Mend what tract-tflite 0.23.9 gets wrong with float `MEAN`: it divides the sum with
/// tract's `Scale`, which rounds its result to a whole number even in `f32` (a mean of 0.37
/// becomes 0). Every `Scale` of a float value becomes a plain product.
pub(crate) fn mend_float_scales(model: &mut TypedModel) -> TractResult<()> {
    let scales: Vec<usize> = model
        .nodes()
        .iter()
        .filter(|n| {
            n.op_as::<TypedBinOp>()
                .is_some_and(|b| b.0.name() == "Scale" && b.1.is_none())
                && n.inputs.len() == 2
                && model
                    .outlet_fact(n.inputs[1])
                    .is_ok_and(|f| f.datum_type.is_float())
        })
        .map(|n| n.id)
        .collect();
    for id in scales {
        let node = model.node(id);
        let patch = TypedModelPatch::replace_single_op(model, node, &node.inputs, math::mul())?;
        patch.apply(model)?;
    }
    Ok(())
}

/// A `Cast` node named `{name}.{what}` in the patch.
fn cast(
    patch: &mut TypedModelPatch,
    name: &str,
    what: &str,
    to: DatumType,
    wire: OutletId,
) -> TractResult<OutletId> {
    Ok(patch.wire_node(format!("{name}.{what}"), Cast { to }, &[wire])?[0])
}

/// The most elements one tensor of a `.tflite` file may declare (2³¹: 8 GiB of `f32`).
const MAX_TENSOR_ELEMENTS: u64 = 1 << 31;

/// Check what tract-tflite 0.23.9 takes on trust before it reads a `.tflite` file (it indexes
/// the flatbuffer's vectors with the file's own numbers, and a bad one panics): the flatbuffer
/// verifies; the main graph exists, with inputs, outputs and operators; every tensor index
/// (graph inputs and outputs, operator inputs, outputs and intermediates) points inside the
/// tensor table; every operator's code and every tensor's buffer exist; shapes have no
/// negative dimension and a bounded size; a quantized tensor has as many zero points as scales
/// (at least one); a constant's data is exactly its shape's bytes; every graph output is
/// produced by an operator or is a graph input.
pub(crate) fn check_indices(bytes: &[u8]) -> Result<(), String> {
    let model = tflite::root_as_model(bytes).map_err(|e| format!("{e}"))?;
    let codes = model.operator_codes().map(|c| c.len()).unwrap_or(0);
    let buffers = model.buffers();
    let graphs = model.subgraphs().ok_or("no graphs")?;
    if graphs.is_empty() {
        return Err("no graphs".into());
    }
    for (g, graph) in graphs.iter().enumerate() {
        let tensors = graph
            .tensors()
            .ok_or_else(|| format!("graph {g} has no tensor table"))?;
        let n = tensors.len();
        let index = |what: &str, i: i32| -> Result<usize, String> {
            if i < 0 || i as usize >= n {
                Err(format!(
                    "graph {g}: {what} names tensor {i}, the graph has {n} (optional inputs, -1, \
                     are not supported by tract-tflite)"
                ))
            } else {
                Ok(i as usize)
            }
        };
        let inputs = graph
            .inputs()
            .ok_or_else(|| format!("graph {g} has no inputs"))?;
        let outputs = graph
            .outputs()
            .ok_or_else(|| format!("graph {g} has no outputs"))?;
        let ops = graph
            .operators()
            .ok_or_else(|| format!("graph {g} has no operators"))?;
        let mut produced = vec![false; n];
        for i in inputs.iter() {
            produced[index("an input", i)?] = true;
        }
        for (k, op) in ops.iter().enumerate() {
            if op.opcode_index() as usize >= codes {
                return Err(format!(
                    "graph {g}: operator {k} has code {}, the file has {codes}",
                    op.opcode_index()
                ));
            }
            for i in op.inputs().into_iter().flatten() {
                index(&format!("operator {k}'s input"), i)?;
            }
            for i in op.intermediates().into_iter().flatten() {
                index(&format!("operator {k}'s intermediate"), i)?;
            }
            for i in op.outputs().into_iter().flatten() {
                produced[index(&format!("operator {k}'s output"), i)?] = true;
            }
        }
        for o in outputs.iter() {
            if !produced[index("an output", o)?] {
                return Err(format!(
                    "graph {g}: output tensor {o} is not computed by any operator"
                ));
            }
        }
        for (t, tensor) in tensors.iter().enumerate() {
            let shape = tensor
                .shape()
                .ok_or_else(|| format!("graph {g}: tensor {t} has no shape"))?;
            let mut elements = 1u64;
            for d in shape.iter() {
                if d < 0 {
                    return Err(format!(
                        "graph {g}: tensor {t} has a negative dimension {d}"
                    ));
                }
                elements = elements.saturating_mul(d as u64);
            }
            if elements > MAX_TENSOR_ELEMENTS {
                return Err(format!(
                    "graph {g}: tensor {t} declares {elements} elements, more than {MAX_TENSOR_ELEMENTS}"
                ));
            }
            if let Some(q) = tensor.quantization() {
                let (scales, zps) = (
                    q.scale().map_or(0, |s| s.len()),
                    q.zero_point().map_or(0, |z| z.len()),
                );
                if (scales > 0 || zps > 0) && (scales != zps || scales == 0) {
                    return Err(format!(
                        "graph {g}: tensor {t} has {scales} scales and {zps} zero points"
                    ));
                }
            }
            let b = tensor.buffer() as usize;
            if b == 0 {
                continue;
            }
            let buffers = buffers.ok_or("no buffer table")?;
            if b >= buffers.len() {
                return Err(format!(
                    "graph {g}: tensor {t} uses buffer {b}, the file has {}",
                    buffers.len()
                ));
            }
            let Some(data) = buffers.get(b).data() else {
                continue;
            };
            let size = match tensor.type_() {
                tflite::TensorType::FLOAT32
                | tflite::TensorType::INT32
                | tflite::TensorType::UINT32 => 4,
                tflite::TensorType::FLOAT16
                | tflite::TensorType::INT16
                | tflite::TensorType::UINT16 => 2,
                tflite::TensorType::UINT8 | tflite::TensorType::INT8 | tflite::TensorType::BOOL => {
                    1
                }
                tflite::TensorType::INT64
                | tflite::TensorType::UINT64
                | tflite::TensorType::FLOAT64 => 8,
                other => {
                    return Err(format!(
                        "graph {g}: tensor {t} is a constant of type {:?}, which tract-tflite cannot read",
                        other
                    ))
                }
            };
            if data.len() as u64 != elements * size {
                return Err(format!(
                    "graph {g}: tensor {t} holds {} bytes for {elements} elements of {size}",
                    data.len()
                ));
            }
        }
    }
    Ok(())
}
