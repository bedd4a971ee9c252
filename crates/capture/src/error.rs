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
    /// Pixels: conversion or decoding.
    #[error(transparent)]
    Image(#[from] tensorcv_imgproc::Error),
    /// The model run in the runner.
    #[error(transparent)]
    Task(#[from] tensorcv_tasks::Error),
}

impl Error {
    /// Whether the source can go on after this error (one bad frame or file).
    pub fn is_frame_error(&self) -> bool {
        matches!(self, Error::Frame { .. } | Error::Input(_))
    }
}

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
