//! Y4M (YUV4MPEG2): raw YUV frames behind a one-line header, the format ffmpeg, x264 and most
//! codec tools read and write, and that players open. 8-bit `C420jpeg` / `C420paldv` /
//! `C420mpeg2` / `C420`, `C422`, `C444` and `Cmono` are read; frames become BGR with OpenCV's
//! BT.601 numbers. [`Y4mWriter`] writes `C420jpeg` (even sizes) or `C444` (odd sizes).

use crate::error::{source_err, Error, Result};
use crate::{Frame, Source, SourceInfo};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::time::Duration;
use tensorcv_imgproc::color::yuv::{self, Chroma};
use tensorcv_imgproc::{Image, ImageView, PixelFormat};

/// The most pixels a frame may claim (a corrupt header must not allocate gigabytes).
const MAX_PIXELS: usize = 1 << 26;

/// A Y4M stream header.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// frame width
    pub width: usize,
    /// frame height
    pub height: usize,
    /// frame rate as a fraction
    pub fps: (u32, u32),
    /// chroma layout; `None` for `Cmono`
    pub chroma: Option<Chroma>,
}

impl Header {
    /// Parse the header line (without its newline).
    pub fn parse(line: &str) -> std::result::Result<Header, String> {
        let mut fields = line.split(' ');
        if fields.next() != Some("YUV4MPEG2") {
            return Err("not a Y4M file (no YUV4MPEG2 signature)".into());
        }
        let (mut width, mut height, mut fps, mut chroma) =
            (None, None, (25, 1), Some(Chroma::C420));
        for f in fields.filter(|f| !f.is_empty()) {
            // the tag is one character, not one byte (a field may start with any UTF-8)
            let Some(tag) = f.chars().next() else {
                continue;
            };
            let value = &f[tag.len_utf8()..];
            match tag {
                'W' => width = value.parse::<usize>().ok(),
                'H' => height = value.parse::<usize>().ok(),
                'F' => {
                    let (n, d) = value
                        .split_once(':')
                        .ok_or(format!("bad frame rate '{value}'"))?;
                    fps = (
                        n.parse().map_err(|_| format!("bad frame rate '{value}'"))?,
                        d.parse().map_err(|_| format!("bad frame rate '{value}'"))?,
                    );
                }
                'C' => {
                    chroma = match value {
                        "420jpeg" | "420paldv" | "420mpeg2" | "420" => Some(Chroma::C420),
                        "422" => Some(Chroma::C422),
                        "444" => Some(Chroma::C444),
                        "mono" => None,
                        other => {
                            return Err(format!(
                                "colorspace C{other} is not supported (8-bit 420, 422, 444, mono)"
                            ))
                        }
                    }
                }
                // I (interlacing: frames are shown as progressive), A (aspect), X (extensions)
                _ => {}
            }
        }
        let (width, height) = match (width, height) {
            (Some(w), Some(h)) if w > 0 && h > 0 => (w, h),
            _ => return Err("the header has no valid W and H".into()),
        };
        if width.saturating_mul(height) > MAX_PIXELS {
            return Err(format!("{width}x{height} frames are larger than allowed"));
        }
        if fps.0 == 0 || fps.1 == 0 {
            fps = (25, 1);
        }
        Ok(Header {
            width,
            height,
            fps,
            chroma,
        })
    }

    /// Bytes of one frame's pixels.
    pub fn frame_len(&self) -> usize {
        match self.chroma {
            Some(c) => c.frame_len(self.width, self.height).unwrap_or(usize::MAX),
            None => self.width * self.height,
        }
    }

    /// The header line, with its newline.
    pub fn line(&self) -> String {
        let c = match self.chroma {
            Some(Chroma::C420) => "420jpeg",
            Some(Chroma::C422) => "422",
            Some(Chroma::C444) => "444",
            None => "mono",
        };
        format!(
            "YUV4MPEG2 W{} H{} F{}:{} Ip A1:1 C{c}\n",
            self.width, self.height, self.fps.0, self.fps.1
        )
    }
}

/// Reads a `.y4m` file (or any reader) frame by frame.
pub struct Y4mReader {
    info: SourceInfo,
    header: Header,
    input: Box<dyn BufRead + Send>,
    buffer: Vec<u8>,
    index: u64,
    done: bool,
}

