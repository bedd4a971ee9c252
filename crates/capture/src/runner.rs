//! The streaming runner: reading/decoding, preprocessing, inference and post-processing each on
//! their own thread, joined by bounded queues, so decoding frame N+1 overlaps inference on
//! frame N.
//!
//! - **Files and pipes** are processed completely and in order: a full queue makes the reader
//!   wait.
//! - **Live sources** (cameras, network streams) never wait on the model: the reader keeps
//!   only the newest unprocessed frame and drops the one it replaces, so latency stays bounded
//!   when the model is slower than the camera. Dropped frames are counted.
//! - Results reach the sink in frame order, with their per-stage times; the [`Summary`] has
//!   throughput and latency percentiles. Setting the `stop` flag (Ctrl-C) ends the stream
//!   cleanly: frames already read are finished, the sink sees them, and `run` returns.
//!
//! A one-model task runs as four threads. A two-stage run (a detector, then a model on each
//! region: [`Pipeline::with_regions_from`]) runs both models on the inference thread.
//!
//! **Shutdown always completes.** Any stage failing ends the whole run: an error or a panic in
//! the reader, a decoder, preprocessing, inference or post-processing stops every thread and
//! `run` returns [`Error::Internal`] (panics) or the stage's error; an error of the sink (a
//! closed pipe, a full disk) is returned as it is, and a panic of the sink is resumed on the
//! caller's thread once the other threads have stopped. Stages wait on their queues in short
//! steps and look at the run's state between them, so they notice within a few tens of
//! milliseconds. A reader blocked inside a read that does not return (a silent pipe, a camera
//! that hangs) is left behind after half a second: it holds only its source and ends when the
//! read returns; `run` does not wait for it.

use crate::error::{Error, Result};
use crate::{Frame, Source, SourceInfo};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tensorcv_imgproc::geometry::Transform;
use tensorcv_imgproc::tensor::{Preprocessor, Tensor};
use tensorcv_infer::{Model, Outputs, Session, Task};
use tensorcv_tasks::pipeline::{Analysis, Pipeline, Postprocess, Timings};
use tensorcv_tasks::record::round;

/// How to run a stream.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// stop after this many processed frames
    pub max_frames: Option<u64>,
    /// process one frame in `every` (1: all, at most [`RunOptions::MAX_EVERY`]); the others are
    /// skipped unread by the model
    pub every: u64,
    /// read at most this many frames per second ([`RunOptions::MIN_FPS`] to
    /// [`RunOptions::MAX_FPS`])
    pub fps: Option<f64>,
    /// treat the source as live (drop stale frames) or not; `None`: as the source says
    pub live: Option<bool>,
    /// frames waiting between two stages (1 to [`RunOptions::MAX_QUEUE`])
    pub queue: usize,
    /// run every stage on the calling thread, one frame at a time (for comparisons)
    pub sequential: bool,
    /// hand each frame's model input to the sink too ([`Processed::input`], for dumps)
    pub keep_inputs: bool,
    /// threads decoding frames at once, for sources that decode in jobs (image files; see
    /// [`Source::next_job`](crate::Source::next_job)); results keep their order. Default: the
    /// cores (at least 1, at most 4); at most [`RunOptions::MAX_DECODERS`]
    pub decoders: usize,
}

impl RunOptions {
    /// The most frames a second [`RunOptions::fps`] accepts.
    pub const MAX_FPS: f64 = 10_000.0;
    /// The fewest frames a second [`RunOptions::fps`] accepts (one every 1000 s).
    pub const MIN_FPS: f64 = 0.001;
    /// The largest [`RunOptions::every`].
    pub const MAX_EVERY: u64 = 1_000_000;
    /// The deepest [`RunOptions::queue`].
    pub const MAX_QUEUE: usize = 64;
    /// The most [`RunOptions::decoders`].
    pub const MAX_DECODERS: usize = 64;

    /// Check every setting against its range; the error names the setting.
    pub fn validate(&self) -> Result<()> {
        let bad = |setting: &'static str, message: String| Err(Error::Invalid { setting, message });
        if self.max_frames == Some(0) {
            return bad("max_frames", "must be at least 1 (None: no limit)".into());
        }
        if !(1..=Self::MAX_EVERY).contains(&self.every) {
            return bad(
                "every",
                format!("{} is not in 1..={}", self.every, Self::MAX_EVERY),
            );
        }
        if let Some(fps) = self.fps {
            if !(Self::MIN_FPS..=Self::MAX_FPS).contains(&fps) {
                return bad(
                    "fps",
                    format!(
                        "{fps} is not a rate in {}..={} frames a second",
                        Self::MIN_FPS,
                        Self::MAX_FPS
                    ),
                );
            }
        }
        if !(1..=Self::MAX_QUEUE).contains(&self.queue) {
            return bad(
                "queue",
                format!("{} is not in 1..={}", self.queue, Self::MAX_QUEUE),
            );
        }
        if !(1..=Self::MAX_DECODERS).contains(&self.decoders) {
            return bad(
                "decoders",
                format!("{} is not in 1..={}", self.decoders, Self::MAX_DECODERS),
            );
        }
        Ok(())
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            max_frames: None,
            every: 1,
            fps: None,
            live: None,
            queue: 2,
            sequential: false,
            keep_inputs: false,
            // decoding a 1080p JPEG takes several times a mobile model's inference: on 2 cores
            // two decoders, sharing a core with inference, make 200 files 1.3x faster
            // (bench_peers; one fewer than the cores was no faster while each decoded frame
            // was converted into a second buffer)
            decoders: std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .clamp(1, 4),
        }
    }
}

