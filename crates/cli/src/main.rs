//! `tensorcv`: run TensorFlow-trained vision models (exported to ONNX or TFLite) on images —
//! classify, detect, segment — with the preprocessing and post-processing their model cards
//! describe. Thin, in ripgrep's shape: flags ([`flags`], clap) become a checked plan of the
//! libraries' settings ([`plan`]), which runs, each frame going to the sink ([`sink`]) and
//! printed as the libraries' records ([`output`]); errors are typed ([`error`]).

mod error;
mod flags;
mod load;
mod output;
mod plan;
#[cfg(all(feature = "serve", not(target_family = "wasm")))]
mod serve;
mod sink;

use clap::Parser;
use error::{Error, Result};
use flags::{Cli, Command};
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use tensorcv_imgproc::io::{imread, DecodeOptions};
use tensorcv_infer::Task;

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
        *LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(tensorcv_infer::panic_report(info));
    }));
}

/// Set by Ctrl-C: streams finish the frames they hold, close their outputs and summarise.
static STOP: AtomicBool = AtomicBool::new(false);

/// The process's memory budget: a model that folds into huge tensors while it loads fails
/// with an error naming it instead of taking the machine's memory (`tensorcv_infer::memory`;
/// limits from `TENSORCV_MEMORY_MB` and `TENSORCV_MAX_ALLOCATION_MB`).
/// The static (musl) build allocates with a pure-Rust allocator instead of musl's, which maps
/// and unmaps memory per frame (`Budget::pure_rust`); glibc's allocator is kept elsewhere.
#[global_allocator]
#[cfg(target_env = "musl")]
static MEMORY: tensorcv_infer::memory::Budget = tensorcv_infer::memory::Budget::pure_rust();
#[global_allocator]
#[cfg(not(target_env = "musl"))]
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
        Ok(Err(Error::Usage(message))) => usage(&message),
        Ok(Err(Error::Stdout(e))) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            warn(e);
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

fn dispatch(cli: &Cli) -> Result<bool> {
    let mut out = std::io::stdout().lock();
    match &cli.command {
        Command::Models => {
            output::models(&mut out).map_err(Error::Stdout)?;
            Ok(true)
        }
        Command::Bench(args) => bench(args),
        Command::Cameras => {
            let cameras = tensorcv_capture::camera::list()?;
            output::cameras(&mut out, &cameras).map_err(Error::Stdout)?;
            Ok(true)
        }
        Command::Inspect(args) => {
            let (model, from) = load::load(&args.model, &args.pre, None, 1, false)?;
            output::inspect(&mut out, &model, &from, &args.pre, args.json)
                .map_err(Error::Stdout)?;
            Ok(true)
        }
        Command::Classify(args) => plan::RunPlan::new(args, Some(Task::Classification))?.run(),
        Command::Detect(args) => plan::RunPlan::new(args, Some(Task::Detection))?.run(),
        Command::Segment(args) => plan::RunPlan::new(args, Some(Task::Segmentation))?.run(),
        Command::Landmarks(args) => plan::RunPlan::new(args, Some(Task::Landmarks))?.run(),
        Command::Run(args) => plan::RunPlan::new(args, None)?.run(),
        #[cfg(all(feature = "serve", not(target_family = "wasm")))]
        Command::Serve(args) => serve::run(args),
    }
}

/// `tensorcv bench`: load, first run, steady inference, preprocessing, per-op profile.
fn bench(args: &flags::BenchArgs) -> Result<bool> {
    use tensorcv_imgproc::tensor::Preprocessor;
    let threads = plan::threads(args.threads);
    let t = Instant::now();
    let (model, origin) = load::load(&args.model, &args.pre, None, threads, args.tract_only)?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let image = match &args.image {
        Some(p) => imread(p, &DecodeOptions::default())?,
        None => tensorcv_imgproc::Image::from_vec(
            vec![128; 1920 * 1080 * 3],
            1920,
            1080,
            tensorcv_imgproc::PixelFormat::Bgr8,
        )?,
    };
    let mut pre = Preprocessor::try_new(model.input_spec().clone())?;
    let mut tensor = model.input_spec().alloc(model.batch());
    let mut pre_times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        pre.run(&image.view(), &mut tensor, 0)?;
        pre_times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    pre_times.sort_by(f64::total_cmp);
    let runs = model.time_runs(&tensor, args.iterations as usize)?;
    let profile_runs = (args.iterations as usize).clamp(1, 20);
    let ops = model.profile(&tensor, profile_runs)?;
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
    .map_err(Error::Stdout)?;
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
