//! Raw frames from a pipe or a file, for every codec we do not decode:
//!
//! ```sh
//! ffmpeg -i in.mp4 -f rawvideo -pix_fmt rgb24 - | tensorcv detect --raw 1280x720:rgb24 -
//! ```
//!
//! Each frame is exactly `width × height × bytes-per-pixel` bytes (NV12: 1.5 bytes), back to
//! back; the stream ends at the end of its input. [`RawWriter`] writes frames the same way for
//! `ffplay -f rawvideo -pixel_format bgr24 -video_size WxH -`.

use crate::error::{source_err, Error, Result};
use crate::{Frame, Source, SourceInfo};
use std::io::{BufReader, Read, Write};
use std::str::FromStr;
use std::time::Duration;
use tensorcv_imgproc::color::yuv::{self, YuvFormat, YuvImage};
use tensorcv_imgproc::{color, Image, ImageView, PixelFormat};

/// The pixel layouts `--raw` reads (ffmpeg's `-pix_fmt` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawPixels {
    /// `rgb24`
    Rgb24,
    /// `bgr24`
    Bgr24,
    /// `gray`
    Gray,
    /// `yuyv422` / `yuyv`
    Yuyv,
    /// `nv12`
    Nv12,
}

/// `WxH:format`, as given to `--raw`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawFormat {
    /// frame width
    pub width: usize,
    /// frame height
    pub height: usize,
    /// pixel layout
    pub pixels: RawPixels,
}

impl RawFormat {
    /// Bytes of one frame.
    pub fn frame_len(&self) -> usize {
        let n = self.width * self.height;
        match self.pixels {
            RawPixels::Rgb24 | RawPixels::Bgr24 => n * 3,
            RawPixels::Gray => n,
            RawPixels::Yuyv => n * 2,
            RawPixels::Nv12 => n + n / 2,
        }
    }
}

impl FromStr for RawFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("'{s}' is not WxH:FORMAT (FORMAT: rgb24, bgr24, gray, yuyv, nv12)");
        let (size, pixels) = s.split_once(':').ok_or_else(bad)?;
        let (w, h) = size.split_once(['x', 'X']).ok_or_else(bad)?;
        let (width, height): (usize, usize) =
            (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
        let pixels = match pixels.to_ascii_lowercase().as_str() {
            "rgb24" | "rgb" => RawPixels::Rgb24,
            "bgr24" | "bgr" => RawPixels::Bgr24,
            "gray" | "grey" | "gray8" => RawPixels::Gray,
            "yuyv" | "yuyv422" | "yuy2" => RawPixels::Yuyv,
            "nv12" => RawPixels::Nv12,
            _ => return Err(bad()),
        };
        if width == 0 || height == 0 || width.saturating_mul(height) > 1 << 26 {
            return Err(format!("'{s}': frame size out of range"));
        }
        if matches!(pixels, RawPixels::Yuyv | RawPixels::Nv12) && width % 2 != 0
            || pixels == RawPixels::Nv12 && height % 2 != 0
        {
            return Err(format!("'{s}': this format needs an even size"));
        }
        Ok(RawFormat {
            width,
            height,
            pixels,
        })
    }
}

/// Reads raw frames from standard input (`-`) or a file.
pub struct RawReader {
    info: SourceInfo,
    format: RawFormat,
    input: Box<dyn Read + Send>,
    buffer: Vec<u8>,
    index: u64,
}

impl RawReader {
    /// `-` for standard input, else a file (or a named pipe).
    pub fn open(input: impl AsRef<std::path::Path>, format: RawFormat) -> Result<Self> {
        let input = input.as_ref();
        let name = input.display().to_string();
        let reader: Box<dyn Read + Send> = if input.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(BufReader::new(
                std::fs::File::open(input).map_err(|e| source_err(&name, e))?,
            ))
        };
        Ok(Self::new(name, reader, format))
    }

    /// Read from any byte stream.
    pub fn new(name: String, input: Box<dyn Read + Send>, format: RawFormat) -> Self {
        RawReader {
            info: SourceInfo {
                name,
                width: Some(format.width),
                height: Some(format.height),
                format: format!("raw {:?}", format.pixels).to_lowercase(),
                fps: None,
                frames: None,
                live: false,
            },
            format,
            input,
            buffer: vec![0; format.frame_len()],
            index: 0,
        }
    }
}