impl Y4mReader {
    /// Open a file.
    pub fn open(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| source_err(&name, e))?;
        Self::new(name, Box::new(BufReader::new(file)))
    }

    /// Read from any byte stream (stdin, a socket).
    pub fn new(name: String, mut input: Box<dyn BufRead + Send>) -> Result<Self> {
        let line = read_line(&mut input, 4096)
            .map_err(|e| source_err(&name, e))?
            .ok_or_else(|| source_err(&name, "empty file"))?;
        let header = Header::parse(&line).map_err(|e| source_err(&name, e))?;
        let info = SourceInfo {
            name,
            width: Some(header.width),
            height: Some(header.height),
            format: match header.chroma {
                Some(c) => format!("Y4M {c:?}"),
                None => "Y4M mono".into(),
            },
            fps: Some(header.fps.0 as f64 / header.fps.1 as f64)
                .filter(|f| (1e-3..=1e4).contains(f)),
            frames: None,
            live: false,
        };
        Ok(Y4mReader {
            info,
            header,
            input,
            buffer: Vec::new(),
            index: 0,
            done: false,
        })
    }

    /// The stream header.
    pub fn header(&self) -> &Header {
        &self.header
    }
}

/// One `\n`-terminated line of at most `max` bytes; `None` at a clean end of input.
fn read_line(input: &mut dyn BufRead, max: usize) -> std::result::Result<Option<String>, String> {
    let mut line = Vec::new();
    let n = input
        .take(max as u64 + 1)
        .read_until(b'\n', &mut line)
        .map_err(|e| e.to_string())?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(if n > max {
            format!("a header line longer than {max} bytes")
        } else {
            "the file ends inside a header line".into()
        });
    }
    line.pop();
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| "a header line is not text".into())
}

impl Source for Y4mReader {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        if self.done {
            return Ok(None);
        }
        let name = &self.info.name;
        let index = self.index;
        let frame_err = |message: String| Error::Frame {
            source_name: name.clone(),
            index,
            message,
        };
        let line = match read_line(&mut self.input, 1024) {
            Ok(Some(l)) => l,
            Ok(None) => {
                self.done = true;
                return Ok(None);
            }
            Err(e) => {
                self.done = true;
                return Err(frame_err(e));
            }
        };
        if !line.starts_with("FRAME") {
            self.done = true;
            return Err(frame_err(format!("expected FRAME, found '{line:.20}'")));
        }
        self.buffer.resize(self.header.frame_len(), 0);
        if let Err(e) = self.input.read_exact(&mut self.buffer) {
            self.done = true;
            return Err(frame_err(format!("truncated frame ({e})")));
        }
        let (w, h) = (self.header.width, self.header.height);
        let mut image = match self.header.chroma {
            Some(_) => Image::new(w, h, PixelFormat::Bgr8)?,
            None => Image::new(w, h, PixelFormat::Gray8)?,
        };
        match self.header.chroma {
            Some(c) => yuv::convert_planar(&self.buffer, c, &mut image.view_mut())?,
            None => image.as_bytes_mut().copy_from_slice(&self.buffer[..w * h]),
        }
        self.index += 1;
        let (n, d) = self.header.fps;
        Ok(Some(Frame {
            image,
            index,
            timestamp: Duration::try_from_secs_f64(index as f64 * d as f64 / n as f64)
                .unwrap_or(Duration::MAX),
            name: None,
            scale: 1.0,
        }))
    }
}

/// Writes frames to a `.y4m` file: `C420jpeg` when the size is even, `C444` otherwise.
pub struct Y4mWriter {
    out: BufWriter<Box<dyn Write + Send>>,
    header: Header,
    buffer: Vec<u8>,
    path: String,
    frames: u64,
}

impl Y4mWriter {
    /// Create `path` for `width`×`height` frames at `fps` (a rate like 29.97 is stored as a
    /// fraction over 1000).
    pub fn create(path: &Path, width: usize, height: usize, fps: f64) -> Result<Self> {
        let name = path.display().to_string();
        let file = std::fs::File::create(path).map_err(|e| Error::Write {
            path: name.clone(),
            source: e,
        })?;
        Self::new(name, Box::new(file), width, height, fps)
    }

    /// Write to any byte sink (stdout for `ffplay -`).
    pub fn new(
        name: String,
        out: Box<dyn Write + Send>,
        width: usize,
        height: usize,
        fps: f64,
    ) -> Result<Self> {
        let chroma = if width.is_multiple_of(2) && height.is_multiple_of(2) {
            Chroma::C420
        } else {
            Chroma::C444
        };
        let fps = if fps.is_finite() && fps > 0.0 {
            fps
        } else {
            25.0
        };
        let header = Header {
            width,
            height,
            fps: ((fps * 1000.0).round() as u32, 1000),
            chroma: Some(chroma),
        };
        let mut out = BufWriter::new(out);
        out.write_all(header.line().as_bytes())
            .map_err(|e| Error::Write {
                path: name.clone(),
                source: e,
            })?;
        Ok(Y4mWriter {
            out,
            header,
            buffer: Vec::new(),
            path: name,
            frames: 0,
        })
    }

