//! From flags to the libraries' settings: every check across flags, the models loaded and
//! checked, the open and run options built, once, before any input is opened
//! ([`RunPlan::new`]); then the run over the inputs ([`RunPlan::run`]).

use crate::error::{Context, Error, Result};
use crate::flags::{Background as BackgroundFlag, TaskArgs};
use crate::load::{load, load_detector};
use crate::sink::Stream;
use crate::{output, warn, STOP};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tensorcv_capture::camera::CameraRequest;
use tensorcv_capture::runner::{RunOptions, Work};
use tensorcv_capture::serve::PreviewServer;
use tensorcv_capture::sink::VideoSink;
use tensorcv_capture::{self as capture, OpenOptions};
use tensorcv_imgproc::draw::Color;
use tensorcv_imgproc::io::{imread, DecodeLimits, DecodeOptions};
use tensorcv_infer::{Model, Task};
use tensorcv_tasks::pipeline::Postprocess;
use tensorcv_tasks::segmentation::Background;

/// `--threads`, used as at most the cores here (with a warning): threads that spin between
/// operators on a shared core make a run hundreds of times slower.
pub fn threads(asked: u64) -> usize {
    let cores = tensorcv_infer::available_threads();
    let asked = asked as usize;
    if asked > cores {
        warn(format!(
            "--threads {asked} is more than the {cores} core{} here: using {cores}",
            if cores == 1 { "" } else { "s" }
        ));
        return cores;
    }
    asked
}

/// The detector a landmark model's card names (`[landmarks] detector`): a built-in name as it
/// is, a file relative to the model file's folder.
fn card_detector(model: &Model, spec: &str) -> Option<String> {
    if model.card().model.task != Task::Landmarks {
        return None;
    }
    let det = model.card().landmarks.as_ref()?.get("detector")?.as_str()?;
    if tensorcv_zoo::find(det).is_some() || tensorcv_zoo::find(spec).is_some() {
        return Some(det.to_string());
    }
    let dir = std::path::Path::new(spec).parent()?;
    Some(dir.join(det).display().to_string())
}

/// A task run over inputs, every setting checked.
pub struct RunPlan<'a> {
    args: &'a TaskArgs,
    /// what `-m` named (or the default), for messages
    spec: &'a str,
    model: Model,
    detector: Option<Model>,
    task: Option<Task>,
    effect: Option<Background>,
    open_options: OpenOptions,
    run_options: RunOptions,
}

