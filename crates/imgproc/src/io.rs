//! Decoding and encoding, like `cv2.imread` / `cv2.imdecode` / `cv2.imwrite`.
//!
//! Decoding goes through the `image` crate built with only JPEG, PNG, BMP, WebP, GIF, TIFF and
//! PNM. As `cv2.imread` does by default, EXIF orientation is applied (except in
//! [`ImreadMode::Unchanged`], where OpenCV ignores it too) and images come out in OpenCV's
//! channel order ([`PixelFormat::Bgr8`]) unless asked otherwise.
//!
//! The image header is checked against [`DecodeLimits`] before any pixel memory is allocated,
//! so a small file that claims to be 100000×100000 pixels is refused with a clear error instead
//! of exhausting memory.
//!
//! File access is a thin layer over [`imdecode`]/[`imencode`], which work on bytes and so also
//! run in WASM.

use crate::color;
use crate::error::{Error, Result};
use crate::image::{Image, ImageView, PixelFormat};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use std::io::Cursor;
use std::path::Path;

/// What to decode into, after OpenCV's `IMREAD_*` flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ImreadMode {
    /// `IMREAD_COLOR`: 3 channels, BGR; alpha dropped, gray expanded
    #[default]
    Color,
    /// 3 channels, RGB (what `cv2.cvtColor(img, COLOR_BGR2RGB)` gives after `Color`)
    ColorRgb,
    /// `IMREAD_GRAYSCALE`: one channel, converted with OpenCV's gray weights. (OpenCV's JPEG
    /// reader returns the JPEG luma plane instead, which can differ by a level or two.)
    Grayscale,
    /// `IMREAD_UNCHANGED`: gray, BGR or BGRA as stored; EXIF orientation is not applied
    Unchanged,
}

/// Limits that refuse oversized (or hostile) images before their pixels are allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// widest image accepted
    pub max_width: u32,
    /// tallest image accepted
    pub max_height: u32,
    /// most pixels accepted (width × height)
    pub max_pixels: u64,
    /// largest encoded input, in bytes
    pub max_input_bytes: u64,
    /// most memory the decoder may allocate, in bytes
    pub max_alloc: u64,
}

impl Default for DecodeLimits {
    /// 16384 pixels a side, 2²⁶ pixels (8192×8192, 67 megapixels), 256 MiB of input, 512 MiB
    /// of decoder memory: one decode of the largest image peaks near 250 MB of memory, so
    /// several decoding at once stay within a gigabyte. Raise `max_pixels` for larger photos.
    fn default() -> Self {
        DecodeLimits {
            max_width: 16384,
            max_height: 16384,
            max_pixels: 1 << 26,
            max_input_bytes: 256 << 20,
            max_alloc: 512 << 20,
        }
    }
}

impl DecodeLimits {
    /// The same limits as the `image` crate's decoders take them (a side and the memory they
    /// may allocate; they check a frame's buffer before allocating it).
    pub fn decoder_limits(&self) -> image::Limits {
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(self.max_width);
        limits.max_image_height = Some(self.max_height);
        limits.max_alloc = Some(self.max_alloc);
        limits
    }
}

/// Options of [`imdecode`] and [`imread`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// channels and order of the result
    pub mode: ImreadMode,
    /// size limits
    pub limits: DecodeLimits,
    /// Decode JPEGs whose data ends before the end-of-image marker, filling the missing part
    /// as libjpeg does (`cv2.imread` returns such images with only a warning). Off by default:
    /// a truncated file is an error.
    pub allow_truncated: bool,
    /// JPEG only: decode with the inverse DCT scaled by 1/2, 1/4 or 1/8 — the smallest scale
    /// that keeps the image at least this `(width, height)` — as `cv2.IMREAD_REDUCED_COLOR_n`
    /// and Pillow's `draft` do. Several times faster on large photos for small model inputs,
    /// but *not* bit-identical to a full decode followed by a resize. `None` (default): full
    /// size.
    pub reduce_to: Option<(u32, u32)>,
}

impl DecodeOptions {
    /// Options with `mode` and default limits.
    pub fn new(mode: ImreadMode) -> Self {
        DecodeOptions {
            mode,
            ..DecodeOptions::default()
        }
    }
}

