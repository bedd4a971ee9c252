//! A model's queue and its instances: requests wait in one bounded queue (full: refused at
//! once, the client backs off), each instance — a thread with its own sessions and buffers —
//! takes the oldest request and, where the model has a free batch dimension, the requests
//! behind it up to the largest batch, waiting at most the batching delay from the oldest one's
//! arrival (Triton's dynamic batcher). A batch runs on the smallest plan that holds it (plans
//! are built for 1, 2, 4, … and the largest batch), padded; each request gets its rows back.
//!
//! Encoded images are decoded and preprocessed by the instance, into their batch slots, with
//! the card's preprocessing: the numbers are `tensorcv detect`'s. A request whose deadline has
//! passed, or whose client has gone, is dropped before it is run.

use crate::error::{Error, Result};
use crate::metrics::{Metrics, Stage};
use crate::tensor::OutputTensor;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tensorcv_imgproc::io::{imdecode, DecodeLimits, DecodeOptions};
use tensorcv_imgproc::tensor::{Preprocessor, Tensor};
use tensorcv_imgproc::Image;
use tensorcv_infer::ndarray::{ArrayD, Axis, Slice};
use tensorcv_infer::{Outputs, Session};
use tensorcv_tasks::pipeline::{Analysis, Outcome, Overrides, Pipeline, Postprocess, Timings};
use tensorcv_tasks::record::{Record, RleRecord};
use tokio::sync::oneshot;

/// How a segmentation mask is returned in a record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MaskFormat {
    /// class shares only
    #[default]
    None,
    /// the class-index mask as a PNG, in a `data:image/png;base64,` URL (`segmentation.mask`)
    Png,
    /// each class's pixels as COCO run lengths (`segmentation.rle`)
    Rle,
}

/// What a request for an image wants back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordOptions {
    /// thresholds over the card's
    pub overrides: Overrides,
    /// the mask's form
    pub mask: MaskFormat,
}

/// What a request gives the model.
#[derive(Debug)]
pub(crate) enum Payload {
    /// the elements of `items` batch entries (or, for a model without a batch dimension, of
    /// its whole input), the model's input type, little-endian
    Tensor(Bytes),
    /// an encoded image, answered with the model's outputs
    ImageOutputs(Bytes),
    /// an encoded image, answered with the command's record
    ImageRecord {
        bytes: Bytes,
        source: String,
        options: Box<RecordOptions>,
    },
}

/// What a request gets back.
#[derive(Debug)]
pub(crate) enum Answer {
    /// the request's rows of every output
    Outputs(Vec<OutputTensor>),
    /// the command's record of the image
    Record(Box<Record>),
}

/// A request waiting for an instance.
#[derive(Debug)]
pub(crate) struct Job {
    pub payload: Payload,
    /// batch entries it holds
    pub items: usize,
    pub arrived: Instant,
    pub deadline: Instant,
    pub reply: oneshot::Sender<Result<Answer>>,
}

impl Job {
    /// Whether it can share a batch with others: tensors and images answered with outputs
    /// always; records unless a detector runs first.
    fn batchable(&self, two_stage: bool) -> bool {
        !(two_stage && matches!(self.payload, Payload::ImageRecord { .. }))
    }

    fn answer(self, answer: Result<Answer>) {
        // a client that went away no longer waits
        let _ = self.reply.send(answer);
    }
}

struct State {
    jobs: VecDeque<Job>,
    closed: bool,
}

