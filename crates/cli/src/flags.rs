//! The command's flags (clap), each with its validated range; [`crate::plan`] turns them into
//! the libraries' settings.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use tensorcv_imgproc::geometry::Fit;
use tensorcv_imgproc::tensor::{ChannelOrder, Layout, Range};
use tensorcv_imgproc::Interpolation;

/// Run TensorFlow-trained vision models (ONNX or TFLite) on images.
#[derive(Parser)]
#[command(name = "tensorcv", version, long_version = long_version())]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `--version`: the version, the build's target (and whether it is static), the SIMD levels
/// chosen on this machine and the built-in models.
fn long_version() -> &'static str {
    use std::sync::OnceLock;
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let linking = if cfg!(target_feature = "crt-static") {
            "static"
        } else {
            "dynamic"
        };
        let models: Vec<&str> = tensorcv_zoo::all().map(|b| b.name).collect();
        format!(
            "{}\ntarget: {} ({linking})\nsimd: kernels {}, imgproc {} (detected at run time)\n\
             built-in models: {}",
            env!("CARGO_PKG_VERSION"),
            env!("TENSORCV_TARGET"),
            tensorcv_infer::simd_level(),
            tensorcv_imgproc::simd_level(),
            models.join(", ")
        )
    })
}

#[derive(Subcommand)]
pub enum Command {
    /// Describe a model: inputs, outputs, and the preprocessing in effect with where each
    /// setting came from
    Inspect(InspectArgs),
    /// Classify images (top classes with labels)
    Classify(TaskArgs),
    /// Detect objects (boxes and keypoints in image pixels); default model: the built-in face
    /// detector
    Detect(TaskArgs),
    /// Segment images (class fractions, masks, overlays); default model: the built-in selfie
    /// segmenter
    Segment(TaskArgs),
    /// Find points on objects: a detector finds them, a landmark model sees a turned crop
    /// around each (MediaPipe's pipelines); default model: the built-in face mesh
    Landmarks(TaskArgs),
    /// The task the model's card names; a model without a card gets raw inference (each
    /// output's name, shape and summary)
    Run(TaskArgs),
    /// The built-in models
    Models,
    /// The cameras present and their formats (needs a build with `--features camera`)
    Cameras,
    /// Time a model: load, first run, median/p95 inference, preprocessing, and where the time
    /// goes (tract's per-op profile)
    Bench(BenchArgs),
    /// Serve models over KServe v2 (HTTP and gRPC), TF Serving REST and DeepStack's vision
    /// API, with Prometheus metrics; SIGHUP reloads --models, SIGTERM stops gracefully
    #[cfg(all(feature = "serve", not(target_family = "wasm")))]
    Serve(ServeArgs),
}

