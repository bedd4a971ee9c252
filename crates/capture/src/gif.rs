//! Animated GIF: each frame composited onto the canvas as browsers show it (the `image`
//! crate's GIF decoder), with its delay as the timestamp.

use crate::error::{source_err, Error, Result};
use crate::{Frame, Source, SourceInfo};
use image::AnimationDecoder;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Duration;
use tensorcv_imgproc::io::DecodeLimits;
use tensorcv_imgproc::{color, Image, PixelFormat};

/// Frames decoded ahead of the reader.
const AHEAD: usize = 1;

/// What the decoding thread sends.
enum Decoded {
    /// the canvas size, first
    Size(u32, u32),
    /// a composited frame
    Frame(image::Frame),
    /// the file cannot be read further
    Error(String),
}

/// Reads the frames of a GIF file. `image`'s GIF decoder is not `Send`, so it runs on a thread
/// of its own, decoding at most [`AHEAD`] frame ahead: memory stays a frame or two however many
/// frames the file holds. The thread ends with the file, or when the reader is dropped.
pub struct GifReader {
    info: SourceInfo,
    frames: Receiver<Decoded>,
    index: u64,
    time: Duration,
    done: bool,
}

impl GifReader {
    /// Open `path` (a still GIF is a one-frame stream) with the default [`DecodeLimits`].
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, DecodeLimits::default())
    }

    /// Open `path`, refusing a canvas or a frame over `limits` (a frame may claim a size far
    /// larger than its canvas: it is checked before its buffer is allocated).
    pub fn open_with(path: &Path, limits: DecodeLimits) -> Result<Self> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| source_err(&name, e))?;
        Self::from_reader(name, std::io::BufReader::new(file), limits)
    }

    /// Read from any seekable byte source (a file, bytes in memory), named `name` in errors.
    pub fn from_reader(
        name: String,
        input: impl std::io::BufRead + std::io::Seek + Send + 'static,
        limits: DecodeLimits,
    ) -> Result<Self> {
        if !crate::THREADS {
            return Err(source_err(
                &name,
                "GIF is not read on this target: its decoder needs a thread of its own \
                 (convert it to Y4M or AVI, or use a native build)",
            ));
        }
        let (tx, frames) = sync_channel(AHEAD);
        std::thread::Builder::new()
            .name("tensorcv-gif".into())
            .spawn(move || decode(input, limits, tx))
            .map_err(|e| source_err(&name, format!("cannot start the GIF decoder: {e}")))?;
        let (w, h) = match frames.recv() {
            Ok(Decoded::Size(w, h)) => (w, h),
            Ok(Decoded::Error(e)) => return Err(source_err(&name, e)),
            _ => return Err(source_err(&name, "cannot read GIF")),
        };
        Ok(GifReader {
            info: SourceInfo {
                name,
                width: Some(w as usize),
                height: Some(h as usize),
                format: "GIF".into(),
                fps: None,
                frames: None,
                live: false,
            },
            frames,
            index: 0,
            time: Duration::ZERO,
            done: false,
        })
    }
}

/// The decoding thread: the size, then frame after frame, until the file ends or the reader
/// is gone.
fn decode(
    input: impl std::io::BufRead + std::io::Seek,
    limits: DecodeLimits,
    tx: SyncSender<Decoded>,
) {
    use image::ImageDecoder;
    let mut decoder = match image::codecs::gif::GifDecoder::new(input) {
        Ok(d) => d,
        Err(e) => {
            let _ = tx.send(Decoded::Error(format!("cannot read GIF: {e}")));
            return;
        }
    };
    let (w, h) = decoder.dimensions();
    if (w as u64) * (h as u64) > MAX_PIXELS.min(limits.max_pixels) {
        let _ = tx.send(Decoded::Error(format!(
            "{w}x{h} frames are larger than allowed"
        )));
        return;
    }
    // the decoder checks every frame's buffer against these before allocating it
    if let Err(e) = decoder.set_limits(limits.decoder_limits()) {
        let _ = tx.send(Decoded::Error(format!("cannot read GIF: {e}")));
        return;
    }
    if tx.send(Decoded::Size(w, h)).is_err() {
        return;
    }
    let mut frames = decoder.into_frames();
    loop {
        // the image crate's decoder is third-party code: a panic in it is this file's error
        let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| frames.next()))
            .unwrap_or_else(|p| {
                Some(Err(image::ImageError::IoError(std::io::Error::other(
                    format!(
                        "the GIF decoder failed: {}",
                        tensorcv_imgproc::panic_message(&*p)
                    ),
                ))))
            });
        let Some(f) = next else {
            return;
        };
        let sent = match f {
            Ok(f) => tx.send(Decoded::Frame(f)),
            Err(e) => {
                let _ = tx.send(Decoded::Error(e.to_string()));
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

/// The largest canvas, in pixels.
const MAX_PIXELS: u64 = 1 << 26;

impl Source for GifReader {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        let index = self.index;
        if self.done {
            return Ok(None);
        }
        let frame = match self.frames.recv() {
            Ok(Decoded::Frame(f)) => f,
            Ok(Decoded::Error(message)) => {
                self.done = true;
                return Err(Error::Frame {
                    source_name: self.info.name.clone(),
                    index,
                    message,
                });
            }
            Ok(Decoded::Size(..)) | Err(_) => {
                self.done = true;
                return Ok(None);
            }
        };
        self.index += 1;
        let timestamp = self.time;
        let (num, den) = frame.delay().numer_denom_ms();
        self.time += Duration::from_secs_f64(num as f64 / den.max(1) as f64 / 1000.0);
        let rgba = frame.into_buffer();
        let (w, h) = (rgba.width() as usize, rgba.height() as usize);
        let rgba = Image::from_vec(rgba.into_raw(), w, h, PixelFormat::Rgba8)?;
        let image = color::convert_to(&rgba.view(), PixelFormat::Bgr8)?;
        Ok(Some(Frame {
            image,
            index,
            timestamp,
            name: None,
            scale: 1.0,
        }))
    }
}
