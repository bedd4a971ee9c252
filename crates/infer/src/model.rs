//! Loading a model with tract, describing it, and running it.

use crate::card::ModelCard;
use crate::error::{one_line, Error, Result};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use tensorcv_imgproc::geometry::Transform;
use tensorcv_imgproc::tensor::{
    ChannelOrder, DType, Layout, Preprocessor, Range, Tensor as ImgTensor, TensorData, TensorSpec,
};
use tensorcv_imgproc::ImageView;
use tract_onnx::prelude::*;

/// One dimension of a tensor: a number, or a symbol the model leaves open (batch size, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    /// a fixed size
    Fixed(usize),
    /// a symbolic size, by name
    Symbol(String),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Symbol(s) => f.write_str(s),
        }
    }
}

/// Name, shape and element type of a model input or output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// the ONNX name
    pub name: String,
    /// dimensions, symbolic where the model leaves them open
    pub shape: Vec<Dim>,
    /// element type, as tract names it (`F32`, `U8`, `QU8(...)`)
    pub dtype: String,
}

impl fmt::Display for TensorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self.shape.iter().map(Dim::to_string).collect();
        write!(f, "{} [{}] {}", self.name, dims.join(", "), self.dtype)
    }
}

/// What a model file says about itself, before any shape is fixed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelInfo {
    /// inputs, in order
    pub inputs: Vec<TensorInfo>,
    /// outputs, in order
    pub outputs: Vec<TensorInfo>,
    /// ONNX metadata (`producer_name`, `metadata_props`, ...), without the `onnx.` prefix
    pub metadata: BTreeMap<String, String>,
}

fn describe(model: &TypedModel, outlets: &[OutletId]) -> Result<Vec<TensorInfo>> {
    outlets
        .iter()
        .map(|o| {
            let fact = model.outlet_fact(*o).map_err(|e| Error::Run(one_line(&e)))?;
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
            Ok(TensorInfo {
                name,
                shape,
                dtype: format!("{:?}", fact.datum_type),
            })
        })
        .collect()
}

/// Options for loading.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// images per run (fixes a symbolic batch dimension)
    pub batch: usize,
    /// a card to use instead of the sidecar `.toml` or the model's metadata
    pub card: Option<ModelCard>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            batch: 1,
            card: None,
        }
    }
}

struct Inner {
    plan: Arc<TypedRunnableModel>,
    info: ModelInfo,
    card: ModelCard,
    spec: TensorSpec,
    batch: usize,
    output_names: Vec<String>,
}

/// A loaded, optimized model: cheap to clone, `Send + Sync`, so one model serves many threads
/// (each with its own [`Session`]).
#[derive(Clone)]
pub struct Model {
    inner: Arc<Inner>,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("inputs", &self.inner.info.inputs)
            .field("outputs", &self.inner.info.outputs)
            .finish()
    }
}

