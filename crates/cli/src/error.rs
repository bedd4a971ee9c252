//! The command's errors: each names what failed (the flag, the model, the file) in the words
//! it prints; a closed standard output is its own case, since the command then ends quietly.

use std::io;

/// The name errors give standard output.
pub const STDOUT: &str = "standard output";

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// flags that parse but do not go together (clap's usage format, exit 2)
    #[error("{0}")]
    Usage(String),
    /// a subcommand that needs a model and has no default
    #[error("which model? give one with -m (see `tensorcv models`)")]
    NoModel,
    /// neither a file nor a built-in
    #[error("no model file '{spec}' and no built-in of that name (built-ins: {builtins})")]
    UnknownModel {
        /// what `-m` said
        spec: String,
        /// the built-ins' names
        builtins: String,
    },
    /// an output folder that cannot be made
    #[error("cannot create '{path}': {source}")]
    CreateDir {
        /// the folder
        path: String,
        /// why
        source: io::Error,
    },
    /// an error of the library layer, said with what it concerns (`--roi-from`, `model 'x'`)
    #[error("{context}: {source}")]
    Context {
        /// the flag or thing it concerns
        context: String,
        /// the error
        source: Box<Error>,
    },
    /// standard output could not be written: a closed pipe ends quietly (exit 0, as ripgrep
    /// and coreutils do), anything else is exit 1
    #[error("cannot write to {STDOUT}: {0}")]
    Stdout(io::Error),
    /// loading or running a model
    #[error(transparent)]
    Model(#[from] tensorcv_infer::Error),
    /// what its outputs mean
    #[error(transparent)]
    Task(#[from] tensorcv_tasks::Error),
    /// sources, sinks, the runner (a write to standard output is [`Error::Stdout`])
    #[error(transparent)]
    Capture(tensorcv_capture::Error),
    /// pixels
    #[error(transparent)]
    Image(#[from] tensorcv_imgproc::Error),
    /// the model server (`tensorcv serve`)
    #[cfg(all(feature = "serve", not(target_family = "wasm")))]
    #[error(transparent)]
    Serve(#[from] tensorcv_serve::Error),
}

impl From<tensorcv_capture::Error> for Error {
    /// A capture error: a write to standard output (records, or `--output -`) or a closed pipe
    /// becomes [`Error::Stdout`].
    fn from(e: tensorcv_capture::Error) -> Error {
        match e {
            tensorcv_capture::Error::Write { path, source } if path == STDOUT => {
                Error::Stdout(source)
            }
            e if e.is_broken_pipe() => Error::Stdout(io::ErrorKind::BrokenPipe.into()),
            e => Error::Capture(e),
        }
    }
}

/// `Result` with the command's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Say what an error concerns.
pub trait Context<T> {
    /// `context: error`
    fn context(self, context: impl std::fmt::Display) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, context: impl std::fmt::Display) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: context.to_string(),
            source: Box::new(e.into()),
        })
    }
}
