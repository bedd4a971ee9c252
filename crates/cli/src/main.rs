//! `tensorcv`: run TensorFlow-trained vision models (exported to ONNX or TFLite) on images —
//! classify, detect, segment — with the preprocessing and post-processing their model cards
//! describe. Thin: it parses flags, wires the library crates, and prints.

mod builtin;
mod options;
mod output;

use clap::Parser;
use options::{Background as BackgroundFlag, Cli, Command, TaskArgs};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tensorcv_capture::camera::CameraRequest;
use tensorcv_capture::runner::{Event, Processed, RunOptions, Work};
use tensorcv_capture::serve::PreviewServer;
use tensorcv_capture::sink::VideoSink;
use tensorcv_capture::{self as capture, OpenOptions, SourceInfo};
use tensorcv_imgproc::draw::Color;
use tensorcv_imgproc::io::{imread, imwrite, DecodeLimits, DecodeOptions};
use tensorcv_infer::Task;
use tensorcv_tasks::pipeline::Postprocess;
use tensorcv_tasks::segmentation::Background;
use tensorcv_tasks::visualize::draw_outcome;

/// Why a command failed.
enum Failure {
    /// a message for stderr (exit 1)
    Message(String),
    /// standard output could not be written: a closed pipe ends quietly (exit 0, as ripgrep
    /// and coreutils do), anything else is exit 1
    Stdout(std::io::Error),
}

impl From<String> for Failure {
    fn from(m: String) -> Self {
        Failure::Message(m)
    }
}

/// A capture error: a closed pipe on standard output (records, or `--output -`) becomes
/// [`Failure::Stdout`], the rest a message.
fn capture_failure(e: capture::Error) -> Failure {
    match e {
        capture::Error::Write { path, source } if path == STDOUT => Failure::Stdout(source),
        e if e.is_broken_pipe() => Failure::Stdout(std::io::ErrorKind::BrokenPipe.into()),
        e => Failure::Message(e.to_string()),
    }
}

/// A failed input or output: said and listed; `Err` when standard output is gone (nothing more
/// can be said there, the command ends).
fn report(e: capture::Error, failures: &mut Vec<String>) -> Result<(), Failure> {
    match capture_failure(e) {
        Failure::Stdout(e) => Err(Failure::Stdout(e)),
        Failure::Message(m) => {
            warn(&m);
            failures.push(m);
            Ok(())
        }
    }
}

/// The name errors give standard output.
const STDOUT: &str = "standard output";

/// A line on stderr; a closed or full stderr is ignored (it is where errors would go).
fn warn(message: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr(), "tensorcv: {message}");
}

/// The message and place of the last panic, kept by the quiet panic hook.
static LAST_PANIC: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Panics are contained where they can happen (model loading, the runner's stages) and come
/// back as errors naming what failed; the default hook would still print each one. This hook
/// keeps the message for the rare panic that reaches `main` (a bug: exit 101 with one line).
/// `TENSORCV_PANIC_TRACE=1` keeps the default hook (with `RUST_BACKTRACE` for a trace).
fn quiet_panics() {
    if std::env::var_os("TENSORCV_PANIC_TRACE").is_some_and(|v| v == "1") {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let message = tensorcv_infer::panic_message(info.payload());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        *LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{message}{at}"));
    }));
}

/// The process's memory budget: a model that folds into huge tensors while it loads fails
/// with an error naming it instead of taking the machine's memory (`tensorcv_infer::memory`;
/// limits from `TENSORCV_MEMORY_MB` and `TENSORCV_MAX_ALLOCATION_MB`).
#[global_allocator]
static MEMORY: tensorcv_infer::memory::Budget = tensorcv_infer::memory::Budget::new();