/// The model side of a run.
pub struct Work {
    kind: WorkKind,
}

enum WorkKind {
    Single {
        pre: Box<Preprocessor>,
        session: Box<Session>,
        post: Box<Postprocess>,
    },
    Pipeline(Box<Pipeline>),
}

impl Work {
    /// `model` for `task` (`None`: the card's), optionally after the detector `regions_from`.
    pub fn new(model: &Model, task: Option<Task>, regions_from: Option<&Model>) -> Result<Self> {
        let kind = match regions_from {
            Some(detector) => WorkKind::Pipeline(Box::new(
                Pipeline::new(model, task)?.with_regions_from(detector)?,
            )),
            None => WorkKind::Single {
                pre: Box::new(
                    Preprocessor::try_new(model.input_spec().clone())
                        .map_err(tensorcv_infer::Error::from)?,
                ),
                session: Box::new(model.session()?),
                post: Box::new(Postprocess::for_model(model, task)?),
            },
        };
        Ok(Work { kind })
    }

    /// The two-stage pipeline, when there is a detector (to set landmark options).
    pub fn pipeline_mut(&mut self) -> Option<&mut Pipeline> {
        match &mut self.kind {
            WorkKind::Pipeline(p) => Some(p),
            WorkKind::Single { .. } => None,
        }
    }

    /// The model's post-processing (its task and labels).
    pub fn postprocess(&self) -> &Postprocess {
        match &self.kind {
            WorkKind::Single { post, .. } => post,
            WorkKind::Pipeline(p) => p.postprocess(),
        }
    }
}

/// Milliseconds one frame spent in each stage.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FrameTimes {
    /// reading and decoding
    pub decode: f64,
    /// image → tensor (and, two-stage, the crops)
    pub preprocess: f64,
    /// the model(s)
    pub inference: f64,
    /// outputs → results
    pub postprocess: f64,
}

/// One processed frame, handed to the sink in frame order.
pub struct Processed {
    /// the frame (its image is the source's, undrawn)
    pub frame: Frame,
    /// what the model found
    pub analysis: Analysis,
    /// the raw outputs of a one-model run (for dumps)
    pub outputs: Option<Outputs>,
    /// the model input of a one-model run, when [`RunOptions::keep_inputs`] is set
    pub input: Option<Tensor>,
    /// per-stage times
    pub times: FrameTimes,
    /// when the frame left the source
    pub read_at: Instant,
}

/// What the sink is told.
pub enum Event {
    /// a frame and its results
    Frame(Box<Processed>),
    /// a frame (or file) that could not be read or analysed; the stream goes on
    Failed(Error),
}

/// Statistics of one stage.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageStats {
    /// mean, ms
    pub mean: f64,
    /// median, ms
    pub p50: f64,
    /// 95th percentile, ms
    pub p95: f64,
    /// slowest, ms
    pub max: f64,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// the source
    pub source: String,
    /// frames taken from the source
    pub frames_in: u64,
    /// frames that reached the sink with results
    pub processed: u64,
    /// live frames replaced by a newer one before the model saw them
    pub dropped: u64,
    /// frames left out by `every`
    pub skipped: u64,
    /// frames that could not be read or analysed
    pub failed: u64,
    /// wall time, seconds
    pub seconds: f64,
    /// processed frames per second
    pub fps: f64,
    /// per stage: decode, preprocess, inference, postprocess, output (the sink)
    pub stages: [(&'static str, StageStats); 5],
    /// from leaving the source to the sink being done, ms
    pub latency: StageStats,
    /// the run ended because the stop flag was set
    pub interrupted: bool,
}

/// A [`Summary`] as `tensorcv --json --summary` prints it (`{"summary": {...}}`, numbers
/// rounded: milliseconds to 3 places, fps to 2), so a program using the runner emits the same
/// schema.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SummaryRecord {
    pub summary: SummaryFields,
}

/// The fields of a [`SummaryRecord`], in the order they are printed.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SummaryFields {
    pub dropped: u64,
    pub failed: u64,
    pub fps: f64,
    pub frames_in: u64,
    pub interrupted: bool,
    pub latency_ms: StageRecord,
    pub processed: u64,
    pub seconds: f64,
    pub skipped: u64,
    pub source: String,
    pub stages_ms: BTreeMap<&'static str, StageRecord>,
}

/// A stage's times in milliseconds, rounded to 3 places.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct StageRecord {
    pub max: f64,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
}

impl From<&StageStats> for StageRecord {
    fn from(s: &StageStats) -> StageRecord {
        let r = |v: f64| round(v, 3);
        StageRecord {
            max: r(s.max),
            mean: r(s.mean),
            p50: r(s.p50),
            p95: r(s.p95),
        }
    }
}

