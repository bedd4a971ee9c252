//! Loading, in stages: the file's bytes are read and their format detected, tract parses them
//! and the model is described ([`ModelFile`]: inputs, outputs, metadata, the card and where it
//! came from), then the input is fixed from the card and checked, the graph optimised (with
//! tensorcv's operators put in, see [`crate::rewrite`]) and the threads set up
//! ([`ModelFile::build`]). A panic in tract's or flatbuffers' code at either stage is contained
//! and reported as [`Error::Load`].

use super::{Dim, Format, Inner, LoadOptions, Model, ModelInfo, TensorInfo, MAX_INPUT_ELEMENTS};
use crate::card::ModelCard;
use crate::error::{one_line, Error, Result};
use crate::tflite::{mend_quantized_ops, tflite_unsupported};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use tensorcv_imgproc::tensor::{ChannelOrder, DType, Layout, Quantization, Range, TensorSpec};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::DimLike;

/// The largest model file [`Model::load`] reads (protobuf and flatbuffers both stop at 2 GiB).
pub const MAX_MODEL_BYTES: u64 = 2 << 30;

/// Where a model's card came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CardSource {
    /// given by the caller ([`LoadOptions::card`], [`ModelFile::set_card`])
    Given,
    /// the `.toml` next to the model file, at this path
    Sidecar(String),
    /// the ONNX `tensorcv.card` metadata entry
    Metadata,
    /// none: every setting inferred from the model
    Defaults,
}

/// A model file parsed and described, its card resolved, not yet optimised: what the card
/// says can still be changed ([`ModelFile::card_mut`]) before [`ModelFile::build`] fixes the
/// input and optimises the graph for it. Cloning it is how one file is built several ways
/// (a plan per batch size) without parsing it again.
#[derive(Clone)]
pub struct ModelFile {
    what: String,
    info: ModelInfo,
    /// the model as declared (for introspection, and TFLite's to optimise)
    declared: TypedModel,
    /// ONNX: the inference model, whose input is fixed at build (tf2onnx leaves it symbolic)
    inference: Option<InferenceModel>,
    card: ModelCard,
    source: CardSource,
}

impl fmt::Debug for ModelFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelFile")
            .field("what", &self.what)
            .field("info", &self.info)
            .field("card", &self.source)
            .finish()
    }
}

impl ModelFile {
    /// Read and parse an ONNX or TFLite file; its card is the `.toml` next to it if there is
    /// one, else (ONNX) the `tensorcv.card` metadata entry, else defaults.
    pub fn open(path: impl AsRef<Path>) -> Result<ModelFile> {
        let path = path.as_ref();
        let bytes = read_model_file(path)?;
        let sidecar = ModelCard::sidecar(path)?;
        let mut file = Self::from_bytes(&bytes, &format!("'{}'", path.display()))?;
        if let Some((card, at)) = sidecar {
            file.card = card;
            file.source = CardSource::Sidecar(at);
        }
        Ok(file)
    }

    /// Parse the bytes of an ONNX or TFLite file (WASM, embedded models), naming the model
    /// `what` in errors (a path, `built-in 'face'`); its card is the metadata entry, else
    /// defaults.
    ///
    /// Bytes that are not a model give [`Error::Load`], never a panic: TFLite files are checked
    /// before tract-tflite reads them (every index a flatbuffer holds must point inside its
    /// table), and a panic of tract's or flatbuffers' own code is contained and reported as
    /// [`Error::Load`] naming `what`. (The process's panic hook still runs: the `tensorcv`
    /// command installs a quiet one.)
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<ModelFile> {
        if Format::detect(bytes) == Format::Tflite {
            crate::tflite::check_indices(bytes).map_err(|message| Error::Load {
                what: what.to_string(),
                message: format!("not a valid TFLite file: {message}"),
            })?;
        }
        contained(what, || parse(bytes, what))
    }

    /// Inputs, outputs and metadata as the file declares them.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The card as resolved.
    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    /// Where the card came from.
    pub fn card_source(&self) -> &CardSource {
        &self.source
    }