/// Whether a JPEG stream is complete: an end-of-image marker (`FF D9`) follows its last
/// start-of-scan (`FF DA`). Markers cannot occur inside entropy-coded data (an `FF` there is
/// followed by `00` or a restart marker), and an EXIF thumbnail's markers all come before the
/// main image's first scan, so this finds truncation without decoding.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    if bytes.ends_with(&[0xFF, 0xD9]) {
        return true; // the usual case, without a scan
    }
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_sos {
        Some(at) => bytes[at..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => false,
    }
}

/// Encoded formats we write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeFormat {
    /// lossless
    Png,
    /// lossy, with quality 1..=100 (OpenCV's default is 95)
    Jpeg(u8),
    /// lossless, uncompressed
    Bmp,
    /// lossless PNM (PGM for gray, PPM for color)
    Pnm,
}

impl EncodeFormat {
    /// The format a file name's extension asks for (JPEG at quality 95, like `cv2.imwrite`).
    pub fn from_path(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match ext.as_str() {
            "png" => Ok(EncodeFormat::Png),
            "jpg" | "jpeg" => Ok(EncodeFormat::Jpeg(95)),
            "bmp" => Ok(EncodeFormat::Bmp),
            "pnm" | "ppm" | "pgm" => Ok(EncodeFormat::Pnm),
            _ => Err(Error::UnknownName {
                kind: "image file extension",
                value: ext,
                accepted: "png, jpg, jpeg, bmp, pnm, ppm, pgm".into(),
            }),
        }
    }
}

/// Decode an encoded image (any supported format, sniffed from the bytes).
pub fn imdecode(bytes: &[u8], options: &DecodeOptions) -> Result<Image> {
    imdecode_scaled(bytes, options).map(|(image, _)| image)
}

/// [`imdecode`], and the scale it decoded at: 1, or 1/2, 1/4, 1/8 under
/// [`DecodeOptions::reduce_to`] (decoded width / the file's width).
pub fn imdecode_scaled(bytes: &[u8], options: &DecodeOptions) -> Result<(Image, f32)> {
    // the decoders are the `image` crate's and its codecs': a panic inside one (a bug they may
    // still hold for some corrupt file) is this file's error, not the caller's crash
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode(bytes, options)))
        .unwrap_or_else(|payload| {
            Err(Error::Decode(format!(
                "the decoder failed: {}",
                crate::panic_message(&*payload)
            )))
        })
}

fn decode(bytes: &[u8], options: &DecodeOptions) -> Result<(Image, f32)> {
    let limits = &options.limits;
    if bytes.len() as u64 > limits.max_input_bytes {
        return Err(Error::InputTooLarge {
            len: bytes.len() as u64,
            max: limits.max_input_bytes,
        });
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Decode(e.to_string()))?;
    match reader.format() {
        None => {
            return Err(Error::Decode(
                "unrecognised format (supported: JPEG, PNG, BMP, WebP, GIF, TIFF, PNM)".into(),
            ))
        }
        Some(ImageFormat::Jpeg) if !options.allow_truncated && !jpeg_is_complete(bytes) => {
            return Err(Error::Decode(
                "truncated JPEG: the data ends before the end-of-image marker".into(),
            ))
        }
        Some(ImageFormat::Jpeg) => {
            // where the reduced decoder cannot (or fails), the full one decides
            if let Some(Ok(Some(done))) =
                options.reduce_to.map(|to| jpeg_reduced(bytes, to, options))
            {
                return Ok(done);
            }
        }
        _ => {}
    }
    let mut decoder = reader.into_decoder().map_err(decode_err)?;
    let (w, h) = decoder.dimensions();
    check_limits(w, h, limits)?;
    decoder
        .set_limits(limits.decoder_limits())
        .map_err(decode_err)?;
    let orientation = if options.mode == ImreadMode::Unchanged {
        None
    } else {
        decoder.orientation().ok()
    };
    let mut img = DynamicImage::from_decoder(decoder).map_err(decode_err)?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok((from_dynamic(img, options.mode)?, 1.0))
}

