//! The one error type of `tensorcv-infer`.

/// Everything that can go wrong loading or running a model; each variant names the file,
/// key, tensor or dimension involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A model file could not be read.
    #[error("cannot read '{path}': {source}")]
    Io {
        /// the file
        path: String,
        /// the cause
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a model tract can load (not ONNX, corrupt, unsupported operator).
    #[error("cannot load model {what}: {message}")]
    Load {
        /// the file, or "from bytes"
        what: String,
        /// tract's explanation, one line
        message: String,
    },
    /// A model card is malformed: unknown key, bad value, wrong type.
    #[error("model card {source_name}: {message}")]
    Card {
        /// the card file, or where the card came from
        source_name: String,
        /// what is wrong, naming the key
        message: String,
    },
    /// The model's input cannot take the image as described.
    #[error("model input '{input}': {message}")]
    Input {
        /// the model input's name
        input: String,
        /// which dimension and why
        message: String,
    },
    /// An output name that the model does not have.
    #[error("no output named '{name}' (the model has: {available})")]
    UnknownOutput {
        /// the name asked for
        name: String,
        /// the outputs that exist, comma separated
        available: String,
    },
    /// A loading option out of its range ([`crate::LoadOptions`]).
    #[error("{setting}: {message}")]
    Invalid {
        /// the option (`threads`, `batch`)
        setting: &'static str,
        /// what is wrong and the range accepted
        message: String,
    },
    /// Running the model failed.
    #[error("inference failed: {0}")]
    Run(String),
    /// Preprocessing failed.
    #[error(transparent)]
    Image(#[from] tensorcv_imgproc::Error),
}

/// The text of a panic's payload (`tensorcv-imgproc`'s).
pub use tensorcv_imgproc::{panic_message, panic_report};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// tract errors carry a chain of contexts (and, with `RUST_BACKTRACE`, a backtrace): keep the
/// chain on one line, without the backtrace, and cut very long operator dumps.
pub(crate) fn one_line(e: &dyn std::fmt::Display) -> String {
    let text = format!("{e:#}");
    let mut line = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take_while(|l| !l.starts_with("Stack backtrace"))
        .collect::<Vec<_>>()
        .join(" ");
    if line.chars().count() > 600 {
        line = line.chars().take(600).collect::<String>() + " ...";
    }
    line
}
