//! A served model: loaded once per batch size it runs at, described as the protocols describe
//! models (inputs and outputs with datatypes and shapes, `-1` where free), its instances
//! started on its queue; requests are submitted here and answered by an instance.

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::scheduler::{Answer, Instance, Job, Payload, Queue, RecordOptions};
use crate::settings::ServingSettings;
use crate::tensor::{DataType, OutputTensor, TensorMeta};
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};
use tensorcv_imgproc::io::DecodeLimits;
use tensorcv_imgproc::tensor::Preprocessor;
use tensorcv_infer::Format;
use tensorcv_infer::{Dim, LoadOptions, Model, ModelCard, ModelFile, Task};
use tensorcv_tasks::pipeline::{Pipeline, Postprocess};
use tensorcv_tasks::record::Record;
use tokio::sync::oneshot;

/// Where a model comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// a model built into the binary, by name
    Builtin(&'static str),
    /// a model file (its card the `.toml` beside it)
    File(PathBuf),
}

impl Source {
    /// A built-in's name or a path (a name that is no built-in is a path).
    pub fn parse(spec: &str) -> Source {
        match tensorcv_zoo::find(spec) {
            Some(b) => Source::Builtin(b.name),
            None => Source::File(PathBuf::from(spec)),
        }
    }

    /// For messages: `built-in 'face'`, `'models/x.onnx'`.
    pub fn describe(&self) -> String {
        match self {
            Source::Builtin(name) => format!("built-in '{name}'"),
            Source::File(path) => format!("'{}'", path.display()),
        }
    }

    /// What identifies this version of the model's files: sizes and modification times of the
    /// model and its card (built-ins never change).
    pub(crate) fn fingerprint(&self) -> Option<Vec<(u64, Option<SystemTime>)>> {
        let Source::File(path) = self else {
            return Some(Vec::new());
        };
        let stat = |p: &Path| {
            std::fs::metadata(p)
                .ok()
                .map(|m| (m.len(), m.modified().ok()))
        };
        let mut v = vec![stat(path)?];
        v.extend(stat(&path.with_extension("toml")));
        Some(v)
    }

    /// Parse the model and resolve its card; the name it is served under by default (a
    /// built-in's name; else the card's `[model] name`, else the file stem).
    fn open(&self) -> Result<(ModelFile, String)> {
        let what = self.describe();
        let load = |e: tensorcv_infer::Error| Error::Load {
            what: what.clone(),
            message: e.to_string(),
        };
        match self {
            Source::Builtin(name) => {
                let b = tensorcv_zoo::find(name).ok_or_else(|| Error::Load {
                    what: what.clone(),
                    message: "no such built-in".into(),
                })?;
                let mut file = ModelFile::from_bytes(b.bytes, &what).map_err(load)?;
                file.set_card(ModelCard::parse(b.card, &what).map_err(load)?);
                Ok((file, b.name.to_string()))
            }
            Source::File(path) => {
                let file = ModelFile::open(path).map_err(load)?;
                let stem = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default();
                let name = file.card().model.name.clone().unwrap_or(stem);
                Ok((file, name))
            }
        }
    }

    /// The detector a landmark model's card names (`[landmarks] detector`): a built-in by
    /// name, else a file beside the model.
    fn detector(&self, card: &ModelCard) -> Option<Source> {
        if card.model.task != Task::Landmarks {
            return None;
        }
        let det = card.landmarks.as_ref()?.get("detector")?.as_str()?;
        if tensorcv_zoo::find(det).is_some() {
            return Some(Source::parse(det));
        }
        match self {
            Source::Builtin(_) => Some(Source::parse(det)),
            Source::File(path) => Some(Source::File(
                path.parent().unwrap_or(Path::new(".")).join(det),
            )),
        }
    }
}

/// Counts and times for the statistics endpoints (Triton's `ModelStatistics`).
#[derive(Debug, Default)]
pub struct Stats {
    /// requests answered with a result
    pub success: AtomicU64,
    /// requests answered with an error
    pub failure: AtomicU64,
    /// batch entries run
    pub inferences: AtomicU64,
    /// batches run
    pub executions: AtomicU64,
    /// nanoseconds of successful requests, arrival to answer
    pub success_ns: AtomicU64,
    /// nanoseconds of failed requests
    pub failure_ns: AtomicU64,
    /// the last request's arrival, milliseconds since the Unix epoch
    pub last_ms: AtomicU64,
}

