//! A model: what it declares ([`ModelInfo`]), how it is loaded ([`load`]: [`ModelFile`] then
//! [`ModelFile::build`]), run ([`session`]: [`Session`], [`Outputs`]) and timed ([`profile`]).

mod load;
mod profile;
mod session;

pub use load::{read_model_file, CardSource, ModelFile, MAX_MODEL_BYTES};
pub use profile::{OpTime, RunTimes};
pub use session::{Outputs, Session};

use crate::card::ModelCard;
use crate::error::{one_line, Error, Result};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use tensorcv_imgproc::tensor::{Quantization, Tensor as ImgTensor, TensorData, TensorSpec};
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
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    /// the name in the model file
    pub name: String,
    /// dimensions, symbolic where the model leaves them open
    pub shape: Vec<Dim>,
    /// element type: `F32`, `U8`, `I8`, `I64`, ... (the integer type of quantized tensors)
    pub dtype: String,
    /// scale and zero point of a quantized tensor (`real = (q - zero_point) * scale`)
    pub quantization: Option<Quantization>,
}

impl fmt::Display for TensorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self.shape.iter().map(Dim::to_string).collect();
        write!(f, "{} [{}] {}", self.name, dims.join(", "), self.dtype)?;
        if let Some(q) = &self.quantization {
            write!(f, " (scale {}, zero point {})", q.scale, q.zero_point)?;
        }
        Ok(())
    }
}

/// The file format a model was loaded from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// ONNX (tf2onnx's output)
    #[default]
    Onnx,
    /// TensorFlow Lite flatbuffer, read by `tract-tflite`
    Tflite,
}

impl Format {
    /// TFLite files carry the identifier `TFL3` at byte 4; anything else is tried as ONNX.
    pub fn detect(bytes: &[u8]) -> Format {
        if bytes.get(4..8) == Some(b"TFL3") {
            Format::Tflite
        } else {
            Format::Onnx
        }
    }
}

/// What a model file says about itself, before any shape is fixed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelInfo {
    /// the file format
    pub format: Format,
    /// inputs, in order
    pub inputs: Vec<TensorInfo>,
    /// outputs, in order
    pub outputs: Vec<TensorInfo>,
    /// ONNX metadata (`producer_name`, `metadata_props`, ...), without the `onnx.` prefix
    pub metadata: BTreeMap<String, String>,
}

/// Options for loading.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// images per run (fixes a symbolic batch dimension); 1 to [`LoadOptions::MAX_BATCH`]
    pub batch: usize,
    /// a card to use instead of the sidecar `.toml` or the model's metadata
    pub card: Option<ModelCard>,
    /// threads for tract's matrix products and tensorcv's kernels (1: the calling thread
    /// only); 1 to [`LoadOptions::MAX_THREADS`], and never more than the cores
    /// ([`available_threads`]): more is used as that many, since threads that spin between
    /// operators on a shared core make a run hundreds of times slower. Ignored on wasm.
    pub threads: usize,
    /// run tract's own operators only, without tensorcv's operators ([`ops`](crate::ops)) (to
    /// compare them, or to rule them out)
    pub tract_only: bool,
}

impl LoadOptions {
    /// The most threads asked for (more than the cores are used as the cores).
    pub const MAX_THREADS: usize = 1024;
    /// The largest batch.
    pub const MAX_BATCH: usize = 1024;

    /// Check the options against their ranges; the error names the option.
    pub fn validate(&self) -> Result<()> {
        if !(1..=Self::MAX_THREADS).contains(&self.threads) {
            return Err(Error::Invalid {
                setting: "threads",
                message: format!("{} is not in 1..={}", self.threads, Self::MAX_THREADS),
            });
        }
        if !(1..=Self::MAX_BATCH).contains(&self.batch) {
            return Err(Error::Invalid {
                setting: "batch",
                message: format!("{} is not in 1..={}", self.batch, Self::MAX_BATCH),
            });
        }
        Ok(())
    }
}

/// The threads a model may use here: the cores the process may run on (1 on wasm, or when
/// the system does not say).
pub fn available_threads() -> usize {
    #[cfg(target_family = "wasm")]
    return 1;
    #[cfg(not(target_family = "wasm"))]
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The largest model input accepted, in elements of one batch (a card or flag asking for a
/// huge input must fail with a message, not exhaust memory): 2²⁷, 512 MiB of `f32`.
pub const MAX_INPUT_ELEMENTS: usize = 1 << 27;

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            batch: 1,
            card: None,
            threads: 1,
            tract_only: false,
        }
    }
}

/// The threads a model runs with: tensorcv's operators get a team (spinning between
/// operators); tract's executor only runs a model without them (kernels off, or nothing they
/// replace, as in int8 models): both at once put three busy threads on two cores (measured on
/// selfie segmentation: 3.7 ms with both, 2.9 ms with the team alone; what tract still runs
/// beside the kernels is mostly element-wise, which its executor does not split).
struct Threads {
    #[cfg(not(any(target_family = "wasm", target_env = "musl")))]
    executor: Option<tract_linalg::multithread::Executor>,
    #[cfg(not(target_family = "wasm"))]
    team: Option<Arc<tensorcv_kernels::team::Team>>,
}

impl Threads {
    /// `threads` (at most the cores) for a graph holding `ours` of tensorcv's operators.
    fn new(threads: usize, ours: usize) -> Threads {
        #[cfg(target_family = "wasm")]
        {
            let _ = (threads, ours); // no threads there
            Threads {}
        }
        #[cfg(not(target_family = "wasm"))]
        {
            let threads = threads.min(available_threads());
            let team = (threads > 1 && ours > 0)
                .then(|| tensorcv_kernels::team::Team::new(threads))
                .flatten()
                .map(Arc::new);
            #[cfg(not(target_env = "musl"))]
            let executor = (threads > 1 && team.is_none())
                .then(|| tract_linalg::multithread::Executor::multithread(threads));
            Threads {
                #[cfg(not(target_env = "musl"))]
                executor,
                team,
            }
        }
    }