/// A JPEG decoded with a scaled inverse DCT (`jpeg-decoder`), or `None` where the full decoder
/// should do it: no reduction is possible, or a pixel format the reduced path does not handle.
fn jpeg_reduced(
    bytes: &[u8],
    (min_w, min_h): (u32, u32),
    options: &DecodeOptions,
) -> Result<Option<(Image, f32)>> {
    use image::metadata::Orientation;
    use jpeg_decoder::PixelFormat as Jpf;
    let err = |e: jpeg_decoder::Error| Error::Decode(e.to_string());
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.read_info().map_err(err)?;
    let Some(info) = decoder.info() else {
        return Ok(None);
    };
    let (w, h) = (info.width as u32, info.height as u32);
    check_limits(w, h, &options.limits)?;
    if !matches!(info.pixel_format, Jpf::L8 | Jpf::RGB24) {
        return Ok(None);
    }
    let orientation = match options.mode {
        ImreadMode::Unchanged => None,
        _ => decoder
            .exif_data()
            .and_then(Orientation::from_exif_chunk)
            .filter(|o| *o != Orientation::NoTransforms),
    };
    // the file's axes are swapped in the image a quarter turn gives
    let turned = matches!(
        orientation,
        Some(
            Orientation::Rotate90
                | Orientation::Rotate270
                | Orientation::Rotate90FlipH
                | Orientation::Rotate270FlipH
        )
    );
    let (want_w, want_h) = if turned {
        (min_h, min_w)
    } else {
        (min_w, min_h)
    };
    // the smallest of 1/8, 2/8, 4/8 that keeps both axes (jpeg-decoder's own choice keeps one)
    let scaled = |len: u32, n: u32| (len * n).div_ceil(8);
    let n = [1, 2, 4, 8]
        .into_iter()
        .find(|&n| scaled(w, n) >= want_w && scaled(h, n) >= want_h)
        .unwrap_or(8);
    if n == 8 {
        return Ok(None);
    }
    let (sw, sh) = decoder
        .scale(scaled(w, n) as u16, scaled(h, n) as u16)
        .map_err(err)?;
    if (sw as u32, sh as u32) == (w, h) {
        return Ok(None);
    }
    let pixels = decoder.decode().map_err(err)?;
    let bad = || Error::Decode("the reduced JPEG decode gave a wrong-sized buffer".into());
    let mut img = match info.pixel_format {
        Jpf::L8 => DynamicImage::ImageLuma8(
            image::GrayImage::from_raw(sw as u32, sh as u32, pixels).ok_or_else(bad)?,
        ),
        _ => DynamicImage::ImageRgb8(
            image::RgbImage::from_raw(sw as u32, sh as u32, pixels).ok_or_else(bad)?,
        ),
    };
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(Some((
        from_dynamic(img, options.mode)?,
        sw as f32 / w as f32,
    )))
}

fn check_limits(w: u32, h: u32, limits: &DecodeLimits) -> Result<()> {
    if w > limits.max_width || h > limits.max_height || w as u64 * h as u64 > limits.max_pixels {
        return Err(Error::LimitExceeded {
            width: w as u64,
            height: h as u64,
            max_width: limits.max_width as u64,
            max_height: limits.max_height as u64,
            max_pixels: limits.max_pixels,
        });
    }
    Ok(())
}

fn decode_err(e: image::ImageError) -> Error {
    match e {
        image::ImageError::Limits(l) => Error::Decode(format!("over the decoder limits: {l}")),
        other => Error::Decode(other.to_string()),
    }
}

fn from_dynamic(img: DynamicImage, mode: ImreadMode) -> Result<Image> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let has_alpha = img.color().has_alpha();
    let is_gray = matches!(
        img.color(),
        image::ColorType::L8
            | image::ColorType::L16
            | image::ColorType::La8
            | image::ColorType::La16
    );
    // Decode to the widest form we need once, then convert with our own (OpenCV) arithmetic.
    let (native, format) = if is_gray && !(mode == ImreadMode::Unchanged && has_alpha) {
        (img.into_luma8().into_raw(), PixelFormat::Gray8)
    } else if has_alpha {
        (img.into_rgba8().into_raw(), PixelFormat::Rgba8)
    } else {
        (img.into_rgb8().into_raw(), PixelFormat::Rgb8)
    };
    let native = Image::from_vec(native, w, h, format)?;
    let want = match mode {
        ImreadMode::Color => PixelFormat::Bgr8,
        ImreadMode::ColorRgb => PixelFormat::Rgb8,
        ImreadMode::Grayscale => PixelFormat::Gray8,
        ImreadMode::Unchanged => match format {
            PixelFormat::Gray8 => PixelFormat::Gray8,
            PixelFormat::Rgba8 => PixelFormat::Bgra8,
            _ => PixelFormat::Bgr8,
        },
    };
    if want == format {
        return Ok(native);
    }
    // the decoder's RGB(A) frame becomes BGR(A) where it is: no second frame-sized buffer
    if matches!(
        (format, want),
        (PixelFormat::Rgb8, PixelFormat::Bgr8) | (PixelFormat::Rgba8, PixelFormat::Bgra8)
    ) {
        let mut data = native.into_vec();
        color::swap_red_blue_in_place(&mut data, format);
        return Image::from_vec(data, w, h, want);
    }
    color::convert_to(&native.view(), want)
}