impl From<&Summary> for SummaryRecord {
    fn from(s: &Summary) -> SummaryRecord {
        SummaryRecord {
            summary: SummaryFields {
                dropped: s.dropped,
                failed: s.failed,
                fps: round(s.fps, 2),
                frames_in: s.frames_in,
                interrupted: s.interrupted,
                latency_ms: (&s.latency).into(),
                processed: s.processed,
                seconds: round(s.seconds, 3),
                skipped: s.skipped,
                source: s.source.clone(),
                stages_ms: s.stages.iter().map(|(n, st)| (*n, st.into())).collect(),
            },
        }
    }
}

/// Percentiles in constant memory: log-spaced buckets 2 % wide from 1 µs to ~10⁶ s.
#[derive(Clone, Debug)]
struct Histogram {
    counts: Vec<u64>,
    n: u64,
    sum: f64,
    max: f64,
}

const H_MIN: f64 = 1e-3;
const H_STEP: f64 = 1.02;

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: vec![0; 1400],
            n: 0,
            sum: 0.0,
            max: 0.0,
        }
    }

    fn add(&mut self, ms: f64) {
        let ms = ms.max(0.0);
        let i = if ms <= H_MIN {
            0
        } else {
            ((ms / H_MIN).ln() / H_STEP.ln()).ceil() as usize
        };
        let last = self.counts.len() - 1;
        self.counts[i.min(last)] += 1;
        self.n += 1;
        self.sum += ms;
        self.max = self.max.max(ms);
    }

    fn quantile(&self, q: f64) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let rank = ((q * self.n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return (H_MIN * H_STEP.powi(i as i32)).min(self.max);
            }
        }
        self.max
    }

    fn stats(&self) -> StageStats {
        StageStats {
            mean: if self.n == 0 {
                0.0
            } else {
                self.sum / self.n as f64
            },
            p50: self.quantile(0.5),
            p95: self.quantile(0.95),
            max: self.max,
        }
    }
}

/// How often a waiting stage looks at the run's state.
const POLL: Duration = Duration::from_millis(20);
/// How long a halted run waits for a reader blocked in a read before leaving it behind.
const READER_GRACE: Duration = Duration::from_millis(500);
/// How long a finished or aborted run waits for its threads before leaving them behind.
const JOIN_GRACE: Duration = Duration::from_millis(750);

/// The newest item, for live sources: `put` replaces what nobody took yet.
struct Latest<T> {
    slot: Mutex<(Option<T>, bool)>,
    ready: Condvar,
}

impl<T> Latest<T> {
    fn new() -> Self {
        Latest {
            slot: Mutex::new((None, false)),
            ready: Condvar::new(),
        }
    }

    /// Store `item`; true when it replaced an untaken one.
    fn put(&self, item: T) -> bool {
        let mut s = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        let replaced = s.0.replace(item).is_some();
        self.ready.notify_one();
        replaced
    }

    fn close(&self) {
        let mut s = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        s.1 = true;
        self.ready.notify_all();
    }

    /// The newest item; `None` once closed and empty, or when `give_up` says so while it is
    /// empty (checked every [`POLL`]).
    fn take(&self, give_up: impl Fn() -> bool) -> Option<T> {
        let mut s = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(item) = s.0.take() {
                return Some(item);
            }
            if s.1 || give_up() {
                return None;
            }
            s = self
                .ready
                .wait_timeout(s, POLL)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// A frame on its way, with what the stages added.
struct InFlight {
    frame: Frame,
    read_at: Instant,
    times: FrameTimes,
    tensor: Option<Tensor>,
    transform: Option<Transform>,
    input: Option<Tensor>,
    outputs: Option<Outputs>,
    analysis: Option<Analysis>,
}

type Item = std::result::Result<InFlight, Error>;

/// A frame read, not yet decoded: its job, when reading began and how long it took.
struct Pending {
    job: crate::FrameJob,
    read_at: Instant,
    read_ms: f64,
}

type Read = std::result::Result<Pending, Error>;

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Counters shared by the threads.
#[derive(Default)]
struct Counters {
    frames_in: AtomicU64,
    /// frames handed to the model
    sent: AtomicU64,
    dropped: AtomicU64,
    skipped: AtomicU64,
}

/// The state every thread of a run shares.
#[derive(Default)]
struct Control {
    /// stop reading; what was read is finished (the stop flag, `max_frames`, a fatal source
    /// error)
    halt: AtomicBool,
    /// stop everything now (a stage failed)
    abort: AtomicBool,
    /// the reader is left behind, blocked in a read: the stages after it stop waiting for it
    reader_gone: AtomicBool,
    /// the first failure of a stage thread
    failure: Mutex<Option<Error>>,
    /// a fatal error of the source, returned after the frames before it
    source_error: Mutex<Option<Error>>,
    counters: Counters,
}

impl Control {
    fn halted(&self) -> bool {
        self.halt.load(Ordering::Relaxed) || self.aborted()
    }

    fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }

    /// A stage failed: keep the first failure, stop everything.
    fn fail(&self, e: Error) {
        let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(e);
        }
        self.abort.store(true, Ordering::Relaxed);
    }

