//! The zoo's models (`models/`), compiled in: `tensorcv -m face` and the browser package's
//! `Model.builtin("face")` need no file. Bytes and cards only: loading them is
//! `tensorcv_infer::ModelFile::from_bytes` with the card set.

/// One built-in model: its short name, the model bytes and its card.
pub struct Builtin {
    /// what `-m` takes
    pub name: &'static str,
    /// the file it was built from (for messages)
    pub file: &'static str,
    /// ONNX or TFLite bytes
    pub bytes: &'static [u8],
    /// the TOML card
    pub card: &'static str,
}

macro_rules! builtin {
    ($name:literal, $stem:literal, $ext:literal) => {
        Builtin {
            name: $name,
            file: concat!("models/", $stem, ".", $ext),
            bytes: include_bytes!(concat!("../../../models/", $stem, ".", $ext)),
            card: include_str!(concat!("../../../models/", $stem, ".toml")),
        }
    };
}

#[cfg(feature = "landmarks")]
mod landmarks;

/// The landmark models (behind the default `landmarks` feature; the browser package leaves
/// them out).
#[cfg(feature = "landmarks")]
pub const LANDMARK_BUILTINS: &[Builtin] = landmarks::BUILTINS;
/// The landmark models (behind the default `landmarks` feature; the browser package leaves
/// them out).
#[cfg(not(feature = "landmarks"))]
pub const LANDMARK_BUILTINS: &[Builtin] = &[];

/// Every built-in model there is in this build: [`BUILTINS`] and [`LANDMARK_BUILTINS`].
pub fn all() -> impl Iterator<Item = &'static Builtin> {
    BUILTINS.iter().chain(LANDMARK_BUILTINS)
}

/// The detection, segmentation and classification models.
pub const BUILTINS: &[Builtin] = &[
    builtin!("face", "face_detection_short_range", "onnx"),
    builtin!("selfie", "selfie_segmentation", "onnx"),
    builtin!("emotion", "emotion", "onnx"),
    builtin!("emotion_int8", "emotion_int8", "onnx"),
    builtin!("shapes", "shapes", "onnx"),
    builtin!("shapes_int8", "shapes_int8", "tflite"),
];

/// The built-in called `name`.
pub fn find(name: &str) -> Option<&'static Builtin> {
    all().find(|b| b.name == name)
}
