//! Where annotated frames go: a Y4M or MJPEG-AVI file, an image sequence, or a stream on
//! standard output (Y4M for `ffplay -`, or raw `bgr24` / `rgb24` frames).

use crate::avi::AviWriter;
use crate::error::{Error, Result};
use crate::files::{is_sequence_pattern, sequence_path};
use crate::raw::RawWriter;
use crate::y4m::Y4mWriter;
use std::path::Path;
use tensorcv_imgproc::io::imwrite;
use tensorcv_imgproc::{ImageView, PixelFormat};

/// A video output, chosen by [`VideoSink::create`] from its name.
pub enum VideoSink {
    /// `.y4m`, or `-` (standard output)
    Y4m(Y4mWriter),
    /// `.avi` (MJPEG)
    Avi(AviWriter),
    /// `frames/%05d.png` (any image extension); the counter starts at 0
    Sequence {
        /// the pattern
        pattern: String,
        /// frames written
        next: u64,
    },
    /// `-:bgr24` / `-:rgb24`
    Raw(RawWriter),
}

impl VideoSink {
    /// Check an output before any frame is made: its kind (from the name) and, for a file,
    /// that its folder exists — so a typo fails at once, naming the output, not after the
    /// first frame.
    pub fn check(output: &str) -> Result<()> {
        let bad = |m: String| Error::Sink {
            path: output.to_string(),
            message: m,
        };
        if matches!(output, "-" | "-:bgr24" | "-:rgb24") || is_sequence_pattern(output) {
            return Ok(());
        }
        let path = Path::new(output);
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if !matches!(ext.as_deref(), Some("y4m" | "avi")) {
            return Err(bad(
                "give a .y4m or .avi file, a pattern like frames/%05d.png, or - for standard \
                 output"
                    .into(),
            ));
        }
        if path.is_dir() {
            return Err(bad("a folder, not a file".into()));
        }
        match path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) if !dir.is_dir() => Err(bad(format!(
                "the folder '{}' does not exist",
                dir.display()
            ))),
            _ => Ok(()),
        }
    }

    /// An output for `width`×`height` frames at `fps`: `-` (Y4M on stdout), `-:bgr24`,
    /// `-:rgb24`, `x.y4m`, `x.avi`, or a `%d` pattern.
    pub fn create(output: &str, width: usize, height: usize, fps: f64) -> Result<Self> {
        let bad = |m: &str| Error::Sink {
            path: output.to_string(),
            message: m.to_string(),
        };
        match output {
            "-" => {
                return Ok(VideoSink::Y4m(Y4mWriter::new(
                    "standard output".into(),
                    Box::new(std::io::stdout()),
                    width,
                    height,
                    fps,
                )?))
            }
            "-:bgr24" | "-:rgb24" => {
                let pixels = if output.ends_with("bgr24") {
                    PixelFormat::Bgr8
                } else {
                    PixelFormat::Rgb8
                };
                return Ok(VideoSink::Raw(RawWriter::new(
                    "standard output".into(),
                    Box::new(std::io::stdout()),
                    pixels,
                )));
            }
            _ => {}
        }
        if is_sequence_pattern(output) {
            if let Some(dir) = Path::new(output)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|e| bad(&e.to_string()))?;
            }
            return Ok(VideoSink::Sequence {
                pattern: output.to_string(),
                next: 0,
            });
        }
        let path = Path::new(output);
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("y4m") => Ok(VideoSink::Y4m(Y4mWriter::create(path, width, height, fps)?)),
            Some("avi") => Ok(VideoSink::Avi(AviWriter::create(
                path, width, height, fps, 90,
            )?)),
            _ => Err(bad(
                "give a .y4m or .avi file, a pattern like frames/%05d.png, or - for standard \
                 output",
            )),
        }
    }

    /// Append a frame.
    pub fn write(&mut self, frame: &ImageView<'_>) -> Result<()> {
        match self {
            VideoSink::Y4m(w) => w.write(frame),
            VideoSink::Avi(w) => w.write(frame),
            VideoSink::Raw(w) => w.write(frame),
            VideoSink::Sequence { pattern, next } => {
                let path = sequence_path(pattern, *next).unwrap_or_else(|| pattern.clone());
                *next += 1;
                imwrite(&path, frame)?;
                Ok(())
            }
        }
    }

    /// Close the output so it is complete and valid (AVI: index and sizes).
    pub fn finish(self) -> Result<()> {
        match self {
            VideoSink::Y4m(w) => w.finish(),
            VideoSink::Avi(w) => w.finish(),
            VideoSink::Raw(w) => w.finish(),
            VideoSink::Sequence { .. } => Ok(()),
        }
    }
}