    fn take_failure(&self) -> Option<Error> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// What the reader needs of the options.
#[derive(Clone)]
struct ReadPlan {
    live: bool,
    every: u64,
    max_frames: Option<u64>,
    fps: Option<f64>,
}

/// Receive from a queue, looking at the run's state every [`POLL`]: `None` when the queue is
/// closed, the run is aborted, or (`after_reader`: a stage fed by the reader) the reader has
/// been left behind and nothing is waiting.
fn recv<T>(rx: &Receiver<T>, ctl: &Control, after_reader: bool) -> Option<T> {
    loop {
        if ctl.aborted() {
            return None;
        }
        match rx.recv_timeout(POLL) {
            Ok(v) => return Some(v),
            Err(RecvTimeoutError::Disconnected) => return None,
            Err(RecvTimeoutError::Timeout) => {
                if after_reader && ctl.reader_gone.load(Ordering::Relaxed) {
                    return None;
                }
            }
        }
    }
}

/// Sleep `d`, waking early when the run halts.
fn sleep_unless_halted(d: Duration, ctl: &Control) {
    let until = Instant::now() + d;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || ctl.halted() {
            return;
        }
        std::thread::sleep(left.min(POLL));
    }
}

/// Run `f`, turning a panic into [`Error::Internal`] naming `stage`.
fn contained<R>(stage: &'static str, f: impl FnOnce() -> Result<R>) -> Result<R> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        Err(Error::Internal {
            stage,
            message: tensorcv_infer::panic_message(&*payload),
        })
    })
}

/// Start a stage's thread; a panic in it fails the run.
fn spawn(
    stage: &'static str,
    ctl: &Arc<Control>,
    f: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>> {
    let ctl = ctl.clone();
    std::thread::Builder::new()
        .name(format!("tensorcv-{stage}"))
        .spawn(move || {
            if let Err(e) = contained(stage, || {
                f();
                Ok(())
            }) {
                ctl.fail(e);
            }
        })
        .map_err(|e| Error::Internal {
            stage,
            message: format!("cannot start a thread: {e}"),
        })
}

/// Wait for `threads` to end, at most `grace` in all; those still running are left behind
/// (they notice the run's state at their next step, or end with their blocked read).
fn join_within(threads: Vec<JoinHandle<()>>, grace: Duration) {
    let deadline = Instant::now() + grace;
    for t in threads {
        while !t.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        if t.is_finished() {
            let _ = t.join();
        }
    }
}

/// Read the next frame (for image files only which file: the job decodes it); `None` at the
/// end of the source, when the run halts or when `max_frames` were handed on.
fn read_one(
    source: &mut dyn Source,
    ctl: &Control,
    plan: &ReadPlan,
    last_read: &mut Option<Instant>,
) -> Option<Read> {
    let counters = &ctl.counters;
    loop {
        if ctl.halted() {
            return None;
        }
        let sent = counters.sent.load(Ordering::Relaxed);
        if !plan.live && plan.max_frames.is_some_and(|m| sent >= m) {
            return None;
        }
        if let (Some(fps), Some(last)) = (plan.fps, *last_read) {
            let wait = Duration::from_secs_f64(1.0 / fps).saturating_sub(last.elapsed());
            sleep_unless_halted(wait, ctl);
            if ctl.halted() {
                return None;
            }
        }
        let t = Instant::now();
        *last_read = Some(t);
        match contained("reader", || source.next_job()) {
            Ok(None) => return None,
            Ok(Some(job)) => {
                let n = counters.frames_in.fetch_add(1, Ordering::Relaxed);
                if !n.is_multiple_of(plan.every) {
                    counters.skipped.fetch_add(1, Ordering::Relaxed);
                    continue; // never decoded
                }
                counters.sent.fetch_add(1, Ordering::Relaxed);
                return Some(Ok(Pending {
                    job,
                    read_at: t,
                    read_ms: ms(t),
                }));
            }
            Err(e) if e.is_frame_error() => {
                counters.frames_in.fetch_add(1, Ordering::Relaxed);
                return Some(Err(e));
            }
            Err(e) => return Some(Err(e)),
        }
    }
}

/// Finish reading: run the job (decode), on whichever thread holds it.
fn finish(read: Read) -> Item {
    let p = read?;
    let t = Instant::now();
    let frame = contained("decoder", p.job)?;
    Ok(InFlight {
        frame,
        read_at: p.read_at,
        times: FrameTimes {
            decode: p.read_ms + ms(t),
            ..Default::default()
        },
        tensor: None,
        transform: None,
        input: None,
        outputs: None,
        analysis: None,
    })
}

/// Image → tensor, in a tensor of the pool when one is free.
fn preprocess(name: &str, pre: &mut Preprocessor, pool: &mut Vec<Tensor>, mut f: InFlight) -> Item {
    let t = Instant::now();
    let mut tensor = pool.pop().unwrap_or_else(|| pre.spec().alloc(1));
    let transform = pre
        .run(&f.frame.image.view(), &mut tensor, 0)
        .map_err(|e| Error::Frame {
            source_name: name.to_string(),
            index: f.frame.index,
            message: e.to_string(),
        })?;
    f.tensor = Some(tensor);
    f.transform = Some(transform);
    f.times.preprocess = ms(t);
    Ok(f)
}

/// The model on one frame's tensor; the tensor comes back for the pool.
fn infer_single(
    name: &str,
    keep_inputs: bool,
    session: &mut Session,
    mut f: InFlight,
) -> (Item, Option<Tensor>) {
    let t = Instant::now();
    let Some(tensor) = f.tensor.take() else {
        return (Ok(f), None);
    };
    match session.run_tensor(&tensor) {
        Ok(outputs) => {
            f.outputs = Some(outputs);
            if keep_inputs {
                f.input = Some(tensor.clone());
            }
            f.times.inference = ms(t);
            (Ok(f), Some(tensor))
        }
        Err(e) => (
            Err(Error::Frame {
                source_name: name.to_string(),
                index: f.frame.index,
                message: e.to_string(),
            }),
            Some(tensor),
        ),
    }
}

/// Both stages of a two-stage run on one frame.
fn infer_pipeline(name: &str, pipeline: &mut Pipeline, mut f: InFlight) -> Item {
    let a = pipeline
        .process_at(
            &f.frame.image.view(),
            Some(f.frame.timestamp.as_secs_f64() * 1e3),
        )
        .map_err(|e| Error::Frame {
            source_name: name.to_string(),
            index: f.frame.index,
            message: e.to_string(),
        })?;
    f.times.preprocess = a.timings.preprocess;
    f.times.inference = a.timings.inference;
    f.times.postprocess = a.timings.postprocess;
    f.analysis = Some(a);
    Ok(f)
}

/// The model side of one frame, whichever kind of work: preprocess and infer (one model), or
/// the two-stage pipeline. Used by the sequential run.
fn model_step(
    name: &str,
    keep_inputs: bool,
    work: &mut WorkKind,
    pool: &mut Vec<Tensor>,
    item: Item,
) -> Item {
    let f = item?;
    match work {
        WorkKind::Single { pre, session, .. } => {
            let f = preprocess(name, pre, pool, f)?;
            let (item, tensor) = infer_single(name, keep_inputs, session, f);
            pool.extend(tensor);
            item
        }
        WorkKind::Pipeline(p) => infer_pipeline(name, p, f),
    }
}

/// The sink side: post-processing, handing results over in order, counting.
struct Delivery<'a> {
    name: String,
    max_frames: Option<u64>,
    processed: u64,
    failed: u64,
    hist: [Histogram; 5],
    latency: Histogram,
    sink: &'a mut dyn FnMut(Event) -> Result<()>,
}