/// `tensorcv serve`.
#[cfg(all(feature = "serve", not(target_family = "wasm")))]
#[derive(Args)]
pub struct ServeArgs {
    /// a model to serve: a built-in (`tensorcv models`) or a model file with its card, served
    /// under the card's name (else the file's stem); NAME=MODEL serves it as NAME; repeat for
    /// more (default, without --models: every built-in)
    #[arg(short, long = "model", value_name = "MODEL")]
    pub models: Vec<String>,
    /// a model directory: each .onnx / .tflite file with its card (.toml beside it) is a
    /// model; read again on SIGHUP (new files loaded, changed ones swapped, removed ones
    /// unloaded)
    #[arg(long = "models", value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// the HTTP address (KServe v2, TF Serving, DeepStack, /metrics); a bare port means
    /// 127.0.0.1
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    pub http: String,
    /// the gRPC address (KServe v2 / Triton's grpc_service.proto); a bare port means 127.0.0.1
    #[arg(long, value_name = "ADDR")]
    pub grpc: Option<String>,
    /// instances of each model, each a thread with its own buffers (1 to 64; default: the
    /// cores, at most 4; a card's [serving] instances wins)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=64))]
    pub instances: Option<u64>,
    /// threads of each instance's inference (1 to 1024; more than the cores are the cores)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: u64,
    /// the largest batch requests are gathered into, for models with a free batch dimension
    /// (1 to 1024)
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub max_batch: u64,
    /// how long the oldest request waits for others to fill a batch, milliseconds (0 to 10000)
    #[arg(long, value_name = "MS", default_value_t = 0.0, value_parser = parse_delay)]
    pub batch_delay_ms: f64,
    /// requests waiting per model; more are refused with 503 / UNAVAILABLE (1 to 1048576)
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub queue: u64,
    /// a request's deadline when the client sets none, seconds (0.001 to 3600)
    #[arg(long, value_name = "S", default_value_t = 30.0, value_parser = parse_deadline)]
    pub timeout: f64,
    /// the largest request body (and gRPC message), MiB (1 to 4096)
    #[arg(long, value_name = "MIB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_body_mib: u64,
    /// request bytes held at once, all connections together, MiB (1 to 1048576; at least
    /// --max-body-mib); a request past it is answered 503 (bounds the memory clients can take)
    #[arg(long, value_name = "MIB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub max_inflight_mib: u64,
    /// connections served at once, per protocol; more are refused (1 to 65536)
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub max_connections: u64,
    /// seconds a client has to send a request's headers; also how long an idle connection is
    /// kept (0.1 to 3600)
    #[arg(long, value_name = "S", default_value_t = 10.0, value_parser = parse_header_timeout)]
    pub header_timeout: f64,
    /// seconds the requests under way get to finish on SIGTERM (0 to 3600)
    #[arg(long, value_name = "S", default_value_t = 30.0, value_parser = parse_grace)]
    pub grace: f64,
    /// the largest image a request may send, in megapixels (1 to 268)
    #[arg(long, value_name = "MP", default_value_t = 67, value_parser = clap::value_parser!(u64).range(1..=268))]
    pub max_megapixels: u64,
    /// the model of DeepStack's /v1/vision/detection (default: the first detection model not
    /// called face)
    #[arg(long, value_name = "NAME")]
    pub detection_model: Option<String>,
    /// the model of DeepStack's /v1/vision/face (default: face)
    #[arg(long, value_name = "NAME")]
    pub face_model: Option<String>,
    /// the model of DeepStack's /v1/vision/scene (default: the first classification model)
    #[arg(long, value_name = "NAME")]
    pub scene_model: Option<String>,
    /// threads answering connections (1 to 64; default: half the cores, 1 to 4)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=64))]
    pub io_threads: Option<u64>,
    /// log lines on standard error: text or json
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// the least severe log lines shown: error, warn, info, debug, trace
    #[arg(long, value_name = "LEVEL", default_value = "info", value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub log_level: String,
    /// load every model and check the flags and cards, print what would be served, and exit
    /// (a container's or a deployment's arguments, checked before they ship)
    #[arg(long)]
    pub check: bool,
}

#[cfg(all(feature = "serve", not(target_family = "wasm")))]
fn parse_delay(s: &str) -> Result<f64, String> {
    number_in(s, 0.0, 10_000.0, "a number of milliseconds from 0 to 10000")
}

#[cfg(all(feature = "serve", not(target_family = "wasm")))]
fn parse_deadline(s: &str) -> Result<f64, String> {
    number_in(s, 0.001, 3600.0, "a number of seconds from 0.001 to 3600")
}

#[cfg(all(feature = "serve", not(target_family = "wasm")))]
fn parse_header_timeout(s: &str) -> Result<f64, String> {
    number_in(s, 0.1, 3600.0, "a number of seconds from 0.1 to 3600")
}

#[cfg(all(feature = "serve", not(target_family = "wasm")))]
fn parse_grace(s: &str) -> Result<f64, String> {
    number_in(s, 0.0, 3600.0, "a number of seconds from 0 to 3600")
}

#[derive(Args)]
pub struct InspectArgs {
    /// a built-in model's name or a model file
    pub model: String,
    /// print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub pre: Preprocess,
}

#[derive(Args)]
pub struct BenchArgs {
    /// a built-in model's name or a model file
    #[arg(short, long)]
    pub model: String,
    /// threads for tract's matrix products and tensorcv's kernels (1 to 1024; more than the
    /// cores are used as the cores)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: u64,
    /// timed runs after the first (1 to 1000000)
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub iterations: u64,
    /// the image to preprocess and run (default: tests' 1080p JPEG if present, else gray)
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,
    /// operators to list in the profile (0 to 10000)
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub top: u64,
    /// run tract's own operators only, without tensorcv's kernels (to compare)
    #[arg(long, alias = "tract-kernels")]
    pub tract_only: bool,
    /// print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub pre: Preprocess,
}