/// Read and decode an image file.
pub fn imread(path: impl AsRef<Path>, options: &DecodeOptions) -> Result<Image> {
    imread_scaled(path, options).map(|(image, _)| image)
}

/// [`imread`], and the scale it decoded at (see [`imdecode_scaled`]).
pub fn imread_scaled(path: impl AsRef<Path>, options: &DecodeOptions) -> Result<(Image, f32)> {
    let path = path.as_ref();
    let io_err = |source| Error::Io {
        action: "read",
        path: path.display().to_string(),
        source,
    };
    let in_file = |e: Error| Error::File {
        path: path.display().to_string(),
        source: Box::new(e),
    };
    let meta = std::fs::metadata(path).map_err(io_err)?;
    if meta.is_dir() {
        return Err(io_err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a folder, not an image file",
        )));
    }
    let len = meta.len();
    if len > options.limits.max_input_bytes {
        return Err(in_file(Error::InputTooLarge {
            len,
            max: options.limits.max_input_bytes,
        }));
    }
    // at most the limit even if the file grows while it is read (a pipe, a device)
    let mut bytes = Vec::new();
    {
        use std::io::Read;
        std::fs::File::open(path)
            .and_then(|f| {
                f.take(options.limits.max_input_bytes + 1)
                    .read_to_end(&mut bytes)
            })
            .map_err(io_err)?;
    }
    imdecode_scaled(&bytes, options).map_err(in_file)
}

/// Encode an image. Channel order is taken from the image's format, so a BGR image is written
/// with its colors right (as `cv2.imwrite` does).
pub fn imencode(img: &ImageView<'_>, format: EncodeFormat) -> Result<Vec<u8>> {
    // The encoders want tightly packed RGB(A)/gray.
    let (data, color) = match img.format() {
        PixelFormat::Gray8 => (img.to_image(), image::ExtendedColorType::L8),
        PixelFormat::Rgb8 => (img.to_image(), image::ExtendedColorType::Rgb8),
        PixelFormat::Bgr8 => (
            color::convert_to(img, PixelFormat::Rgb8)?,
            image::ExtendedColorType::Rgb8,
        ),
        PixelFormat::Rgba8 | PixelFormat::Bgra8 if matches!(format, EncodeFormat::Jpeg(_)) => (
            color::convert_to(img, PixelFormat::Rgb8)?,
            image::ExtendedColorType::Rgb8,
        ),
        PixelFormat::Rgba8 => (img.to_image(), image::ExtendedColorType::Rgba8),
        PixelFormat::Bgra8 => (
            color::convert_to(img, PixelFormat::Rgba8)?,
            image::ExtendedColorType::Rgba8,
        ),
    };
    let (w, h) = (img.width() as u32, img.height() as u32);
    let mut out = Vec::new();
    let enc_err = |e: image::ImageError| Error::Encode(e.to_string());
    use image::ImageEncoder;
    match format {
        EncodeFormat::Png => image::codecs::png::PngEncoder::new(&mut out)
            .write_image(data.as_bytes(), w, h, color)
            .map_err(enc_err)?,
        EncodeFormat::Jpeg(q) => {
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, q.clamp(1, 100))
                .write_image(data.as_bytes(), w, h, color)
                .map_err(enc_err)?
        }
        EncodeFormat::Bmp => image::codecs::bmp::BmpEncoder::new(&mut out)
            .write_image(data.as_bytes(), w, h, color)
            .map_err(enc_err)?,
        EncodeFormat::Pnm => {
            let subtype = if color == image::ExtendedColorType::L8 {
                image::codecs::pnm::PnmSubtype::Graymap(image::codecs::pnm::SampleEncoding::Binary)
            } else {
                image::codecs::pnm::PnmSubtype::Pixmap(image::codecs::pnm::SampleEncoding::Binary)
            };
            let data = if color == image::ExtendedColorType::Rgba8 {
                color::convert_to(&data.view(), PixelFormat::Rgb8)?
            } else {
                data
            };
            let color = if color == image::ExtendedColorType::L8 {
                color
            } else {
                image::ExtendedColorType::Rgb8
            };
            image::codecs::pnm::PnmEncoder::new(&mut out)
                .with_subtype(subtype)
                .write_image(data.as_bytes(), w, h, color)
                .map_err(enc_err)?
        }
    }
    Ok(out)
}

