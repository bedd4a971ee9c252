//! The landmark models: compiled into the command, not into the browser package (its size
//! budget; the browser engine runs one model at a time).

use crate::Builtin;

/// The landmark built-ins.
pub const BUILTINS: &[Builtin] = &[builtin!("face_mesh", "face_landmark", "onnx")];