/// Preprocessing flags: each overrides the model card.
#[derive(Args, Default)]
pub struct Preprocess {
    /// model input size, WxH (1 to 16384 each)
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub size: Option<(usize, usize)>,
    /// tensor layout: nhwc or nchw
    #[arg(long)]
    pub layout: Option<Layout>,
    /// channel order: rgb, bgr or gray
    #[arg(long)]
    pub color: Option<ChannelOrder>,
    /// value range: [0,1], [-1,1] or [0,255]
    #[arg(long)]
    pub range: Option<Range>,
    /// per-channel mean, subtracted after the range mapping: R,G,B (each within ±1000000)
    #[arg(long, value_name = "R,G,B", value_parser = parse_triple)]
    pub mean: Option<[f32; 3]>,
    /// per-channel standard deviation: R,G,B (each within ±1000000, not 0)
    #[arg(long, value_name = "R,G,B", value_parser = parse_std)]
    pub std: Option<[f32; 3]>,
    /// stretch, letterbox or crop
    #[arg(long)]
    pub fit: Option<Fit>,
    /// resize interpolation: nearest, linear, area, cubic, lanczos4
    #[arg(long)]
    pub interp: Option<Interpolation>,
    /// class labels, one per line
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// with --roi-from: grow each detected box by this factor around its center (above 0, at
    /// most 100)
    #[arg(long, value_name = "F", value_parser = parse_roi_scale)]
    pub roi_scale: Option<f32>,
    /// with --roi-from: make each region square (its longer side)
    #[arg(long)]
    pub roi_square: bool,
    /// with --roi-from: pad each region by this many pixels (0 to 100000)
    #[arg(long, value_name = "PX", value_parser = parse_roi_pad)]
    pub roi_pad: Option<f32>,
}