fn main() -> ExitCode {
    let (total, single) = tensorcv_infer::memory::Budget::from_env();
    MEMORY.set_limits(total, single);
    quiet_panics();
    let cli = Cli::parse();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(&cli)));
    match outcome {
        Ok(Ok(true)) => ExitCode::SUCCESS,
        Ok(Ok(false)) => ExitCode::from(1),
        Ok(Err(Failure::Message(message))) => {
            warn(message);
            ExitCode::from(1)
        }
        Ok(Err(Failure::Stdout(e))) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Ok(Err(Failure::Stdout(e))) => {
            warn(format!("cannot write to {STDOUT}: {e}"));
            ExitCode::from(1)
        }
        Err(payload) => {
            let message = LAST_PANIC
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_else(|| tensorcv_infer::panic_message(&*payload));
            warn(format!(
                "internal error (a bug in tensorcv; please report it): {message}"
            ));
            ExitCode::from(101)
        }
    }
}

fn dispatch(cli: &Cli) -> Result<bool, Failure> {
    let mut out = std::io::stdout().lock();
    match &cli.command {
        Command::Models => {
            output::models(&mut out).map_err(Failure::Stdout)?;
            Ok(true)
        }
        Command::Bench(args) => bench(args),
        Command::Cameras => {
            let cameras = tensorcv_capture::camera::list().map_err(|e| e.to_string())?;
            output::cameras(&mut out, &cameras).map_err(Failure::Stdout)?;
            Ok(true)
        }
        Command::Inspect(args) => {
            let (model, from) = options::load(&args.model, &args.pre, None, 1, false)?;
            output::inspect(&mut out, &model, &from, &args.pre, args.json)
                .map_err(Failure::Stdout)?;
            Ok(true)
        }
        Command::Classify(args) => run(args, Some(Task::Classification)),
        Command::Detect(args) => run(args, Some(Task::Detection)),
        Command::Segment(args) => run(args, Some(Task::Segmentation)),
        Command::Run(args) => run(args, None),
    }
}

