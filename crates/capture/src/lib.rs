//! # tensorcv-capture
//!
//! Where frames come from, where annotated frames go, and a runner that keeps a model busy on
//! a stream:
//!
//! | source | module | opened by [`open`] from |
//! |---|---|---|
//! | image files, folders (walked, sorted), numbered sequences | [`files`] | `photo.jpg`, `dir/`, `frames/%05d.png` |
//! | Y4M video (raw YUV 4:2:0 / 4:2:2 / 4:4:4, mono) | [`y4m`] | `clip.y4m` |
//! | MJPEG in AVI (cameras, OpenCV's `VideoWriter` with `MJPG`) | [`avi`] | `clip.avi` |
//! | animated GIF | [`gif`] | `anim.gif` |
//! | raw frames from a pipe or file (`ffmpeg -f rawvideo`) | [`raw`] | `-` or a file, with a [`raw::RawFormat`] |
//! | MJPEG over HTTP (`multipart/x-mixed-replace`, IP cameras) | [`http`] | `http://host:port/path` |
//! | V4L2 cameras (cargo feature `camera`) | [`camera`] | `camera:0`, `camera:/dev/video2` |
//!
//! Every source says its frame size, pixel format and frame rate ([`SourceInfo`]) and gives
//! [`Frame`]s with their index and timestamp, decoded to BGR by `tensorcv-imgproc` (camera and
//! video YUV included, with OpenCV's numbers). Sinks write Y4M, MJPEG-AVI, image sequences or
//! raw frames ([`sink`]); [`serve`] shows a live preview over HTTP. Sources and sinks need
//! only `tensorcv-imgproc`. With the `runner` feature (which brings the model crates, and
//! tract), `runner` runs decode, preprocessing, inference and post-processing on their own
//! threads, dropping stale frames of live sources.

/// Whether this target can start threads: not WASM without the threads proposal
/// (`wasm32-wasip1`, `wasm32-unknown-unknown`). There the runner runs its stages in one thread
/// and GIF files (whose decoder runs on a thread of its own) are refused with a clear error.
pub const THREADS: bool = !cfg!(all(target_family = "wasm", not(target_feature = "atomics")));

pub mod avi;
pub mod camera;
mod error;
pub mod files;
pub mod gif;
pub mod http;
pub mod jpeg;
pub mod multipart;
pub mod raw;
#[cfg(feature = "runner")]
pub mod runner;
pub mod serve;
pub mod sink;
pub mod y4m;

pub use error::{Error, Result};
use std::path::Path;
use std::time::Duration;
use tensorcv_imgproc::io::DecodeLimits;
use tensorcv_imgproc::Image;

/// One frame of a source.
#[derive(Clone, Debug)]
pub struct Frame {
    /// the pixels, BGR (or gray for gray sources), as `cv2.imread` gives them
    pub image: Image,
    /// the frame's index in the source (frames skipped or dropped still count)
    pub index: u64,
    /// when the frame is shown: from the frame rate for files, since the start for live
    /// sources
    pub timestamp: Duration,
    /// for files in a folder or sequence: the file's path
    pub name: Option<String>,
    /// the decoded width over the source's: 1, or 1/2, 1/4, 1/8 for JPEG files decoded reduced
    /// ([`OpenOptions::reduce_to`]); coordinates found in `image` divided by it are the file's
    pub scale: f32,
}

/// What a source is.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceInfo {
    /// the file, URL, device or pattern
    pub name: String,
    /// frame width, when all frames share it
    pub width: Option<usize>,
    /// frame height
    pub height: Option<usize>,
    /// the pixel format frames arrive in (`"I420"`, `"MJPEG"`, `"rgb24"`, `"PNG files"`, ...)
    pub format: String,
    /// frames per second, when the source says
    pub fps: Option<f64>,
    /// how many frames, when known in advance
    pub frames: Option<u64>,
    /// a live source (camera, network stream): frames come at their own pace and stale ones
    /// may be dropped
    pub live: bool,
}

/// A stream of frames.
pub trait Source: Send {
    /// What the source is.
    fn info(&self) -> &SourceInfo;

    /// The next frame, `Ok(None)` at the end. An [`Error::Frame`] is one bad frame (a
    /// corrupt file in a folder, a broken JPEG in a video): the next call goes on after it.
    fn next_frame(&mut self) -> Result<Option<Frame>>;

    /// The next frame as work another thread can finish (reading and decoding an image file),
    /// so that several frames decode at once; `Ok(None)` at the end. The default reads the
    /// frame here and hands it over finished.
    fn next_job(&mut self) -> Result<Option<FrameJob>> {
        Ok(self
            .next_frame()?
            .map(|frame| Box::new(move || Ok(frame)) as FrameJob))
    }

    /// Whether [`Source::next_job`] leaves the decoding to the job (worth more threads).
    fn decodes_in_jobs(&self) -> bool {
        false
    }
}

/// A frame's remaining work (see [`Source::next_job`]).
pub type FrameJob = Box<dyn FnOnce() -> Result<Frame> + Send>;