/// A model's bounded request queue.
pub(crate) struct Queue {
    model: String,
    state: Mutex<State>,
    ready: Condvar,
    capacity: usize,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("model", &self.model)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Queue {
    pub fn new(model: &str, capacity: usize, metrics: Arc<Metrics>) -> Self {
        Queue {
            model: model.to_string(),
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            capacity,
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // a worker that panicked while holding the lock left a consistent queue (jobs are
        // only pushed and popped whole)
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue a job; full or closed: refused at once (the job is dropped, its client told).
    pub fn push(&self, job: Job) -> Result<()> {
        let mut st = self.lock();
        if st.closed {
            return Err(Error::Unavailable(self.model.clone()));
        }
        if st.jobs.len() >= self.capacity {
            return Err(Error::QueueFull {
                model: self.model.clone(),
                capacity: self.capacity,
            });
        }
        st.jobs.push_back(job);
        self.metrics.queue_depth(&self.model, st.jobs.len());
        drop(st);
        self.ready.notify_all();
        Ok(())
    }

    /// Refuse new jobs; the instances finish those waiting and end.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Requests waiting.
    pub fn depth(&self) -> usize {
        self.lock().jobs.len()
    }

    /// The next batch: the oldest job and, when it can be batched, the batchable jobs behind
    /// it up to `max_items` entries, waiting until `delay` after the oldest one's arrival for
    /// more. `None` once the queue is closed and empty.
    fn take(&self, max_items: usize, delay: Duration, two_stage: bool) -> Option<Vec<Job>> {
        let mut st = self.lock();
        loop {
            if !st.jobs.is_empty() {
                break;
            }
            if st.closed {
                return None;
            }
            st = self.ready.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        let first = st.jobs.pop_front()?;
        let mut items = first.items;
        let batching = first.batchable(two_stage) && max_items > 1;
        let until = first.arrived + delay;
        let mut batch = vec![first];
        if batching {
            loop {
                while let Some(next) = st.jobs.front() {
                    if !next.batchable(two_stage) || items + next.items > max_items {
                        break;
                    }
                    items += next.items;
                    batch.extend(st.jobs.pop_front());
                }
                let blocked = st.jobs.front().is_some();
                let now = Instant::now();
                if items >= max_items || blocked || st.closed || now >= until {
                    break;
                }
                st = self
                    .ready
                    .wait_timeout(st, until - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        self.metrics.queue_depth(&self.model, st.jobs.len());
        drop(st);
        // a batch taken may leave work for another instance
        self.ready.notify_all();
        Some(batch)
    }
}

/// How an instance runs its model.
pub(crate) struct Instance {
    pub model: String,
    /// sessions, one per plan size, smallest first
    pub plans: Vec<(usize, Session)>,
    /// a batch input per plan, reused
    pub inputs: Vec<Tensor>,
    /// the model has a batch dimension its outputs keep (rows are split per request)
    pub batch_dim: bool,
    pub pre: Preprocessor,
    pub post: Postprocess,
    pub labels: Vec<String>,
    /// a landmark model after its detector (records go through it, one image at a time)
    pub pipeline: Option<Pipeline>,
    /// a landmark model's records list landmarks even when none were found
    pub landmarks: bool,
    pub limits: DecodeLimits,
    pub metrics: Arc<Metrics>,
    pub stats: Arc<crate::model::Stats>,
}

impl Instance {
    /// Take batches from `queue` until it is closed and empty.
    pub fn serve(mut self, queue: Arc<Queue>, max_items: usize, delay: Duration) {
        let two_stage = self.pipeline.is_some();
        while let Some(jobs) = queue.take(max_items, delay, two_stage) {
            let now = Instant::now();
            let jobs: Vec<Job> = jobs
                .into_iter()
                .filter_map(|job| {
                    self.metrics
                        .stage(&self.model, Stage::Queue, now - job.arrived);
                    if job.reply.is_closed() {
                        return None; // the client went away
                    }
                    if now >= job.deadline {
                        let ms = (job.deadline - job.arrived).as_millis() as u64;
                        job.answer(Err(Error::Deadline { ms }));
                        return None;
                    }
                    Some(job)
                })
                .collect();
            if jobs.is_empty() {
                continue;
            }
            // a panic in our code or the model's is this batch's error, not the instance's end
            let model = self.model.clone();
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.run(jobs);
            }));
            if let Err(payload) = caught {
                tracing::error!(
                    model = %model,
                    panic = %tensorcv_infer::panic_message(&*payload),
                    "a batch panicked; its requests were dropped"
                );
            }
        }
    }

    fn run(&mut self, mut jobs: Vec<Job>) {
        if jobs.len() == 1 && self.pipeline.is_some() {
            if let Payload::ImageRecord { .. } = jobs[0].payload {
                let job = jobs.remove(0);
                let answer = self.run_pipeline(&job);
                job.answer(answer);
                return;
            }
        }
        // images first decoded: one that cannot be is answered now and leaves the batch
        let mut decoded: Vec<Option<(Image, f64)>> = Vec::with_capacity(jobs.len());
        let mut kept = Vec::with_capacity(jobs.len());
        for job in jobs {
            match &job.payload {
                Payload::Tensor(_) => {
                    decoded.push(None);
                    kept.push(job);
                }
                Payload::ImageOutputs(bytes) | Payload::ImageRecord { bytes, .. } => {
                    match self.decode(bytes) {
                        Ok(d) => {
                            decoded.push(Some(d));
                            kept.push(job);
                        }
                        Err(e) => job.answer(Err(e)),
                    }
                }
            }
        }
        if kept.is_empty() {
            return;
        }
        let items: usize = kept.iter().map(|j| j.items).sum();
        let Some(plan) = self.plans.iter().position(|(size, _)| *size >= items) else {
            let e = Error::Internal(format!("a batch of {items} is larger than any plan"));
            for job in kept {
                job.answer(Err(Error::Internal(e.to_string())));
            }
            return;
        };
        let size = self.plans[plan].0;
        let t = Instant::now();
        let mut transforms = Vec::with_capacity(kept.len());
        let mut failed: Vec<Option<Error>> = (0..kept.len()).map(|_| None).collect();
        {
            let input = &mut self.inputs[plan];
            let per_item = input.data_mut().len() / size;
            let mut slot = 0;
            for (i, job) in kept.iter().enumerate() {
                match (&job.payload, &decoded[i]) {
                    (Payload::Tensor(bytes), _) => {
                        let at = slot * per_item;
                        input.data_mut()[at..at + bytes.len()].copy_from_slice(bytes);
                        transforms.push(None);
                    }
                    (_, Some((image, _))) => {
                        match self.pre.run(&image.view(), input, slot) {
                            Ok(tr) => transforms.push(Some(tr)),
                            Err(e) => {
                                failed[i] = Some(Error::Image(e.to_string()));
                                transforms.push(None);
                            }
                        }
                        // a model without a batch dimension takes the image in every slot
                        if !self.batch_dim {
                            input.repeat_first();
                        }
                    }
                    (_, None) => transforms.push(None),
                }
                slot += job.items;
            }
        }
        let pre_ms = t.elapsed();
        self.metrics.stage(&self.model, Stage::Preprocess, pre_ms);
        self.metrics.batch(&self.model, items);
        {
            use std::sync::atomic::Ordering::Relaxed;
            self.stats.inferences.fetch_add(items as u64, Relaxed);
            self.stats.executions.fetch_add(1, Relaxed);
        }
        let t = Instant::now();
        let outputs = self.plans[plan].1.run_tensor(&self.inputs[plan]);
        let infer_ms = t.elapsed();
        self.metrics.stage(&self.model, Stage::Inference, infer_ms);
        let outputs = match outputs {
            Ok(o) => o,
            Err(e) => {
                let message = e.to_string();
                for job in kept {
                    job.answer(Err(Error::Run {
                        model: self.model.clone(),
                        message: message.clone(),
                    }));
                }
                return;
            }
        };
        let mut row = 0;
        for (i, job) in kept.into_iter().enumerate() {
            let rows = row..row + job.items;
            row += job.items;
            if let Some(e) = failed[i].take() {
                job.answer(Err(e));
                continue;
            }
            let t = Instant::now();
            let answer = match &job.payload {
                Payload::Tensor(_) | Payload::ImageOutputs(_) => {
                    Ok(Answer::Outputs(self.rows(&outputs, rows)))
                }
                Payload::ImageRecord {
                    source, options, ..
                } => match (&decoded[i], &transforms[i]) {
                    (Some((image, decode_ms)), Some(transform)) => {
                        let timings = Timings {
                            preprocess: pre_ms.as_secs_f64() * 1e3 / items as f64,
                            inference: infer_ms.as_secs_f64() * 1e3,
                            postprocess: 0.0,
                        };
                        self.record(
                            &outputs, rows.start, transform, image, source, options, *decode_ms,
                            timings,
                        )
                    }
                    _ => Err(Error::Internal("an image without its transform".into())),
                },
            };
            self.metrics
                .stage(&self.model, Stage::Postprocess, t.elapsed());
            job.answer(answer);
        }
    }

    /// Decode an encoded image as `cv2.imread` would (BGR, EXIF orientation applied), within
    /// the limits; the decode time in milliseconds.
    fn decode(&self, bytes: &[u8]) -> Result<(Image, f64)> {
        let t = Instant::now();
        let options = DecodeOptions {
            limits: self.limits,
            ..DecodeOptions::default()
        };
        let image = imdecode(bytes, &options).map_err(|e| Error::Image(e.to_string()))?;
        let took = t.elapsed();
        self.metrics.stage(&self.model, Stage::Decode, took);
        Ok((image, took.as_secs_f64() * 1e3))
    }

    /// Rows `rows` of every output (every output whole for a model without a batch
    /// dimension).
    fn rows(&self, outputs: &Outputs, rows: std::ops::Range<usize>) -> Vec<OutputTensor> {
        outputs
            .names()
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                let a = outputs.by_index(i)?;
                let part = if self.batch_dim {
                    a.slice_axis(Axis(0), Slice::from(rows.clone()))
                } else {
                    a.view()
                };
                // contiguous rows: one copy of memory (the iterator is slower)
                let data = match part.as_slice() {
                    Some(s) => s.to_vec(),
                    None => part.iter().copied().collect(),
                };
                Some(OutputTensor {
                    name: name.clone(),
                    shape: part.shape().to_vec(),
                    data,
                })
            })
            .collect()
    }

    /// Outputs of one image of the batch, as post-processing expects them (a batch of 1).
    fn one(&self, outputs: &Outputs, row: usize) -> Result<Outputs> {
        if !self.batch_dim {
            return Ok(outputs.clone());
        }
        let values: Vec<ArrayD<f32>> = (0..outputs.names().len())
            .filter_map(|i| outputs.by_index(i))
            .map(|a| a.slice_axis(Axis(0), Slice::from(row..row + 1)).to_owned())
            .collect();
        Outputs::new(outputs.names().to_vec(), values).map_err(|e| Error::Run {
            model: self.model.clone(),
            message: e.to_string(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        outputs: &Outputs,
        row: usize,
        transform: &tensorcv_imgproc::geometry::Transform,
        image: &Image,
        source: &str,
        options: &RecordOptions,
        decode_ms: f64,
        mut timings: Timings,
    ) -> Result<Answer> {
        let t = Instant::now();
        let run = |e: tensorcv_tasks::Error| Error::Run {
            model: self.model.clone(),
            message: e.to_string(),
        };
        let post = self
            .post
            .with_overrides(&options.overrides)
            .map_err(|e| match e {
                tensorcv_tasks::Error::Invalid { .. } => Error::BadRequest(e.to_string()),
                e => run(e),
            })?;
        let one = self.one(outputs, row)?;
        let (w, h) = (image.width(), image.height());
        let outcome = post.apply(&one, transform, w, h).map_err(run)?;
        timings.postprocess = t.elapsed().as_secs_f64() * 1e3;
        let analysis = Analysis {
            width: w,
            height: h,
            outcome,
            timings,
        };
        self.to_record(&analysis, source, options, decode_ms)
    }

    /// A landmark model after its detector, on one image.
    fn run_pipeline(&mut self, job: &Job) -> Result<Answer> {
        let Payload::ImageRecord {
            bytes,
            source,
            options,
        } = &job.payload
        else {
            return Err(Error::Internal("the pipeline takes image records".into()));
        };
        if !options.overrides.is_empty() {
            return Err(Error::BadRequest(
                "thresholds cannot be changed per request on a model with a detector first".into(),
            ));
        }
        let (image, decode_ms) = self.decode(bytes)?;
        let Some(pipeline) = self.pipeline.as_mut() else {
            return Err(Error::Internal("no pipeline".into()));
        };
        let analysis = pipeline.process(&image.view()).map_err(|e| Error::Run {
            model: self.model.clone(),
            message: e.to_string(),
        })?;
        let t = &analysis.timings;
        self.metrics.stage(
            &self.model,
            Stage::Preprocess,
            Duration::from_secs_f64(t.preprocess / 1e3),
        );
        self.metrics.stage(
            &self.model,
            Stage::Inference,
            Duration::from_secs_f64(t.inference / 1e3),
        );
        self.metrics.stage(
            &self.model,
            Stage::Postprocess,
            Duration::from_secs_f64(t.postprocess / 1e3),
        );
        self.to_record(&analysis, source, options, decode_ms)
    }

    /// The command's record of an analysis, with the mask as asked.
    fn to_record(
        &self,
        analysis: &Analysis,
        source: &str,
        options: &RecordOptions,
        decode_ms: f64,
    ) -> Result<Answer> {
        let (w, h) = (analysis.width, analysis.height);
        let image_err = |e: tensorcv_imgproc::Error| Error::Internal(e.to_string());
        let seg = analysis
            .outcome
            .segmentation(w, h)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let mask = match (&seg, options.mask) {
            (Some(seg), MaskFormat::Png) => {
                use base64::Engine as _;
                let png = tensorcv_imgproc::io::imencode(
                    &seg.classes.view(),
                    tensorcv_imgproc::io::EncodeFormat::Png,
                )
                .map_err(image_err)?;
                Some(format!(
                    "data:image/png;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(png)
                ))
            }
            _ => None,
        };
        let mut record = Record::new(source, 0, w, h);
        record.outcome(&analysis.outcome, seg.as_deref(), &self.labels, mask);
        if let (Some(seg), MaskFormat::Rle, Some(r)) =
            (&seg, options.mask, record.segmentation.as_mut())
        {
            r.rle = Some(RleRecord::all(seg, &self.labels));
        }
        if self.landmarks && record.landmarks.is_none() {
            record.landmarks = Some(Vec::new());
        }
        if matches!(analysis.outcome, Outcome::Segmentation(_)) && record.segmentation.is_none() {
            return Err(Error::Internal("a segmentation without its record".into()));
        }
        let t = &analysis.timings;
        record.set_timings(decode_ms, t.preprocess, t.inference, t.postprocess);
        Ok(Answer::Record(Box::new(record)))
    }
}