    /// The card, to amend before [`ModelFile::build`] (flags, a caller's settings).
    pub fn card_mut(&mut self) -> &mut ModelCard {
        &mut self.card
    }

    /// Use `card` instead of the resolved one.
    pub fn set_card(&mut self, card: ModelCard) {
        self.card = card;
        self.source = CardSource::Given;
    }

    /// Fix the input from the card (and `options.batch`), check it, optimise the graph for it
    /// with tensorcv's operators (unless `options.tract_only`), and set up the threads.
    pub fn build(self, options: &LoadOptions) -> Result<Model> {
        options.validate()?;
        let what = self.what.clone();
        contained(&what, move || self.build_inner(options))
    }

    fn build_inner(self, options: &LoadOptions) -> Result<Model> {
        let ModelFile {
            what,
            info,
            declared,
            inference,
            card,
            source,
        } = self;
        let load_err = |e: &dyn fmt::Display| Error::Load {
            what: what.clone(),
            message: one_line(&e),
        };
        let batch = options.batch;
        let (spec, shape) = fixed_input(&info.inputs[0], &card, batch)?;
        let input_dt = declared.input_fact(0).map_err(|e| load_err(&e))?.datum_type;
        let bad_input = |e: &dyn fmt::Display| Error::Input {
            input: info.inputs[0].name.clone(),
            message: format!(
                "the model does not accept a {:?} tensor: {}",
                spec.shape(batch),
                one_line(&e)
            ),
        };
        let typed = match inference {
            Some(mut inference) => {
                inference
                    .set_input_fact(0, InferenceFact::dt_shape(input_dt, shape))
                    .map_err(|e| bad_input(&e))?;
                inference.into_typed().map_err(|e| bad_input(&e))?
            }
            None => {
                let mut typed = declared;
                typed
                    .set_input_fact(0, TypedFact::dt_shape(input_dt, &*shape))
                    .map_err(|e| bad_input(&e))?;
                typed
            }
        };
        let (optimized, ours) = optimize(typed, !options.tract_only).map_err(|e| bad_input(&e))?;
        let output_names = info.outputs.iter().map(|o| o.name.clone()).collect();
        // the outputs' shapes once the input is fixed: what post-processing is checked against
        let output_shapes = optimized
            .output_outlets()
            .map_err(|e| load_err(&e))?
            .iter()
            .map(|o| {
                let fact = optimized.outlet_fact(*o).ok()?;
                fact.shape.iter().map(|d| d.to_usize().ok()).collect()
            })
            .collect();
        let plan = optimized.into_runnable().map_err(|e| load_err(&e))?;
        Ok(Model {
            inner: Arc::new(Inner {
                plan,
                input_dt,
                threads: super::Threads::new(options.threads, ours),
                info,
                card,
                card_source: source,
                spec,
                batch,
                output_names,
                output_shapes,
            }),
        })
    }
}

impl Model {
    /// Load an ONNX or TFLite file; its card is the `.toml` next to it if there is one, else
    /// (ONNX) the `tensorcv.card` metadata entry, else defaults inferred from the model.
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        Self::load_with(path, LoadOptions::default())
    }

    /// [`Model::load`] with options ([`LoadOptions::card`] instead of the file's card).
    pub fn load_with(path: impl AsRef<Path>, options: LoadOptions) -> Result<Model> {
        options.validate()?;
        let path = path.as_ref();
        let file = match &options.card {
            // a card given: the sidecar is not read
            Some(card) => {
                let bytes = read_model_file(path)?;
                let mut file = ModelFile::from_bytes(&bytes, &format!("'{}'", path.display()))?;
                file.set_card(card.clone());
                file
            }
            None => ModelFile::open(path)?,
        };
        file.build(&options)
    }

    /// Load from the bytes of an ONNX or TFLite file (WASM, embedded models).
    pub fn from_bytes(bytes: &[u8], options: LoadOptions) -> Result<Model> {
        Self::from_bytes_named(bytes, "from bytes", options)
    }

    /// [`Model::from_bytes`], naming the model `what` in errors (a path, `built-in 'face'`);
    /// see [`ModelFile::from_bytes`].
    pub fn from_bytes_named(bytes: &[u8], what: &str, options: LoadOptions) -> Result<Model> {
        options.validate()?;
        let mut file = ModelFile::from_bytes(bytes, what)?;
        if let Some(card) = &options.card {
            file.set_card(card.clone());
        }
        file.build(&options)
    }
}

