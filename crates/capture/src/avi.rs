//! AVI (RIFF) files holding MJPEG — what webcams record and what OpenCV's
//! `cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, size)` writes — and
//! uncompressed 24-bit BGR. The reader walks the `movi` list chunk by chunk (OpenDML `AVIX`
//! extensions included), so it needs no index and reads files cut short; [`AviWriter`] writes
//! MJPEG with an `idx1` index that players use for seeking.

use crate::error::{source_err, Error, Result};
use crate::{jpeg, Frame, Source, SourceInfo};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;
use tensorcv_imgproc::io::{imdecode, imencode, DecodeLimits, DecodeOptions, EncodeFormat};
use tensorcv_imgproc::{Image, ImageView, PixelFormat};

/// The largest chunk the reader accepts (a corrupt size must not allocate gigabytes).
const MAX_CHUNK: u32 = 256 << 20;

/// What [`AviReader::from_reader`] reads from.
pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// How the video stream is coded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// Motion JPEG: every frame a JPEG
    Mjpeg,
    /// uncompressed bottom-up BGR, rows padded to 4 bytes
    Bgr24,
}

/// Reads an AVI file frame by frame.
pub struct AviReader {
    info: SourceInfo,
    input: Box<dyn ReadSeek>,
    codec: Codec,
    width: usize,
    height: usize,
    /// the `##dc` / `##db` chunk ids of the video stream
    ids: [[u8; 4]; 2],
    frame_time: Duration,
    index: u64,
    data: Vec<u8>,
    decode: DecodeOptions,
    done: bool,
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    b.get(i..i + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .unwrap_or(0)
}

impl AviReader {
    /// Open and parse the headers; frames are read on demand.
    pub fn open(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| source_err(&name, e))?;
        Self::from_reader(name, Box::new(BufReader::new(file)))
    }

    /// Read from any seekable byte source (a file, bytes in memory), named `name` in errors.
    pub fn from_reader(name: String, mut input: Box<dyn ReadSeek>) -> Result<Self> {
        let err = |m: String| source_err(&name, m);
        let mut head = [0u8; 12];
        input
            .read_exact(&mut head)
            .map_err(|_| err("not an AVI file (too short)".into()))?;
        if &head[0..4] != b"RIFF" || &head[8..12] != b"AVI " {
            return Err(err("not an AVI file (no RIFF AVI header)".into()));
        }
        let (mut micros, mut total, mut width, mut height) = (0u32, 0u32, 0usize, 0usize);
        let (mut stream, mut video, mut codec, mut rate) = (0usize, None, None, None);
        // top-level chunks until the movi list
        loop {
            let (id, size) = chunk_header(&mut input)
                .map_err(|_| err("the file ends before its frames (no movi list)".into()))?;
            if &id == b"LIST" {
                let mut kind = [0u8; 4];
                input
                    .read_exact(&mut kind)
                    .map_err(|e| err(e.to_string()))?;
                if &kind == b"movi" {
                    break;
                }
                if &kind != b"hdrl" {
                    skip(&mut input, size.saturating_sub(4)).map_err(|e| err(e.to_string()))?;
                    continue;
                }
                let body = read_body(&mut input, size.saturating_sub(4))
                    .map_err(|e| err(format!("bad header list: {e}")))?;
                // walk hdrl: avih, then strl lists of strh + strf
                let mut i = 0;
                while i + 8 <= body.len() {
                    let cid = &body[i..i + 4];
                    let csize = u32_at(&body, i + 4) as usize;
                    let data = &body[i + 8..(i + 8 + csize).min(body.len())];
                    match cid {
                        b"avih" => {
                            micros = u32_at(data, 0);
                            total = u32_at(data, 16);
                            width = u32_at(data, 32) as usize;
                            height = u32_at(data, 36) as usize;
                        }
                        b"LIST" => {
                            // descend: strl holds strh/strf
                            i += 12;
                            continue;
                        }
                        b"strh" => {
                            if &data[0..4.min(data.len())] == b"vids" && video.is_none() {
                                video = Some(stream);
                                let (scale, r) = (u32_at(data, 20), u32_at(data, 24));
                                if scale > 0 && r > 0 {
                                    rate = Some(r as f64 / scale as f64);
                                }
                            }
                            stream += 1;
                        }
                        b"strf"
                            if video.is_some()
                                && video == stream.checked_sub(1)
                                && codec.is_none() =>
                        {
                            let w = u32_at(data, 4) as i32;
                            let h = u32_at(data, 8) as i32;
                            let bits = data.get(14).copied().unwrap_or(0);
                            let compression = data.get(16..20).unwrap_or(&[0; 4]);
                            codec = Some(match compression {
                                b"MJPG" | b"mjpg" | b"AVRn" | b"dmb1" => Codec::Mjpeg,
                                [0, 0, 0, 0] if bits == 24 => Codec::Bgr24,
                                other => {
                                    return Err(err(format!(
                                        "video codec '{}' is not supported (MJPEG or \
                                         uncompressed 24-bit); convert with ffmpeg -c:v mjpeg",
                                        String::from_utf8_lossy(other)
                                    )))
                                }
                            });
                            if w > 0 && h != 0 {
                                width = w as usize;
                                height = h.unsigned_abs() as usize;
                            }
                        }
                        _ => {}
                    }
                    i += 8 + csize + (csize & 1);
                }
            } else {
                skip(&mut input, size).map_err(|e| err(e.to_string()))?;
            }
        }
        let video = video.ok_or_else(|| err("no video stream".into()))?;
        let codec = codec.ok_or_else(|| err("the video stream has no format (strf)".into()))?;
        if width == 0 || height == 0 || width.saturating_mul(height) > 1 << 26 {
            return Err(err(format!("bad frame size {width}x{height}")));
        }
        // a rate no video has (a corrupt header) is no rate
        let fps = rate
            .or((micros > 0).then(|| 1e6 / micros as f64))
            .filter(|f| (1e-3..=1e4).contains(f));
        let ids = [
            format!("{video:02}dc")
                .into_bytes()
                .try_into()
                .unwrap_or(*b"00dc"),
            format!("{video:02}db")
                .into_bytes()
                .try_into()
                .unwrap_or(*b"00db"),
        ];
        Ok(AviReader {
            info: SourceInfo {
                name: name.clone(),
                width: Some(width),
                height: Some(height),
                format: match codec {
                    Codec::Mjpeg => "MJPEG".into(),
                    Codec::Bgr24 => "BGR24".into(),
                },
                fps,
                frames: (total > 0).then_some(total as u64),
                live: false,
            },
            input,
            codec,
            width,
            height,
            ids,
            frame_time: Duration::from_secs_f64(1.0 / fps.unwrap_or(25.0)),
            index: 0,
            data: Vec::new(),
            decode: DecodeOptions::default(),
            done: false,
        })
    }

