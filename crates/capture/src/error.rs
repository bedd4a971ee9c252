//! The one error type of `tensorcv-capture`.

/// What can go wrong reading or writing frames; each variant names the source or file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A source or sink that cannot be opened or read: missing file, bad header, closed pipe.
    #[error("{source_name}: {message}")]
    Source {
        /// the file, URL, device or pattern
        source_name: String,
        /// what is wrong
        message: String,
    },
    /// One frame could not be decoded; the source can go on with the next one.
    #[error("{source_name}: frame {index}: {message}")]
    Frame {
        /// the source
        source_name: String,
        /// the frame's index in the source
        index: u64,
        /// what is wrong
        message: String,
    },
    /// One input of several (a file of a folder) could not be read; the message names it.
    #[error("{0}")]
    Input(String),
    /// A camera: missing, busy, gone, or no format that fits.
    #[error("camera {device}: {message}")]
    Camera {
        /// the device asked for
        device: String,
        /// what is wrong
        message: String,
    },
    /// Writing an output failed.
    #[error("cannot write '{path}': {message}")]
    Sink {
        /// the output
        path: String,
        /// what is wrong
        message: String,
    },
    /// Writing to a file or a stream failed at the system level (a closed pipe, a full disk);
    /// the kind is kept so a caller can end quietly on [`std::io::ErrorKind::BrokenPipe`].
    #[error("cannot write '{path}': {source}")]
    Write {
        /// the output (`standard output` for `-`)
        path: String,
        /// the cause
        #[source]
        source: std::io::Error,
    },
    /// A setting out of its range (the runner's options, [`crate::OpenOptions`]).
    #[error("{setting}: {message}")]
    Invalid {
        /// the setting, as the library names it (`fps`, `every`, ...)
        setting: &'static str,
        /// what is wrong and the range accepted
        message: String,
    },
    /// A stage of the runner panicked or its thread could not start: the run was stopped.
    /// A panic is a bug (in tensorcv or a dependency such as tract); the message says where.
    #[error("internal error in the {stage} stage: {message}")]
    Internal {
        /// `reader`, `decoder`, `preprocess`, `inference`, `postprocess`
        stage: &'static str,
        /// the panic's message, or why the thread did not start
        message: String,
    },
    /// Pixels: conversion or decoding.
    #[error(transparent)]
    Image(#[from] tensorcv_imgproc::Error),
    /// The model run in the runner (feature `runner`).
    #[cfg(feature = "runner")]
    #[error(transparent)]
    Task(#[from] tensorcv_tasks::Error),
}

impl Error {
    /// Whether the source can go on after this error (one bad frame or file).
    pub fn is_frame_error(&self) -> bool {
        matches!(self, Error::Frame { .. } | Error::Input(_))
    }

    /// Whether this is a write to a pipe whose reader has gone (`| head -1`): a command line
    /// tool ends quietly then, as coreutils and ripgrep do.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Write { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

#[cfg(feature = "runner")]
impl From<tensorcv_infer::Error> for Error {
    fn from(e: tensorcv_infer::Error) -> Self {
        Error::Task(e.into())
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A source error naming `name`.
pub(crate) fn source_err(name: &str, message: impl std::fmt::Display) -> Error {
    Error::Source {
        source_name: name.to_string(),
        message: message.to_string(),
    }
}
