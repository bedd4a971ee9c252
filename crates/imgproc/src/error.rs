//! The one error type of `tensorcv-imgproc`.

use crate::PixelFormat;

/// Everything that can go wrong in `tensorcv-imgproc`. Each variant carries what a user needs
/// to fix the call: sizes, formats, paths, limits.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A buffer is too small for the image geometry it is said to hold.
    #[error("buffer of {len} bytes is too small for a {width}x{height} {format} image with stride {stride} (needs {needed})")]
    BufferTooSmall {
        /// width in pixels
        width: usize,
        /// height in pixels
        height: usize,
        /// row stride in bytes
        stride: usize,
        /// what the buffer holds
        format: String,
        /// bytes given
        len: usize,
        /// bytes needed
        needed: usize,
    },
    /// A stride shorter than one row of pixels.
    #[error("stride {stride} is shorter than a row of {width} {format} pixels ({row} bytes)")]
    BadStride {
        /// stride given
        stride: usize,
        /// width in pixels
        width: usize,
        /// pixel format
        format: PixelFormat,
        /// bytes in one row
        row: usize,
    },
    /// An image with no pixels where pixels are needed.
    #[error("{what}: the image is empty ({width}x{height})")]
    Empty {
        /// the operation
        what: &'static str,
        /// width in pixels
        width: usize,
        /// height in pixels
        height: usize,
    },
    /// Dimensions whose byte size does not fit in memory arithmetic.
    #[error("{width}x{height} is too large to address")]
    TooLarge {
        /// width in pixels
        width: usize,
        /// height in pixels
        height: usize,
    },
    /// Two images that must agree in size do not.
    #[error("{what}: expected a {expected_w}x{expected_h} image, got {found_w}x{found_h}")]
    SizeMismatch {
        /// the operation
        what: &'static str,
        /// expected width
        expected_w: usize,
        /// expected height
        expected_h: usize,
        /// found width
        found_w: usize,
        /// found height
        found_h: usize,
    },
    /// A pixel format an operation does not accept.
    #[error("{what}: expected {expected}, got {found}")]
    FormatMismatch {
        /// the operation
        what: &'static str,
        /// what would be accepted
        expected: String,
        /// what was given
        found: PixelFormat,
    },
    /// A value outside what an operation accepts (a crop outside the image, an odd width for a
    /// subsampled YUV format, a zero standard deviation ...).
    #[error("{0}")]
    Invalid(String),
    /// A string that names none of the accepted values.
    #[error("unknown {kind} '{value}' (expected one of: {accepted})")]
    UnknownName {
        /// what kind of name
        kind: &'static str,
        /// the string given
        value: String,
        /// the accepted names, comma separated
        accepted: String,
    },
    /// An image larger than the decoder limits (a decompression bomb, or a limit set too low).
    #[error("image is {width}x{height} pixels, over the decode limit of {max_width}x{max_height} and {max_pixels} pixels")]
    LimitExceeded {
        /// width in the header
        width: u64,
        /// height in the header
        height: u64,
        /// allowed width
        max_width: u64,
        /// allowed height
        max_height: u64,
        /// allowed pixel count
        max_pixels: u64,
    },
    /// Encoded input larger than allowed.
    #[error("encoded image is {len} bytes, over the limit of {max} bytes")]
    InputTooLarge {
        /// bytes given
        len: u64,
        /// allowed bytes
        max: u64,
    },
    /// The bytes are not an image we can decode (unknown format, truncated, corrupt).
    #[error("cannot decode image: {0}")]
    Decode(String),
    /// Encoding failed.
    #[error("cannot encode image: {0}")]
    Encode(String),
    /// Decoding a file failed: the path, and why (any of the other errors).
    #[error("'{path}': {source}")]
    File {
        /// the file
        path: String,
        /// the cause
        #[source]
        source: Box<Error>,
    },
    /// A file could not be read or written.
    #[error("cannot {action} '{path}': {source}")]
    Io {
        /// "read" or "write"
        action: &'static str,
        /// the file
        path: String,
        /// the cause
        #[source]
        source: std::io::Error,
    },
}

/// The text of a panic's payload (`panic!("...")` carries a `&str` or a `String`), for errors
/// made from contained panics (here, the image decoders'; in `tensorcv-infer`, tract's).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// A panic hook's one line: the message and where it was raised (`msg at file:line`).
pub fn panic_report(info: &std::panic::PanicHookInfo<'_>) -> String {
    let message = panic_message(info.payload());
    match info.location() {
        Some(l) => format!("{message} at {}:{}", l.file(), l.line()),
        None => message,
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
