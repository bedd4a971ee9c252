//! Animated GIF: each frame composited onto the canvas as browsers show it (the `image`
//! crate's GIF decoder), with its delay as the timestamp.

use crate::error::{source_err, Error, Result};
use crate::{Frame, Source, SourceInfo};
use image::AnimationDecoder;
use std::path::Path;
use std::time::Duration;
use tensorcv_imgproc::{color, Image, PixelFormat};

/// The most decoded RGBA bytes a GIF may hold (frames are composited up front).
const MAX_BYTES: u64 = 1 << 30;

/// Reads the frames of a GIF file.
pub struct GifReader {
    info: SourceInfo,
    frames: std::vec::IntoIter<image::Frame>,
    /// a decoding error after the frames before it
    error: Option<String>,
    index: u64,
    time: Duration,
}

impl GifReader {
    /// Open `path` (a still GIF is a one-frame stream).
    pub fn open(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| source_err(&name, e))?;
        let decoder = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(file))
            .map_err(|e| source_err(&name, format!("cannot read GIF: {e}")))?;
        let (w, h) = image::ImageDecoder::dimensions(&decoder);
        if (w as u64) * (h as u64) > 1 << 26 {
            return Err(source_err(
                &name,
                format!("{w}x{h} frames are larger than allowed"),
            ));
        }
        // image's GIF frames are not Send: composite them now, within a memory bound
        let mut frames = Vec::new();
        let mut error = None;
        let per_frame = (w as u64) * (h as u64) * 4;
        for f in decoder.into_frames() {
            match f {
                Ok(f) if (frames.len() as u64 + 1) * per_frame <= MAX_BYTES => frames.push(f),
                Ok(_) => {
                    error = Some(format!("more than {} frames of {w}x{h}", frames.len()));
                    break;
                }
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            }
        }
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
            frames: frames.into_iter(),
            error,
            index: 0,
            time: Duration::ZERO,
        })
    }
}

impl Source for GifReader {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        let index = self.index;
        let Some(frame) = self.frames.next() else {
            return match self.error.take() {
                Some(message) => Err(Error::Frame {
                    source_name: self.info.name.clone(),
                    index,
                    message,
                }),
                None => Ok(None),
            };
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
