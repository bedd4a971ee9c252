//! The one error type of `tensorcv-serve`, and how each error is answered: an HTTP status with
//! `{"error": "…"}`, a gRPC status code.

use axum::http::StatusCode;

/// What can go wrong serving a request or starting the server; each variant says what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request names a model that is not served.
    #[error("unknown model '{name}' (served: {served})")]
    UnknownModel {
        /// the name asked for
        name: String,
        /// the names served, comma-separated
        served: String,
    },
    /// The request names a version the model does not have (every model has version `1`).
    #[error("model '{name}' has no version '{version}' (it has version 1)")]
    UnknownVersion {
        /// the model
        name: String,
        /// the version asked for
        version: String,
    },
    /// The request is malformed: bad JSON, a wrong shape, datatype or name, a truncated body.
    #[error("{0}")]
    BadRequest(String),
    /// The request body is larger than the server accepts.
    #[error("the request body is larger than the {limit} bytes allowed (--max-body-mib)")]
    TooLarge {
        /// the limit in bytes
        limit: usize,
    },
    /// The model's queue is full: the server is overloaded, the client should back off.
    #[error("model '{model}' is busy: its queue of {capacity} requests is full, try again later")]
    QueueFull {
        /// the model
        model: String,
        /// the queue's capacity
        capacity: usize,
    },
    /// The server holds as many request bytes as it may (`--max-inflight-mib`): try again.
    #[error("the server is busy: {0}")]
    Busy(String),
    /// The request's deadline passed before it was answered.
    #[error("the request's deadline of {ms} ms passed before it was answered")]
    Deadline {
        /// the deadline, milliseconds after the request arrived
        ms: u64,
    },
    /// The model is being unloaded, or the server is shutting down.
    #[error("model '{0}' is no longer served (unloaded, reloaded or shutting down)")]
    Unavailable(String),
    /// A model could not be loaded (a file, its card, the serving settings).
    #[error("cannot serve {what}: {message}")]
    Load {
        /// the model (a path, a built-in's name)
        what: String,
        /// why
        message: String,
    },
    /// A serving setting (flag or `[serving]` key) is out of its range.
    #[error("{setting}: {message}")]
    Invalid {
        /// the setting
        setting: String,
        /// the value and its range
        message: String,
    },
    /// An address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// the address
        addr: String,
        /// the system's reason
        source: std::io::Error,
    },
    /// The model failed on this input (tract's error, a post-processing error).
    #[error("model '{model}': {message}")]
    Run {
        /// the model
        model: String,
        /// what failed
        message: String,
    },
    /// An image in the request cannot be decoded.
    #[error("the image cannot be decoded: {0}")]
    Image(String),
    /// Something the server itself got wrong (a worker that ended).
    #[error("internal error: {0}")]
    Internal(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::UnknownModel { .. } | Error::UnknownVersion { .. } => StatusCode::NOT_FOUND,
            Error::BadRequest(_) | Error::Image(_) | Error::Invalid { .. } => {
                StatusCode::BAD_REQUEST
            }
            Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::QueueFull { .. } | Error::Unavailable(_) | Error::Busy(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::Deadline { .. } => StatusCode::GATEWAY_TIMEOUT,
            // a model that fails on a well-formed input: the input is what it cannot take
            Error::Run { .. } => StatusCode::BAD_REQUEST,
            Error::Load { .. } | Error::Bind { .. } | Error::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The gRPC status code this error is answered with.
    pub fn code(&self) -> tonic::Code {
        match self {
            Error::UnknownModel { .. } | Error::UnknownVersion { .. } => tonic::Code::NotFound,
            Error::BadRequest(_) | Error::Image(_) | Error::Invalid { .. } | Error::Run { .. } => {
                tonic::Code::InvalidArgument
            }
            Error::TooLarge { .. } => tonic::Code::ResourceExhausted,
            Error::QueueFull { .. } | Error::Unavailable(_) | Error::Busy(_) => {
                tonic::Code::Unavailable
            }
            Error::Deadline { .. } => tonic::Code::DeadlineExceeded,
            Error::Load { .. } | Error::Bind { .. } | Error::Internal(_) => tonic::Code::Internal,
        }
    }

    /// A short name of the outcome, for the metrics' `status` label.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::UnknownModel { .. } | Error::UnknownVersion { .. } => "not_found",
            Error::BadRequest(_) | Error::Image(_) | Error::Invalid { .. } | Error::Run { .. } => {
                "bad_request"
            }
            Error::TooLarge { .. } => "too_large",
            Error::QueueFull { .. } => "queue_full",
            Error::Busy(_) => "busy",
            Error::Unavailable(_) => "unavailable",
            Error::Deadline { .. } => "deadline",
            Error::Load { .. } | Error::Bind { .. } | Error::Internal(_) => "internal",
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        tonic::Status::new(e.code(), e.to_string())
    }
}

/// A request error in `{"error": "…"}`.
pub(crate) fn bad(message: impl Into<String>) -> Error {
    Error::BadRequest(message.into())
}
