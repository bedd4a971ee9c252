//! The one error type of `tensorcv-tasks`.

/// What can go wrong turning outputs into results; each variant names the setting or output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A task table of the model card is malformed (unknown key, bad value, missing key).
    #[error("model card [{section}]: {message}")]
    Card {
        /// `classification`, `detection`, `segmentation`
        section: &'static str,
        /// what is wrong, naming the key
        message: String,
    },
    /// A setting given by a caller (not a card) is out of its range.
    #[error("{setting}: {message}")]
    Invalid {
        /// the setting's name
        setting: &'static str,
        /// the value and the range
        message: String,
    },
    /// An output does not have the shape the settings describe.
    #[error("output '{output}': {message}")]
    Output {
        /// the output's name
        output: String,
        /// expected vs found
        message: String,
    },
    /// The model's outputs (a missing name lists those that exist).
    #[error(transparent)]
    Infer(#[from] tensorcv_infer::Error),
    /// Images: a mask or overlay of the wrong size, an image too large to allocate.
    #[error(transparent)]
    Image(#[from] tensorcv_imgproc::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Read a card's task table into settings, naming the section in errors.
pub(crate) fn settings<T: serde::de::DeserializeOwned>(
    section: &'static str,
    table: Option<&toml::Table>,
) -> Result<T> {
    toml::Value::Table(table.cloned().unwrap_or_default())
        .try_into()
        .map_err(|e: toml::de::Error| Error::Card {
            section,
            message: e.to_string().trim().replace('\n', " "),
        })
}