/// A model being served.
#[derive(Debug)]
pub struct Served {
    /// the name requests use
    pub name: String,
    /// where it came from
    pub source: Source,
    /// ONNX or TFLite
    pub format: Format,
    /// the card's task
    pub task: Task,
    /// the card's labels
    pub labels: Vec<String>,
    /// the card's description
    pub description: Option<String>,
    /// the input (one image tensor), `-1` for a free batch
    pub input: TensorMeta,
    /// the outputs (always `FP32`: quantized outputs are dequantized)
    pub outputs: Vec<TensorMeta>,
    /// the input has a batch dimension the outputs keep: requests hold 1 to `max_batch_size`
    /// entries and are batched together
    pub batch_dim: bool,
    /// the settings in effect (`max_batch_size` 1 without a batch dimension)
    pub settings: ServingSettings,
    /// the batch sizes a plan was built for
    pub plans: Vec<usize>,
    /// elements of one batch entry (without a batch dimension: of the whole input)
    pub(crate) item_elements: usize,
    pub(crate) fingerprint: Option<Vec<(u64, Option<SystemTime>)>>,
    /// counts and times
    pub stats: Arc<Stats>,
    queue: Arc<Queue>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        // the instances finish what waits and end
        self.queue.close();
    }
}

/// Plan sizes for batches of up to `max`: 1, 2, 4, … below `max`, and `max`.
fn plan_sizes(max: usize) -> Vec<usize> {
    let mut sizes: Vec<usize> = std::iter::successors(Some(1usize), |&n| n.checked_mul(2))
        .take_while(|&n| n < max)
        .collect();
    sizes.push(max);
    sizes
}

/// Build `file` for a batch of `batch`.
fn build(file: &ModelFile, what: &str, batch: usize, threads: usize) -> Result<Model> {
    file.clone()
        .build(&LoadOptions {
            batch,
            threads,
            ..LoadOptions::default()
        })
        .map_err(|e| Error::Load {
            what: what.to_string(),
            message: e.to_string(),
        })
}

/// Whether every output of `model` (built for `batch`) keeps the batch as its first dimension.
fn keeps_batch(model: &Model, batch: usize) -> bool {
    model
        .output_shapes()
        .all(|(_, s)| s.is_some_and(|s| s.first() == Some(&batch)))
}