/// `--threads`, used as at most the cores here (with a warning): threads that spin between
/// operators on a shared core make a run hundreds of times slower.
fn threads(asked: u64) -> usize {
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

/// Set by Ctrl-C: streams finish the frames they hold, close their outputs and summarise.
static STOP: AtomicBool = AtomicBool::new(false);

/// Run the task on every input; `Ok(false)` when some inputs or frames failed (they are
/// listed).
fn run(args: &TaskArgs, task: Option<Task>) -> Result<bool, Failure> {
    let default = match task {
        Some(Task::Detection) => Some("face"),
        Some(Task::Segmentation) => Some("selfie"),
        _ => None,
    };
    let spec = match (&args.model, default) {
        (Some(m), _) => m.as_str(),
        (None, Some(d)) => d,
        (None, None) => {
            return Err("which model? give one with -m (see `tensorcv models`)"
                .to_string()
                .into())
        }
    };
    if args.dump.is_some() && args.roi_from.is_some() {
        usage("--dump writes one model's tensors per image; it cannot be used with --roi-from");
    }
    if args.json && args.output.as_deref().is_some_and(|o| o.starts_with('-')) {
        usage("--json and --output - both want standard output");
    }
    if args.output.is_some() && args.inputs.len() > 1 {
        usage("--output writes one video: give one INPUT");
    }
    if let Some(out) = &args.output {
        VideoSink::check(out).map_err(|e| e.to_string())?;
    }
    let threads = threads(args.threads);
    // the detector first: its errors name it, not the main model
    let detector = match &args.roi_from {
        Some(det) => {
            let pre = options::Preprocess::default();
            let (model, _) = options::load(det, &pre, None, threads, args.tract_kernels)
                .map_err(|e| format!("--roi-from: {e}"))?;
            Postprocess::for_model(&model, Some(Task::Detection))
                .map_err(|e| format!("--roi-from: detector '{det}': {e}"))?;
            Some(model)
        }
        None => None,
    };
    let (model, _) = options::load(spec, &args.pre, Some(args), threads, args.tract_kernels)?;
    let work =
        || Work::new(&model, task, detector.as_ref()).map_err(|e| format!("model '{spec}': {e}"));
    // check the models and settings once, before any input is opened
    let task = Some(work()?.postprocess().task());
    if args.background.is_some() && task != Some(Task::Segmentation) {
        usage("--background needs a segmentation model");
    }
    let mut effect = match &args.background {
        Some(BackgroundFlag::Image(path)) => Some(Background::picture(
            imread(path, &DecodeOptions::default())
                .map_err(|e| format!("background '{}': {e}", path.display()))?,
        )),
        Some(BackgroundFlag::Color([r, g, b])) => Some(Background::color(Color::rgb(*r, *g, *b))),
        Some(BackgroundFlag::Blur(k)) => Some(Background::blur(*k).map_err(|e| e.to_string())?),
        None => None,
    };
    for dir in [&args.save, &args.dump].into_iter().flatten() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create '{}': {e}", dir.display()))?;
    }
    let _ = ctrlc::set_handler(|| STOP.store(true, Ordering::Relaxed));
    let server = match &args.serve {
        Some(addr) => {
            let s = PreviewServer::bind(addr).map_err(|e| format!("--serve: {e}"))?;
            warn(format!("preview on http://{}/", s.local_addr()));
            Some(s)
        }
        None => None,
    };
    let mut limits = DecodeLimits::default();
    if let Some(mp) = args.max_megapixels {
        limits.max_pixels = mp * 1_000_000;
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let open_options = OpenOptions {
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
            // JPEGs stay at least the first model's input; a second model's crops are smaller
            // than the image, so with --roi-from it stays at least 4x the second input
            let first = detector.as_ref().unwrap_or(&model).input_spec();
            let (mut w, mut h) = (first.width, first.height);
            if detector.is_some() {
                let second = model.input_spec();
                w = w.max(4 * second.width);
                h = h.max(4 * second.height);
            }
            (w as u32, h as u32)
        }),
        limits,
    };
    let run_options = RunOptions {
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
    run_options.validate().map_err(|e| e.to_string())?;
    let mut failures = Vec::new();
    let mut ended = Ok(());
    for input in &args.inputs {
        if STOP.load(Ordering::Relaxed) {
            break;
        }
        let source = match capture::open_os(input, &open_options) {
            Ok(s) => s,
            Err(e) => match report(e, &mut failures) {
                Ok(()) => continue,
                Err(gone) => {
                    ended = Err(gone);
                    break;
                }
            },
        };
        let info = source.info().clone();
        let stream = info.format != capture::files::FORMAT;
        let progress = output::Progress::new(if stream {
            0
        } else {
            info.frames.unwrap_or(0) as usize
        });
        let mut video: Option<VideoSink> = None;
        let work = work()?;
        let mut state = Stream {
            labels: work.postprocess().labels().to_vec(),
            args,
            info: &info,
            stream,
            effect: effect.as_mut(),
            video: &mut video,
            server: server.as_ref(),
            progress: &progress,
            failures: &mut failures,
            processed: 0,
            started: Instant::now(),
        };
        let result = capture::runner::run(source, work, &run_options, &STOP, &mut |event| {
            state.handle(event)
        });
        progress.finish();
        // the video is closed (an AVI gets its index) whatever ended the run
        let closed = video.map(VideoSink::finish).transpose();
        match result {
            Ok(summary) => {
                if args.summary || stream {
                    output::summary(&summary, args.json && args.summary)
                        .map_err(Failure::Stdout)?;
                }
            }
            Err(e) => {
                if let Err(gone) = report(e, &mut failures) {
                    ended = Err(gone);
                    break;
                }
            }
        }
        if let Err(e) = closed {
            if let Err(gone) = report(e, &mut failures) {
                ended = Err(gone);
                break;
            }
        }
    }
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

/// `tensorcv bench`: load, first run, steady inference, preprocessing, per-op profile.
fn bench(args: &options::BenchArgs) -> Result<bool, Failure> {
    use tensorcv_imgproc::tensor::Preprocessor;
    let threads = threads(args.threads);
    let t = Instant::now();
    let (model, origin) = options::load(&args.model, &args.pre, None, threads, args.tract_kernels)?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let image = match &args.image {
        Some(p) => imread(p, &DecodeOptions::default()).map_err(|e| e.to_string())?,
        None => tensorcv_imgproc::Image::from_vec(
            vec![128; 1920 * 1080 * 3],
            1920,
            1080,
            tensorcv_imgproc::PixelFormat::Bgr8,
        )
        .map_err(|e| e.to_string())?,
    };
    let mut pre = Preprocessor::try_new(model.input_spec().clone()).map_err(|e| e.to_string())?;
    let mut tensor = model.input_spec().alloc(model.batch());
    let mut pre_times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        pre.run(&image.view(), &mut tensor, 0)
            .map_err(|e| e.to_string())?;
        pre_times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    pre_times.sort_by(f64::total_cmp);
    let runs = model
        .time_runs(&tensor, args.iterations as usize)
        .map_err(|e| e.to_string())?;
    let profile_runs = (args.iterations as usize).clamp(1, 20);
    let ops = model
        .profile(&tensor, profile_runs)
        .map_err(|e| e.to_string())?;
    output::bench(
        &mut std::io::stdout().lock(),
        &output::BenchReport {
            model: &origin.name,
            threads,
            image: (image.width(), image.height()),
            load_ms,
            preprocess_ms: pre_times[pre_times.len() / 2],
            runs: &runs,
            ops: &ops,
            profile_runs,
            top: args.top as usize,
            peak_rss_kb: peak_rss_kb(),
            json: args.json,
        },
    )
    .map_err(Failure::Stdout)?;
    Ok(true)
}

/// The process's peak resident memory (Linux), kB.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A usage error found after parsing: clap's message format and exit code 2.
fn usage(message: &str) -> ! {
    use clap::CommandFactory;
    Cli::command()
        .error(clap::error::ErrorKind::ArgumentConflict, message)
        .exit()
}

/// What one input's frames are written to, and what the sink counts.
struct Stream<'a> {
    args: &'a TaskArgs,
    info: &'a SourceInfo,
    /// a video or live source (not image files): frames are numbered in names and records
    stream: bool,
    effect: Option<&'a mut Background>,
    video: &'a mut Option<VideoSink>,
    server: Option<&'a PreviewServer>,
    progress: &'a output::Progress,
    failures: &'a mut Vec<String>,
    labels: Vec<String>,
    processed: u64,
    started: Instant,
}

