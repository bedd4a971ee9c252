//! Finding 2-D max pools in tract's graph.

use super::geometry_of;
use crate::ops::MaxPool2d;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::cnn::MaxPool;

/// tensorcv's op for a tract `MaxPool` node, if it is one this module runs.
pub(crate) fn replace(model: &TypedModel, node: &TypedNode) -> TractResult<Option<MaxPool2d>> {
    let Some(pool) = node.op_as::<MaxPool>() else {
        return Ok(None);
    };
    let fact = model.outlet_fact(node.inputs[0])?;
    let Some(shape) = fact.shape.as_concrete() else {
        return Ok(None);
    };
    let Some((geo, has_batch, channels_last)) = geometry_of(&pool.pool_spec, shape) else {
        return Ok(None);
    };
    if pool.with_index_outputs.is_some()
        || fact.datum_type != f32::datum_type()
        || channels_last
        || !geo.every_window_reads_input()
    {
        return Ok(None);
    }
    Ok(Some(MaxPool2d::new(geo, has_batch)?))
}