impl Served {
    /// Load `source` (served as `name`, else its default name), build its plans and start its
    /// instances.
    pub fn load(
        source: &Source,
        name: Option<&str>,
        defaults: &ServingSettings,
        limits: DecodeLimits,
        metrics: &Arc<Metrics>,
    ) -> Result<Served> {
        let what = source.describe();
        let fingerprint = source.fingerprint();
        let (file, default_name) = source.open()?;
        let name = name.map_or(default_name, str::to_string);
        if name.is_empty() || name.contains(['/', ':', '?', '#']) || name.len() > 200 {
            return Err(Error::Load {
                what,
                message: format!(
                    "'{name}' cannot name a model in a URL (no '/', ':', '?', '#'; 1 to 200 bytes)"
                ),
            });
        }
        let card = file.card().clone();
        let mut settings = defaults.with_card(card.serving.as_ref(), &what)?;
        let declared = file.info().inputs[0].shape.first().cloned();
        let free = matches!(declared, Some(Dim::Symbol(_)));
        let fixed = match declared {
            Some(Dim::Fixed(n)) if n > 0 => n,
            _ => 1,
        };
        let threads = settings.threads;
        // threads > 1: each instance gets its own plans (their thread teams are not shared)
        let plan_sets = if threads > 1 { settings.instances } else { 1 };
        let mut sizes = if free {
            plan_sizes(settings.max_batch_size)
        } else {
            vec![fixed]
        };
        let mut sets: Vec<Vec<Model>> = Vec::with_capacity(plan_sets);
        for _ in 0..plan_sets {
            let mut models = Vec::with_capacity(sizes.len());
            for &size in &sizes {
                models.push(build(&file, &what, size, threads)?);
            }
            sets.push(models);
        }
        let mut batch_dim = free && sets[0].iter().zip(&sizes).all(|(m, &s)| keeps_batch(m, s));
        if free && !batch_dim {
            // outputs sized by the data (a model's own NMS, say): one image per run
            tracing::warn!(
                model = %name,
                "the outputs do not keep the batch dimension: requests run one at a time"
            );
            sizes = vec![1];
            for set in &mut sets {
                set.truncate(1);
            }
            batch_dim = false;
        }
        if !batch_dim {
            settings.max_batch_size = 1;
        }
        let first = &sets[0][0];
        let spec = first.input_spec().clone();
        let input_shape: Vec<i64> = spec
            .shape(sizes[0])
            .iter()
            .enumerate()
            .map(|(i, &d)| if i == 0 && batch_dim { -1 } else { d as i64 })
            .collect();
        let input = TensorMeta {
            name: file.info().inputs[0].name.clone(),
            datatype: DataType::of(spec.dtype),
            shape: input_shape,
        };
        let outputs = first
            .output_shapes()
            .zip(&file.info().outputs)
            .map(|((name, shape), declared)| TensorMeta {
                name: name.to_string(),
                datatype: DataType::Fp32,
                shape: match shape {
                    Some(s) => s
                        .iter()
                        .enumerate()
                        .map(|(i, &d)| if i == 0 && batch_dim { -1 } else { d as i64 })
                        .collect(),
                    None => declared
                        .shape
                        .iter()
                        .map(|d| match d {
                            Dim::Fixed(n) => *n as i64,
                            Dim::Symbol(_) => -1,
                        })
                        .collect(),
                },
            })
            .collect();
        let item_elements =
            spec.shape(1).iter().product::<usize>() * if batch_dim { 1 } else { sizes[0] };
        let post = Postprocess::for_model(first, None).map_err(|e| Error::Load {
            what: what.clone(),
            message: e.to_string(),
        })?;
        let detector = match source.detector(&card) {
            Some(det) => {
                let context = format!("the detector {} its card names", det.describe());
                let (det_file, _) = det.open().map_err(|e| Error::Load {
                    what: what.clone(),
                    message: format!("{context}: {e}"),
                })?;
                Some(build(&det_file, &context, 1, threads)?)
            }
            None => None,
        };
        let stats = Arc::new(Stats::default());
        let queue = Arc::new(Queue::new(&name, settings.max_queue_size, metrics.clone()));
        let mut workers = Vec::with_capacity(settings.instances);
        for i in 0..settings.instances {
            let models = &sets[i % sets.len()];
            let err = |e: String| Error::Load {
                what: what.clone(),
                message: e,
            };
            let plans = models
                .iter()
                .zip(&sizes)
                .map(|(m, &s)| m.session().map(|session| (s, session)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| err(e.to_string()))?;
            let inputs = models
                .iter()
                .zip(&sizes)
                .map(|(m, &s)| m.input_spec().alloc(s))
                .collect();
            let pipeline = match &detector {
                Some(det) => Some(
                    Pipeline::new(&models[0], None)
                        .and_then(|p| p.with_regions_from(det))
                        .map_err(|e| err(e.to_string()))?,
                ),
                None => None,
            };
            let instance = Instance {
                model: name.clone(),
                plans,
                inputs,
                batch_dim,
                pre: Preprocessor::try_new(spec.clone()).map_err(|e| err(e.to_string()))?,
                post: post.clone(),
                labels: post.labels().to_vec(),
                pipeline,
                landmarks: post.task() == Task::Landmarks,
                limits,
                metrics: metrics.clone(),
                stats: stats.clone(),
            };
            let queue = queue.clone();
            let (max, delay) = (settings.max_batch_size, settings.max_queue_delay);
            let handle = std::thread::Builder::new()
                .name(format!("serve-{i}-{name}"))
                .spawn(move || instance.serve(queue, max, delay))
                .map_err(|e| err(format!("cannot start an instance: {e}")))?;
            workers.push(handle);
        }
        tracing::info!(
            model = %name,
            source = %what,
            task = card.model.task.name(),
            instances = settings.instances,
            max_batch_size = settings.max_batch_size,
            plans = ?sizes,
            "model loaded"
        );
        Ok(Served {
            name,
            source: source.clone(),
            format: file.info().format,
            task: post.task(),
            labels: post.labels().to_vec(),
            description: card.model.description.clone(),
            input,
            outputs,
            batch_dim,
            settings,
            plans: sizes,
            item_elements,
            fingerprint,
            stats,
            queue,
            workers: Mutex::new(workers),
        })
    }

    /// The platform name the protocols report.
    pub fn platform(&self) -> &'static str {
        match self.format {
            Format::Onnx => "tensorcv_onnx",
            Format::Tflite => "tensorcv_tflite",
        }
    }

    /// A shape as Triton's model configuration gives it: without the batch dimension when the
    /// model has one (`max_batch_size` says it).
    pub fn config_dims(&self, shape: &[i64]) -> Vec<i64> {
        shape
            .iter()
            .skip(usize::from(self.batch_dim))
            .copied()
            .collect()
    }