/// Encode and write an image; the format comes from the extension.
pub fn imwrite(path: impl AsRef<Path>, img: &ImageView<'_>) -> Result<()> {
    let path = path.as_ref();
    let bytes = imencode(img, EncodeFormat::from_path(path)?)?;
    std::fs::write(path, bytes).map_err(|source| Error::Io {
        action: "write",
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Image {
        let data: Vec<u8> = (0..(5 * 3 * 3)).map(|i| (i * 11) as u8).collect();
        Image::from_vec(data, 5, 3, PixelFormat::Bgr8).unwrap()
    }

    #[test]
    fn lossless_formats_round_trip_in_bgr() {
        let img = sample();
        for f in [EncodeFormat::Png, EncodeFormat::Bmp, EncodeFormat::Pnm] {
            let bytes = imencode(&img.view(), f).unwrap();
            let back = imdecode(&bytes, &DecodeOptions::default()).unwrap();
            assert_eq!(back, img, "{f:?}");
            let rgb = imdecode(&bytes, &DecodeOptions::new(ImreadMode::ColorRgb)).unwrap();
            assert_eq!(
                rgb,
                color::convert_to(&img.view(), PixelFormat::Rgb8).unwrap()
            );
        }
    }

    #[test]
    fn unchanged_keeps_alpha_and_gray() {
        let bgra = Image::from_vec((0..16).collect(), 2, 2, PixelFormat::Bgra8).unwrap();
        let bytes = imencode(&bgra.view(), EncodeFormat::Png).unwrap();
        let back = imdecode(&bytes, &DecodeOptions::new(ImreadMode::Unchanged)).unwrap();
        assert_eq!(back, bgra);
        let color = imdecode(&bytes, &DecodeOptions::default()).unwrap();
        assert_eq!(color.format(), PixelFormat::Bgr8);
        let gray = Image::from_vec(vec![1, 2, 3, 4], 2, 2, PixelFormat::Gray8).unwrap();
        let bytes = imencode(&gray.view(), EncodeFormat::Png).unwrap();
        let back = imdecode(&bytes, &DecodeOptions::new(ImreadMode::Unchanged)).unwrap();
        assert_eq!(back, gray);
    }

    #[test]
    fn limits_refuse_before_decoding() {
        let img = sample();
        let bytes = imencode(&img.view(), EncodeFormat::Png).unwrap();
        let mut opts = DecodeOptions::default();
        opts.limits.max_width = 4;
        let err = imdecode(&bytes, &opts).unwrap_err();
        assert!(
            matches!(err, Error::LimitExceeded { width: 5, .. }),
            "{err}"
        );
        opts.limits = DecodeLimits {
            max_input_bytes: 10,
            ..DecodeLimits::default()
        };
        assert!(matches!(
            imdecode(&bytes, &opts),
            Err(Error::InputTooLarge { .. })
        ));
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        assert!(matches!(
            imdecode(b"not an image at all", &DecodeOptions::default()),
            Err(Error::Decode(_))
        ));
        let bytes = imencode(&sample().view(), EncodeFormat::Png).unwrap();
        for cut in [8, 30, bytes.len() / 2, bytes.len() - 13] {
            let r = imdecode(&bytes[..cut], &DecodeOptions::default());
            assert!(r.is_err(), "PNG cut at {cut} decoded");
        }
        let missing = imread("/nonexistent/x.png", &DecodeOptions::default()).unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/x.png"),
            "{missing}"
        );
    }
}