impl<'a> RunPlan<'a> {
    /// Check the flags together, load the model (and the `--roi-from` detector) and build the
    /// settings.
    pub fn new(args: &'a TaskArgs, task: Option<Task>) -> Result<RunPlan<'a>> {
        let default = match task {
            Some(Task::Detection) => Some("face"),
            Some(Task::Segmentation) => Some("selfie"),
            Some(Task::Landmarks) => Some("face_mesh"),
            _ => None,
        };
        let spec = match (&args.model, default) {
            (Some(m), _) => m.as_str(),
            (None, Some(d)) => d,
            (None, None) => return Err(Error::NoModel),
        };
        if args.dump.is_some() && args.roi_from.is_some() {
            return Err(Error::Usage(
                "--dump writes one model's tensors per image; it cannot be used with --roi-from"
                    .into(),
            ));
        }
        if args.json && args.output.as_deref().is_some_and(|o| o.starts_with('-')) {
            return Err(Error::Usage(
                "--json and --output - both want standard output".into(),
            ));
        }
        if args.output.is_some() && args.inputs.len() > 1 {
            return Err(Error::Usage(
                "--output writes one video: give one INPUT".into(),
            ));
        }
        if let Some(out) = &args.output {
            VideoSink::check(out)?;
        }
        let threads = threads(args.threads);
        // the detector first: its errors name it, not the main model
        let detector = match &args.roi_from {
            Some(det) => {
                let model = load_detector(det, args.detector_threshold, threads, args.tract_only)
                    .context("--roi-from")?;
                Postprocess::for_model(&model, Some(Task::Detection))
                    .context(format!("--roi-from: detector '{det}'"))?;
                Some(model)
            }
            None => None,
        };
        let (model, _) = load(spec, &args.pre, Some(args), threads, args.tract_only)?;
        // a landmark model's card names the detector that finds its objects
        let detector = match (detector, card_detector(&model, spec)) {
            (Some(d), _) => Some(d),
            (None, Some(det)) => {
                let context = format!("the detector '{det}' named by the card of '{spec}'");
                let model = load_detector(&det, args.detector_threshold, threads, args.tract_only)
                    .context(context.clone())?;
                Postprocess::for_model(&model, Some(Task::Detection)).context(context)?;
                Some(model)
            }
            (None, None) => None,
        };
        let mut plan = RunPlan {
            args,
            spec,
            model,
            detector,
            task,
            effect: None,
            open_options: OpenOptions::default(),
            run_options: RunOptions::default(),
        };
        // check the models and settings once, before any input is opened
        plan.task = Some(plan.work()?.postprocess().task());
        if args.detector_threshold.is_some() && plan.detector.is_none() {
            return Err(Error::Usage(
                "--detector-threshold is for runs with a detector first (--roi-from, landmarks)"
                    .into(),
            ));
        }
        let landmark_flags = [
            ("--max-objects", args.max_objects.is_some()),
            ("--no-tracking", args.no_tracking),
            ("--redetect-every", args.redetect_every.is_some()),
        ];
        if let Some((flag, _)) = landmark_flags.iter().find(|(_, set)| *set) {
            if plan.task != Some(Task::Landmarks) || plan.detector.is_none() {
                return Err(Error::Usage(format!(
                    "{flag} is for landmark models after a detector"
                )));
            }
        }
        if args.background.is_some() && plan.task != Some(Task::Segmentation) {
            return Err(Error::Usage(
                "--background needs a segmentation model".into(),
            ));
        }
        plan.effect = match &args.background {
            Some(BackgroundFlag::Image(path)) => Some(Background::picture(
                imread(path, &DecodeOptions::default())
                    .context(format!("background '{}'", path.display()))?,
            )),
            Some(BackgroundFlag::Color([r, g, b])) => {
                Some(Background::color(Color::rgb(*r, *g, *b)))
            }
            Some(BackgroundFlag::Blur(k)) => Some(Background::blur(*k)?),
            None => None,
        };
        plan.open_options = plan.open_options();
        plan.run_options = RunOptions {
            max_frames: args.max_frames,
            every: args.every,
            fps: args.fps,
            live: None,
            queue: 2,
            sequential: args.sequential,
            keep_inputs: args.dump.is_some(),
            decoders: args
                .decoders
                .map_or(RunOptions::default().decoders, |n| n as usize),
        };
        plan.run_options.validate()?;
        Ok(plan)
    }

    /// The runner's work: the model (after the detector), post-processing for the task.
    fn work(&self) -> Result<Work> {
        Work::new(&self.model, self.task, self.detector.as_ref())
            .context(format!("model '{}'", self.spec))
    }

    /// How sources are opened.
    fn open_options(&self) -> OpenOptions {
        let args = self.args;
        let mut limits = DecodeLimits::default();
        if let Some(mp) = args.max_megapixels {
            limits.max_pixels = mp * 1_000_000;
        }
        let timeout = Duration::from_secs_f64(args.timeout);
        OpenOptions {
            raw: args.raw,
            camera: CameraRequest {
                size: args.camera_size,
                fps: args.camera_fps,
                format: args.camera_format,
            },
            timeout: Some(timeout),
            frame_deadline: Some(Duration::from_secs_f64(args.frame_timeout).max(timeout)),
            max_part: Some((args.max_frame_mib as usize) << 20),
            reduce_to: args.fast_decode.then(|| {
                // JPEGs stay at least the first model's input; a second model's crops are
                // smaller than the image, so with --roi-from it stays at least 4x the second
                // input
                let first = self.detector.as_ref().unwrap_or(&self.model).input_spec();
                let (mut w, mut h) = (first.width, first.height);
                if self.detector.is_some() {
                    let second = self.model.input_spec();
                    w = w.max(4 * second.width);
                    h = h.max(4 * second.height);
                }
                (w as u32, h as u32)
            }),
            limits,
        }
    }

    /// Run the task on every input; `Ok(false)` when some inputs or frames failed (they are
    /// listed).
    pub fn run(mut self) -> Result<bool> {
        let args = self.args;
        for dir in [&args.save, &args.dump].into_iter().flatten() {
            std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        // WASI has no signals: a WASM run ends with its input (or its host)
        #[cfg(not(target_family = "wasm"))]
        let _ = ctrlc::set_handler(|| STOP.store(true, Ordering::Relaxed));
        let server = match &args.serve {
            Some(addr) => {
                let s = PreviewServer::bind(addr).context("--serve")?;
                warn(format!("preview on http://{}/", s.local_addr()));
                Some(s)
            }
            None => None,
        };
        let mut failures = Vec::new();
        let ended = self.inputs(server.as_ref(), &mut failures);
        if let Some(s) = server {
            s.close();
        }
        ended?;
        if failures.len() > 1 {
            warn(format!("{} inputs or frames failed:", failures.len()));
            let mut err = std::io::stderr().lock();
            for f in &failures {
                let _ = writeln!(err, "  {f}");
            }
        }
        Ok(failures.is_empty())
    }

    /// Every input in turn; an input that fails is reported and the next one taken, until
    /// standard output is gone (`Err`).
    fn inputs(&mut self, server: Option<&PreviewServer>, failures: &mut Vec<String>) -> Result<()> {
        let args = self.args;
        for input in &args.inputs {
            if STOP.load(Ordering::Relaxed) {
                break;
            }
            let source = match capture::open_os(input, &self.open_options) {
                Ok(s) => s,
                Err(e) => {
                    report(e, failures)?;
                    continue;
                }
            };
            let info = source.info().clone();
            let stream = info.format != capture::files::FORMAT;
            let progress = output::Progress::new(if stream {
                0
            } else {
                info.frames.unwrap_or(0) as usize
            });
            let mut video: Option<VideoSink> = None;
            let mut work = self.work()?;
            if let Some(p) = work.pipeline_mut() {
                let track = stream && !args.no_tracking && p.can_track();
                let default = if track { 1 } else { usize::MAX };
                p.set_max_objects(args.max_objects.map_or(default, |n| n as usize));
                if track {
                    p.set_tracking(args.redetect_every)
                        .context(format!("model '{}'", self.spec))?;
                }
            }
            let mut state = Stream {
                labels: work.postprocess().labels().to_vec(),
                connections: work.postprocess().connections().to_vec(),
                landmarks: work.postprocess().task() == Task::Landmarks,
                args,
                info: &info,
                stream,
                effect: self.effect.as_mut(),
                video: &mut video,
                server,
                progress: &progress,
                failures,
                processed: 0,
                started: Instant::now(),
            };
            let result = capture::runner::run(source, work, &self.run_options, &STOP, &mut |e| {
                state.handle(e)
            });
            progress.finish();
            // the video is closed (an AVI gets its index) whatever ended the run
            let closed = video.map(VideoSink::finish).transpose();
            match result {
                Ok(summary) => {
                    if args.summary || stream {
                        output::summary(&summary, args.json && args.summary)
                            .map_err(Error::Stdout)?;
                    }
                }
                Err(e) => report(e, failures)?,
            }
            if let Err(e) = closed {
                report(e, failures)?;
            }
        }
        Ok(())
    }
}

/// A failed input or output: said and listed; `Err` when standard output is gone (nothing
/// more can be said there, the command ends).
pub fn report(e: capture::Error, failures: &mut Vec<String>) -> Result<()> {
    match Error::from(e) {
        Error::Stdout(e) => Err(Error::Stdout(e)),
        e => {
            let m = e.to_string();
            warn(&m);
            failures.push(m);
            Ok(())
        }
    }
}