    /// The input's layout as Triton's configuration names it (`FORMAT_NHWC`, `FORMAT_NCHW`;
    /// channels of 1 to 4 last mean NHWC).
    pub fn input_format(&self) -> &'static str {
        match self.input.shape.len() {
            4 if (1..=4).contains(&self.input.shape[3]) => "FORMAT_NHWC",
            4 => "FORMAT_NCHW",
            _ => "FORMAT_NONE",
        }
    }

    /// Requests waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.queue.depth()
    }

    /// Stop taking requests; those waiting are still answered.
    pub fn close(&self) {
        self.queue.close();
    }

    /// Wait for the instances to end (after [`Served::close`]), at most until `deadline`;
    /// whether they all did.
    pub fn join(&self, deadline: Instant) -> bool {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(w) = workers.last() {
            if !w.is_finished() {
                if Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            if let Some(w) = workers.pop() {
                let _ = w.join();
            }
        }
        true
    }

    /// Queue `payload` and wait for its answer, at most `timeout` (the model's default when
    /// `None`).
    async fn submit(
        &self,
        payload: Payload,
        items: usize,
        timeout: Option<Duration>,
    ) -> Result<Answer> {
        let arrived = Instant::now();
        let timeout = timeout
            .unwrap_or(self.settings.timeout)
            .min(ServingSettings::MAX_TIMEOUT);
        let (reply, answer) = oneshot::channel();
        self.stats.last_ms.store(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            Ordering::Relaxed,
        );
        self.queue.push(Job {
            payload,
            items,
            arrived,
            deadline: arrived + timeout,
            reply,
        })?;
        let result = match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(answer)) => answer,
            // the instance dropped it: the model is going away
            Ok(Err(_)) => Err(Error::Unavailable(self.name.clone())),
            Err(_) => Err(Error::Deadline {
                ms: timeout.as_millis() as u64,
            }),
        };
        let ns = arrived.elapsed().as_nanos() as u64;
        let (count, time) = match result {
            Ok(_) => (&self.stats.success, &self.stats.success_ns),
            Err(_) => (&self.stats.failure, &self.stats.failure_ns),
        };
        count.fetch_add(1, Ordering::Relaxed);
        time.fetch_add(ns, Ordering::Relaxed);
        result
    }

    /// Run the model on a request's tensor: `data` holds `items` batch entries (one for a
    /// model without a batch dimension) of the input's type, little-endian. Its rows of every
    /// output come back.
    pub async fn infer(
        &self,
        data: Bytes,
        items: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<OutputTensor>> {
        let items = if self.batch_dim { items } else { 1 };
        if items == 0 || items > self.settings.max_batch_size {
            return Err(Error::BadRequest(format!(
                "a batch of {items} is not in 1..={} (the model's max_batch_size)",
                self.settings.max_batch_size
            )));
        }
        let size = self.input.datatype.size().unwrap_or(1);
        if data.len() != items * self.item_elements * size {
            return Err(Error::Internal(format!(
                "{} bytes for {items} entries of {} elements",
                data.len(),
                self.item_elements
            )));
        }
        match self.submit(Payload::Tensor(data), items, timeout).await? {
            Answer::Outputs(o) => Ok(o),
            Answer::Record(_) => Err(Error::Internal("a record for a tensor".into())),
        }
    }

    /// Run the model on an encoded image preprocessed as its card says: its outputs (one
    /// batch entry).
    pub async fn infer_image(
        &self,
        image: Bytes,
        timeout: Option<Duration>,
    ) -> Result<Vec<OutputTensor>> {
        match self
            .submit(Payload::ImageOutputs(image), 1, timeout)
            .await?
        {
            Answer::Outputs(o) => Ok(o),
            Answer::Record(_) => Err(Error::Internal("a record for outputs".into())),
        }
    }

    /// The command's record of an encoded image (`tensorcv run --json`'s, `source` its name).
    pub async fn analyze(
        &self,
        image: Bytes,
        source: &str,
        options: RecordOptions,
        timeout: Option<Duration>,
    ) -> Result<Record> {
        let payload = Payload::ImageRecord {
            bytes: image,
            source: source.to_string(),
            options: Box::new(options),
        };
        match self.submit(payload, 1, timeout).await? {
            Answer::Record(r) => Ok(*r),
            Answer::Outputs(_) => Err(Error::Internal("outputs for a record".into())),
        }
    }

    /// Elements of one batch entry of the input.
    pub fn item_elements(&self) -> usize {
        self.item_elements
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_powers_of_two_and_the_largest_batch() {
        assert_eq!(plan_sizes(1), [1]);
        assert_eq!(plan_sizes(8), [1, 2, 4, 8]);
        assert_eq!(plan_sizes(6), [1, 2, 4, 6]);
    }
}