/// Read exactly `buf.len()` bytes; `Ok(false)` on a clean end before the first byte.
fn fill(input: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the input ends {got} bytes into a {} byte frame", buf.len()),
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

impl Source for RawReader {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        let index = self.index;
        match fill(&mut self.input, &mut self.buffer) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => {
                return Err(Error::Source {
                    source_name: self.info.name.clone(),
                    message: e.to_string(),
                })
            }
        }
        self.index += 1;
        let f = self.format;
        let (w, h) = (f.width, f.height);
        let image = match f.pixels {
            RawPixels::Bgr24 => Image::from_vec(self.buffer.clone(), w, h, PixelFormat::Bgr8)?,
            RawPixels::Gray => Image::from_vec(self.buffer.clone(), w, h, PixelFormat::Gray8)?,
            RawPixels::Rgb24 => color::convert_to(
                &ImageView::new(&self.buffer, w, h, PixelFormat::Rgb8)?,
                PixelFormat::Bgr8,
            )?,
            RawPixels::Yuyv => yuv::to_image(
                &YuvImage::new(&self.buffer, w, h, YuvFormat::Yuyv)?,
                PixelFormat::Bgr8,
            )?,
            RawPixels::Nv12 => yuv::to_image(
                &YuvImage::new(&self.buffer, w, h, YuvFormat::Nv12)?,
                PixelFormat::Bgr8,
            )?,
        };
        Ok(Some(Frame {
            image,
            index,
            timestamp: Duration::ZERO,
            name: None,
            scale: 1.0,
        }))
    }
}

/// Writes frames as raw `bgr24` or `rgb24` bytes (to stdout for `ffplay`).
pub struct RawWriter {
    out: Box<dyn Write + Send>,
    pixels: PixelFormat,
    buffer: Image,
    name: String,
}

impl RawWriter {
    /// `pixels` is [`PixelFormat::Bgr8`] (`bgr24`) or [`PixelFormat::Rgb8`] (`rgb24`).
    pub fn new(name: String, out: Box<dyn Write + Send>, pixels: PixelFormat) -> Self {
        RawWriter {
            out,
            pixels,
            buffer: Image::new(1, 1, pixels).expect("1x1 fits"),
            name,
        }
    }

    /// Write one frame.
    pub fn write(&mut self, frame: &ImageView<'_>) -> Result<()> {
        self.buffer
            .reshape(frame.width(), frame.height(), self.pixels)?;
        color::convert(frame, &mut self.buffer.view_mut())?;
        self.out
            .write_all(self.buffer.as_bytes())
            .map_err(|e| Error::Write {
                path: self.name.clone(),
                source: e,
            })
    }

    /// Flush.
    pub fn finish(mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::Write {
            path: self.name.clone(),
            source: e,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_frames_read() {
        let f: RawFormat = "4x2:rgb24".parse().unwrap();
        assert_eq!(f.frame_len(), 24);
        assert!("4x2:rgba".parse::<RawFormat>().is_err());
        assert!("3x2:nv12".parse::<RawFormat>().is_err());
        assert!("0x2:gray".parse::<RawFormat>().is_err());
        assert_eq!(
            "640x480:nv12".parse::<RawFormat>().unwrap().frame_len(),
            460_800
        );
        let mut data: Vec<u8> = (0..48).collect();
        data.extend_from_slice(&[1, 2, 3]); // a partial third frame
        let mut r = RawReader::new("t".into(), Box::new(std::io::Cursor::new(data)), f);
        let a = r.next_frame().unwrap().unwrap();
        assert_eq!(&a.image.as_bytes()[..3], &[2, 1, 0], "RGB in, BGR out");
        assert_eq!(r.next_frame().unwrap().unwrap().index, 1);
        let e = r.next_frame().unwrap_err().to_string();
        assert!(e.contains("3 bytes into a 24 byte frame"), "{e}");
    }
}