/// Run a loading stage with tract's panics (and refused allocations) reported as
/// [`Error::Load`] naming `what`.
fn contained<T>(what: &str, stage: impl FnOnce() -> Result<T>) -> Result<T> {
    let refusals = crate::memory::refusals();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(stage)).unwrap_or_else(|payload| {
        let panic = crate::panic_message(&*payload);
        Err(Error::Load {
            what: what.to_string(),
            message: if crate::memory::refusals() > refusals {
                // a refused allocation (crate::memory): the graph folds into huge tensors
                format!("loading it needs more memory than this process may use ({panic})")
            } else {
                format!(
                    "the model file is corrupt or unsupported (tract's loader panicked: {panic})"
                )
            },
        })
    })
}

/// Parse `bytes` (format detected), describe the model and resolve its card from its metadata.
fn parse(bytes: &[u8], what: &str) -> Result<ModelFile> {
    let load_err = |e: &dyn fmt::Display| Error::Load {
        what: what.to_string(),
        message: one_line(&e),
    };
    let format = Format::detect(bytes);
    let (declared, inference) = match format {
        Format::Onnx => {
            let inference = tract_onnx::onnx()
                .model_for_read(&mut std::io::Cursor::new(bytes))
                .map_err(|e| load_err(&e))?;
            (
                inference.clone().into_typed().map_err(|e| load_err(&e))?,
                Some(inference),
            )
        }
        Format::Tflite => {
            // float16 weights widened and PRELU made MAXIMUM, for tract-tflite to read
            let lowered = crate::tflite::lower(bytes);
            let bytes = lowered.as_ref().map_or(bytes, |l| &l.bytes[..]);
            let mut model = tract_tflite::tflite()
                .model_for_read(&mut std::io::Cursor::new(bytes))
                .map_err(|e| {
                    let unsupported = tflite_unsupported(bytes);
                    if unsupported.is_empty() {
                        load_err(&e)
                    } else {
                        Error::Load {
                            what: what.to_string(),
                            message: format!(
                                "tract-tflite does not support {}; convert the model to ONNX \
                                 with tf2onnx (--tflite) instead",
                                unsupported.join(", ")
                            ),
                        }
                    }
                })?;
            if let Some(lowered) = &lowered {
                crate::tflite::expand_prelus(&mut model, &lowered.prelus)
                    .map_err(|e| load_err(&e))?;
            }
            crate::tflite::mend_float_scales(&mut model).map_err(|e| load_err(&e))?;
            mend_quantized_ops(bytes, &mut model).map_err(|e| load_err(&e))?;
            (model, None)
        }
    };
    let info = ModelInfo {
        format,
        inputs: describe(
            &declared,
            declared.input_outlets().map_err(|e| load_err(&e))?,
        )?,
        outputs: describe(
            &declared,
            declared.output_outlets().map_err(|e| load_err(&e))?,
        )?,
        metadata: declared
            .properties
            .iter()
            .filter_map(|(k, v)| {
                let value = v
                    .to_plain_array_view::<String>()
                    .ok()?
                    .iter()
                    .next()?
                    .clone();
                Some((k.trim_start_matches("onnx.").to_string(), value))
            })
            .collect(),
    };
    if info.inputs.len() != 1 {
        return Err(Error::Load {
            what: what.to_string(),
            message: format!(
                "image models take one input; this one has {}: {}",
                info.inputs.len(),
                info.inputs
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let (card, source) = match info.metadata.get("metadata_props.tensorcv.card") {
        Some(text) => (
            ModelCard::parse(text, "in the model's metadata (tensorcv.card)")?,
            CardSource::Metadata,
        ),
        None => (ModelCard::default(), CardSource::Defaults),
    };
    Ok(ModelFile {
        what: what.to_string(),
        info,
        declared,
        inference,
        card,
        source,
    })
}

/// The input spec the card and `input` give, and the input's shape for `batch` images,
/// checked: the card's input name, the size limit, the dimensions the file fixes.
fn fixed_input(
    input: &TensorInfo,
    card: &ModelCard,
    batch: usize,
) -> Result<(TensorSpec, TVec<usize>)> {
    if let Some(name) = &card.input.name {
        if *name != input.name {
            return Err(Error::Input {
                input: name.clone(),
                message: format!(
                    "the card names this input, the model's input is '{}'",
                    input.name
                ),
            });
        }
    }
    let spec = input_spec(input, card)?;
    let shape: TVec<usize> = spec.shape(batch).into_iter().collect();
    let elements = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if elements.is_none_or(|n| n > MAX_INPUT_ELEMENTS) {
        return Err(Error::Input {
            input: input.name.clone(),
            message: format!(
                "a {:?} input is larger than the {} elements allowed",
                spec.shape(batch),
                MAX_INPUT_ELEMENTS
            ),
        });
    }
    // a dimension the file fixes stays as it is (the graph may rely on it)
    if let Some((i, d)) = input
        .shape
        .iter()
        .enumerate()
        .find(|(i, d)| matches!(d, Dim::Fixed(n) if *n != shape[*i]))
    {
        return Err(Error::Input {
            input: input.name.clone(),
            message: format!(
                "dimension {i} is fixed at {d} in the model file, {} was asked for{}",
                shape[i],
                if i == 0 {
                    " (a batch size the export fixed)"
                } else {
                    ""
                }
            ),
        });
    }
    Ok((spec, shape))
}

fn describe(model: &TypedModel, outlets: &[OutletId]) -> Result<Vec<TensorInfo>> {
    outlets
        .iter()
        .map(|o| {
            let fact = model
                .outlet_fact(*o)
                .map_err(|e| Error::Run(one_line(&e)))?;
            let name = model
                .outlet_label(*o)
                .map(str::to_string)
                .unwrap_or_else(|| model.node(o.node).name.clone());
            let shape = fact
                .shape
                .iter()
                .map(|d| match d.to_usize() {
                    Ok(n) => Dim::Fixed(n),
                    Err(_) => Dim::Symbol(d.to_string()),
                })
                .collect();
            let dt = fact.datum_type;
            Ok(TensorInfo {
                name,
                shape,
                dtype: format!("{:?}", dt.unquantized()),
                quantization: dt.qparams().map(|_| {
                    let (zero_point, scale) = dt.zp_scale();
                    Quantization { scale, zero_point }
                }),
            })
        })
        .collect()
}

/// Declutter, put tensorcv's kernels in (when `ours`), codegen; and how many ops are tensorcv's.
fn optimize(mut model: TypedModel, ours: bool) -> TractResult<(TypedModel, usize)> {
    model.declutter()?;
    let kernels = if ours {
        crate::rewrite::accelerate(&mut model)?.ops()
    } else {
        0
    };
    model.optimize()?;
    Ok((model, kernels))
}

/// The input spec: the card's settings, the rest inferred from the model's input.
fn input_spec(input: &TensorInfo, card: &ModelCard) -> Result<TensorSpec> {
    let c = &card.input;
    let bad = |message: String| Error::Input {
        input: input.name.clone(),
        message,
    };
    if input.shape.len() != 4 {
        return Err(bad(format!(
            "expected a 4-D image tensor, the model declares [{}]",
            input
                .shape
                .iter()
                .map(Dim::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let fixed = |i: usize| match input.shape[i] {
        Dim::Fixed(n) => Some(n),
        Dim::Symbol(_) => None,
    };
    let is_channels = |i: usize| matches!(fixed(i), Some(1 | 3));
    let layout = c.layout.unwrap_or(if is_channels(3) || !is_channels(1) {
        Layout::Nhwc
    } else {
        Layout::Nchw
    });
    let (hi, wi, ci) = match layout {
        Layout::Nhwc => (1, 2, 3),
        Layout::Nchw => (2, 3, 1),
    };
    let channels = match (c.channels, fixed(ci)) {
        (Some(order), Some(n)) if order.channels() != n => {
            return Err(bad(format!(
                "the card asks for {order} ({} channels) but the model's channel dimension is {n}",
                order.channels()
            )))
        }
        (Some(order), _) => order,
        (None, Some(1)) => ChannelOrder::Gray,
        (None, Some(3)) | (None, None) => ChannelOrder::Rgb,
        (None, Some(n)) => return Err(bad(format!("{n} channels is not an image (1 or 3)"))),
    };
    let size = |card: Option<usize>, i: usize, what: &str| -> Result<usize> {
        match (card, fixed(i)) {
            (Some(v), Some(m)) if v != m => Err(bad(format!(
                "the card says {what} {v}, the model's {what} dimension is {m}"
            ))),
            (Some(v), _) | (None, Some(v)) => Ok(v),
            (None, None) => Err(bad(format!(
                "the model leaves the {what} open ({}); set input.{what} in the card",
                input.shape[i]
            ))),
        }
    };
    let (width, height) = (size(c.width, wi, "width")?, size(c.height, hi, "height")?);
    let dtype = match input.dtype.as_str() {
        "F32" => DType::F32,
        "U8" => DType::U8,
        "I8" => DType::I8,
        other => {
            return Err(bad(format!(
                "input type {other} is not supported (f32, u8, i8)"
            )))
        }
    };
    // integer inputs without quantization take raw pixels; quantized ones the card's range
    let default_range = match (dtype, &input.quantization) {
        (DType::F32, _) | (_, Some(_)) => Range::Unit,
        _ => Range::Raw,
    };
    let spec = TensorSpec::new(width, height)
        .with_layout(layout)
        .with_channels(channels)
        .with_dtype(dtype)
        .with_range(c.range.unwrap_or(default_range))
        .with_mean_std(c.mean.unwrap_or([0.0; 3]), c.std.unwrap_or([1.0; 3]))
        .with_interp(c.interpolation.unwrap_or_default())
        .with_fit(c.fit.unwrap_or_default(), c.pad.unwrap_or(0))
        .with_resample(c.resample.unwrap_or_default());
    let spec = match input.quantization {
        Some(q) => spec.with_quantization(q),
        None => spec,
    };
    spec.validate().map_err(|e| bad(e.to_string()))?;
    Ok(spec)
}

/// Read a model file, refusing one larger than [`MAX_MODEL_BYTES`] (before reading it where
/// its size is known; devices and pipes are cut at the limit).
pub fn read_model_file(path: &Path) -> Result<Vec<u8>> {
    read_bounded(path, MAX_MODEL_BYTES)
}

fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use crate::bounded::{read_at_most, ReadError};
    read_at_most(path, limit).map_err(|e| match e {
        ReadError::Io(source) => Error::Io {
            path: path.display().to_string(),
            source,
        },
        ReadError::TooLarge(size) => Error::Load {
            what: format!("'{}'", path.display()),
            message: match size {
                Some(n) => format!("{n} bytes is larger than any model ({limit} bytes at most)"),
                None => format!("what it holds is larger than any model ({limit} bytes at most)"),
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_files_are_read_to_the_limit_and_no_further() {
        let dir = std::env::temp_dir().join(format!("tensorcv-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("m.onnx");
        std::fs::write(&file, vec![7u8; 300_000]).unwrap();
        // a file of known size: its bytes, or refused before reading
        assert_eq!(read_bounded(&file, 300_000).unwrap().len(), 300_000);
        let err = read_bounded(&file, 299_999).unwrap_err().to_string();
        assert!(
            err.contains("300000 bytes is larger than any model"),
            "{err}"
        );
        // a device that never ends (its size reads as 0): cut at the limit, whatever the limit
        for limit in [1u64, 65_536, 1 << 20, (1 << 20) + 17] {
            let err = read_bounded(Path::new("/dev/zero"), limit)
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("({limit} bytes at most)")), "{err}");
        }
        assert!(read_bounded(Path::new("/dev/null"), 10).unwrap().is_empty());
        let err = read_bounded(&dir, 10).unwrap_err().to_string();
        assert!(err.contains("a folder"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