#[derive(Args)]
pub struct TaskArgs {
    /// a built-in model (`tensorcv models`) or a model file (.onnx, .tflite; its card is the
    /// .toml beside it)
    #[arg(short, long)]
    pub model: Option<String>,
    /// image files, folders (walked, sorted), numbered sequences (frames/%05d.png), videos
    /// (.y4m, .avi MJPEG, .gif), `-` or a file of raw frames (with --raw), http:// MJPEG
    /// streams, cameras (camera:0)
    #[arg(required = true, value_name = "INPUT", value_parser = clap::value_parser!(std::ffi::OsString))]
    pub inputs: Vec<std::ffi::OsString>,
    #[command(flatten)]
    pub pre: Preprocess,
    /// classes to report (1 to 10000)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub top_k: Option<u64>,
    /// lowest score reported, classification and detection; for landmarks, the lowest
    /// presence (MediaPipe's min_tracking_confidence) (0 to 1)
    #[arg(long, value_name = "S", value_parser = parse_unit)]
    pub score_threshold: Option<f32>,
    /// with a detector first (--roi-from, landmarks): its lowest score (MediaPipe's
    /// min_detection_confidence) (0 to 1)
    #[arg(long, value_name = "S", value_parser = parse_unit)]
    pub detector_threshold: Option<f32>,
    /// overlap above which detections are merged (0 to 1)
    #[arg(long, value_name = "IOU", value_parser = parse_unit)]
    pub iou_threshold: Option<f32>,
    /// most detections per image (1 to 10000)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_detections: Option<u64>,
    /// mask threshold, segmentation (0 to 1)
    #[arg(long, value_name = "T", value_parser = parse_unit)]
    pub threshold: Option<f32>,
    /// threads for tract's matrix products and tensorcv's kernels (1 to 1024; more than the
    /// cores are used as the cores, with a warning)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: u64,
    /// print one JSON object per input (JSON Lines)
    #[arg(long)]
    pub json: bool,
    /// write the annotated image of each input (and masks) into DIR
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
    /// run this detector first and the model on each detected region (cropped as the model's
    /// card says: input.roi_scale, roi_square, roi_pad)
    #[arg(long, value_name = "MODEL")]
    pub roi_from: Option<String>,
    /// write each input's model input and raw outputs as .npy into DIR
    #[arg(long, value_name = "DIR")]
    pub dump: Option<PathBuf>,
    /// segmentation: the saved image gets a new background instead of the overlay: `blur`
    /// (Gaussian, kernel a tenth of the image), `blur:K` (kernel K, odd), a color `#RRGGBB`,
    /// or an image file (resized to fit)
    #[arg(long, value_name = "EFFECT", value_parser = parse_background)]
    pub background: Option<Background>,
    /// read raw frames of this size and pixel format (rgb24, bgr24, gray, yuyv, nv12) from
    /// `-` (standard input) or a file: `ffmpeg ... -f rawvideo -pix_fmt rgb24 - | tensorcv
    /// detect --raw 1280x720:rgb24 -`
    #[arg(long, value_name = "WxH:FORMAT")]
    pub raw: Option<tensorcv_capture::raw::RawFormat>,
    /// stop after this many processed frames (at least 1)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_frames: Option<u64>,
    /// process one frame in N (1 to 1000000)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub every: u64,
    /// read at most this many frames per second (0.001 to 10000)
    #[arg(long, value_name = "F", value_parser = parse_fps)]
    pub fps: Option<f64>,
    /// write the annotated frames as a video: x.y4m, x.avi (MJPEG), frames/%05d.png, `-`
    /// (Y4M on standard output, for `ffplay -`), `-:bgr24` or `-:rgb24` (raw frames)
    #[arg(long, value_name = "PATH", allow_hyphen_values = true)]
    pub output: Option<String>,
    /// serve a live preview (annotated MJPEG stream, results, fps) at this address; a bare
    /// port means 127.0.0.1
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<String>,
    /// print a summary at the end (always for videos and streams); with --json, as a last
    /// JSON line
    #[arg(long)]
    pub summary: bool,
    /// landmarks: at most N objects per image get points, the detector's best first (1 to
    /// 1000; default: every one detected, and on video 1 followed)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub max_objects: Option<u64>,
    /// landmarks on video: run the detector on every frame instead of following objects by
    /// their landmarks (MediaPipe's static-image mode)
    #[arg(long)]
    pub no_tracking: bool,
    /// landmarks on video, while following objects: run the detector every N frames as well,
    /// its crops replacing the followed ones they overlap (1 to 1000000; default: only when an
    /// object is lost)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub redetect_every: Option<u64>,
    /// run decoding, preprocessing, inference and output one after another on one thread
    /// (for comparisons; the default overlaps them)
    #[arg(long)]
    pub sequential: bool,
    /// image files decoded at once (1 to 64; default: the cores, 1 to 4); results stay
    /// in order
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=64))]
    pub decoders: Option<u64>,
    /// the largest image decoded, in megapixels (1 to 268; default 67, 8192x8192): image files,
    /// AVI and network frames; a file claiming more is refused before its pixels are allocated
    #[arg(long, value_name = "MP", value_parser = clap::value_parser!(u64).range(1..=268))]
    pub max_megapixels: Option<u64>,
    /// run tract's own operators only, without tensorcv's kernels (convolutions, fused blocks,
    /// pooling, resize, its thread team), to compare or to rule them out
    #[arg(long, alias = "tract-kernels")]
    pub tract_only: bool,
    /// decode JPEG files with a 1/2, 1/4 or 1/8 scaled inverse DCT, as small as the model input
    /// allows: several times faster on large photos, but not bit-identical to cv2.imread +
    /// resize; coordinates are then the decoded image's (the record's `scale` maps them back)
    #[arg(long)]
    pub fast_decode: bool,
    /// give up on a network source after this many seconds without data (0.01 to 86400)
    #[arg(long, value_name = "S", default_value_t = 10.0, value_parser = parse_seconds)]
    pub timeout: f64,
    /// give up on a network source when one frame takes longer than this many seconds to
    /// arrive, even while bytes trickle in (0.01 to 86400; at least --timeout)
    #[arg(long, value_name = "S", default_value_t = 15.0, value_parser = parse_seconds)]
    pub frame_timeout: f64,
    /// the largest frame a network source may send, in MiB (1 to 1024), with or without a
    /// Content-Length
    #[arg(long, value_name = "MIB", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub max_frame_mib: u64,
    /// camera frame size (1 to 16384 each)
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub camera_size: Option<(usize, usize)>,
    /// camera frame rate (0.001 to 10000)
    #[arg(long, value_name = "F", value_parser = parse_fps)]
    pub camera_fps: Option<f64>,
    /// camera pixel format: yuyv, nv12 or mjpeg
    #[arg(long, value_name = "FORMAT")]
    pub camera_format: Option<tensorcv_capture::camera::CameraFormat>,
}

