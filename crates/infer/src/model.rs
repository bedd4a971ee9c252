//! Loading a model with tract, describing it, and running it.

use crate::card::ModelCard;
use crate::error::{one_line, Error, Result};
use crate::tflite::{mend_quantized_ops, tflite_unsupported};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use tensorcv_imgproc::geometry::Transform;
use tensorcv_imgproc::tensor::{
    ChannelOrder, DType, Layout, Preprocessor, Quantization, Range, Tensor as ImgTensor,
    TensorData, TensorSpec,
};
use tensorcv_imgproc::ImageView;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::DimLike;

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
        crate::kernels::accelerate(&mut model)?.ops()
    } else {
        0
    };
    model.optimize()?;
    Ok((model, kernels))
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
    /// run tract's own operators only, without tensorcv's [`kernels`](crate::kernels) (to
    /// compare them, or to rule them out)
    pub tract_kernels: bool,
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

/// The largest model file [`Model::load`] reads (protobuf and flatbuffers both stop at 2 GiB).
pub const MAX_MODEL_BYTES: u64 = 2 << 30;

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            batch: 1,
            card: None,
            threads: 1,
            tract_kernels: false,
        }
    }
}

struct Inner {
    plan: Arc<TypedRunnableModel>,
    input_dt: DatumType,
    #[cfg(not(target_family = "wasm"))]
    executor: Option<tract_linalg::multithread::Executor>,
    /// the threads tensorcv's kernels share a run with (spinning between operators)
    #[cfg(not(target_family = "wasm"))]
    team: Option<Arc<crate::kernels::team::Team>>,
    info: ModelInfo,
    card: ModelCard,
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
    /// Load an ONNX or TFLite file; its card is the `.toml` next to it if there is one, else
    /// (ONNX) the `tensorcv.card` metadata entry, else defaults inferred from the model.
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        Self::load_with(path, LoadOptions::default())
    }

    /// [`Model::load`] with options.
    pub fn load_with(path: impl AsRef<Path>, mut options: LoadOptions) -> Result<Model> {
        let path = path.as_ref();
        let bytes = read_model_file(path)?;
        if options.card.is_none() {
            options.card = ModelCard::sidecar(path)?.map(|(card, _)| card);
        }
        Self::from_bytes_named(&bytes, &format!("'{}'", path.display()), options)
    }

    /// Load from the bytes of an ONNX or TFLite file (WASM, embedded models).
    pub fn from_bytes(bytes: &[u8], options: LoadOptions) -> Result<Model> {
        Self::from_bytes_named(bytes, "from bytes", options)
    }

    /// [`Model::from_bytes`], naming the model `what` in errors (a path, `built-in 'face'`).
    ///
    /// Bytes that are not a model give [`Error::Load`], never a panic: TFLite files are checked
    /// before tract-tflite reads them (every index a flatbuffer holds must point inside its
    /// table), and a panic of tract's or flatbuffers' own code while loading is contained and
    /// reported as [`Error::Load`] naming `what`. (The process's panic hook still runs: the
    /// `tensorcv` command installs a quiet one.)
    pub fn from_bytes_named(bytes: &[u8], what: &str, options: LoadOptions) -> Result<Model> {
        options.validate()?;
        if Format::detect(bytes) == Format::Tflite {
            crate::tflite::check_indices(bytes).map_err(|message| Error::Load {
                what: what.to_string(),
                message: format!("not a valid TFLite file: {message}"),
            })?;
        }
        let refusals = crate::memory::refusals();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Self::load_bytes(bytes, what, options)
        }))
        .unwrap_or_else(|payload| {
            let panic = crate::panic_message(&*payload);
            Err(Error::Load {
                what: what.to_string(),
                message: if crate::memory::refusals() > refusals {
                    // a refused allocation (crate::memory): the graph folds into huge tensors
                    format!("loading it needs more memory than this process may use ({panic})")
                } else {
                    format!(
                        "the model file is corrupt or unsupported (tract's loader panicked: \
                         {panic})"
                    )
                },
            })
        })
    }

    fn load_bytes(bytes: &[u8], what: &str, options: LoadOptions) -> Result<Model> {
        let load_err = |e: &dyn fmt::Display| Error::Load {
            what: what.to_string(),
            message: one_line(&e),
        };
        let format = Format::detect(bytes);
        // the model as declared (for introspection), and for ONNX the inference model whose
        // input is fixed below (tf2onnx leaves the batch symbolic)
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
                    info.inputs
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        if let Some(name) = &card.input.name {
            if *name != info.inputs[0].name {
                return Err(Error::Input {
                    input: name.clone(),
                    message: format!(
                        "the card names this input, the model's input is '{}'",
                        info.inputs[0].name
                    ),
                });
            }
        }
        let batch = options.batch;
        let spec = input_spec(&info.inputs[0], &card)?;
        let shape: TVec<usize> = spec.shape(batch).into_iter().collect();
        let elements = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if elements.is_none_or(|n| n > MAX_INPUT_ELEMENTS) {
            return Err(Error::Input {
                input: info.inputs[0].name.clone(),
                message: format!(
                    "a {:?} input is larger than the {} elements allowed",
                    spec.shape(batch),
                    MAX_INPUT_ELEMENTS
                ),
            });
        }
        let input_dt = declared.input_fact(0).map_err(|e| load_err(&e))?.datum_type;
        let bad_input = |e: &dyn fmt::Display| Error::Input {
            input: info.inputs[0].name.clone(),
            message: format!(
                "the model does not accept a {:?} tensor: {}",
                spec.shape(batch),
                one_line(&e)
            ),
        };
        // a dimension the file fixes stays as it is (the graph may rely on it)
        if let Some((i, d)) = info.inputs[0]
            .shape
            .iter()
            .enumerate()
            .find(|(i, d)| matches!(d, Dim::Fixed(n) if *n != shape[*i]))
        {
            return Err(Error::Input {
                input: info.inputs[0].name.clone(),
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
        let (optimized, kernels) = match inference {
            Some(mut inference) => {
                inference
                    .set_input_fact(0, InferenceFact::dt_shape(input_dt, shape))
                    .map_err(|e| bad_input(&e))?;
                let typed = inference.into_typed().map_err(|e| bad_input(&e))?;
                optimize(typed, !options.tract_kernels).map_err(|e| bad_input(&e))?
            }
            None => {
                let mut typed = declared;
                typed
                    .set_input_fact(0, TypedFact::dt_shape(input_dt, &*shape))
                    .map_err(|e| bad_input(&e))?;
                optimize(typed, !options.tract_kernels).map_err(|e| bad_input(&e))?
            }
        };
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
        // tensorcv's kernels get a team of threads; tract's executor only runs a model without
        // them (kernels off, or nothing they replace, as in int8 models): both at once put three
        // busy threads on two cores (measured on selfie segmentation: 3.7 ms with both, 2.9 ms
        // with the team alone; what tract still runs beside the kernels is mostly element-wise,
        // which its executor does not split)
        #[cfg(target_family = "wasm")]
        let _ = kernels; // no threads there
        #[cfg(not(target_family = "wasm"))]
        let threads = options.threads.min(available_threads());
        #[cfg(not(target_family = "wasm"))]
        let team = (threads > 1 && kernels > 0)
            .then(|| crate::kernels::team::Team::new(threads))
            .flatten()
            .map(Arc::new);
        #[cfg(not(target_family = "wasm"))]
        let executor = (threads > 1 && team.is_none())
            .then(|| tract_linalg::multithread::Executor::multithread(threads));
        Ok(Model {
            inner: Arc::new(Inner {
                plan,
                input_dt,
                #[cfg(not(target_family = "wasm"))]
                executor,
                #[cfg(not(target_family = "wasm"))]
                team,
                info,
                card,
                spec,
                batch,
                output_names,
                output_shapes,
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

    /// The outputs' names and shapes for the input this model was loaded for, in the model's
    /// order; a shape is `None` where a dimension stays symbolic (it depends on the data).
    pub fn output_shapes(&self) -> impl Iterator<Item = (&str, Option<&[usize]>)> {
        self.inner
            .output_names
            .iter()
            .zip(&self.inner.output_shapes)
            .map(|(n, s)| (n.as_str(), s.as_deref()))
    }

    /// A session: the model plus its own preprocessing buffers, for one thread.
    pub fn session(&self) -> Result<Session> {
        let pre = Preprocessor::try_new(self.inner.spec.clone())?;
        let tensor = self.inner.spec.alloc(self.inner.batch);
        let input = self.input_tensor(&tensor)?;
        Ok(Session {
            model: self.clone(),
            pre,
            tensor,
            input: Arc::new(input),
        })
    }

    /// A tract tensor of the model's input type (quantized types included) for `src`.
    fn input_tensor(&self, src: &ImgTensor) -> Result<Tensor> {
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

    /// Time one first run, then `runs` more, of inference alone on `input` (one session,
    /// its input buffer reused, as a stream runs it). Not on wasm (no clock there).
    #[cfg(not(target_family = "wasm"))]
    pub fn time_runs(&self, input: &ImgTensor, runs: usize) -> Result<RunTimes> {
        use std::time::Instant;
        let mut session = self.session()?;
        let t = Instant::now();
        session.run_tensor(input)?;
        let first = t.elapsed().as_secs_f64() * 1e3;
        let mut times = Vec::with_capacity(runs.max(1));
        for _ in 0..runs.max(1) {
            let t = Instant::now();
            session.run_tensor(input)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        let at =
            |q: f64| times[((q * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1];
        Ok(RunTimes {
            first,
            median: at(0.5),
            p95: at(0.95),
            min: times[0],
            mean: times.iter().sum::<f64>() / times.len() as f64,
            runs: times.len(),
        })
    }

    /// Time every operator over `runs` runs on `input`: tract's per-op profile, operators of
    /// the same kind summed, slowest first. Not on wasm (no clock there).
    #[cfg(not(target_family = "wasm"))]
    pub fn profile(&self, input: &ImgTensor, runs: usize) -> Result<Vec<OpTime>> {
        use std::time::Instant;
        self.check_tensor(input)?;
        let err = |e: TractError| Error::Run(one_line(&e));
        let mut state = TypedSimpleState::new(&self.inner.plan).map_err(err)?;
        let mut times: Vec<OpTime> = Vec::new();
        let run_all = || -> Result<()> {
            for _ in 0..runs.max(1) {
                let value = self.input_tensor(input)?.into_tvalue();
                state
                    .run_plan_with_eval(tvec!(value), |ctx, op_state, node, inputs| {
                        let start = Instant::now();
                        let r = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
                        let op = node.op().name().to_string();
                        let elapsed = start.elapsed();
                        match times.iter_mut().find(|t| t.op == op) {
                            Some(t) => t.time += elapsed,
                            None => times.push(OpTime {
                                op,
                                nodes: 0,
                                time: elapsed,
                            }),
                        }
                        r
                    })
                    .map_err(err)?;
            }
            Ok(())
        };
        self.threaded(run_all)?;
        let model = self.inner.plan.model();
        for t in &mut times {
            t.nodes = model
                .nodes()
                .iter()
                .filter(|n| n.op().name() == t.op)
                .count();
            t.time /= runs.max(1) as u32;
        }
        times.sort_by_key(|t| std::cmp::Reverse(t.time));
        Ok(times)
    }

    fn check_tensor(&self, input: &ImgTensor) -> Result<()> {
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

    /// Run `f` with the model's threads: the team for tensorcv's operators, or tract's executor
    /// for tract's when no kernel of tensorcv's is in the graph.
    fn threaded<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(not(target_family = "wasm"))]
        {
            let f = || match &self.inner.team {
                Some(team) => team.scope(f),
                None => f(),
            };
            match &self.inner.executor {
                Some(pool) => tract_linalg::multithread::multithread_tract_scope(pool.clone(), f),
                None => f(),
            }
        }
        #[cfg(target_family = "wasm")]
        f()
    }

    fn run_value(&self, input: TValue) -> Result<Outputs> {
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
                let t = t
                    .cast_to::<f32>()
                    .map_err(|e| Error::Run(one_line(&e)))?
                    .into_owned();
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

/// Inference times of [`Model::time_runs`], in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct RunTimes {
    /// the first run (caches cold, lazy buffers allocated)
    pub first: f64,
    /// the median of the timed runs
    pub median: f64,
    /// their 95th percentile
    pub p95: f64,
    /// the fastest
    pub min: f64,
    /// their mean
    pub mean: f64,
    /// how many runs were timed
    pub runs: usize,
}

/// One kind of operator in a [`Model::profile`]: how many nodes, and their time per run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpTime {
    /// tract's operator name (`Conv`, `MatMul`, `Add`, ...)
    pub op: String,
    /// nodes of this kind in the optimized model
    pub nodes: usize,
    /// their total time in one run
    pub time: std::time::Duration,
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

/// A model with its preprocessing buffers: runs images one after another, reusing its input
/// tensors.
pub struct Session {
    model: Model,
    pre: Preprocessor,
    tensor: ImgTensor,
    input: Arc<Tensor>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("spec", self.pre.spec())
            .finish()
    }
}

impl Session {
    /// Preprocess `image` (any pixel format) as the card says and run the model. Returns the
    /// outputs and the transform from image pixels to model-input pixels. A model loaded for a
    /// batch of N gets the image in every slot (preprocessed once); see [`Session::run_batch`].
    pub fn run(&mut self, image: &ImageView<'_>) -> Result<(Outputs, Transform)> {
        let transform = self.prepare(image)?;
        Ok((self.run_prepared()?, transform))
    }

    /// Run a batch: exactly [`Model::batch`] images, one transform each.
    pub fn run_batch(&mut self, images: &[ImageView<'_>]) -> Result<(Outputs, Vec<Transform>)> {
        if images.len() != self.model.batch() {
            return Err(Error::Input {
                input: self.model.info().inputs[0].name.clone(),
                message: format!(
                    "the model was loaded for batches of {}, {} images given",
                    self.model.batch(),
                    images.len()
                ),
            });
        }
        let transforms = images
            .iter()
            .enumerate()
            .map(|(i, image)| self.pre.run(image, &mut self.tensor, i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((self.run_prepared()?, transforms))
    }

    /// Preprocess `image` into the session's input (every batch slot), returning the transform
    /// from image pixels to model-input pixels; [`Session::run_prepared`] runs it. `run` is the
    /// two together; apart, they can be timed apart.
    pub fn prepare(&mut self, image: &ImageView<'_>) -> Result<Transform> {
        let transform = self.pre.run(image, &mut self.tensor, 0)?;
        self.tensor.repeat_first();
        Ok(transform)
    }

    /// The input made by the last [`Session::prepare`] (or `run`, `preprocess`).
    pub fn input(&self) -> &ImgTensor {
        &self.tensor
    }

    /// Preprocess without running: the exact tensor the model would get.
    pub fn preprocess(&mut self, image: &ImageView<'_>) -> Result<&ImgTensor> {
        self.prepare(image)?;
        Ok(&self.tensor)
    }

    /// Run the model on the input made by the last [`Session::prepare`] (or `run`).
    pub fn run_prepared(&mut self) -> Result<Outputs> {
        // tract has dropped its references after the previous run: reuse the input tensor
        match Arc::get_mut(&mut self.input) {
            Some(t) => fill(t, &self.tensor)?,
            None => self.input = Arc::new(self.model.input_tensor(&self.tensor)?),
        }
        self.model.run_value(self.input.clone().into_tvalue())
    }

    /// Run the model on a tensor made elsewhere (by a [`Preprocessor`] of
    /// [`Model::input_spec`] on another thread, say), reusing this session's input buffer.
    pub fn run_tensor(&mut self, input: &ImgTensor) -> Result<Outputs> {
        self.model.check_tensor(input)?;
        match Arc::get_mut(&mut self.input) {
            Some(t) => fill(t, input)?,
            None => self.input = Arc::new(self.model.input_tensor(input)?),
        }
        self.model.run_value(self.input.clone().into_tvalue())
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
    /// Outputs from names and arrays made elsewhere (another engine, a test); one array per
    /// name.
    pub fn new(names: Vec<String>, values: Vec<tract_ndarray::ArrayD<f32>>) -> Result<Outputs> {
        if names.len() != values.len() {
            return Err(Error::Run(format!(
                "{} output names for {} arrays",
                names.len(),
                values.len()
            )));
        }
        Ok(Outputs { names, values })
    }

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
        .with_fit(c.fit.unwrap_or_default(), c.pad.unwrap_or(0));
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