/// What [`Delivery::deliver`] ran into.
enum Delivered {
    /// go on
    Ok,
    /// `max_frames` are done
    Enough,
    /// the sink returned an error
    SinkError(Error),
    /// the sink panicked: resumed once the threads are stopped
    SinkPanic(Box<dyn std::any::Any + Send>),
    /// post-processing panicked
    Failed(Error),
}

impl Delivery<'_> {
    fn call_sink(&mut self, event: Event) -> Delivered {
        match catch_unwind(AssertUnwindSafe(|| (self.sink)(event))) {
            Ok(Ok(())) => Delivered::Ok,
            Ok(Err(e)) => Delivered::SinkError(e),
            Err(payload) => Delivered::SinkPanic(payload),
        }
    }

    fn deliver(&mut self, item: Item, post: Option<&Postprocess>) -> Delivered {
        if self.max_frames.is_some_and(|m| self.processed >= m) {
            return Delivered::Enough; // frames read before the reader saw the limit
        }
        let mut f = match item {
            Ok(f) => f,
            Err(e) => {
                self.failed += 1;
                return self.call_sink(Event::Failed(e));
            }
        };
        let t = Instant::now();
        let analysis = match (f.analysis.take(), post, &f.outputs, &f.transform) {
            (Some(a), _, _, _) => Ok(a),
            (None, Some(post), Some(outputs), Some(transform)) => {
                let (w, h) = (f.frame.image.width(), f.frame.image.height());
                let applied = contained("postprocess", || {
                    post.apply(outputs, transform, w, h).map_err(Error::from)
                });
                match applied {
                    Err(e @ Error::Internal { .. }) => return Delivered::Failed(e),
                    other => other.map(|outcome| Analysis {
                        width: w,
                        height: h,
                        outcome,
                        timings: Timings::default(),
                    }),
                }
            }
            _ => Err(Error::Frame {
                source_name: self.name.clone(),
                index: f.frame.index,
                message: "no result".into(),
            }),
        };
        let mut analysis = match analysis {
            Ok(a) => a,
            Err(e) => {
                self.failed += 1;
                return self.call_sink(Event::Failed(e));
            }
        };
        if post.is_some() {
            f.times.postprocess = ms(t);
            analysis.timings = Timings {
                preprocess: f.times.preprocess,
                inference: f.times.inference,
                postprocess: f.times.postprocess,
            };
        }
        let times = f.times;
        let read_at = f.read_at;
        let t_sink = Instant::now();
        let done = self.call_sink(Event::Frame(Box::new(Processed {
            frame: f.frame,
            analysis,
            outputs: f.outputs.take(),
            input: f.input.take(),
            times,
            read_at,
        })));
        if !matches!(done, Delivered::Ok) {
            return done;
        }
        self.processed += 1;
        for (h, v) in self.hist.iter_mut().zip([
            times.decode,
            times.preprocess,
            times.inference,
            times.postprocess,
            ms(t_sink),
        ]) {
            h.add(v);
        }
        self.latency.add(ms(read_at));
        if self.max_frames.is_some_and(|m| self.processed >= m) {
            return Delivered::Enough;
        }
        Delivered::Ok
    }
}