/// How [`open`] should read an input.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// read raw frames of this size and format (stdin for `-`)
    pub raw: Option<raw::RawFormat>,
    /// camera settings for `camera:...`
    pub camera: camera::CameraRequest,
    /// give up on a network source after this long without data (default
    /// [`OpenOptions::DEFAULT_TIMEOUT`]; [`OpenOptions::MIN_TIMEOUT`] to
    /// [`OpenOptions::MAX_TIMEOUT`])
    pub timeout: Option<Duration>,
    /// give up on a network source when one frame takes longer than this to arrive, even if
    /// bytes keep coming (a server trickling a byte a second); default
    /// [`OpenOptions::DEFAULT_FRAME_DEADLINE`], same range as `timeout`
    pub frame_deadline: Option<Duration>,
    /// the largest frame (MJPEG part) a network source may send, with or without a
    /// `Content-Length`; default [`OpenOptions::DEFAULT_MAX_PART`], at most
    /// [`OpenOptions::MAX_PART`]
    pub max_part: Option<usize>,
    /// decode JPEG image files reduced (1/2, 1/4 or 1/8) while they stay at least this size
    /// (see `tensorcv_imgproc::io::DecodeOptions::reduce_to`); `None`: full size
    pub reduce_to: Option<(u32, u32)>,
    /// the largest image decoded (image files, AVI and HTTP frames); default
    /// [`DecodeLimits::default`]
    pub limits: DecodeLimits,
}

impl OpenOptions {
    /// The idle timeout of network sources when none is given.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// The longest one network frame may take when no deadline is given.
    pub const DEFAULT_FRAME_DEADLINE: Duration = Duration::from_secs(15);
    /// The shortest timeout or deadline.
    pub const MIN_TIMEOUT: Duration = Duration::from_millis(10);
    /// The longest timeout or deadline (a day).
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);
    /// The largest network frame when none is given: 32 MiB (a 4K MJPEG frame is 1–3 MB).
    pub const DEFAULT_MAX_PART: usize = 32 << 20;
    /// The largest `max_part`.
    pub const MAX_PART: usize = 1 << 30;

    /// Check every setting against its range; the error names the setting.
    pub fn validate(&self) -> Result<()> {
        let bad = |setting: &'static str, message: String| Err(Error::Invalid { setting, message });
        let range = Self::MIN_TIMEOUT..=Self::MAX_TIMEOUT;
        for (setting, v) in [
            ("timeout", self.timeout),
            ("frame_deadline", self.frame_deadline),
        ] {
            if let Some(t) = v.filter(|t| !range.contains(t)) {
                return bad(
                    setting,
                    format!(
                        "{:?} is not between {:?} and {:?}",
                        t,
                        Self::MIN_TIMEOUT,
                        Self::MAX_TIMEOUT
                    ),
                );
            }
        }
        if let Some(p) = self.max_part.filter(|p| !(1..=Self::MAX_PART).contains(p)) {
            return bad(
                "max_part",
                format!("{p} bytes is not in 1..={}", Self::MAX_PART),
            );
        }
        if let Some((w, h)) = self.reduce_to.filter(|&(w, h)| w == 0 || h == 0) {
            return bad("reduce_to", format!("{w}x{h} is not a size"));
        }
        Ok(())
    }
}

/// Open the source an input names: a file (by extension: `.y4m`, `.avi`, `.gif`, else an
/// image), a folder, a numbered sequence (`%d`, `%05d`), `-` or a file with `raw` set, an
/// `http://` URL, or `camera:N` / `camera:/dev/videoN`.
pub fn open(input: &str, options: &OpenOptions) -> Result<Box<dyn Source>> {
    options.validate()?;
    if let Some(device) = input.strip_prefix("camera:") {
        return camera::open(device, &options.camera);
    }
    if input.starts_with("http://") || input.starts_with("https://") {
        return http::open(input, options);
    }
    if let Some(format) = options.raw {
        return Ok(Box::new(raw::RawReader::open(input, format)?));
    }
    if input == "-" {
        return Err(error::source_err(
            "-",
            "reading frames from standard input needs --raw WxH:FORMAT (rgb24, bgr24, gray, \
             yuyv, nv12)",
        ));
    }
    if files::is_sequence_pattern(input) {
        return Ok(image_files(files::ImageFiles::sequence(input)?, options));
    }
    open_file(Path::new(input), options)
}

/// [`open`] for an input that may not be UTF-8 (a file or folder name from the command line
/// or a walk): a UTF-8 one goes to [`open`] as it is, any other is a path for [`open_path`].
pub fn open_os(input: &std::ffi::OsStr, options: &OpenOptions) -> Result<Box<dyn Source>> {
    match input.to_str() {
        Some(input) => open(input, options),
        None => open_path(Path::new(input), options),
    }
}

/// Open a file or folder by its path, whatever bytes it is made of: a folder of images, a
/// file by extension (`.y4m`, `.avi`, `.gif`, else an image), or raw frames when `raw` is set.
/// No URL, camera or pattern is looked for in it (that is [`open`]).
pub fn open_path(path: &Path, options: &OpenOptions) -> Result<Box<dyn Source>> {
    options.validate()?;
    open_file(path, options)
}

/// [`open_path`] with the options already checked.
fn open_file(path: &Path, options: &OpenOptions) -> Result<Box<dyn Source>> {
    if let Some(format) = options.raw {
        return Ok(Box::new(raw::RawReader::open(path, format)?));
    }
    if path.is_dir() {
        return Ok(image_files(files::ImageFiles::folder(path)?, options));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "y4m" => Ok(Box::new(y4m::Y4mReader::open(path)?)),
        "avi" => Ok(Box::new(
            avi::AviReader::open(path)?.with_limits(options.limits),
        )),
        "gif" => Ok(Box::new(gif::GifReader::open_with(path, options.limits)?)),
        _ => Ok(image_files(files::ImageFiles::file(path)?, options)),
    }
}

fn image_files(files: files::ImageFiles, options: &OpenOptions) -> Box<dyn Source> {
    Box::new(
        files
            .reduce_to(options.reduce_to)
            .with_limits(options.limits),
    )
}
