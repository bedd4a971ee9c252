//! The one error the kernels return: buffers whose sizes do not fit the shapes they were given.

/// Buffers whose lengths do not match the shapes a kernel was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SizeError(pub(crate) &'static str);

/// `Err(SizeError(what))` unless `cond`.
macro_rules! ensure {
    ($cond:expr) => {
        $crate::error::ensure!($cond, "buffer sizes do not match the kernel's shapes")
    };
    ($cond:expr, $what:literal) => {
        if !$cond {
            return Err($crate::SizeError($what));
        }
    };
}
pub(crate) use ensure;