/// How a run ended, before the summary.
enum Ending {
    /// the source ended, `max_frames` were done or the stop flag was set
    Done,
    /// a fatal error: the sink's, a stage's, or the source's
    Error(Error),
    /// the sink panicked
    Panic(Box<dyn std::any::Any + Send>),
}

/// Whether this target can start threads ([`crate::THREADS`]); where it cannot, [`run`] runs
/// its stages in one thread, as [`RunOptions::sequential`] asks.
pub use crate::THREADS;

/// Run `work` on every frame of `source`, handing results to `sink` in order. Returns when the
/// source ends, `max_frames` are done, `stop` is set, or a stage fails: the sink's error is
/// returned as it is, a panic in a stage as [`Error::Internal`], a fatal source error after
/// the frames before it were processed; a panic of the sink is resumed here once the other
/// threads have stopped. `options` are checked first ([`RunOptions::validate`]).
pub fn run(
    source: Box<dyn Source>,
    work: Work,
    options: &RunOptions,
    stop: &AtomicBool,
    sink: &mut dyn FnMut(Event) -> Result<()>,
) -> Result<Summary> {
    options.validate()?;
    let info: SourceInfo = source.info().clone();
    let plan = ReadPlan {
        live: options.live.unwrap_or(info.live),
        every: options.every,
        max_frames: options.max_frames,
        fps: options.fps,
    };
    let ctl = Arc::new(Control::default());
    let start = Instant::now();
    let mut delivery = Delivery {
        name: info.name.clone(),
        max_frames: options.max_frames,
        processed: 0,
        failed: 0,
        hist: std::array::from_fn(|_| Histogram::new()),
        latency: Histogram::new(),
        sink,
    };
    let ending = if options.sequential || !THREADS {
        run_sequential(source, work, options, &plan, &ctl, stop, &mut delivery)
    } else {
        run_threaded(source, work, options, &plan, &ctl, stop, &mut delivery)
    };
    match ending {
        Ending::Done => {}
        Ending::Error(e) => return Err(e),
        Ending::Panic(payload) => std::panic::resume_unwind(payload),
    }
    if let Some(e) = ctl
        .source_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        return Err(e);
    }
    let seconds = start.elapsed().as_secs_f64();
    let c = &ctl.counters;
    let Delivery {
        processed,
        failed,
        hist,
        latency,
        ..
    } = delivery;
    Ok(Summary {
        source: info.name,
        frames_in: c.frames_in.load(Ordering::Relaxed),
        processed,
        dropped: c.dropped.load(Ordering::Relaxed),
        skipped: c.skipped.load(Ordering::Relaxed),
        failed,
        seconds,
        fps: if seconds > 0.0 {
            processed as f64 / seconds
        } else {
            0.0
        },
        stages: [
            ("decode", hist[0].stats()),
            ("preprocess", hist[1].stats()),
            ("inference", hist[2].stats()),
            ("postprocess", hist[3].stats()),
            ("output", hist[4].stats()),
        ],
        latency: latency.stats(),
        interrupted: stop.load(Ordering::Relaxed),
    })
}

/// A read that is a fatal source error: kept for the end, and the run halts.
fn fatal_read(read: &Read, ctl: &Control) -> bool {
    match read {
        Err(e) if !e.is_frame_error() => {
            ctl.halt.store(true, Ordering::Relaxed);
            true
        }
        _ => false,
    }
}

fn keep_source_error(read: Read, ctl: &Control) {
    if let Err(e) = read {
        let mut slot = ctl.source_error.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(e);
    }
}

/// Every stage on the calling thread, one frame at a time.
fn run_sequential(
    mut source: Box<dyn Source>,
    work: Work,
    options: &RunOptions,
    plan: &ReadPlan,
    ctl: &Control,
    stop: &AtomicBool,
    delivery: &mut Delivery<'_>,
) -> Ending {
    let mut work = work.kind;
    let mut last_read = None;
    let mut pool = Vec::new();
    let name = delivery.name.clone();
    loop {
        if stop.load(Ordering::Relaxed) {
            ctl.halt.store(true, Ordering::Relaxed);
        }
        let Some(read) = read_one(&mut *source, ctl, plan, &mut last_read) else {
            return Ending::Done;
        };
        if fatal_read(&read, ctl) {
            keep_source_error(read, ctl);
            return Ending::Done;
        }
        // a decoder's panic is that frame's failure (the next file is independent); a panic of
        // the model side ends the run, as in the threaded run
        let item = finish(read);
        let item = contained("inference", || {
            Ok(model_step(
                &name,
                options.keep_inputs,
                &mut work,
                &mut pool,
                item,
            ))
        });
        let item = match item {
            Ok(item) => item,
            Err(e) => return Ending::Error(e),
        };
        let post = match &work {
            WorkKind::Single { post, .. } => Some(&**post),
            WorkKind::Pipeline(_) => None,
        };
        match delivery.deliver(item, post) {
            Delivered::Ok => {}
            Delivered::Enough => return Ending::Done,
            Delivered::SinkError(e) | Delivered::Failed(e) => return Ending::Error(e),
            Delivered::SinkPanic(p) => return Ending::Panic(p),
        }
    }
}