    /// The codec of the video stream.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Refuse JPEG frames over these limits (default: [`DecodeLimits::default`]).
    pub fn with_limits(mut self, limits: DecodeLimits) -> Self {
        self.decode.limits = limits;
        self
    }

    fn decode_frame(&mut self, index: u64) -> Result<Image> {
        let name = &self.info.name;
        let frame_err = |message: String| Error::Frame {
            source_name: name.clone(),
            index,
            message,
        };
        match self.codec {
            Codec::Mjpeg => {
                let jpeg = jpeg::with_huffman_tables(&self.data);
                imdecode(&jpeg, &self.decode).map_err(|e| frame_err(e.to_string()))
            }
            Codec::Bgr24 => {
                let (w, h) = (self.width, self.height);
                let stride = (w * 3 + 3) & !3;
                if self.data.len() < stride * h {
                    return Err(frame_err(format!(
                        "{} bytes for a {w}x{h} BGR frame",
                        self.data.len()
                    )));
                }
                let mut image = Image::new(w, h, PixelFormat::Bgr8)?;
                for y in 0..h {
                    let src = &self.data[(h - 1 - y) * stride..][..w * 3];
                    image.as_bytes_mut()[y * w * 3..(y + 1) * w * 3].copy_from_slice(src);
                }
                Ok(image)
            }
        }
    }
}

fn chunk_header(input: &mut impl Read) -> std::io::Result<([u8; 4], u32)> {
    let mut h = [0u8; 8];
    input.read_exact(&mut h)?;
    Ok(([h[0], h[1], h[2], h[3]], u32_at(&h, 4)))
}

fn skip(input: &mut (impl Read + Seek), size: u32) -> std::io::Result<()> {
    input.seek(SeekFrom::Current(size as i64 + (size & 1) as i64))?;
    Ok(())
}

fn read_body(input: &mut impl Read, size: u32) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    read_chunk(input, size, &mut body)?;
    if size & 1 == 1 {
        let mut pad = [0u8; 1];
        let _ = input.read(&mut pad)?;
    }
    Ok(body)
}