impl Model {
    /// Load an ONNX file; its card is the `.toml` next to it if there is one, else the
    /// `tensorcv.card` metadata entry, else defaults inferred from the model.
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        Self::load_with(path, LoadOptions::default())
    }

    /// [`Model::load`] with options.
    pub fn load_with(path: impl AsRef<Path>, mut options: LoadOptions) -> Result<Model> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        if options.card.is_none() {
            let card_path = path.with_extension("toml");
            if card_path.exists() {
                let text = std::fs::read_to_string(&card_path).map_err(|source| Error::Io {
                    path: card_path.display().to_string(),
                    source,
                })?;
                options.card = Some(ModelCard::parse(&text, &card_path.display().to_string())?);
            }
        }
        Self::from_bytes_named(&bytes, &format!("'{}'", path.display()), options)
    }

    /// Load from ONNX bytes (WASM, embedded models).
    pub fn from_bytes(bytes: &[u8], options: LoadOptions) -> Result<Model> {
        Self::from_bytes_named(bytes, "from bytes", options)
    }

    fn from_bytes_named(bytes: &[u8], what: &str, options: LoadOptions) -> Result<Model> {
        let load_err = |e: &dyn fmt::Debug| Error::Load {
            what: what.to_string(),
            message: one_line(&e),
        };
        let mut inference = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(bytes))
            .map_err(|e| load_err(&e))?;
        let typed = inference.clone().into_typed().map_err(|e| load_err(&e))?;
        let info = ModelInfo {
            inputs: describe(&typed, typed.input_outlets().map_err(|e| load_err(&e))?)?,
            outputs: describe(&typed, typed.output_outlets().map_err(|e| load_err(&e))?)?,
            metadata: typed
                .properties
                .iter()
                .filter_map(|(k, v)| {
                    let value = v.to_scalar::<String>().ok()?.clone();
                    Some((k.trim_start_matches("onnx.").to_string(), value))
                })
                .collect(),
        };
        let card = match options.card {
            Some(card) => card,
            None => match info.metadata.get("metadata_props.tensorcv.card") {
                Some(text) => ModelCard::parse(text, "in the model's metadata (tensorcv.card)")?,
                None => ModelCard::default(),
            },
        };
        if info.inputs.len() != 1 {
            return Err(Error::Load {
                what: what.to_string(),
                message: format!(
                    "image models take one input; this one has {}: {}",
                    info.inputs.len(),
                    info.inputs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            });
        }
        let batch = options.batch.max(1);
        let spec = input_spec(&info.inputs[0], &card)?;
        let shape: TVec<usize> = spec.shape(batch).into_iter().collect();
        let dt = match spec.dtype {
            DType::F32 => f32::datum_type(),
            DType::U8 => u8::datum_type(),
            DType::I8 => i8::datum_type(),
        };
        inference
            .set_input_fact(0, InferenceFact::dt_shape(dt, shape))
            .map_err(|e| load_err(&e))?;
        let optimized = inference.into_optimized().map_err(|e| Error::Input {
            input: info.inputs[0].name.clone(),
            message: format!("the model does not accept a {:?} tensor: {}", spec.shape(batch), one_line(&e)),
        })?;
        let output_names = info.outputs.iter().map(|o| o.name.clone()).collect();
        let plan = optimized.into_runnable().map_err(|e| load_err(&e))?;
        Ok(Model {
            inner: Arc::new(Inner {
                plan,
                info,
                card,
                spec,
                batch,
                output_names,
            }),
        })
    }

    /// Inputs, outputs and metadata as the file declares them.
    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }
    /// The card in use (possibly all defaults).
    pub fn card(&self) -> &ModelCard {
        &self.inner.card
    }
    /// How images are turned into this model's input.
    pub fn input_spec(&self) -> &TensorSpec {
        &self.inner.spec
    }
    /// Images per run.
    pub fn batch(&self) -> usize {
        self.inner.batch
    }

    /// A session: the model plus its own preprocessing buffers, for one thread.
    pub fn session(&self) -> Result<Session> {
        let pre = Preprocessor::try_new(self.inner.spec.clone())?;
        let tensor = self.inner.spec.alloc(self.inner.batch);
        Ok(Session {
            model: self.clone(),
            pre,
            tensor,
        })
    }

    /// Run on an already prepared input tensor (its shape must match [`Model::input_spec`]).
    pub fn run_tensor(&self, input: &ImgTensor) -> Result<Outputs> {
        let shape = input.shape();
        let t = match input.data() {
            TensorData::F32(v) => tract_ndarray::ArrayD::from_shape_vec(&shape[..], v.clone()).map(|a| a.into_tensor()),
            TensorData::U8(v) => tract_ndarray::ArrayD::from_shape_vec(&shape[..], v.clone()).map(|a| a.into_tensor()),
            TensorData::I8(v) => tract_ndarray::ArrayD::from_shape_vec(&shape[..], v.clone()).map(|a| a.into_tensor()),
        }
        .map_err(|e| Error::Run(e.to_string()))?;
        let outs = self
            .inner
            .plan
            .run(tvec!(t.into_tvalue()))
            .map_err(|e| Error::Run(one_line(&e)))?;
        let values = outs
            .into_iter()
            .map(|v| {
                let t = v.into_tensor();
                let t = t.cast_to::<f32>().map_err(|e| Error::Run(one_line(&e)))?.into_owned();
                t.into_array::<f32>().map_err(|e| Error::Run(one_line(&e)))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Outputs {
            names: self.inner.output_names.clone(),
            values,
        })
    }
}

/// A model with its preprocessing buffers: runs images one after another without allocating
/// for the input.
pub struct Session {
    model: Model,
    pre: Preprocessor,
    tensor: ImgTensor,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session").field("spec", self.pre.spec()).finish()
    }
}

impl Session {
    /// Preprocess `image` (any pixel format) as the card says and run the model. Returns the
    /// outputs and the transform from image pixels to model-input pixels.
    pub fn run(&mut self, image: &ImageView<'_>) -> Result<(Outputs, Transform)> {
        let tf = self.pre.run(image, &mut self.tensor, 0)?;
        Ok((self.model.run_tensor(&self.tensor)?, tf))
    }

    /// Preprocess without running: the exact tensor the model would get.
    pub fn preprocess(&mut self, image: &ImageView<'_>) -> Result<&ImgTensor> {
        self.pre.run(image, &mut self.tensor, 0)?;
        Ok(&self.tensor)
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }
}

/// A model's outputs, by name, as `f32` arrays (quantized outputs are dequantized).
#[derive(Clone, Debug)]
pub struct Outputs {
    names: Vec<String>,
    values: Vec<tract_ndarray::ArrayD<f32>>,
}

impl Outputs {
    /// The output called `name`; the error lists the names that exist.
    pub fn get(&self, name: &str) -> Result<&tract_ndarray::ArrayD<f32>> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.values[i])
            .ok_or_else(|| Error::UnknownOutput {
                name: name.to_string(),
                available: self.names.join(", "),
            })
    }
    /// Output names, in the model's order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
    /// Output `i` in the model's order.
    pub fn by_index(&self, i: usize) -> Option<&tract_ndarray::ArrayD<f32>> {
        self.values.get(i)
    }
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
            input.shape.iter().map(Dim::to_string).collect::<Vec<_>>().join(", ")
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
        other => return Err(bad(format!("input type {other} is not supported yet (f32, u8, i8)"))),
    };
    let default_range = if dtype == DType::F32 { Range::Unit } else { Range::Raw };
    let spec = TensorSpec::new(width, height)
        .with_layout(layout)
        .with_channels(channels)
        .with_dtype(dtype)
        .with_range(c.range.unwrap_or(default_range))
        .with_mean_std(c.mean.unwrap_or([0.0; 3]), c.std.unwrap_or([1.0; 3]))
        .with_interp(c.interpolation.unwrap_or_default())
        .with_fit(c.fit.unwrap_or_default(), c.pad.unwrap_or(0));
    spec.validate().map_err(|e| bad(e.to_string()))?;
    Ok(spec)
}