    /// Run `f` with these threads: the team for tensorcv's operators, or tract's executor for
    /// tract's when no operator of tensorcv's is in the graph.
    fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(not(target_family = "wasm"))]
        {
            let f = || match &self.team {
                Some(team) => team.scope(f),
                None => f(),
            };
            #[cfg(not(target_env = "musl"))]
            if let Some(pool) = &self.executor {
                return tract_linalg::multithread::multithread_tract_scope(pool.clone(), f);
            }
            f()
        }
        #[cfg(target_family = "wasm")]
        f()
    }
}

struct Inner {
    plan: Arc<TypedRunnableModel>,
    input_dt: DatumType,
    threads: Threads,
    info: ModelInfo,
    card: ModelCard,
    card_source: CardSource,
    spec: TensorSpec,
    batch: usize,
    output_names: Vec<String>,
    output_shapes: Vec<Option<Vec<usize>>>,
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
    /// Inputs, outputs and metadata as the file declares them.
    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }
    /// The card in use (possibly all defaults).
    pub fn card(&self) -> &ModelCard {
        &self.inner.card
    }

    /// Where the card came from.
    pub fn card_source(&self) -> &CardSource {
        &self.inner.card_source
    }
    /// How images are turned into this model's input.
    pub fn input_spec(&self) -> &TensorSpec {
        &self.inner.spec
    }
    /// Images per run.
    pub fn batch(&self) -> usize {
        self.inner.batch
    }

    /// The outputs' names and shapes for the input this model was loaded for, in the model's
    /// order; a shape is `None` where a dimension stays symbolic (it depends on the data).
    pub fn output_shapes(&self) -> impl Iterator<Item = (&str, Option<&[usize]>)> {
        self.inner
            .output_names
            .iter()
            .zip(&self.inner.output_shapes)
            .map(|(n, s)| (n.as_str(), s.as_deref()))
    }

    /// A tract tensor of the model's input type (quantized types included) for `src`.
    pub(crate) fn input_tensor(&self, src: &ImgTensor) -> Result<Tensor> {
        let mut t = Tensor::zero_dt(self.inner.input_dt, &src.shape())
            .map_err(|e| Error::Run(one_line(&e)))?;
        fill(&mut t, src)?;
        Ok(t)
    }

    /// Run on an already prepared input tensor (its shape must match [`Model::input_spec`] and
    /// [`Model::batch`]).
    pub fn run_tensor(&self, input: &ImgTensor) -> Result<Outputs> {
        self.check_tensor(input)?;
        self.run_value(self.input_tensor(input)?.into_tvalue())
    }

    pub(crate) fn check_tensor(&self, input: &ImgTensor) -> Result<()> {
        let want = self.inner.spec.shape(self.inner.batch);
        if input.shape() != want || input.dtype() != self.inner.spec.dtype {
            return Err(Error::Input {
                input: self.inner.info.inputs[0].name.clone(),
                message: format!(
                    "expects a {:?} {} tensor, got {:?} {}",
                    want,
                    self.inner.spec.dtype,
                    input.shape(),
                    input.dtype()
                ),
            });
        }
        Ok(())
    }

    /// The optimised plan (for the profile, which wasm32-unknown-unknown lacks).
    #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
    pub(crate) fn plan(&self) -> &Arc<TypedRunnableModel> {
        &self.inner.plan
    }

    /// Run `f` with the model's threads.
    pub(crate) fn threaded<R>(&self, f: impl FnOnce() -> R) -> R {
        self.inner.threads.run(f)
    }

    pub(crate) fn run_value(&self, input: TValue) -> Result<Outputs> {
        // a model that loaded may still reach a panic in tract's code (an unusual shape); it
        // is this run's error, not the caller's crash
        let outs = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.threaded(|| self.inner.plan.run(tvec!(input)))
        }))
        .map_err(|payload| {
            Error::Run(format!(
                "tract panicked: {}",
                crate::panic_message(&*payload)
            ))
        })?;
        let outs = outs.map_err(|e| Error::Run(one_line(&e)))?;
        let values = outs
            .into_iter()
            .map(|v| {
                let t = v.into_tensor();
                // an f32 output is taken as it is (a cast would copy it)
                let t = if t.datum_type() == f32::datum_type() {
                    t
                } else {
                    t.cast_to::<f32>()
                        .map_err(|e| Error::Run(one_line(&e)))?
                        .into_owned()
                };
                t.into_plain_array::<f32>()
                    .map_err(|e| Error::Run(one_line(&e)))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Outputs {
            names: self.inner.output_names.clone(),
            values,
        })
    }
}

/// Copy imgproc's tensor into tract's (same element size; quantized types share the bytes).
fn fill(dst: &mut Tensor, src: &ImgTensor) -> Result<()> {
    let err = |e: TractError| Error::Run(one_line(&e));
    let mut plain = dst.try_as_plain_ram_mut().map_err(err)?;
    match src.data() {
        TensorData::F32(v) => plain.as_slice_mut::<f32>().map_err(err)?.copy_from_slice(v),
        TensorData::U8(v) => plain.as_slice_mut::<u8>().map_err(err)?.copy_from_slice(v),
        TensorData::I8(v) => plain.as_slice_mut::<i8>().map_err(err)?.copy_from_slice(v),
    }
    Ok(())
}