/// Read a chunk of `size` bytes into `into`: memory grows with the bytes that arrive, never
/// with the size a header claims (a corrupt size in a short file allocates nothing).
fn read_chunk(input: &mut impl Read, size: u32, into: &mut Vec<u8>) -> std::io::Result<()> {
    if size > MAX_CHUNK {
        return Err(std::io::Error::other(format!("a {size} byte chunk")));
    }
    into.clear();
    input.take(size as u64).read_to_end(into)?;
    if into.len() < size as usize {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

impl Source for AviReader {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        while !self.done {
            let Ok((id, size)) = chunk_header(&mut self.input) else {
                self.done = true;
                break;
            };
            match &id {
                b"LIST" | b"RIFF" => {
                    // descend into movi / rec / an OpenDML AVIX extension
                    let mut kind = [0u8; 4];
                    if self.input.read_exact(&mut kind).is_err() {
                        self.done = true;
                        break;
                    }
                    if !matches!(&kind, b"movi" | b"rec " | b"AVIX")
                        && skip(&mut self.input, size.saturating_sub(4)).is_err()
                    {
                        self.done = true;
                    }
                }
                id if self.ids.contains(id) => {
                    let index = self.index;
                    self.index += 1;
                    if size > MAX_CHUNK {
                        self.done = true;
                        return Err(Error::Frame {
                            source_name: self.info.name.clone(),
                            index,
                            message: format!("a {size} byte frame chunk"),
                        });
                    }
                    if read_chunk(&mut self.input, size, &mut self.data).is_err() {
                        self.done = true;
                        return Err(Error::Frame {
                            source_name: self.info.name.clone(),
                            index,
                            message: "the file ends inside this frame".into(),
                        });
                    }
                    if size & 1 == 1 {
                        let mut pad = [0u8; 1];
                        let _ = self.input.read(&mut pad);
                    }
                    if size == 0 {
                        // a dropped frame: the previous one repeats; skip it
                        continue;
                    }
                    let image = self.decode_frame(index)?;
                    return Ok(Some(Frame {
                        image,
                        index,
                        timestamp: Duration::try_from_secs_f64(
                            self.frame_time.as_secs_f64() * index as f64,
                        )
                        .unwrap_or(Duration::MAX),
                        name: None,
                        scale: 1.0,
                    }));
                }
                _ => {
                    if skip(&mut self.input, size).is_err() {
                        self.done = true;
                    }
                }
            }
        }
        Ok(None)
    }
}

/// Writes MJPEG frames into an AVI file; [`AviWriter::finish`] writes the index and the sizes
/// that make it playable.
pub struct AviWriter {
    out: BufWriter<std::fs::File>,
    path: String,
    width: usize,
    height: usize,
    quality: u8,
    /// (offset from the `movi` fourcc, size) of every frame
    index: Vec<(u32, u32)>,
    /// where the `movi` fourcc is
    movi_at: u64,
    written: u64,
}

const AVIF_HASINDEX: u32 = 0x10;
const AVIIF_KEYFRAME: u32 = 0x10;

impl AviWriter {
    /// Create `path` for `width`×`height` frames at `fps`, JPEG `quality` 1..=100.
    pub fn create(path: &Path, width: usize, height: usize, fps: f64, quality: u8) -> Result<Self> {
        let name = path.display().to_string();
        let sink = |e: std::io::Error| Error::Write {
            path: name.clone(),
            source: e,
        };
        let file = std::fs::File::create(path).map_err(sink)?;
        let mut out = BufWriter::new(file);
        let fps = if fps.is_finite() && fps > 0.0 {
            fps
        } else {
            25.0
        };
        let (rate, scale) = ((fps * 1000.0).round() as u32, 1000u32);
        let micros = (1e6 / fps).round() as u32;
        let (w, h) = (width as u32, height as u32);
        let mut hdr = Vec::new();
        let put = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
        // RIFF AVI, sizes patched in finish()
        hdr.extend_from_slice(b"RIFF");
        put(&mut hdr, 0);
        hdr.extend_from_slice(b"AVI LIST");
        put(&mut hdr, 4 + 8 + 56 + 12 + 8 + 56 + 8 + 40);
        hdr.extend_from_slice(b"hdrlavih");
        put(&mut hdr, 56);
        for v in [micros, 0, 0, AVIF_HASINDEX, 0, 0, 1, 0, w, h, 0, 0, 0, 0] {
            put(&mut hdr, v);
        }
        hdr.extend_from_slice(b"LIST");
        put(&mut hdr, 4 + 8 + 56 + 8 + 40);
        hdr.extend_from_slice(b"strlstrh");
        put(&mut hdr, 56);
        hdr.extend_from_slice(b"vidsMJPG");
        for v in [0, 0, 0, scale, rate, 0, 0, 0, u32::MAX, 0] {
            put(&mut hdr, v);
        }
        hdr.extend_from_slice(&[0u8; 8]); // rcFrame
        hdr.extend_from_slice(b"strf");
        put(&mut hdr, 40);
        for v in [40, w, h] {
            put(&mut hdr, v);
        }
        hdr.extend_from_slice(&1u16.to_le_bytes());
        hdr.extend_from_slice(&24u16.to_le_bytes());
        hdr.extend_from_slice(b"MJPG");
        for v in [w * h * 3, 0, 0, 0, 0] {
            put(&mut hdr, v);
        }
        hdr.extend_from_slice(b"LIST");
        put(&mut hdr, 0);
        let movi_at = hdr.len() as u64;
        hdr.extend_from_slice(b"movi");
        out.write_all(&hdr).map_err(sink)?;
        Ok(AviWriter {
            out,
            path: name,
            width,
            height,
            quality: quality.clamp(1, 100),
            index: Vec::new(),
            movi_at,
            written: hdr.len() as u64,
        })
    }

    fn sink_err(&self, message: impl std::fmt::Display) -> Error {
        Error::Sink {
            path: self.path.clone(),
            message: message.to_string(),
        }
    }

    /// Append one frame (any pixel format; its size must be the video's).
    pub fn write(&mut self, frame: &ImageView<'_>) -> Result<()> {
        if (frame.width(), frame.height()) != (self.width, self.height) {
            return Err(self.sink_err(format!(
                "a {}x{} frame in a {}x{} video",
                frame.width(),
                frame.height(),
                self.width,
                self.height
            )));
        }
        let jpeg = imencode(frame, EncodeFormat::Jpeg(self.quality))?;
        self.write_jpeg(&jpeg)
    }

    /// Append one already encoded JPEG frame.
    pub fn write_jpeg(&mut self, jpeg: &[u8]) -> Result<()> {
        let size = jpeg.len() as u32;
        if self.written + jpeg.len() as u64 + 16 > (1 << 30) {
            return Err(self.sink_err("over 1 GiB: split the recording (OpenDML is not written)"));
        }
        let offset = (self.written - self.movi_at) as u32;
        let mut chunk = Vec::with_capacity(jpeg.len() + 9);
        chunk.extend_from_slice(b"00dc");
        chunk.extend_from_slice(&size.to_le_bytes());
        chunk.extend_from_slice(jpeg);
        if size & 1 == 1 {
            chunk.push(0);
        }
        self.out.write_all(&chunk).map_err(|e| self.sink_err(e))?;
        self.written += chunk.len() as u64;
        self.index.push((offset, size));
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.index.len() as u64
    }

    /// Write the index, patch the sizes and frame counts, flush.
    pub fn finish(mut self) -> Result<()> {
        let mut idx = Vec::with_capacity(8 + 16 * self.index.len());
        idx.extend_from_slice(b"idx1");
        idx.extend_from_slice(&((16 * self.index.len()) as u32).to_le_bytes());
        for (offset, size) in &self.index {
            idx.extend_from_slice(b"00dc");
            for v in [AVIIF_KEYFRAME, *offset, *size] {
                idx.extend_from_slice(&v.to_le_bytes());
            }
        }
        self.out.write_all(&idx).map_err(|e| self.sink_err(e))?;
        let total = self.written + idx.len() as u64;
        let frames = self.index.len() as u32;
        let movi_size = (self.written - self.movi_at) as u32;
        let patches: [(u64, u32); 4] = [
            (4, (total - 8) as u32),
            (self.movi_at - 4, movi_size),
            // avih dwTotalFrames: RIFF(12) + LIST hdrl(12) + avih header(8) + 16
            (12 + 12 + 8 + 16, frames),
            // strh dwLength: ... + avih(56) + LIST strl(12) + strh header(8) + 32
            (12 + 12 + 8 + 56 + 12 + 8 + 32, frames),
        ];
        self.out.flush().map_err(|e| self.sink_err(e))?;
        let file = self.out.get_mut();
        for (at, v) in patches {
            file.seek(SeekFrom::Start(at))
                .and_then(|_| file.write_all(&v.to_le_bytes()))
                .map_err(|e| Error::Write {
                    path: self.path.clone(),
                    source: e,
                })?;
        }
        file.flush().map_err(|e| Error::Write {
            path: self.path.clone(),
            source: e,
        })
    }
}