/// Where the reader sends what it read.
enum ReaderOut {
    /// live: only the newest frame waits
    Latest(Arc<Latest<Item>>),
    /// image files: to the decoders
    Decoders(SyncSender<(u64, Read)>),
    /// decoded here, straight to preprocessing
    Direct(SyncSender<(u64, Item)>),
}

fn reader_thread(mut source: Box<dyn Source>, ctl: &Control, plan: &ReadPlan, out: ReaderOut) {
    let mut last_read = None;
    let mut seq = 0u64;
    while let Some(read) = read_one(&mut *source, ctl, plan, &mut last_read) {
        if fatal_read(&read, ctl) {
            keep_source_error(read, ctl);
            break;
        }
        let sent = match &out {
            ReaderOut::Latest(latest) => {
                if latest.put(finish(read)) {
                    ctl.counters.dropped.fetch_add(1, Ordering::Relaxed);
                }
                true
            }
            ReaderOut::Decoders(tx) => tx.send((seq, read)).is_ok(),
            ReaderOut::Direct(tx) => tx.send((seq, finish(read))).is_ok(),
        };
        if !sent {
            break;
        }
        seq += 1;
    }
    if let ReaderOut::Latest(latest) = &out {
        latest.close();
    }
}

/// Reading, decoding, preprocessing and inference on threads of their own; post-processing
/// and the sink here.
fn run_threaded(
    source: Box<dyn Source>,
    work: Work,
    options: &RunOptions,
    plan: &ReadPlan,
    ctl: &Arc<Control>,
    stop: &AtomicBool,
    delivery: &mut Delivery<'_>,
) -> Ending {
    let queue = options.queue;
    let name = delivery.name.clone();
    let decoders = if !plan.live && source.decodes_in_jobs() {
        options.decoders
    } else {
        1
    };
    // frames in order: (sequence number, frame); several decoders may finish out of order
    let (to_pre, from_reader) = sync_channel::<(u64, Item)>(queue);
    let (to_infer, from_pre) = sync_channel::<Item>(queue);
    let (to_sink, from_infer) = sync_channel::<Item>(queue);
    let (give_back, take_back) = sync_channel::<Tensor>(queue + 2);
    let latest: Arc<Latest<Item>> = Arc::new(Latest::new());
    let (pre, session, pipeline, post) = match work.kind {
        WorkKind::Single { pre, session, post } => (Some(pre), Some(session), None, Some(post)),
        WorkKind::Pipeline(p) => (None, None, Some(p), None),
    };
    let mut threads = Vec::new();
    let started = || -> Result<()> {
        // reader
        let out = if plan.live {
            ReaderOut::Latest(latest.clone())
        } else if decoders > 1 {
            let (to_decode, from_read) = sync_channel::<(u64, Read)>(queue * decoders);
            let from_read = Arc::new(Mutex::new(from_read));
            for _ in 0..decoders {
                let (to_pre, from_read, c) = (to_pre.clone(), from_read.clone(), ctl.clone());
                threads.push(spawn("decoder", ctl, move || loop {
                    let next = {
                        let rx = from_read.lock().unwrap_or_else(|p| p.into_inner());
                        recv(&rx, &c, true)
                    };
                    let Some((seq, read)) = next else { break };
                    if to_pre.send((seq, finish(read))).is_err() {
                        break;
                    }
                })?);
            }
            ReaderOut::Decoders(to_decode)
        } else {
            ReaderOut::Direct(to_pre.clone())
        };
        let (c, p) = (ctl.clone(), plan.clone());
        threads.push(spawn("reader", ctl, move || {
            reader_thread(source, &c, &p, out)
        })?);
        // preprocess: puts frames back in order
        let (c, latest, live, n) = (ctl.clone(), latest.clone(), plan.live, name.clone());
        threads.push(spawn("preprocess", ctl, move || {
            let mut pre = pre;
            let mut pool: Vec<Tensor> = Vec::new();
            let mut waiting: BTreeMap<u64, Item> = BTreeMap::new();
            let mut want = 0u64;
            let mut next = || {
                if live {
                    return latest.take(|| c.aborted() || c.reader_gone.load(Ordering::Relaxed));
                }
                loop {
                    if let Some(item) = waiting.remove(&want) {
                        want += 1;
                        return Some(item);
                    }
                    let (seq, item) = recv(&from_reader, &c, true)?;
                    waiting.insert(seq, item);
                }
            };
            while let Some(item) = next() {
                pool.extend(take_back.try_iter());
                let item = match (item, pre.as_mut()) {
                    (Ok(f), Some(pre)) => preprocess(&n, pre, &mut pool, f),
                    (item, _) => item,
                };
                if to_infer.send(item).is_err() {
                    break;
                }
            }
        })?);
        // inference
        let (c, n, keep) = (ctl.clone(), name.clone(), options.keep_inputs);
        threads.push(spawn("inference", ctl, move || {
            let (mut session, mut pipeline) = (session, pipeline);
            while let Some(item) = recv(&from_pre, &c, false) {
                let item = match (item, session.as_mut(), pipeline.as_mut()) {
                    (Ok(f), Some(s), _) => {
                        let (item, tensor) = infer_single(&n, keep, s, f);
                        if let Some(t) = tensor {
                            let _ = give_back.try_send(t);
                        }
                        item
                    }
                    (Ok(f), None, Some(p)) => infer_pipeline(&n, p, f),
                    (item, _, _) => item,
                };
                if to_sink.send(item).is_err() {
                    break;
                }
            }
        })?);
        Ok(())
    };
    let spawned = started();
    drop(to_pre);
    let reader = threads.len().saturating_sub(3); // the reader's place (after the decoders)
    let mut ending = match spawned {
        Ok(()) => Ending::Done,
        Err(e) => {
            ctl.fail(e);
            Ending::Done
        }
    };
    // post-process and sink, here
    let mut halted_at: Option<Instant> = None;
    while !ctl.aborted() {
        if stop.load(Ordering::Relaxed) {
            ctl.halt.store(true, Ordering::Relaxed);
        }
        if ctl.halt.load(Ordering::Relaxed) {
            let since = *halted_at.get_or_insert_with(Instant::now);
            let reader_running = threads.get(reader).is_some_and(|t| !t.is_finished());
            if reader_running && since.elapsed() > READER_GRACE {
                ctl.reader_gone.store(true, Ordering::Relaxed);
            }
        }
        let item = match from_infer.recv_timeout(POLL) {
            Ok(item) => item,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match delivery.deliver(item, post.as_deref()) {
            Delivered::Ok => {}
            Delivered::Enough => {
                ctl.halt.store(true, Ordering::Relaxed);
                break;
            }
            Delivered::SinkError(e) => {
                ending = Ending::Error(e);
                break;
            }
            Delivered::Failed(e) => {
                ctl.fail(e);
                break;
            }
            Delivered::SinkPanic(p) => {
                ending = Ending::Panic(p);
                break;
            }
        }
    }
    // everything after this point is either done or no longer wanted
    ctl.halt.store(true, Ordering::Relaxed);
    ctl.abort.store(true, Ordering::Relaxed);
    latest.close();
    drop(from_infer);
    join_within(threads, JOIN_GRACE);
    match (ending, ctl.take_failure()) {
        (Ending::Done, Some(e)) => Ending::Error(e),
        (ending, _) => ending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_percentiles_are_within_two_percent() {
        let mut h = Histogram::new();
        for i in 1..=1000 {
            h.add(i as f64 / 10.0);
        }
        let s = h.stats();
        assert!((s.p50 - 50.0).abs() / 50.0 < 0.021, "{s:?}");
        assert!((s.p95 - 95.0).abs() / 95.0 < 0.021, "{s:?}");
        assert_eq!(s.max, 100.0);
        assert!((s.mean - 50.05).abs() < 1e-9);
        assert_eq!(Histogram::new().stats(), StageStats::default());
    }

    /// Preprocessing and inference run library code only (nothing a test can make panic from
    /// outside); their threads go through `spawn`, checked here with a stage that panics.
    #[test]
    fn a_panicking_stage_aborts_the_run_and_its_queues_close() {
        let ctl = Arc::new(Control::default());
        let (tx, rx) = sync_channel::<u32>(1);
        let waiting = {
            let c = ctl.clone();
            spawn("preprocess", &ctl, move || {
                // a stage downstream, waiting: it must notice the abort
                assert_eq!(recv(&rx, &c, false), None);
            })
            .unwrap()
        };
        let failing = spawn("inference", &ctl, move || {
            let _keep = tx;
            panic!("a kernel bug");
        })
        .unwrap();
        join_within(vec![failing, waiting], Duration::from_secs(5));
        assert!(ctl.aborted());
        match ctl.take_failure() {
            Some(Error::Internal { stage, message }) => {
                assert_eq!((stage, message.as_str()), ("inference", "a kernel bug"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_halt_interrupts_a_long_frame_rate_wait() {
        let ctl = Control::default();
        let t = Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                ctl.halt.store(true, Ordering::Relaxed);
            });
            sleep_unless_halted(Duration::from_secs(600), &ctl);
        });
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn latest_keeps_the_newest() {
        let l = Latest::new();
        assert!(!l.put(1));
        assert!(l.put(2));
        assert_eq!(l.take(|| false), Some(2));
        l.close();
        assert_eq!(l.take(|| false), None);
        // an empty, open slot gives up when asked to
        let l: Latest<u8> = Latest::new();
        assert_eq!(l.take(|| true), None);
    }
}