impl Stream<'_> {
    /// One runner event: a result to draw, write and print, or a failure to report.
    fn handle(&mut self, event: Event) -> capture::Result<()> {
        let p = match event {
            Event::Failed(e) => {
                let message = e.to_string();
                self.progress.println(|| warn(&message));
                self.failures.push(message);
                self.progress.inc();
                return Ok(());
            }
            Event::Frame(p) => p,
        };
        let record = self.frame(*p)?;
        let text = output::render(&record, self.args.json);
        // a video on standard output keeps it: the records go to stderr then
        let video_on_stdout = self
            .args
            .output
            .as_deref()
            .is_some_and(|o| o.starts_with('-'));
        self.progress.println(|| {
            if video_on_stdout {
                let _ = std::io::stderr().write_all(text.as_bytes());
                Ok(())
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|source| capture::Error::Write {
                        path: STDOUT.into(),
                        source,
                    })
            }
        })?;
        self.progress.inc();
        Ok(())
    }

    fn frame(&mut self, p: Processed) -> capture::Result<serde_json::Value> {
        let args = self.args;
        let Processed {
            frame,
            analysis,
            outputs,
            input,
            times,
            ..
        } = p;
        let mut image = frame.image;
        let name = frame.name.clone().unwrap_or_else(|| self.info.name.clone());
        let t0 = Instant::now();
        let base = Path::new(&name)
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let stem = if self.stream {
            format!("{base}_{:05}", frame.index)
        } else {
            base
        };
        let saved = |path: &Path, e: tensorcv_imgproc::Error| capture::Error::Sink {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        if let (Some(dir), Some(outputs), Some(input)) = (&args.dump, &outputs, &input) {
            dump(dir, &stem, input, outputs)?;
        }
        let labels = &self.labels;
        let (w, h) = (image.width(), image.height());
        let seg = analysis
            .outcome
            .segmentation(w, h)
            .map_err(capture::Error::from)?;
        let mut mask_path = None;
        if let (Some(dir), Some(seg)) = (&args.save, &seg) {
            let path = dir.join(format!("{stem}.mask.png"));
            let colors = seg.colorized().map_err(capture::Error::from)?;
            imwrite(&path, &colors.view()).map_err(|e| saved(&path, e))?;
            mask_path = Some(path.display().to_string());
        }
        let mut record = output::Record::new(&name, frame.index, w, h);
        if frame.scale != 1.0 {
            record.scale(frame.scale);
        }
        if self.stream {
            record.timestamp(frame.timestamp.as_secs_f64() * 1e3);
        }
        record.outcome(&analysis.outcome, seg.as_deref(), labels, mask_path);
        let drawn = args.save.is_some() || args.output.is_some() || self.server.is_some();
        if drawn {
            match (self.effect.as_deref_mut(), &seg) {
                (Some(effect), Some(seg)) => effect
                    .apply(seg, &mut image.view_mut())
                    .map_err(capture::Error::from)?,
                _ => draw_outcome(
                    &mut image.view_mut(),
                    &analysis.outcome,
                    seg.as_deref(),
                    labels,
                    0.5,
                )
                .map_err(capture::Error::from)?,
            }
        }
        if let Some(dir) = &args.save {
            let path = dir.join(format!("{stem}.png"));
            imwrite(&path, &image.view()).map_err(|e| saved(&path, e))?;
        }
        if let Some(out) = &args.output {
            if self.video.is_none() {
                let fps = args.fps.or(self.info.fps).unwrap_or(25.0) / args.every.max(1) as f64;
                *self.video = Some(VideoSink::create(out, w, h, fps)?);
            }
            if let Some(v) = self.video.as_mut() {
                v.write(&image.view())?;
            }
        }
        self.processed += 1;
        if let Some(server) = self.server {
            let fps = self.processed as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            let results = record.clone().into_json().to_string();
            server.publish(&image.view(), frame.index, &results, fps)?;
        }
        let post = times.postprocess + t0.elapsed().as_secs_f64() * 1e3;
        record.timings(times.decode, times.preprocess, times.inference, post);
        Ok(record.into_json())
    }
}

/// `--dump`: the model input and every output of one image as `.npy`
/// (`DIR/<image>.input.npy`, `DIR/<image>.<output>.npy`, output names made file-safe).
fn dump(
    dir: &Path,
    stem: &str,
    input: &tensorcv_imgproc::tensor::Tensor,
    outputs: &tensorcv_infer::Outputs,
) -> capture::Result<()> {
    use tensorcv_infer::npy::{tensor_to_npy, to_npy};
    let write = |name: &str, bytes: Vec<u8>| {
        let path = dir.join(format!("{stem}.{name}.npy"));
        std::fs::write(&path, bytes).map_err(|source| capture::Error::Write {
            path: path.display().to_string(),
            source,
        })
    };
    write("input", tensor_to_npy(input))?;
    for (i, name) in outputs.names().iter().enumerate() {
        let Some(a) = outputs.by_index(i) else {
            continue;
        };
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        write(&safe, to_npy(a.shape(), a.iter().copied()))?;
    }
    Ok(())
}
