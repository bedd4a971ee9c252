//! Finding resizes of the two spatial axes in tract's graph.

use crate::ops::Resize2d;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::nn::resize::Resize;

/// tensorcv's op for a tract `Resize` node that resizes only the last two axes of an `f32`
/// tensor with constant scales or sizes.
pub(crate) fn replace(model: &TypedModel, node: &TypedNode) -> TractResult<Option<Resize2d>> {
    let Some(resize) = node.op_as::<Resize>() else {
        return Ok(None);
    };
    let fact = model.outlet_fact(node.inputs[0])?;
    let Some(shape) = fact.shape.as_concrete() else {
        return Ok(None);
    };
    let konst = |ix: Option<usize>| -> TractResult<Option<Arc<Tensor>>> {
        Ok(match ix.and_then(|i| node.inputs.get(i)) {
            Some(&o) => model.outlet_fact(o)?.konst.clone(),
            None => None,
        })
    };
    let scales = konst(resize.optional_scales_input)?;
    let sizes = konst(resize.optional_sizes_input)?;
    if fact.datum_type != f32::datum_type()
        || shape.len() < 3
        || (resize.optional_scales_input.is_some() && scales.is_none())
        || (resize.optional_sizes_input.is_some() && sizes.is_none())
    {
        return Ok(None);
    }
    let Ok(out) = resize.compute_output_shape(shape, scales.as_deref(), sizes.as_deref()) else {
        return Ok(None);
    };
    let r = shape.len();
    // the scale tract's own op uses per axis
    let scale: Vec<f32> = match scales.as_ref().filter(|s| s.len() == r) {
        Some(s) => s
            .cast_to::<f32>()?
            .try_as_plain_ram()?
            .as_slice::<f32>()?
            .to_vec(),
        None => out
            .iter()
            .zip(shape)
            .map(|(&o, &i)| o as f32 / i as f32)
            .collect(),
    };
    if (0..r - 2).any(|a| out[a] != shape[a] || scale[a] != 1.0)
        || out[r - 2] == 0
        || out[r - 1] == 0
    {
        return Ok(None);
    }
    Ok(Some(Resize2d::new(
        shape,
        (out[r - 2], out[r - 1]),
        resize.plan_axis(scale[r - 2], shape[r - 2], out[r - 2]),
        resize.plan_axis(scale[r - 1], shape[r - 1], out[r - 1]),
    )))
}
