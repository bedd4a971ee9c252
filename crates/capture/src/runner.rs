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

use crate::error::{Error, Result};
use crate::{Frame, Source, SourceInfo};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};
use tensorcv_imgproc::geometry::Transform;
use tensorcv_imgproc::tensor::{Preprocessor, Tensor};
use tensorcv_infer::{Model, Outputs, Session, Task};
use tensorcv_tasks::pipeline::{Analysis, Pipeline, Postprocess, Timings};

/// How to run a stream.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// stop after this many processed frames
    pub max_frames: Option<u64>,
    /// process one frame in `every` (1: all); the others are skipped unread by the model
    pub every: u64,
    /// read at most this many frames per second
    pub fps: Option<f64>,
    /// treat the source as live (drop stale frames) or not; `None`: as the source says
    pub live: Option<bool>,
    /// frames waiting between two stages (at least 1)
    pub queue: usize,
    /// run every stage on the calling thread, one frame at a time (for comparisons)
    pub sequential: bool,
    /// hand each frame's model input to the sink too ([`Processed::input`], for dumps)
    pub keep_inputs: bool,
    /// threads decoding frames at once, for sources that decode in jobs (image files; see
    /// [`Source::next_job`](crate::Source::next_job)); results keep their order. Default: the
    /// cores (at least 1, at most 4)
    pub decoders: usize,
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

    /// The newest item; `None` once closed and empty.
    fn take(&self) -> Option<T> {
        let mut s = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(item) = s.0.take() {
                return Some(item);
            }
            if s.1 {
                return None;
            }
            s = self.ready.wait(s).unwrap_or_else(|p| p.into_inner());
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

fn post_of(work: &Work) -> Option<&Postprocess> {
    match &work.kind {
        WorkKind::Single { post, .. } => Some(post),
        WorkKind::Pipeline(_) => None,
    }
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

/// Run `work` on every frame of `source`, handing results to `sink` in order. Returns when the
/// source ends, `max_frames` are done, `stop` is set, or the sink fails (its error is
/// returned; a fatal source error too, after the frames before it were processed).
pub fn run(
    mut source: Box<dyn Source>,
    work: Work,
    options: &RunOptions,
    stop: &AtomicBool,
    sink: &mut dyn FnMut(Event) -> Result<()>,
) -> Result<Summary> {
    let info: SourceInfo = source.info().clone();
    let live = options.live.unwrap_or(info.live);
    let every = options.every.max(1);
    let counters = Counters::default();
    let start = Instant::now();
    let mut hist: [Histogram; 5] = std::array::from_fn(|_| Histogram::new());
    let mut latency = Histogram::new();
    let (mut processed, mut failed) = (0u64, 0u64);
    let mut fatal: Option<Error> = None;
    let finished = AtomicBool::new(false);
    let halt = || stop.load(Ordering::Relaxed) || finished.load(Ordering::Relaxed);

    // the sink side: post-process, hand over, count
    let mut deliver = |item: Item,
                       post: Option<&Postprocess>,
                       hist: &mut [Histogram; 5],
                       latency: &mut Histogram|
     -> Result<()> {
        if options.max_frames.is_some_and(|m| processed >= m) {
            return Ok(()); // frames read before the reader saw the limit
        }
        let mut f = match item {
            Ok(f) => f,
            Err(e) => {
                failed += 1;
                return sink(Event::Failed(e));
            }
        };
        let t = Instant::now();
        let analysis = match (f.analysis.take(), post, &f.outputs, &f.transform) {
            (Some(a), _, _, _) => Ok(a),
            (None, Some(post), Some(outputs), Some(transform)) => {
                let (w, h) = (f.frame.image.width(), f.frame.image.height());
                post.apply(outputs, transform, w, h)
                    .map(|outcome| Analysis {
                        width: w,
                        height: h,
                        outcome,
                        timings: Timings::default(),
                    })
                    .map_err(Error::from)
            }
            _ => Err(Error::Frame {
                source_name: info.name.clone(),
                index: f.frame.index,
                message: "no result".into(),
            }),
        };
        let mut analysis = match analysis {
            Ok(a) => a,
            Err(e) => {
                failed += 1;
                return sink(Event::Failed(e));
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
        sink(Event::Frame(Box::new(Processed {
            frame: f.frame,
            analysis,
            outputs: f.outputs.take(),
            input: f.input.take(),
            times,
            read_at,
        })))?;
        processed += 1;
        for (h, v) in hist.iter_mut().zip([
            times.decode,
            times.preprocess,
            times.inference,
            times.postprocess,
            ms(t_sink),
        ]) {
            h.add(v);
        }
        latency.add(ms(read_at));
        if options.max_frames.is_some_and(|m| processed >= m) {
            finished.store(true, Ordering::Relaxed);
        }
        Ok(())
    };

    // one step of each stage, shared by the threaded and sequential runs: read the next frame
    // (for image files only which file: the job decodes it)
    let read_one =
        |source: &mut Box<dyn Source>, last_read: &mut Option<Instant>| -> Option<Read> {
            loop {
                if halt() {
                    return None;
                }
                let sent = counters.sent.load(Ordering::Relaxed);
                if !live && options.max_frames.is_some_and(|m| sent >= m) {
                    return None;
                }
                if let (Some(fps), Some(last)) = (options.fps, *last_read) {
                    let wait = Duration::from_secs_f64(1.0 / fps).saturating_sub(last.elapsed());
                    std::thread::sleep(wait);
                }
                let t = Instant::now();
                *last_read = Some(t);
                match source.next_job() {
                    Ok(None) => return None,
                    Ok(Some(job)) => {
                        let n = counters.frames_in.fetch_add(1, Ordering::Relaxed);
                        if n % every != 0 {
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
        };
    // finish reading: run the job (decode), on whichever thread holds it
    let finish = |read: Read| -> Item {
        let p = read?;
        let t = Instant::now();
        let frame = (p.job)()?;
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
    };
    let preprocess = |pre: &mut Preprocessor, pool: &mut Vec<Tensor>, mut f: InFlight| -> Item {
        let t = Instant::now();
        let mut tensor = pool.pop().unwrap_or_else(|| pre.spec().alloc(1));
        let transform = pre
            .run(&f.frame.image.view(), &mut tensor, 0)
            .map_err(|e| Error::Frame {
                source_name: info.name.clone(),
                index: f.frame.index,
                message: e.to_string(),
            })?;
        f.tensor = Some(tensor);
        f.transform = Some(transform);
        f.times.preprocess = ms(t);
        Ok(f)
    };
    let infer_single = |session: &mut Session, mut f: InFlight| -> (Item, Option<Tensor>) {
        let t = Instant::now();
        let Some(tensor) = f.tensor.take() else {
            return (Ok(f), None);
        };
        match session.run_tensor(&tensor) {
            Ok(outputs) => {
                f.outputs = Some(outputs);
                if options.keep_inputs {
                    f.input = Some(tensor.clone());
                }
                f.times.inference = ms(t);
                (Ok(f), Some(tensor))
            }
            Err(e) => (
                Err(Error::Frame {
                    source_name: info.name.clone(),
                    index: f.frame.index,
                    message: e.to_string(),
                }),
                Some(tensor),
            ),
        }
    };
    let infer_pipeline = |pipeline: &mut Pipeline, mut f: InFlight| -> Item {
        let a = pipeline
            .process(&f.frame.image.view())
            .map_err(|e| Error::Frame {
                source_name: info.name.clone(),
                index: f.frame.index,
                message: e.to_string(),
            })?;
        f.times.preprocess = a.timings.preprocess;
        f.times.inference = a.timings.inference;
        f.times.postprocess = a.timings.postprocess;
        f.analysis = Some(a);
        Ok(f)
    };

    let mut work = work;
    if options.sequential {
        let mut last_read = None;
        let mut pool = Vec::new();
        while let Some(read) = read_one(&mut source, &mut last_read) {
            if let Err(e) = &read {
                if !e.is_frame_error() {
                    fatal = read.err();
                    break;
                }
            }
            let item = finish(read);
            let item = match (&mut work.kind, item) {
                (_, Err(e)) => Err(e),
                (WorkKind::Single { pre, session, .. }, Ok(f)) => {
                    match preprocess(pre, &mut pool, f) {
                        Ok(f) => {
                            let (item, tensor) = infer_single(session, f);
                            pool.extend(tensor);
                            item
                        }
                        Err(e) => Err(e),
                    }
                }
                (WorkKind::Pipeline(p), Ok(f)) => infer_pipeline(p, f),
            };
            let post = post_of(&work);
            if let Err(e) = deliver(item, post, &mut hist, &mut latency) {
                fatal = Some(e);
                break;
            }
        }
    } else {
        let queue = options.queue.max(1);
        let latest: Latest<Item> = Latest::new();
        // frames in order: (sequence number, frame); several decoders may finish out of order
        let (to_pre, from_reader) = sync_channel::<(u64, Item)>(queue);
        let decoders = if !live && source.decodes_in_jobs() {
            options.decoders.max(1)
        } else {
            1
        };
        let (to_decode, from_read) = sync_channel::<(u64, Read)>(queue * decoders);
        let from_read = Mutex::new(from_read);
        let (to_infer, from_pre) = sync_channel::<Item>(queue);
        let (to_sink, from_infer) = sync_channel::<Item>(queue);
        let (give_back, take_back) = sync_channel::<Tensor>(queue + 2);
        let (work_kind, post) = match work.kind {
            WorkKind::Single { pre, session, post } => {
                ((Some(pre), Some(session), None), Some(post))
            }
            WorkKind::Pipeline(p) => ((None, None, Some(p)), None),
        };
        let (pre, session, pipeline) = work_kind;
        let source_fatal: Mutex<Option<Error>> = Mutex::new(None);
        std::thread::scope(|scope| {
            // reader
            let latest_ref = &latest;
            let source_fatal = &source_fatal;
            let read_one = &read_one;
            let source = &mut source;
            let counters = &counters;
            let finish = &finish;
            let to_pre_reader = to_pre.clone();
            scope.spawn(move || {
                let mut last_read = None;
                let mut seq = 0u64;
                while let Some(read) = read_one(source, &mut last_read) {
                    if let Err(e) = &read {
                        if !e.is_frame_error() {
                            *source_fatal.lock().unwrap_or_else(|p| p.into_inner()) = read.err();
                            break;
                        }
                    }
                    if live {
                        if latest_ref.put(finish(read)) {
                            counters.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    } else if decoders > 1 {
                        if to_decode.send((seq, read)).is_err() {
                            break;
                        }
                    } else if to_pre_reader.send((seq, finish(read))).is_err() {
                        break;
                    }
                    seq += 1;
                }
                latest_ref.close();
                drop(to_decode);
                drop(to_pre_reader);
            });
            // decoders (image files): frames decode at once, the preprocessing thread puts them
            // back in order
            if decoders > 1 {
                for _ in 0..decoders {
                    let to_pre = to_pre.clone();
                    let from_read = &from_read;
                    scope.spawn(move || loop {
                        let next = from_read.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok((seq, read)) = next else {
                            break;
                        };
                        if to_pre.send((seq, finish(read))).is_err() {
                            break;
                        }
                    });
                }
            }
            drop(to_pre);
            // preprocess
            let preprocess = &preprocess;
            scope.spawn(move || {
                let mut pre = pre;
                let mut pool: Vec<Tensor> = Vec::new();
                let mut waiting: BTreeMap<u64, Item> = BTreeMap::new();
                let mut want = 0u64;
                let mut next = || {
                    if live {
                        return latest_ref.take();
                    }
                    loop {
                        if let Some(item) = waiting.remove(&want) {
                            want += 1;
                            return Some(item);
                        }
                        let (seq, item) = from_reader.recv().ok()?;
                        waiting.insert(seq, item);
                    }
                };
                while let Some(item) = next() {
                    pool.extend(take_back.try_iter());
                    let item = match (item, pre.as_mut()) {
                        (Ok(f), Some(pre)) => preprocess(pre, &mut pool, f),
                        (item, _) => item,
                    };
                    if to_infer.send(item).is_err() {
                        break;
                    }
                }
            });
            // inference
            let infer_single = &infer_single;
            let infer_pipeline = &infer_pipeline;
            scope.spawn(move || {
                let (mut session, mut pipeline) = (session, pipeline);
                for item in from_pre.iter() {
                    let item = match (item, session.as_mut(), pipeline.as_mut()) {
                        (Ok(f), Some(s), _) => {
                            let (item, tensor) = infer_single(s, f);
                            if let Some(t) = tensor {
                                let _ = give_back.try_send(t);
                            }
                            item
                        }
                        (Ok(f), None, Some(p)) => infer_pipeline(p, f),
                        (item, _, _) => item,
                    };
                    if to_sink.send(item).is_err() {
                        break;
                    }
                }
            });
            // post-process and sink, here
            for item in from_infer.iter() {
                if fatal.is_some() {
                    continue; // drain so the other threads can end
                }
                if let Err(e) = deliver(item, post.as_deref(), &mut hist, &mut latency) {
                    finished.store(true, Ordering::Relaxed);
                    latest.close();
                    fatal = Some(e);
                }
            }
        });
        if fatal.is_none() {
            fatal = source_fatal.into_inner().unwrap_or_else(|p| p.into_inner());
        }
    }
    if let Some(e) = fatal {
        return Err(e);
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(Summary {
        source: info.name,
        frames_in: counters.frames_in.load(Ordering::Relaxed),
        processed,
        dropped: counters.dropped.load(Ordering::Relaxed),
        skipped: counters.skipped.load(Ordering::Relaxed),
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

    #[test]
    fn latest_keeps_the_newest() {
        let l = Latest::new();
        assert!(!l.put(1));
        assert!(l.put(2));
        assert_eq!(l.take(), Some(2));
        l.close();
        assert_eq!(l.take(), None);
    }
}