    /// Append one frame (any pixel format; its size must be the stream's).
    pub fn write(&mut self, frame: &ImageView<'_>) -> Result<()> {
        if (frame.width(), frame.height()) != (self.header.width, self.header.height) {
            return Err(Error::Sink {
                path: self.path.clone(),
                message: format!(
                    "a {}x{} frame in a {}x{} video",
                    frame.width(),
                    frame.height(),
                    self.header.width,
                    self.header.height
                ),
            });
        }
        let chroma = self.header.chroma.unwrap_or(Chroma::C444);
        yuv::to_planar(frame, chroma, &mut self.buffer)?;
        let sink = |e: std::io::Error| Error::Write {
            path: self.path.clone(),
            source: e,
        };
        self.out.write_all(b"FRAME\n").map_err(sink)?;
        self.out.write_all(&self.buffer).map_err(sink)?;
        self.frames += 1;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Flush everything to the file.
    pub fn finish(mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::Write {
            path: self.path.clone(),
            source: e,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let h = Header::parse("YUV4MPEG2 W64 H48 F30000:1001 It A1:1 C422 XYSCSS=422").unwrap();
        assert_eq!(
            (h.width, h.height, h.fps, h.chroma),
            (64, 48, (30000, 1001), Some(Chroma::C422))
        );
        assert_eq!(h.frame_len(), 64 * 48 * 2);
        let h = Header::parse("YUV4MPEG2 W3 H3").unwrap();
        assert_eq!(h.chroma, Some(Chroma::C420));
        assert_eq!(h.frame_len(), 9 + 2 * 4);
        assert!(Header::parse("YUV4MPEG2 W3").is_err());
        assert!(Header::parse("YUV4MPEG2 W100000 H100000").is_err());
        assert!(Header::parse("YUV4MPEG2 W4 H4 C420p10")
            .unwrap_err()
            .contains("not supported"));
        assert!(Header::parse("RIFF").is_err());
        // found by fuzzing: a field that starts with a character of several bytes
        let h = Header::parse("YUV4MPEG2 W5 H3 \u{1d2}ono").unwrap();
        assert_eq!((h.width, h.height), (5, 3));
    }

    #[test]
    fn written_frames_read_back() {
        let mut img = Image::new(6, 4, PixelFormat::Bgr8).unwrap();
        // a smooth picture: chroma subsampling barely changes it
        for (i, v) in img.as_bytes_mut().iter_mut().enumerate() {
            let (x, y, c) = ((i / 3) % 6, i / 18, i % 3);
            *v = (40 + x * 12 + y * 9 + c * 40) as u8;
        }
        for (w, h) in [(6, 4), (5, 3)] {
            let part = img
                .view()
                .sub_view(tensorcv_imgproc::Rect {
                    x: 0,
                    y: 0,
                    width: w,
                    height: h,
                })
                .unwrap();
            let path =
                std::env::temp_dir().join(format!("tensorcv-y4m-{}-{w}.y4m", std::process::id()));
            let mut wr = Y4mWriter::create(&path, w, h, 29.97).unwrap();
            wr.write(&part).unwrap();
            wr.write(&part).unwrap();
            if (w, h) != (6, 4) {
                assert!(wr.write(&img.view()).is_err(), "a frame of another size");
            }
            wr.finish().unwrap();
            let mut r = Y4mReader::open(&path).unwrap();
            assert_eq!(r.info().fps, Some(29.97));
            let a = r.next_frame().unwrap().unwrap();
            let b = r.next_frame().unwrap().unwrap();
            assert!(r.next_frame().unwrap().is_none());
            assert_eq!((a.index, b.index), (0, 1));
            assert_eq!(a.image.as_bytes(), b.image.as_bytes());
            assert_eq!((a.image.width(), a.image.height()), (w, h));
            // YUV round trip: close, not exact (chroma subsampling, video range)
            let max = a
                .image
                .as_bytes()
                .iter()
                .zip(part.to_image().as_bytes())
                .map(|(x, y)| x.abs_diff(*y))
                .max()
                .unwrap();
            assert!(max <= 6, "{w}x{h}: {max}");
            std::fs::remove_file(&path).ok();
        }
    }
}