/// A number in `min..=max` (NaN and infinities are not); `what` says what is expected.
fn number_in(s: &str, min: f64, max: f64, what: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (min..=max).contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not {what}")),
    }
}

fn parse_unit(s: &str) -> Result<f32, String> {
    number_in(s, 0.0, 1.0, "a number from 0 to 1").map(|v| v as f32)
}

fn parse_fps(s: &str) -> Result<f64, String> {
    number_in(
        s,
        0.001,
        10_000.0,
        "a rate from 0.001 to 10000 frames a second",
    )
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    number_in(s, 0.01, 86_400.0, "a number of seconds from 0.01 to 86400")
}

/// `--background`: what replaces the background of a segmented image.
#[derive(Clone, Debug, PartialEq)]
pub enum Background {
    /// Gaussian blur with this kernel size (`None`: a tenth of the image)
    Blur(Option<usize>),
    /// a color, RGB
    Color([u8; 3]),
    /// an image file
    Image(PathBuf),
}

/// The largest `--background blur:K`.
const MAX_BLUR: usize = 1001;

/// The largest side of `--size` and `--camera-size`.
const MAX_SIDE: usize = 16384;

fn parse_background(s: &str) -> Result<Background, String> {
    if s == "blur" {
        return Ok(Background::Blur(None));
    }
    if let Some(k) = s.strip_prefix("blur:") {
        return match k.parse::<usize>() {
            Ok(k) if k % 2 == 1 && k <= MAX_BLUR => Ok(Background::Blur(Some(k))),
            _ => Err(format!(
                "'{k}' is not an odd kernel size from 1 to {MAX_BLUR}, like 31"
            )),
        };
    }
    if let Some(hex) = s.strip_prefix('#') {
        let bad = || format!("'{s}' is not a color like #00ff00");
        if hex.len() != 6 || !hex.is_ascii() {
            return Err(bad());
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
        return Ok(Background::Color([byte(0)?, byte(2)?, byte(4)?]));
    }
    let path = PathBuf::from(s);
    if !path.is_file() {
        return Err(format!(
            "'{s}' is not blur, blur:K, a color like #00ff00, or an image file"
        ));
    }
    Ok(Background::Image(path))
}

fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("'{s}' is not a size like 224x224 (1 to {MAX_SIDE} each)");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (usize, usize) = (
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    );
    if !(1..=MAX_SIDE).contains(&w) || !(1..=MAX_SIDE).contains(&h) {
        return Err(bad());
    }
    Ok((w, h))
}

fn parse_roi_scale(s: &str) -> Result<f32, String> {
    match number_in(s, 0.0, 100.0, "a factor above 0, at most 100") {
        Ok(v) if v > 0.0 => Ok(v as f32),
        _ => Err(format!("'{s}' is not a factor above 0, at most 100")),
    }
}

fn parse_roi_pad(s: &str) -> Result<f32, String> {
    number_in(s, 0.0, 100_000.0, "a number of pixels from 0 to 100000").map(|v| v as f32)
}

fn parse_triple(s: &str) -> Result<[f32; 3], String> {
    let bad = || format!("'{s}' is not three numbers like 0.485,0.456,0.406 (within ±1000000)");
    let v: Vec<f32> = s
        .split(',')
        .map(|x| number_in(x, -1e6, 1e6, "").map(|v| v as f32))
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    v.try_into().map_err(|_| bad())
}

fn parse_std(s: &str) -> Result<[f32; 3], String> {
    let v = parse_triple(s)?;
    if v.contains(&0.0) {
        return Err(format!("'{s}': a standard deviation of 0 divides by zero"));
    }
    Ok(v)
}
